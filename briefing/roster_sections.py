"""The roster in the daily briefing (早报): today's duty first, then roster gaps.

``briefing.service`` finds this module through ``DOMAIN_MODULES``; it sits in the
briefing layer, which reads the roster (the roster knows nothing of briefings). Gaps here are read
from the stored shifts of today and the next two duty days (a shift without an officer
or a leader, a day with no shift at all); the daily gap warning (``roster.gaps``) is the
one that also knows each pattern's officer count and looks further ahead.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from briefing.models import Section, SectionProvider, Urgency
from core.clock import fmt_date_zh, local
from core.workdays import WorkdayCalendar
from roster.gaps import roster_in_use
from roster.service import describe, label, shifts_between, views

GAP_DAYS = 3   # today, tomorrow, the day after


def _today(now: datetime) -> date:
    return local(now).date()


def todays_duty(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> Section | None:
    """Who is on duty today, with phones (context: right under the title)."""
    if not roster_in_use(session):
        # Said, not left out: an empty briefing must not read as "nobody needs to be on duty".
        return Section(key="roster.today", urgency=Urgency.context, headline="【今日值班】值班表尚未启用",
                       hint="请管理员导入或生成值班表：dutybot roster import / generate")
    shifts = shifts_between(session=session, start=_today(now), end=_today(now))
    if not shifts:
        return Section(key="roster.today", urgency=Urgency.context, headline="【今日值班】尚未排班",
                       hint="请管理员导入或生成值班表：dutybot roster import / generate")
    return Section(key="roster.today", urgency=Urgency.context, headline="【今日值班】",
                   items=tuple(describe(v) for v in views(session, shifts)))


def roster_gaps(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> Section | None:
    """Shifts of the next days without an officer or a leader, and days not rostered."""
    if not roster_in_use(session):
        return None
    start = _today(now)
    end = start + timedelta(days=GAP_DAYS - 1)
    stored = shifts_between(session=session, start=start, end=end)
    lines: list[str] = []
    for day in (start + timedelta(days=n) for n in range(GAP_DAYS)):
        if not any(s.day == day for s in stored):
            lines.append(f"{fmt_date_zh(day)}：尚未排班")
    for view in views(session, [s for s in stored if s.ends_at > now]):
        missing = [what for what, people in (("值班员", view.officers), ("带班领导", view.leaders))
                   if not [p for p in people if p.active]]
        if missing:
            lines.append(f"{label(view.shift)}：缺{'、'.join(missing)}")
    if not lines:
        return None
    return Section(key="roster.gaps", urgency=Urgency.today, headline=f"【值班空缺】{len(lines)} 处",
                   tag=f"值班空缺{len(lines)}", items=tuple(lines),
                   hint="替班：/substitute 日期 班次 原人员 新人员；或 dutybot roster import")


DAILY: tuple[SectionProvider, ...] = (todays_duty, roster_gaps)
WEEKLY: tuple[SectionProvider, ...] = ()
