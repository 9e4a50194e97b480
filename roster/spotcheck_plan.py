"""Spot-checks at random times (DUTY-4, 梁平办法第二十一条: the district duty office
spot-checks the units' reading), drawn ahead and kept in the database.

``[roster.spotcheck_plan]``: ``per_week`` checks (0: off, the default) at random minutes
inside ``windows`` (``HH:MM-HH:MM``; each belongs to the day it opens on, one that closes
before it opens runs past midnight), on every day or, with ``workdays_only``, on working
days. With ``units`` listed, each listed unit gets ``per_week`` checks; without, there are
``per_week`` checks in all, and each picks its unit when it fires among those with an
officer on duty (as ``/spotcheck random`` does).

The planner (a daily cron job, and at start) makes sure the current and the next week
(Monday to Sunday, Asia/Shanghai) are drawn. Each drawn check is a
:class:`~core.schedule.DueItem` (kind :data:`KIND`, key ``spotcheck-plan:<week>:<n>``), so
a restart keeps it and the scheduler fires it. A week is drawn once: an audit event
(entity :data:`ENTITY`, id the week, action ``planned``) records it with a signature of
the settings, and only a change of settings redraws what is left of the week. A week
already under way when it is first drawn gets a share of ``per_week`` in proportion to
the window time left (rounded at random, so it is right on average). The draw uses the
``random.Random`` it is given: unseeded in production (``random.SystemRandom``), so nobody
can work the times out; a ``seed`` in the settings makes drills reproducible.

Nothing is sent when checks are drawn: the units learn of a check when it starts
(:func:`roster.spotcheck.start_check`, with no requester). Only admins see the plan
(``/spotcheck plan``, :func:`plan_lines`). The admins hear of a scheduled check that
failed; confirmed ones are in ``/spotcheck list``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, Protocol

from sqlmodel import Session, col, select

from core import audit, schedule
from core.audit import AuditEvent
from core.clock import SHANGHAI, WEEKDAYS_ZH, local
from core.errors import DutybotError
from core.profiles import Profile
from core.schedule import DueItem, DueStatus
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from people.service import people_with_role
from roster.spotcheck import pick_unit, send, start_check

log = logging.getLogger(__name__)

KIND = "roster.spotcheck_plan"
PLAN_JOB = "roster.spotcheck_plan"
ENTITY = "spotcheck_plan"
WEEKS_AHEAD = 1                    # the current week and the next one
PLAN_TIME = time(0, 10)


class CronRegistry(Protocol):
    """The part of ``bot.scheduler.Scheduler`` used here."""

    def register(self, kind: str, fn: Any) -> None: ...
    def register_cron(self, name: str, fn: Any, *, run_at_start: bool = False, **cron_fields: object) -> None: ...


@dataclass(frozen=True)
class SpotCheckPlan:
    """``[roster.spotcheck_plan]`` as the domain needs it."""

    per_week: int = 0
    windows: tuple[tuple[time, time], ...] = ((time(8, 30), time(17, 30)),)
    units: tuple[str, ...] = ()
    workdays_only: bool = False
    confirm: timedelta = timedelta(minutes=15)
    seed: str | None = None

    @property
    def enabled(self) -> bool:
        return self.per_week > 0 and bool(self.windows)

    def signature(self) -> str:
        """Changes when anything that shapes the draw changes."""
        data = [self.per_week, [(a.isoformat(), b.isoformat()) for a, b in self.windows], list(self.units),
                self.workdays_only]
        return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()[:16]


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def week_id(monday: date) -> str:
    """``2026-W48`` (ISO week)."""
    return f"{monday:%G-W%V}"


def windows_of(plan: SpotCheckPlan, monday: date, calendar: WorkdayCalendar,
               after: datetime) -> list[tuple[datetime, datetime]]:
    """The week's window spans (UTC-comparable), cut to what lies after ``after``."""
    out = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        if plan.workdays_only and not calendar.is_workday(day):
            continue
        for opens_at, closes_at in plan.windows:
            opens = datetime.combine(day, opens_at, tzinfo=SHANGHAI)
            closes = datetime.combine(day, closes_at, tzinfo=SHANGHAI)
            if closes <= opens:
                closes += timedelta(days=1)
            opens = max(opens, after)
            if closes - opens >= timedelta(minutes=1):
                out.append((opens, closes))
    return out


