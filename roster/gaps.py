"""Gap warnings: shifts in the coming days that nobody holds, or without enough people.

Every day at :data:`GAP_CHECK_TIME` (09:00 Asia/Shanghai, holidays included — the
roster runs 7×24) the cron job looks at the shifts not yet started from today to
``roster.gap_warning_days`` days ahead (``find_gaps``) and warns the admins and the
leaders, in one message listing what is new:

``ahead``  a gap two or more days away, the first time it is seen (``5天后``)
``eve``    a gap for tomorrow (or later today), once more (``明天``)

Each warning is recorded in the audit log (entity ``roster_gap``, id ``<day>:<shift>``,
action ``warned_<stage>``), and that record is the dedupe key: a gap is never reported
twice for the same stage, whatever happens to it in between. The outbox event key
carries the fire's local date, so one fire reaches one recipient once. After downtime
the scheduler runs only the latest missed fire: one catch-up check, built as of now and
marked as late. Until the first shift is published the roster is not in use and
nothing is reported (a deployment that has not started rostering is not warned daily
about every shift). The time is fixed rather than configured: it comes after the morning
briefing (``[briefing] time``, 08:30 by default), inside office hours, when an admin
can still fix tomorrow's roster.

Where the rule profile states STAFF-1 (先培训后上岗; the composition root passes its basis as
``training_basis``), the same message lists the officers of the coming published shifts
whose training is not recorded by the shift's day, with the same two stages and the same
dedupe (entity ``roster_untrained``, id ``<day>:<shift>:<person id>``).

:func:`gap_lines` gives the same lines for the daily briefing. :func:`announce_gaps` reports
at once the gaps a change has just opened (a person deactivated, ``bot.staffing``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, Protocol

from sqlmodel import Session, col, select

from core import audit
from core.audit import AuditEvent
from core.clock import WEEKDAYS_ZH, fmt_short_zh, local
from core.messages import Outbound
from core.outbox import enqueue
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from people.service import people_with_role
from roster.assign import fill_command
from roster.models import Shift
from roster.patterns import ShiftPatterns
from roster.service import Gap, find_gaps, shifts_between
from roster.training import HINT as TRAINING_HINT
from roster.training import Untrained, untrained_on

log = logging.getLogger(__name__)

GAP_JOB = "roster.gaps"
GAP_CHECK_TIME = time(9, 0)
AUDIT_ENTITY = "roster_gap"
LATE_AFTER = timedelta(hours=1)
UNROSTERED = "整个班次未排班"
UNTRAINED_ENTITY = "roster_untrained"
FILL_HINT = "用 /assign 日期 班次 人员 补位。"


class CronRegistry(Protocol):
    """The part of ``bot.scheduler.Scheduler`` used here."""

    def register_cron(self, name: str, fn: Any, **cron_fields: object) -> None: ...


def gap_id(gap: Gap) -> str:
    """``2026-10-12:白班``: the gap's id in the audit log."""
    return f"{gap.day.isoformat()}:{gap.shift_name}"


def stage_of(days_ahead: int) -> str:
    """``eve`` for today and tomorrow, ``ahead`` further out."""
    return "eve" if days_ahead <= 1 else "ahead"


def when_zh(days_ahead: int) -> str:
    """``今天`` / ``明天`` / ``5天后``."""
    return {0: "今天", 1: "明天"}.get(days_ahead, f"{days_ahead}天后")


def gap_line(gap: Gap, today: date) -> str:
    """``明天｜10月10日（星期六）夜班 17:30起：缺值班员、带班领导``."""
    start = local(gap.starts_at)
    what = UNROSTERED if UNROSTERED in gap.missing else "缺" + "、".join(gap.missing)
    return (f"{when_zh((gap.day - today).days)}｜{gap.day.month}月{gap.day.day}日（{WEEKDAYS_ZH[gap.day.weekday()]}）"
            f"{gap.shift_name} {start:%H:%M}起：{what}")


def roster_in_use(session: Session) -> bool:
    """Whether any shift was ever published (before that, every shift would be a gap)."""
    return session.exec(select(Shift.id).where(Shift.published == True).limit(1)).first() is not None  # noqa: E712


def gap_lines(session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, today: date,
              days: int) -> list[str]:
    """One line per gap from ``today`` to ``today + days`` (for the daily briefing); []
    when the roster is complete, or not in use yet (see :func:`roster_in_use`)."""
    if not roster_in_use(session):
        return []
    gaps = find_gaps(session=session, calendar=calendar, patterns=patterns, start=today,
                     end=today + timedelta(days=days))
    return [gap_line(g, today) for g in gaps]


