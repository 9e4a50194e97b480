"""The roster: shifts, who holds them, who is on duty at an instant, gaps.

Functions work in the caller's transaction and raise domain errors with Chinese
messages. Every change is recorded in the audit log (entity ``shift``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from core import audit
from core.clock import SHANGHAI, fmt_date_zh, fmt_short_zh, local
from core.db import UTCDateTime
from core.errors import DutybotError, InputError
from core.workdays import WorkdayCalendar
from people.models import Person
from roster.models import DUTY_ROLE_ZH, DutyRole, Leave, Shift, ShiftAssignment
from roster.patterns import PlannedShift, ShiftPatterns

MAX_DAYS = 400


@dataclass
class ShiftView:
    """A shift with its people, for display."""

    shift: Shift
    officers: list[Person] = field(default_factory=list)
    leaders: list[Person] = field(default_factory=list)

    def people(self, role: DutyRole) -> list[Person]:
        return self.officers if role == DutyRole.officer else self.leaders


def planned(*, calendar: WorkdayCalendar, patterns: ShiftPatterns, start: date, end: date) -> list[PlannedShift]:
    """The shifts the patterns give for ``start``..``end`` (inclusive)."""
    if end < start:
        raise InputError("结束日期不能早于开始日期。")
    if (end - start).days >= MAX_DAYS:
        raise InputError(f"一次最多处理 {MAX_DAYS} 天。")
    out: list[PlannedShift] = []
    day = start
    while day <= end:
        out.extend(patterns.for_day(day, calendar))
        day += timedelta(days=1)
    return out


def ensure_shifts(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, start: date,
                  end: date, now: datetime, published: bool = True) -> list[Shift]:
    """The Shift rows of ``start``..``end``, created from the patterns where missing."""
    existing = {(s.day, s.name): s for s in session.exec(
        select(Shift).where(col(Shift.day) >= start, col(Shift.day) <= end))}
    out = []
    for plan in planned(calendar=calendar, patterns=patterns, start=start, end=end):
        shift = existing.get((plan.day, plan.name))
        if shift is None:
            shift = Shift(day=plan.day, name=plan.name, pattern=plan.pattern, starts_at=plan.starts_at,
                          ends_at=plan.ends_at, provisional=plan.provisional, published=published,
                          created_at=now)
            session.add(shift)
        out.append(shift)
    session.flush()
    return out


def find_shift(*, session: Session, day: date, name: str | None) -> Shift:
    """The shift ``name`` of ``day`` (the day's first when ``name`` is None)."""
    stmt = select(Shift).where(Shift.day == day).order_by(col(Shift.starts_at))
    shifts = list(session.exec(stmt))
    if not shifts:
        raise DutybotError(f"{fmt_date_zh(day)}还没有排班。")
    if name is None:
        return shifts[0]
    for shift in shifts:
        if shift.name == name:
            return shift
    raise InputError(f"{fmt_date_zh(day)}没有“{name}”（当天班次：{'、'.join(s.name for s in shifts)}）。")


def views(session: Session, shifts: Sequence[Shift]) -> list[ShiftView]:
    """Shifts with their people (one query for all assignments)."""
    if not shifts:
        return []
    ids = [s.id for s in shifts]
    rows = session.exec(select(ShiftAssignment, Person)
                        .join(Person, col(Person.id) == ShiftAssignment.person_id)
                        .where(col(ShiftAssignment.shift_id).in_(ids))
                        .order_by(col(ShiftAssignment.id))).all()
    by_id = {s.id: ShiftView(s) for s in shifts}
    for assignment, person in rows:
        by_id[assignment.shift_id].people(DutyRole(assignment.role)).append(person)
    return [by_id[s.id] for s in shifts]


_AT = bindparam("at", type_=UTCDateTime())
_RUNNING = (select(Shift).where(col(Shift.starts_at) <= _AT, col(Shift.ends_at) > _AT,
                                Shift.published == True)  # noqa: E712
            .order_by(col(Shift.starts_at)))   # built once: asked on every report and escalation


def on_duty(*, session: Session, at: datetime) -> list[ShiftView]:
    """The published shift(s) running at ``at`` (normally one)."""
    return views(session, list(session.exec(_RUNNING, params={"at": at})))


def leaders_at(*, session: Session, at: datetime) -> list[Person]:
    """The leader(s) on duty at ``at`` per the published roster ([] when none)."""
    return people_at(session=session, at=at)[1]


def officers_at(*, session: Session, at: datetime) -> list[Person]:
    """The duty officer(s) at ``at`` per the published roster ([] when none)."""
    return people_at(session=session, at=at)[0]


def people_at(*, session: Session, at: datetime) -> tuple[list[Person], list[Person]]:
    """``(officers_at(at), leaders_at(at))`` with one reading of the roster."""
    running = on_duty(session=session, at=at)
    return ([p for v in running for p in v.officers if p.active], [p for v in running for p in v.leaders if p.active])


def shifts_between(*, session: Session, start: date, end: date, published_only: bool = True) -> list[Shift]:
    stmt = select(Shift).where(col(Shift.day) >= start, col(Shift.day) <= end)
    if published_only:
        stmt = stmt.where(Shift.published == True)  # noqa: E712
    return list(session.exec(stmt.order_by(col(Shift.starts_at))))


def shifts_of(*, session: Session, person: Person, start: datetime, end: datetime) -> list[Shift]:
    """``person``'s published shifts that overlap ``start``..``end``."""
    stmt = (select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
            .where(ShiftAssignment.person_id == person.id, col(Shift.ends_at) > start,
                   col(Shift.starts_at) < end, Shift.published == True)  # noqa: E712
            .order_by(col(Shift.starts_at)))
    return list({s.id: s for s in session.exec(stmt)}.values())


def assign(*, session: Session, shift: Shift, person: Person, role: DutyRole, source: str, now: datetime,
           actor: str) -> ShiftAssignment:
    """Put ``person`` on ``shift`` as ``role`` (no-op if already there)."""
    found = session.exec(select(ShiftAssignment).where(
        ShiftAssignment.shift_id == shift.id, ShiftAssignment.person_id == person.id,
        ShiftAssignment.role == role.value)).first()
    if found is not None:
        return found
    assert shift.id is not None and person.id is not None
    row = ShiftAssignment(shift_id=shift.id, person_id=person.id, role=role.value, source=source, created_at=now)
    session.add(row)
    session.flush()
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action="assigned", actor=actor,
                 zh=f"{label(shift)}：{DUTY_ROLE_ZH[role]} {person.name}（{source}）", person=person.name, role=role.value)
    return row