def _minutes(spans: Sequence[tuple[datetime, datetime]]) -> int:
    return sum(int((b - a).total_seconds() // 60) for a, b in spans)


def draw(spans: Sequence[tuple[datetime, datetime]], count: int, rng: random.Random) -> list[datetime]:
    """``count`` distinct random minutes inside ``spans``, in order (fewer when there are
    not that many minutes)."""
    sizes = [int((b - a).total_seconds() // 60) for a, b in spans]
    total = sum(sizes)
    out = []
    for offset in sorted(rng.sample(range(total), min(count, total))):
        for (start, _), size in zip(spans, sizes, strict=True):
            if offset < size:
                out.append(start + timedelta(minutes=offset))
                break
            offset -= size
    return out


def _planned(session: Session, week: str) -> AuditEvent | None:
    """The week's latest ``planned`` or ``cancelled`` event (a draw, or its withdrawal)."""
    return session.exec(select(AuditEvent).where(AuditEvent.entity_type == ENTITY, AuditEvent.entity_id == week,
                                                 col(AuditEvent.action).in_(["planned", "cancelled"]))
                        .order_by(col(AuditEvent.id).desc())).first()


def _pending(session: Session, week: str) -> list[DueItem]:
    return list(session.exec(select(DueItem).where(DueItem.kind == KIND, DueItem.ref == f"{ENTITY}:{week}",
                                                   DueItem.status == DueStatus.pending)))


def plan_week(*, session: Session, plan: SpotCheckPlan, monday: date, calendar: WorkdayCalendar, now: datetime,
              rng: random.Random) -> int:
    """Draw the checks of the week starting ``monday`` unless drawn with these settings;
    returns how many were drawn now."""
    week = week_id(monday)
    done = _planned(session, week)
    if done is not None and done.action == "planned" and done.details().get("signature") == plan.signature():
        return 0
    for item in _pending(session, week):           # the settings changed: redraw what is left
        item.status = DueStatus.cancelled
        session.add(item)
    spans = windows_of(plan, monday, calendar, after=now)
    whole = _minutes(windows_of(plan, monday, calendar, after=datetime.combine(monday, time(0), tzinfo=SHANGHAI)))
    share = plan.per_week * _minutes(spans) / whole if whole else 0.0
    count = int(share) + (1 if rng.random() < share - int(share) else 0)
    targets: Sequence[str | None] = plan.units or (None,)
    drawn = sorted((at, unit) for unit in targets for at in draw(spans, count, rng))
    base = sum(1 for _ in session.exec(select(DueItem.id).where(DueItem.ref == f"{ENTITY}:{week}")))
    for n, (at, unit) in enumerate(drawn, start=base + 1):
        schedule.schedule(session=session, key=f"spotcheck-plan:{week}:{n}", kind=KIND, ref=f"{ENTITY}:{week}",
                          due_at=at, now=now, payload={"unit": unit})
    audit.record(session=session, at=now, entity_type=ENTITY, entity_id=week, action="planned",
                 signature=plan.signature(), count=len(drawn),
                 zh=f"已抽定第 {week} 周的定时抽查 {len(drawn)} 次（时间不公开）")
    log.info("spot-check plan: %d check(s) drawn for %s", len(drawn), week)
    return len(drawn)


def plan_checks(*, session: Session, plan: SpotCheckPlan, calendar: WorkdayCalendar, now: datetime,
                rng: random.Random | None = None) -> int:
    """Draw the current and the next week where needed; when the plan is off, cancel
    what is still pending. Returns the checks drawn now."""
    if not plan.enabled:
        weeks: set[str] = set()
        for item in session.exec(select(DueItem).where(DueItem.kind == KIND, DueItem.status == DueStatus.pending)):
            item.status = DueStatus.cancelled
            session.add(item)
            weeks.add(item.ref.removeprefix(f"{ENTITY}:"))
        for name in sorted(weeks):     # switched on again later, the week is drawn anew
            audit.record(session=session, at=now, entity_type=ENTITY, entity_id=name, action="cancelled",
                         zh=f"定时抽查已停用，取消第 {name} 周尚未进行的抽查")
        return 0
    monday = week_of(local(now).date())
    drawn = 0
    for ahead in range(WEEKS_AHEAD + 1):
        week = monday + timedelta(weeks=ahead)
        chosen = rng or (random.Random(f"{plan.seed}|{week_id(week)}") if plan.seed else random.SystemRandom())
        drawn += plan_week(session=session, plan=plan, monday=week, calendar=calendar, now=now, rng=chosen)
    return drawn


def admins(session: Session) -> list[Person]:
    return people_with_role(session=session, role=Role.admin)


class ScheduledCheck:
    """The ``roster.spotcheck_plan`` processor: start the drawn check."""

    def __init__(self, plan: SpotCheckPlan, profile: Profile, rng: random.Random | None = None) -> None:
        self.plan, self.profile, self.rng = plan, profile, rng or random.SystemRandom()

    def __call__(self, session: Session, item: DueItem, now: datetime) -> None:
        unit = item.data().get("unit")
        try:
            unit = unit or pick_unit(session, now, self.rng)
            started = start_check(session=session, unit=unit, requester=None, now=now, confirm=self.plan.confirm,
                                  profile=self.profile, actor="system")
        except DutybotError as exc:
            # Nobody on duty anywhere, or a listed unit nobody belongs to: recorded, not retried.
            audit.record(session=session, at=now, entity_type=ENTITY, entity_id=item.ref.removeprefix(f"{ENTITY}:"),
                         action="skipped", zh=f"定时抽查未能进行：{exc.message}", unit=unit)
            send(session, admins(session), f"【定时抽查】{local(now):%H:%M} 的定时抽查未能进行：{exc.message}",
                  event=f"{item.key}:skipped", now=now)
            return
        if not started.officers:
            send(session, admins(session),
                  f"【抽查未通过】定时抽查（编号 {started.check.id}）：按值班表，{unit}于 {local(now):%H:%M} "
                  f"无值班员在岗；已通知该单位带班领导。", event=f"{item.key}:missed", now=now)


def plan_lines(*, session: Session, plan: SpotCheckPlan, now: datetime) -> list[str]:
    """The pending drawn checks, for admins (``/spotcheck plan``)."""
    if not plan.enabled:
        return ["未启用定时抽查。在配置文件中设置 [roster.spotcheck_plan] per_week（每周次数）、"
                "windows（时段）和 units（单位）后重启即可。"]
    items = list(session.exec(select(DueItem).where(DueItem.kind == KIND, DueItem.status == DueStatus.pending)
                              .order_by(col(DueItem.due_at))))
    scope = f"单位：{'、'.join(plan.units)}，每个单位" if plan.units else "随机抽取在岗单位，共"
    lines = [f"定时抽查计划（仅管理员可见，请勿外传）：{scope}每周 {plan.per_week} 次，"
             f"时段 {'、'.join(f'{a:%H:%M}-{b:%H:%M}' for a, b in plan.windows)}"
             + ("（仅工作日）" if plan.workdays_only else "")]
    if not items:
        lines.append("  暂无待进行的定时抽查。")
    for item in items:
        at = local(item.due_at)
        unit = item.data().get("unit") or "随机抽取在岗单位"
        lines.append(f"  {at.month}月{at.day}日（{WEEKDAYS_ZH[at.weekday()]}）{at:%H:%M}｜{unit}")
    return lines


def register_spotcheck_plan(scheduler: CronRegistry, *, plan: SpotCheckPlan, profile: Profile,
                            calendar: WorkdayCalendar, rng: random.Random | None = None) -> None:
    """Register the processor and the daily planner (:data:`PLAN_TIME`, and at start).

    Raises:
        ValueError: already registered.
    """
    scheduler.register(KIND, ScheduledCheck(plan, profile, rng))
    scheduler.register_cron(PLAN_JOB, partial(_plan_job, plan=plan, calendar=calendar, rng=rng), run_at_start=True,
                            hour=PLAN_TIME.hour, minute=PLAN_TIME.minute)


def _plan_job(session: Session, fire_time: datetime, now: datetime, *, plan: SpotCheckPlan,
              calendar: WorkdayCalendar, rng: random.Random | None) -> int:
    return plan_checks(session=session, plan=plan, calendar=calendar, now=now, rng=rng)
