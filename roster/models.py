"""The 7×24 reading-duty roster (DOMAIN §1, DUTY-1..5): shifts and who holds them,
leave, swaps, check-ins, handovers, reading rounds, spot-checks and the sites read.

A ``Shift`` is one concrete shift on one duty day (``day`` is the Asia/Shanghai date the
shift starts on; a night shift ends the next morning). Its pattern (workday or rest day)
comes from the working-day calendar when the shift is created, so a make-up Saturday
uses the workday pattern and a holiday the rest-day one. Drafts (``published`` false)
are invisible to ``/duty`` until an admin publishes them.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class DutyRole(StrEnum):
    officer = "officer"     # 值班员
    leader = "leader"       # 带班领导


DUTY_ROLE_ZH = {DutyRole.officer: "值班员", DutyRole.leader: "带班领导"}


class Shift(SQLModel, table=True):
    """One shift on one duty day."""

    __tablename__ = "shift"
    __table_args__ = (UniqueConstraint("day", "name", name="uq_shift_day_name"),
                      Index("ix_shift_span", "starts_at", "ends_at"))

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(sa_column=Column(Date(), nullable=False, index=True))
    name: str = Field(max_length=20)                       # 白班 / 夜班 / 全天
    pattern: str = Field(max_length=10)                    # "workday" or "restday"
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    provisional: bool = Field(default=False)               # the day's calendar data is provisional
    published: bool = Field(default=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ShiftAssignment(SQLModel, table=True):
    """A person holding a shift as officer or leader."""

    __tablename__ = "shift_assignment"
    __table_args__ = (UniqueConstraint("shift_id", "person_id", "role", name="uq_shift_assignment"),
                      Index("ix_shift_assignment_person", "person_id", "shift_id"))

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shift.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    role: str = Field(max_length=10)                       # DutyRole
    source: str = Field(default="manual", max_length=12)   # import / generated / manual / swap / substitute
    checked_in_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Leave(SQLModel, table=True):
    """A person is away on these days (inclusive); the generator leaves them out."""

    __tablename__ = "leave"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    start_day: date = Field(sa_column=Column(Date(), nullable=False))
    end_day: date = Field(sa_column=Column(Date(), nullable=False))
    reason: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SwapStatus(StrEnum):
    pending = "pending"          # waiting for the other person
    accepted = "accepted"        # the other person accepted; waiting for the leader
    approved = "approved"        # done: assignments changed
    declined = "declined"        # the other person said no
    rejected = "rejected"        # the leader said no
    cancelled = "cancelled"      # withdrawn, or the shift passed


SWAP_STATUS_ZH = {SwapStatus.pending: "待对方确认", SwapStatus.accepted: "待领导审批",
                  SwapStatus.approved: "已换班", SwapStatus.declined: "对方已拒绝",
                  SwapStatus.rejected: "领导未批准", SwapStatus.cancelled: "已取消"}


class SwapRequest(SQLModel, table=True):
    """``/swap 日期 对方``: the requester gives their shift to the other person (who may
    give one back: ``back_shift_id``)."""

    __tablename__ = "swap_request"

    id: int | None = Field(default=None, primary_key=True)
    requester_id: int = Field(foreign_key="person.id", index=True)
    target_id: int = Field(foreign_key="person.id", index=True)
    shift_id: int = Field(foreign_key="shift.id")
    back_shift_id: int | None = Field(default=None, foreign_key="shift.id")
    role: str = Field(max_length=10)
    status: str = Field(default=SwapStatus.pending, max_length=10)
    needs_approval: bool = Field(default=False)
    reason: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")


class Handover(SQLModel, table=True):
    """``/handover 备注``: the outgoing officer's summary for the next shift."""

    __tablename__ = "handover"

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shift.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class RoundStatus(StrEnum):
    pending = "pending"
    ok = "ok"
    anomaly = "anomaly"
    missed = "missed"


ROUND_STATUS_ZH = {RoundStatus.pending: "待读网", RoundStatus.ok: "正常", RoundStatus.anomaly: "发现异常",
                   RoundStatus.missed: "未按时完成"}


class ReadingRound(SQLModel, table=True):
    """One reading round (读网) prompted during a shift (DUTY-1: at irregular times)."""

    __tablename__ = "reading_round"
    __table_args__ = (Index("ix_reading_round_open", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shift.id", index=True)
    seq: int
    prompt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))   # answer by
    status: str = Field(default=RoundStatus.pending, max_length=10)
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    answered_by_id: int | None = Field(default=None, foreign_key="person.id")
    note: str = Field(default="", max_length=1000)
    incident_number: str | None = Field(default=None, max_length=20)
    escalation_level: int = Field(default=0)


class SpotCheckStatus(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    missed = "missed"


class SpotCheck(SQLModel, table=True):
    """A district-office spot-check (DUTY-4): the unit's officer on duty must confirm."""

    __tablename__ = "spot_check"

    id: int | None = Field(default=None, primary_key=True)
    unit: str = Field(max_length=100, index=True)
    requested_by_id: int | None = Field(default=None, foreign_key="person.id")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    asked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default=SpotCheckStatus.pending, max_length=10)
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    note: str = Field(default="", max_length=1000)


class Site(SQLModel, table=True):
    """A website or new-media account the duty officers read."""

    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("name", "unit", name="uq_site_name_unit"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    kind: str = Field(default="website", max_length=20)   # website / wechat / weibo / douyin / app / other
    url: str = Field(default="", max_length=1000)          # URL, or the account id on its platform
    unit: str = Field(default="", max_length=100)
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # 技术保障 of this site (a person with the support role, often a vendor's engineer);
    # None: the unit's support people are pinged (issue 14 item 4).
    support_id: int | None = Field(default=None, foreign_key="person.id")
    # On a private or loopback address the office runs: site watch may fetch it (issue 17).
    intranet: bool = Field(default=False)