def unassign(*, session: Session, shift: Shift, person: Person, role: DutyRole, now: datetime, actor: str,
             why: str = "") -> bool:
    row = session.exec(select(ShiftAssignment).where(
        ShiftAssignment.shift_id == shift.id, ShiftAssignment.person_id == person.id,
        ShiftAssignment.role == role.value)).first()
    if row is None:
        return False
    session.delete(row)
    assert shift.id is not None
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action="unassigned", actor=actor,
                 zh=f"{label(shift)}：撤下{DUTY_ROLE_ZH[role]} {person.name}" + (f"（{why}）" if why else ""),
                 person=person.name, role=role.value)
    return True


def on_leave(*, session: Session, person_ids: Iterable[int], start: date, end: date) -> dict[int, list[Leave]]:
    """Leave overlapping ``start``..``end`` per person."""
    ids = list(person_ids)
    out: dict[int, list[Leave]] = {}
    if not ids:
        return out
    for leave in session.exec(select(Leave).where(col(Leave.person_id).in_(ids), col(Leave.start_day) <= end,
                                                 col(Leave.end_day) >= start)):
        out.setdefault(leave.person_id, []).append(leave)
    return out


@dataclass(frozen=True)
class Gap:
    day: date
    shift_name: str
    starts_at: datetime
    missing: tuple[str, ...]     # 值班员 / 带班领导 / 整个班次


def find_gaps(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, start: date,
              end: date) -> list[Gap]:
    """Shifts of ``start``..``end`` without enough officers or a leader (or not rostered)."""
    stored = {(s.day, s.name): s for s in shifts_between(session=session, start=start, end=end)}
    by_shift = {v.shift.id: v for v in views(session, list(stored.values()))}
    gaps = []
    for plan in planned(calendar=calendar, patterns=patterns, start=start, end=end):
        shift = stored.get((plan.day, plan.name))
        if shift is None:
            gaps.append(Gap(plan.day, plan.name, plan.starts_at, ("整个班次未排班",)))
            continue
        view = by_shift[shift.id]
        missing = []
        officers = [p for p in view.officers if p.active]
        if len(officers) < plan.officers:
            missing.append("值班员" if not officers else f"值班员（差 {plan.officers - len(officers)} 人）")
        if not [p for p in view.leaders if p.active]:
            missing.append("带班领导")
        if missing:
            gaps.append(Gap(plan.day, plan.name, shift.starts_at, tuple(missing)))
    return gaps


def label(shift: Shift) -> str:
    """``11月23日（星期一）夜班 17:30–次日08:30``."""
    start, end = local(shift.starts_at), local(shift.ends_at)
    next_day = "次日" if end.date() != start.date() else ""
    return f"{fmt_date_zh(shift.day).split('年', 1)[-1]}{shift.name} {start:%H:%M}–{next_day}{end:%H:%M}"


def describe(view: ShiftView, *, phones: bool = True) -> str:
    """``白班 08:30–17:30｜值班员：王芳 138…｜带班领导：李强 139…``."""
    def names(people: list[Person]) -> str:
        if not people:
            return "（空缺）"
        return "、".join(f"{p.name} {p.phone}".rstrip() if phones else p.name for p in people)
    start, end = local(view.shift.starts_at), local(view.shift.ends_at)
    next_day = "次日" if end.date() != start.date() else ""
    return (f"{view.shift.name} {start:%H:%M}–{next_day}{end:%H:%M}｜值班员：{names(view.officers)}｜"
            f"带班领导：{names(view.leaders)}")


def now_text(instant: datetime) -> str:
    return fmt_short_zh(instant)


def local_day(instant: datetime, patterns: ShiftPatterns, calendar: WorkdayCalendar) -> date:
    """The duty day ``instant`` falls in (before the first shift's start: the day before)."""
    here = instant.astimezone(SHANGHAI)
    first = patterns.for_day(here.date(), calendar)[0].starts_at
    return here.date() if here >= first else here.date() - timedelta(days=1)
