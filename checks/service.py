"""Queries and rules of the periodic checks, with no side effects.

What the law says comes from the rule profile, each value with its citation:
``CHECK-1.check_interval`` (梁平办法第二十九条, 古丈办法第二十一条: quarterly),
``CHECK-1.annual_report_by`` (古丈办法第十五条: 1月31日前) and ``STAFF-3.annual_training``
(宝鸡办法第二十六条, 江川制度第二十七条). Everything else here — the rectification period, when
reminders go out, the day the training reminder starts — is the office's working practice
(工作要求) from ``[checks]`` in the config, and every message says so.

Standing duties the bot creates and chases on its own (the annual report, the annual
training) come only from a value the office's own regulation states, or its declared parent
or the config: the ``default`` profile names them only as 参照 another jurisdiction's
article (:func:`standing_value`). Rounds are planned on an admin's command wherever the
profile has a check interval, 参照 included, and the 通报 cites it as such.

Functions take their dependencies as keyword arguments and never commit.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlmodel import Session, col, select

from checks.models import (
    AnnualReport,
    CheckRound,
    ItemStatus,
    Rectification,
    RoundKind,
)
from core.clock import SHANGHAI
from core.errors import DutybotError, NotFound
from core.office_hours import OfficeHours
from core.profiles import NOT_REQUIRED, Profile, RuleValue
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from people.service import people_with_role
from roster.models import Site

RULE = "CHECK-1"
TRAINING_RULE = "STAFF-3"
#: Said of every value that is the office's practice rather than an article.
PRACTICE = "工作要求，非条款规定"
ADHOC_LABEL = "专项检查（本单位安排，非条款规定的定期检查）"
QUARTERS_ZH = ("一", "二", "三", "四")
DONE_HINT = "整改完成后发送 /check done 编号 [整改说明]（或 dutybot checks done 编号）"
#: Who at a unit receives its check results and rectification items.
HOLDER_ROLES = (Role.leader, Role.admin)


class NotStated(DutybotError):
    """The profile states no value for what was asked (本地规定未作要求)."""


class ItemNotFound(NotFound):
    """No rectification item has this number."""

    def __init__(self, item_id: int) -> None:
        super().__init__(f"找不到整改事项 {item_id}。可用 /check 或 dutybot checks items 查看。")
        self.item_id = item_id


class RoundNotFound(NotFound):
    """No inspection round has this number (or there is none yet)."""

    def __init__(self, round_id: int | None) -> None:
        text = (f"找不到检查轮次 {round_id}。" if round_id is not None
                else "还没有检查轮次：请先运行 dutybot checks plan（或 --adhoc 开展专项检查）。")
        super().__init__(text)
        self.round_id = round_id


@dataclass(frozen=True)
class CheckPolicy:
    """The office's working practice for checks (``[checks]`` in the config)."""

    calendar: WorkdayCalendar
    # Reminders outside these wait for the next working period; None: at any hour.
    office_hours: OfficeHours | None = None
    rectify_workdays: int = 10
    lead_workdays: int = 2
    training_from: tuple[int, int] = (11, 1)    # (month, day) the training reminder starts

    @property
    def remind_time(self) -> time:
        """The time of day of routine reminders: the office's opening time, else 09:00."""
        return self.office_hours.start if self.office_hours is not None else time(9, 0)

    def deliver_at(self, at: datetime) -> datetime:
        """When a reminder due at ``at`` goes out: at once, or when the office opens."""
        return at if self.office_hours is None else self.office_hours.next_open(at)

    def is_open(self, at: datetime) -> bool:
        """Whether a routine reminder may go out at ``at``."""
        if self.office_hours is not None:
            return self.office_hours.is_open(at)
        return self.calendar.is_workday(at.astimezone(SHANGHAI).date())

    def at_morning(self, day: date) -> datetime:
        """``day`` at :attr:`remind_time`, Beijing time."""
        return datetime.combine(day, self.remind_time, tzinfo=SHANGHAI)

    def training_from_zh(self) -> str:
        """``11月1日``."""
        return f"{self.training_from[0]}月{self.training_from[1]}日"


# ---------------------------------------------------------------- what the profile states

def check_interval(profile: Profile) -> RuleValue | None:
    """``CHECK-1.check_interval`` where the profile (参照 included) states it."""
    return profile.find(RULE, "check_interval")


def standing_value(profile: Profile, rule_id: str, key: str) -> RuleValue | None:
    """A value that makes the bot create and chase a standing duty: stated by the office's
    own regulation, its declared parent, the config, or — under ``default``, which applies
    its references as the other rules do (7×24, reply deadlines) — a 参照 value, cited so."""
    return profile.find(rule_id, key)


def annual_report_by(profile: Profile) -> RuleValue | None:
    """``CHECK-1.annual_report_by`` (古丈办法第十五条) where it is a standing duty."""
    return standing_value(profile, RULE, "annual_report_by")


