"""Incidents: a reported anomaly, sensitive content, public opinion or security event,
the playbook steps it must go through, and the evidence kept for it.

The timeline is the ``audit_event`` log (entity ``incident``); these tables hold the
current state. The escalation ladder is snapshotted into ``Incident.ladder`` (JSON)
when the incident opens (and again when its grade changes), so later roster or people
changes do not rewrite who was responsible at the time.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Date, Index, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime
from incidents.address import KEY_LENGTH, address_key


class IncidentType(StrEnum):
    site_down = "site_down"          # 无法访问 (DUTY-2)
    content_error = "content_error"  # 内容错误 (DUTY-2)
    sensitive = "sensitive"          # 敏感信息 (SENS-2/3)
    tamper = "tamper"                # 篡改/挂马 (SEC-1)
    opinion = "opinion"              # 舆情 (OP-1..4)
    illegal = "illegal"              # 违法有害信息 (SEC-2)
    hack = "hack"                    # 攻击/盗号 (SEC-3/4)
    counterfeit = "counterfeit"      # 假冒账号 (SEC-5)


TYPE_ZH = {
    IncidentType.site_down: "无法访问", IncidentType.content_error: "内容错误",
    IncidentType.sensitive: "敏感信息", IncidentType.tamper: "篡改/挂马",
    IncidentType.opinion: "舆情", IncidentType.illegal: "违法有害信息",
    IncidentType.hack: "攻击/盗号", IncidentType.counterfeit: "假冒账号",
}
TYPE_ALIASES: dict[str, IncidentType] = {v: k for k, v in TYPE_ZH.items()} | {
    "打不开": IncidentType.site_down, "无法打开": IncidentType.site_down,
    "宕机": IncidentType.site_down, "错误": IncidentType.content_error,
    "敏感": IncidentType.sensitive, "篡改": IncidentType.tamper, "挂马": IncidentType.tamper,
    "网页篡改": IncidentType.tamper, "页面篡改": IncidentType.tamper, "被篡改": IncidentType.tamper,
    "违法": IncidentType.illegal, "有害信息": IncidentType.illegal,
    "违法信息": IncidentType.illegal, "攻击": IncidentType.hack, "盗号": IncidentType.hack,
    "黑客": IncidentType.hack, "假冒": IncidentType.counterfeit, "仿冒": IncidentType.counterfeit,
    "假冒账号": IncidentType.counterfeit,
} | {t.value: t for t in IncidentType}


class Grade(StrEnum):
    """GRADE-1: 一般 / 重大 / 特级."""

    general = "general"
    major = "major"
    special = "special"


GRADE_ZH = {Grade.general: "一般", Grade.major: "重大", Grade.special: "特级"}
GRADE_ALIASES: dict[str, Grade] = {v: k for k, v in GRADE_ZH.items()} | {g.value: g for g in Grade}
_GRADE_ZH_BY_VALUE: dict[str, str] = {g.value: zh for g, zh in GRADE_ZH.items()}


class IncidentStatus(StrEnum):
    reported = "reported"            # waiting for someone to acknowledge
    acknowledged = "acknowledged"    # someone confirmed they saw it
    handling = "handling"            # an owner took it; steps in progress
    resolved = "resolved"            # every required step done
    closed = "closed"                # concluded
    cancelled = "cancelled"          # withdrawn, with a reason
    false_alarm = "false_alarm"      # not an incident after all, with a reason


STATUS_ZH = {
    IncidentStatus.reported: "待确认", IncidentStatus.acknowledged: "已确认",
    IncidentStatus.handling: "处置中", IncidentStatus.resolved: "已处置",
    IncidentStatus.closed: "已结案", IncidentStatus.cancelled: "已撤销",
    IncidentStatus.false_alarm: "已标记为误报",
}
OPEN_STATUSES = (IncidentStatus.reported, IncidentStatus.acknowledged, IncidentStatus.handling,
                 IncidentStatus.resolved)
ENDED_STATUSES = (IncidentStatus.closed, IncidentStatus.cancelled, IncidentStatus.false_alarm)


class Source(StrEnum):
    """Who found it: the unit itself (SENS-2) or the district office (SENS-3, DUTY-4)."""

    self_found = "self"
    district = "district"


SOURCE_ZH = {Source.self_found: "本单位发现", Source.district: "区政府办公室通报"}


class StepStatus(StrEnum):
    pending = "pending"
    done = "done"
    skipped = "skipped"      # not applicable, with a reason


STEP_STATUS_ZH = {StepStatus.pending: "待办", StepStatus.done: "已完成", StepStatus.skipped: "不适用"}


class Incident(SQLModel, table=True):
    """One incident and where it stands."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_status_reported", "status", "reported_at"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)        # INC-20261123-001
    type: str = Field(max_length=20)
    grade: str = Field(default=Grade.general, max_length=10)
    # The grade as the office's document names it when it was given (重要信息 under 古丈);
    # None: the bot's own word (GRADE_ZH). See incidents.grades.
    grade_name: str | None = Field(default=None, max_length=20)
    source: str = Field(default=Source.self_found, max_length=10)
    site: str = Field(default="", max_length=200)          # site or account name
    url: str | None = Field(default=None, max_length=1000)
    # The indexed key of ``url or site`` (incidents.address): a second report of the
    # address finds this one by it (issue 21). Kept by the flush hook below.
    address_key: str | None = Field(default=None, max_length=KEY_LENGTH, index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    unit: str = Field(default="", max_length=100, index=True)
    reporter_id: int | None = Field(default=None, foreign_key="person.id")
    owner_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    status: str = Field(default=IncidentStatus.reported, max_length=14)
    status_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    playbook: str = Field(max_length=40)                    # playbook name and version
    ladder: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    escalation_level: int = Field(default=0)                # highest rung pinged so far
    reported_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    acknowledged_by_id: int | None = Field(default=None, foreign_key="person.id")
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    closed_by_id: int | None = Field(default=None, foreign_key="person.id")
    conclusion: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    @property
    def is_open(self) -> bool:
        """Not closed, cancelled or a false alarm."""
        return self.status not in ENDED_STATUSES

    @property
    def grade_label(self) -> str:
        """The grade as shown: the document's name recorded with it, else 一般/重大/特级."""
        return self.grade_name or _GRADE_ZH_BY_VALUE.get(self.grade, self.grade)

    def ladder_rungs(self) -> list[dict[str, Any]]:
        """The snapshotted ladder: ``[{"level", "label", "person_ids", "after_minutes"}, …]``."""
        rungs: list[dict[str, Any]] = json.loads(self.ladder or "[]")
        return rungs


@event.listens_for(Incident, "before_insert")
@event.listens_for(Incident, "before_update")
def _keep_address_key(mapper: Any, connection: Any, incident: Incident) -> None:
    """Every incident written through the session carries the key of its address."""
    incident.address_key = address_key(incident.url or incident.site)


class IncidentStep(SQLModel, table=True):
    """One playbook step of one incident, with its own deadline."""

    __tablename__ = "incident_step"
    __table_args__ = (UniqueConstraint("incident_id", "key", name="uq_incident_step_key"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    seq: int                                                 # 1-based, as shown to people
    key: str = Field(max_length=40)
    title: str = Field(max_length=200)
    rule_id: str = Field(max_length=20)
    citation: str = Field(max_length=200)                    # 梁平办法第二十四条
    period_zh: str = Field(default="", max_length=60)        # 立即（30分钟内）/ 1个工作日
    owner_role: str = Field(max_length=12)
    anchor: str = Field(default="report", max_length=60)     # "report" or "step:KEY"
    requires: str = Field(default="[]", max_length=400)      # JSON list of step keys
    evidence_required: bool = Field(default=False)
    # Republishing: who did each 审 and 校 must be recorded (incidents.signoff).
    signoff_required: bool = Field(default=False)
    signoffs: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON [{stage, name}]
    external: str | None = Field(default=None, max_length=40)   # 网信 / 公安 / 电信 / 上级 …
    optional: bool = Field(default=False)
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    due_last_day: date | None = Field(default=None, sa_column=Column(Date(), nullable=True))
    provisional: bool = Field(default=False)
    status: str = Field(default=StepStatus.pending, max_length=10)
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    done_by_id: int | None = Field(default=None, foreign_key="person.id")
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # External reports (DOMAIN SEC-1/2/5, OP-1): who was contacted, how, reference.
    contact: str | None = Field(default=None, max_length=100)
    method: str | None = Field(default=None, max_length=20)
    contact_ref: str | None = Field(default=None, max_length=100)
    escalation_level: int = Field(default=0)

    def required_keys(self) -> list[str]:
        """Keys of the steps that must be done first."""
        keys: list[str] = json.loads(self.requires or "[]")
        return keys

    def signoff_list(self) -> list[dict[str, str]]:
        """Who did each 审 and 校: ``[{"stage": "一审", "name": "王芳"}, …]``."""
        entries: list[dict[str, str]] = json.loads(self.signoffs or "[]")
        return entries

    @property
    def is_pending(self) -> bool:
        return self.status == StepStatus.pending


class Evidence(SQLModel, table=True):
    """Something kept as evidence: a fetched page, a file or photo, or a text record.

    Files live under the evidence directory (``path`` is relative to it); ``sha256`` is
    the hash of the stored bytes when they were kept, re-checked when a report is built.
    """

    __tablename__ = "evidence"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: str = Field(max_length=10)                        # page / file / photo / text
    url: str | None = Field(default=None, max_length=1000)
    path: str | None = Field(default=None, max_length=500)
    filename: str | None = Field(default=None, max_length=200)
    content_type: str | None = Field(default=None, max_length=100)
    size: int = Field(default=0)
    sha256: str = Field(max_length=64)
    http_status: int | None = Field(default=None)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    added_by_id: int | None = Field(default=None, foreign_key="person.id")
    captured_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
