"""People, their roles and units, their chat identities, and one-time binding codes."""

from __future__ import annotations

import functools
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class Role(StrEnum):
    """What a person may do. ``external`` contacts (网信, 公安 …) never use the bot."""

    officer = "officer"        # 值班员
    leader = "leader"          # 带班领导
    principal = "principal"    # 主要负责人
    admin = "admin"            # 管理员
    external = "external"      # 外部联系人（网信、公安、电信、上级）
    # 技术保障: who fixes a unit's (or one site's) website — staff or a vendor's engineer.
    # Pinged by the bot when a site is down, its content wrong or tampered with (DUTY-2);
    # may bind a chat account to receive those pings, and uses no command beyond /help.
    support = "support"


ROLE_ZH = {
    Role.officer: "值班员", Role.leader: "带班领导", Role.principal: "主要负责人",
    Role.admin: "管理员", Role.external: "外部联系人", Role.support: "技术保障",
}
ROLE_FROM_ZH = {v: k for k, v in ROLE_ZH.items()} | {r.value: r for r in Role}

PLATFORM_ZH = {"telegram": "Telegram", "wecom": "企业微信", "dingtalk": "钉钉",
               "console": "控制台", "memory": "测试"}


class Person(SQLModel, table=True):
    """A known person. Names are unique within the deployment (they are how people are
    addressed in commands)."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50, unique=True)
    phone: str = Field(default="", max_length=30)
    unit: str = Field(default="", max_length=100)
    roles: str = Field(default="", max_length=200)    # comma-separated Role values
    organization: str = Field(default="", max_length=100)  # for external contacts: 网信办 …
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The day the person was trained (STAFF-1: 先培训后上岗); None: no training recorded.
    trained_on: date | None = Field(default=None, sa_column=Column(Date(), nullable=True))

    def role_set(self) -> frozenset[Role]:
        """The person's roles."""
        return _role_set(self.roles)

    def roles_zh(self) -> str:
        """``值班员、管理员``."""
        return "、".join(ROLE_ZH[r] for r in Role if r in self.role_set()) or "无"


@functools.lru_cache(maxsize=256)
def _role_set(roles: str) -> frozenset[Role]:
    # Asked for every person on every rung of every ladder: a few distinct strings.
    return frozenset(Role(r) for r in roles.split(",") if r)


class ChatIdentity(SQLModel, table=True):
    """A person's account on one chat platform."""

    __tablename__ = "chat_identity"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_chat_identity_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    platform: str = Field(max_length=20)
    external_id: str = Field(max_length=100)       # the platform's user id
    chat_id: str = Field(max_length=100)           # where to reach the person privately
    display_name: str = Field(default="", max_length=100)
    bound_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    blocked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class InviteCode(SQLModel, table=True):
    """A one-time code that binds the first chat identity that sends it to a person."""

    __tablename__ = "invite_code"
    __table_args__ = (Index("ix_invite_code_code", "code", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=20)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_by: str = Field(default="system", max_length=100)


class StaffChange(StrEnum):
    """A change of a person with a duty role that is filed with the district office (STAFF-2)."""

    added = "added"
    deactivated = "deactivated"
    phone = "phone"
    reactivated = "reactivated"
    roles = "roles"
    unit = "unit"


STAFF_CHANGE_ZH = {StaffChange.added: "新增", StaffChange.deactivated: "停用",
                   StaffChange.phone: "手机号码变更", StaffChange.reactivated: "恢复（返岗）",
                   StaffChange.roles: "角色变更", StaffChange.unit: "单位变更"}


class StaffFiling(SQLModel, table=True):
    """One staff change to report for 备案 (STAFF-2); open until an admin marks it filed."""

    __tablename__ = "staff_filing"
    __table_args__ = (Index("ix_staff_filing_open", "filed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    change: str = Field(max_length=12)                 # StaffChange
    detail: str = Field(max_length=300)                # 张三（值班员｜区政府办｜138…）, 138… → 139…
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(default="", max_length=100)
    filed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    filed_by: str = Field(default="", max_length=100)