def upcoming_gaps(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, now: datetime,
                  days: int) -> list[Gap]:
    """Gaps of shifts not yet started, from today to ``days`` days ahead ([] while the
    roster is not in use)."""
    if not roster_in_use(session):
        return []
    today = local(now).date()
    gaps = find_gaps(session=session, calendar=calendar, patterns=patterns, start=today,
                     end=today + timedelta(days=days))
    return [g for g in gaps if g.starts_at > now]


def recipients(session: Session) -> list[Person]:
    """Active admins and leaders, each once, in id order."""
    people = {p.id: p for role in (Role.admin, Role.leader) for p in people_with_role(session=session, role=role)}
    return [people[pid] for pid in sorted(people, key=lambda pid: pid or 0)]


def new_warnings(session: Session, gaps: list[Gap], today: date) -> list[tuple[Gap, str]]:
    """The gaps (with their stage) not yet warned about at that stage."""
    if not gaps:
        return []
    ids = [gap_id(g) for g in gaps]
    done = set(session.exec(select(AuditEvent.entity_id, AuditEvent.action).where(
        AuditEvent.entity_type == AUDIT_ENTITY, col(AuditEvent.entity_id).in_(ids))).all())
    out = []
    for gap in gaps:
        stage = stage_of((gap.day - today).days)
        if (gap_id(gap), f"warned_{stage}") not in done:
            out.append((gap, stage))
    return out


def untrained_id(item: Untrained) -> str:
    """``2026-10-12:白班:7``: an untrained officer on a shift, in the audit log."""
    return f"{item.shift.day.isoformat()}:{item.shift.name}:{item.person.id}"


def upcoming_untrained(*, session: Session, now: datetime, days: int) -> list[Untrained]:
    """Untrained officers on published shifts not yet started, from today to ``days`` ahead."""
    today = local(now).date()
    shifts = [s for s in shifts_between(session=session, start=today, end=today + timedelta(days=days))
              if s.starts_at > now]
    return untrained_on(session, shifts)


def new_untrained(session: Session, items: list[Untrained], today: date) -> list[tuple[Untrained, str]]:
    """The untrained officers (with their stage) not yet warned about at that stage."""
    if not items:
        return []
    done = set(session.exec(select(AuditEvent.entity_id, AuditEvent.action).where(
        AuditEvent.entity_type == UNTRAINED_ENTITY,
        col(AuditEvent.entity_id).in_([untrained_id(i) for i in items]))).all())
    out = []
    for item in items:
        stage = stage_of((item.shift.day - today).days)
        if (untrained_id(item), f"warned_{stage}") not in done:
            out.append((item, stage))
    return out


def untrained_line(item: Untrained, today: date) -> str:
    """``明天｜11月24日（星期二）白班 08:30起：张三 未登记培训``."""
    day, start = item.shift.day, local(item.shift.starts_at)
    return (f"{when_zh((day - today).days)}｜{day.month}月{day.day}日（{WEEKDAYS_ZH[day.weekday()]}）"
            f"{item.shift.name} {start:%H:%M}起：{item.person.name} 未登记培训")


