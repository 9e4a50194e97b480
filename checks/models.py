"""Tables of the periodic checks (CHECK-1, STAFF-3; issue 18 item 4).

- :class:`CheckRound`: one inspection round — a period's check (a quarter where the
  profile states ``CHECK-1.check_interval``) or a 专项检查 the office chose to run.
- :class:`CheckResult`: one unit's result in a round (pending until recorded): score,
  合格/不合格, and its :class:`CheckHit` rows — the score-sheet items found, each with
  its deduction, or a 单项否决.
- :class:`Rectification`: one thing a unit must put right after a round, with its deadline
  (the office's working practice or a date the checkers set — no article sets one).
- :class:`TrainingSession` and :class:`TrainingAttendance`: a training held (年度业务培训
  or 岗前培训) and who attended.
- :class:`AnnualReport`: a unit's duty to publish the previous year's 年度工作报表 by the
  date the profile states (古丈办法第十五条).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class RoundKind(StrEnum):
    periodic = "periodic"      # 定期检查 (CHECK-1.check_interval)
    adhoc = "adhoc"            # 专项检查: the office's own choice, no article


ROUND_KIND_ZH = {RoundKind.periodic: "定期检查", RoundKind.adhoc: "专项检查"}


class RoundStatus(StrEnum):
    open = "open"              # units still to record
    done = "done"              # every unit recorded


ROUND_STATUS_ZH = {RoundStatus.open: "进行中", RoundStatus.done: "已完成"}


class ItemStatus(StrEnum):
    open = "open"
    done = "done"


ITEM_STATUS_ZH = {ItemStatus.open: "待整改", ItemStatus.done: "已整改"}


class TrainingKind(StrEnum):
    annual = "annual"          # 年度业务培训 (STAFF-3)
    pre_duty = "pre_duty"      # 岗前培训 (STAFF-1: 先培训后上岗)


TRAINING_KIND_ZH = {TrainingKind.annual: "业务培训", TrainingKind.pre_duty: "岗前培训"}


class CheckRound(SQLModel, table=True):
    """An inspection round over the units; ``period`` is ``2026Q4`` for a quarter's round
    (``2026P2`` for another interval) and ``adhoc`` for a 专项检查."""

    __tablename__ = "check_round"
    __table_args__ = (Index("ix_check_round_period", "kind", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)                          # RoundKind
    period: str = Field(max_length=10)
    title: str = Field(max_length=100)                        # 2026年第四季度检查
    starts_on: date = Field(sa_column=Column(Date(), nullable=False))
    ends_on: date = Field(sa_column=Column(Date(), nullable=False))
    status: str = Field(default=RoundStatus.open, max_length=10)
    # CHECK-1's citation when planned (梁平办法第二十九条), or the 专项检查 label.
    citation: str = Field(default="", max_length=200)
    sheet: str = Field(default="", max_length=200)            # the score sheet's name
    created_by: str = Field(default="", max_length=100)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CheckResult(SQLModel, table=True):
    """One unit's result in a round (``recorded_at`` None: still to be checked)."""

    __tablename__ = "check_result"
    __table_args__ = (UniqueConstraint("round_id", "unit", name="uq_check_result_unit"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="check_round.id", index=True)
    unit: str = Field(max_length=100)
    score: int | None = None                                  # 100 − deductions
    deductions: int = Field(default=0)
    vetoed: bool = Field(default=False)                       # a 单项否决 item was hit
    passed: bool | None = None                                # 合格 / 不合格
    note: str = Field(default="", max_length=500)
    recorded_by: str = Field(default="", max_length=100)
    recorded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class CheckHit(SQLModel, table=True):
    """One score-sheet item found at a unit (its code and title as the sheet had them)."""

    __tablename__ = "check_hit"

    id: int | None = Field(default=None, primary_key=True)
    result_id: int = Field(foreign_key="check_result.id", index=True)
    code: str = Field(max_length=10)                          # V2, D03 …
    title: str = Field(max_length=100)                        # 站点无法访问
    veto: bool = Field(default=False)
    count: int = Field(default=1)                             # how many were found
    deduction: int = Field(default=0)                         # points taken off (capped)


class Rectification(SQLModel, table=True):
    """Something a unit must put right after a round (整改)."""

    __tablename__ = "rectification"
    __table_args__ = (Index("ix_rectification_open", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="check_round.id", index=True)
    result_id: int = Field(foreign_key="check_result.id")
    unit: str = Field(max_length=100)
    code: str = Field(max_length=10)                          # the indicator item
    what: str = Field(max_length=300)                         # 站点无法访问（首页打不开）
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_last_day: date = Field(sa_column=Column(Date(), nullable=False))
    provisional: bool = Field(default=False)                  # the deadline's year has no holiday data
    # Where the deadline comes from: 工作要求（10个工作日） or 检查组指定 — never an article.
    due_basis: str = Field(default="", max_length=100)
    status: str = Field(default=ItemStatus.open, max_length=10)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    done_by: str = Field(default="", max_length=100)
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    note: str = Field(default="", max_length=300)             # what was done


class TrainingSession(SQLModel, table=True):
    """A training held on ``day``."""

    __tablename__ = "training_session"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(sa_column=Column(Date(), nullable=False, index=True))
    title: str = Field(max_length=100)
    kind: str = Field(default=TrainingKind.annual, max_length=10)
    organiser: str = Field(default="", max_length=100)
    created_by: str = Field(default="", max_length=100)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TrainingAttendance(SQLModel, table=True):
    """A person who attended a training."""

    __tablename__ = "training_attendance"
    __table_args__ = (UniqueConstraint("session_id", "person_id", name="uq_training_attendance"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="training_session.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)


class AnnualReport(SQLModel, table=True):
    """A unit's duty to publish the 年度工作报表 of ``year`` by ``due_on``."""

    __tablename__ = "annual_report"
    __table_args__ = (UniqueConstraint("year", "unit", name="uq_annual_report_unit"),
                      Index("ix_annual_report_open", "status", "due_at"))

    id: int | None = Field(default=None, primary_key=True)
    year: int                                                 # the year reported on (上一年度)
    unit: str = Field(max_length=100)
    due_on: date = Field(sa_column=Column(Date(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    citation: str = Field(default="", max_length=200)         # 古丈办法第十五条
    status: str = Field(default=ItemStatus.open, max_length=10)
    url: str = Field(default="", max_length=1000)             # where it was published
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    done_by: str = Field(default="", max_length=100)
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