def annual_training(profile: Profile) -> RuleValue | None:
    """``STAFF-3.annual_training`` (宝鸡办法第二十六条, 江川制度第二十七条) where it is a standing duty."""
    found = standing_value(profile, TRAINING_RULE, "annual_training")
    return found if found is not None and found.flag else None


def not_required(profile: Profile, what: str) -> str:
    """``本地规定未作要求：规则配置档 yunnan 未规定定期检查周期（CHECK-1.check_interval）``."""
    return f"{NOT_REQUIRED}：规则配置档 {profile.name} 未规定{what}"


# ---------------------------------------------------------------- periods

@dataclass(frozen=True)
class Period:
    """One check period of the year (a quarter where the interval is 3 months)."""

    key: str          # 2026Q4, 2026P2
    title: str        # 2026年第四季度检查
    starts_on: date
    ends_on: date


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, _cal.monthrange(year, month)[1]))


def period_of(day: date, months: int, *, ahead: int = 0) -> Period:
    """The period of ``months`` months (aligned to 1 January) that holds ``day``; ``ahead``
    periods later with ``ahead``."""
    per_year = -(-12 // months)
    index = (day.month - 1) // months + ahead
    year = day.year + index // per_year
    index %= per_year
    start = date(year, 1 + index * months, 1)
    end = min(_add_months(start, months), date(year + 1, 1, 1))
    last = date.fromordinal(end.toordinal() - 1)
    if months == 3:
        return Period(f"{year}Q{index + 1}", f"{year}年第{QUARTERS_ZH[index]}季度检查", start, last)
    if months == 12:
        return Period(f"{year}Y", f"{year}年度检查", start, last)
    return Period(f"{year}P{index + 1}", f"{year}年第{index + 1}期检查（{start.month}月—{last.month}月）",
                  start, last)


# ---------------------------------------------------------------- queries

def units_of(*, session: Session) -> list[str]:
    """Every unit that has an active site or an active person (external contacts aside)."""
    units = {s.unit for s in session.exec(select(Site).where(Site.active == True)) if s.unit}  # noqa: E712
    for person in session.exec(select(Person).where(Person.active == True)):  # noqa: E712
        if person.unit and person.role_set() - {Role.external}:
            units.add(person.unit)
    return sorted(units)


def holders(*, session: Session, unit: str) -> list[Person]:
    """Who at ``unit`` receives its results and items: its leaders and admins; where it has
    none, the admins (so nothing is addressed to nobody)."""
    own = [p for p in session.exec(select(Person).where(Person.active == True, Person.unit == unit))  # noqa: E712
           if any(r in p.role_set() for r in HOLDER_ROLES)]
    return sorted(own, key=lambda p: p.id or 0) or admins(session=session)


def admins(*, session: Session) -> list[Person]:
    """The admins (the district office), in id order."""
    return sorted(people_with_role(session=session, role=Role.admin), key=lambda p: p.id or 0)


def get_round(*, session: Session, round_id: int | None = None) -> CheckRound:
    """Round ``round_id``, else the latest one.

    Raises:
        RoundNotFound: no such round, or none yet.
    """
    if round_id is not None:
        found = session.get(CheckRound, round_id)
    else:
        found = session.exec(select(CheckRound).order_by(col(CheckRound.id).desc())).first()
    if found is None:
        raise RoundNotFound(round_id)
    return found


def periodic_round(*, session: Session, period: str) -> CheckRound | None:
    """The periodic round of ``period`` (``2026Q4``), if planned."""
    return session.exec(select(CheckRound).where(CheckRound.kind == RoundKind.periodic,
                                                 CheckRound.period == period)).first()


def get_item(*, session: Session, item_id: int) -> Rectification:
    """Rectification item ``item_id``.

    Raises:
        ItemNotFound: no such item.
    """
    item = session.get(Rectification, item_id)
    if item is None:
        raise ItemNotFound(item_id)
    return item


def items(*, session: Session, unit: str | None = None, open_only: bool = False,
          round_id: int | None = None) -> list[Rectification]:
    """Rectification items, earliest deadline first (open before done)."""
    stmt = select(Rectification)
    if unit is not None:
        stmt = stmt.where(Rectification.unit == unit)
    if open_only:
        stmt = stmt.where(Rectification.status == ItemStatus.open)
    if round_id is not None:
        stmt = stmt.where(Rectification.round_id == round_id)
    rows = list(session.exec(stmt.order_by(col(Rectification.due_at), col(Rectification.id))))
    return sorted(rows, key=lambda r: r.status != ItemStatus.open)


def annual_reports(*, session: Session, year: int | None = None, unit: str | None = None) -> list[AnnualReport]:
    """Annual report duties, by year (newest first) and unit."""
    stmt = select(AnnualReport)
    if year is not None:
        stmt = stmt.where(AnnualReport.year == year)
    if unit is not None:
        stmt = stmt.where(AnnualReport.unit == unit)
    return list(session.exec(stmt.order_by(col(AnnualReport.year).desc(), col(AnnualReport.unit))))