def warn_gaps(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, days: int,
              now: datetime, fire_time: datetime, citation: str,
              training_basis: str = "") -> list[tuple[Gap, str]]:
    """Warn the admins and leaders about new gaps, in the caller's transaction.

    Args:
        session: not committed here.
        calendar: the working-day calendar (which pattern a day uses).
        patterns: the shift patterns.
        days: how far ahead to look (``roster.gap_warning_days``).
        now: the check runs as of now (after downtime: later than ``fire_time``).
        fire_time: the scheduled fire, which names the outbox event.
        citation: the article the warning cites (DUTY-1).
        training_basis: ``依据：…（先培训后上岗）`` where the profile states STAFF-1, else
            '' (untrained officers are not looked for).

    Returns:
        The gaps warned about now, with their stage.
    """
    today = local(now).date()
    fresh = new_warnings(session, upcoming_gaps(session=session, calendar=calendar, patterns=patterns,
                                                now=now, days=days), today)
    untrained = new_untrained(session, upcoming_untrained(session=session, now=now, days=days),
                              today) if training_basis else []
    if not fresh and not untrained:
        return []
    for gap, stage in fresh:
        audit.record(session=session, at=now, entity_type=AUDIT_ENTITY, entity_id=gap_id(gap),
                     action=f"warned_{stage}", zh=f"值班空缺提醒（{when_zh((gap.day - today).days)}）："
                     f"{gap.day.isoformat()} {gap.shift_name} {'、'.join(gap.missing)}",
                     missing=list(gap.missing))
    for item, stage in untrained:
        audit.record(session=session, at=now, entity_type=UNTRAINED_ENTITY, entity_id=untrained_id(item),
                     action=f"warned_{stage}", zh=f"未培训值班提醒（{when_zh((item.shift.day - today).days)}）："
                     f"{item.shift.day.isoformat()} {item.shift.name} {item.person.name}")
    lines = ["【值班空缺】以下班次尚未排满，请尽快安排：" if fresh else "【值班人员未培训】"]
    if now - fire_time > LATE_AFTER:
        lines.append(f"（补发：原定 {fmt_short_zh(fire_time)}，因系统未运行而延迟）")
    if fresh:
        lines += [*(f"· {gap_line(g, today)}｜补位：{fill_command(g)}" for g, _ in fresh),
                  "查看：/duty 日期；换人：/substitute 日期 [班次] 原人员 新人员，或导入、生成值班表。",
                  f"依据：{citation}"]
    if untrained:
        lines += ["以下班次的值班员尚未登记培训，请安排已培训人员或先完成培训：",
                  *(f"· {untrained_line(i, today)}" for i, _ in untrained),
                  f"{TRAINING_HINT}；替班：/substitute 日期 [班次] 原人员 新人员。", training_basis]
    text = "\n".join(lines)
    event = f"roster.gaps:{local(fire_time).date().isoformat()}"
    queued = sum(enqueue(session=session, message=Outbound(text, person_id=p.id), now=now,
                         event_key=event) is not None for p in recipients(session))
    log.info("gap warning: %d new gap(s), %d untrained officer(s), queued for %d recipient(s)",
             len(fresh), len(untrained), queued)
    return fresh


def announce_gaps(*, session: Session, gaps: list[Gap], now: datetime, cause: str, citation: str, event: str,
                  skip: Person | None = None, max_lines: int = 30) -> int:
    """Warn the admins and leaders at once about gaps a change just opened (a person
    deactivated), in one message, in the caller's transaction; ``skip`` (who made the
    change) reads them in the reply. Each gap is recorded as warned at its stage, so the
    daily check does not repeat it at that stage (the eve warning still comes).

    Returns:
        How many messages were queued.
    """
    if not gaps:
        return 0
    today = local(now).date()
    for gap in gaps:
        stage = stage_of((gap.day - today).days)
        audit.record(session=session, at=now, entity_type=AUDIT_ENTITY, entity_id=gap_id(gap),
                     action=f"warned_{stage}", zh=f"值班空缺提醒（{cause}）：{gap.day.isoformat()} {gap.shift_name} "
                     f"{'、'.join(gap.missing)}", missing=list(gap.missing))
    lines = [f"【值班空缺】{cause}，以下班次出现空缺，请尽快安排：",
             *(f"· {gap_line(g, today)}" for g in gaps[:max_lines])]
    if len(gaps) > max_lines:
        lines.append(f"  ……另有 {len(gaps) - max_lines} 个班次，/duty 日期 查看")
    lines += [FILL_HINT, f"依据：{citation}"]
    text = "\n".join(lines)
    queued = sum(enqueue(session=session, message=Outbound(text, person_id=p.id), now=now, event_key=event)
                 is not None for p in recipients(session) if skip is None or p.id != skip.id)
    log.info("gap announcement (%s): %d gap(s), queued for %d recipient(s)", event, len(gaps), queued)
    return queued


def gap_warning_job(session: Session, fire_time: datetime, now: datetime, *, calendar: WorkdayCalendar,
                    patterns: ShiftPatterns, days: int, citation: str, training_basis: str = "") -> int:
    """The daily cron job; returns how many gaps were newly warned about."""
    return len(warn_gaps(session=session, calendar=calendar, patterns=patterns, days=days, now=now,
                         fire_time=fire_time, citation=citation, training_basis=training_basis))


def register_gap_warnings(scheduler: CronRegistry, *, calendar: WorkdayCalendar, patterns: ShiftPatterns,
                          days: int, citation: str, training_basis: str = "") -> None:
    """Register the daily gap check at :data:`GAP_CHECK_TIME` (Asia/Shanghai);
    ``training_basis``: see :func:`warn_gaps`.

    Raises:
        ValueError: the job is already registered.
    """
    job = partial(gap_warning_job, calendar=calendar, patterns=patterns, days=days, citation=citation,
                  training_basis=training_basis)
    scheduler.register_cron(GAP_JOB, job, hour=GAP_CHECK_TIME.hour, minute=GAP_CHECK_TIME.minute)
