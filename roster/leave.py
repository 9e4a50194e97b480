"""Recording leave: the inclusive days a person is away (DUTY-1: 7×24 duty).

``roster.drafts.generate_draft`` never puts a person on a shift touching a day of their
leave; ``add_leave`` reports the shifts they already hold on those days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from core import audit
from core.clock import local
from core.errors import InputError, NotFound
from people.models import Person
from roster.drafts import span_zh
from roster.models import Leave, Shift, ShiftAssignment
from roster.service import on_leave

MAX_LEAVE_DAYS = 366
MAX_REASON = 200

_INSTANT = timedelta(microseconds=1)   # ends_at - _INSTANT: the last instant inside a shift


@dataclass
class LeaveAdded:
    leave: Leave
    clashes: list[Shift]      # shifts the person already holds on those days (draft or published)


def add_leave(*, session: Session, person: Person, start: date, end: date, reason: str, now: datetime,
              actor: str) -> LeaveAdded:
    """Record ``person``'s leave (inclusive days).

    Raises:
        InputError: a bad range, a reason too long, or leave that overlaps recorded leave.
    """
    reason = reason.strip()
    if end < start:
        raise InputError("请假结束日期不能早于开始日期。")
    if (end - start).days + 1 > MAX_LEAVE_DAYS:
        raise InputError(f"一次请假最多登记 {MAX_LEAVE_DAYS} 天，请分段登记。")
    if len(reason) > MAX_REASON:
        raise InputError(f"请假事由最多 {MAX_REASON} 个字（现有 {len(reason)} 个）。")
    assert person.id is not None
    for other in on_leave(session=session, person_ids=[person.id], start=start, end=end).get(person.id, []):
        raise InputError(f"{person.name} 在 {span_zh(other.start_day, other.end_day)} 已登记请假（编号 {other.id}），"
                         f"与本次时间重叠。请先删除：dutybot roster leave remove {other.id}")
    leave = Leave(person_id=person.id, start_day=start, end_day=end, reason=reason, created_at=now)
    session.add(leave)
    session.flush()
    assert leave.id is not None
    audit.record(session=session, at=now, entity_type="leave", entity_id=leave.id, action="added", actor=actor,
                 zh=f"登记 {person.name} 请假：{span_zh(start, end)}" + (f"（{reason}）" if reason else ""),
                 person=person.name, start=start.isoformat(), end=end.isoformat())
    # A shift "on" a leave day is any that touches it: a night before leave ends next morning.
    clashes = session.exec(
        select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
        .where(ShiftAssignment.person_id == person.id, col(Shift.day) >= start - timedelta(days=1),
               col(Shift.day) <= end).order_by(col(Shift.starts_at))).all()
    touching = [s for s in {s.id: s for s in clashes}.values()
                if local(s.starts_at).date() <= end and local(s.ends_at - _INSTANT).date() >= start]
    return LeaveAdded(leave, touching)


def list_leave(*, session: Session, start: date | None = None, end: date | None = None) -> list[tuple[Leave, Person]]:
    """Leave overlapping ``start``..``end`` (open-ended when None), by start day and name."""
    stmt = select(Leave, Person).join(Person, col(Person.id) == Leave.person_id)
    if start is not None:
        stmt = stmt.where(col(Leave.end_day) >= start)
    if end is not None:
        stmt = stmt.where(col(Leave.start_day) <= end)
    return [(leave, person) for leave, person in
            session.exec(stmt.order_by(col(Leave.start_day), col(Person.name), col(Leave.id)))]


def remove_leave(*, session: Session, leave_id: int, now: datetime, actor: str) -> tuple[Leave, Person]:
    """Delete a leave record.

    Raises:
        NotFound: no leave has this id.
    """
    leave = session.get(Leave, leave_id)
    if leave is None:
        raise NotFound(f"没有编号为 {leave_id} 的请假记录。查看：dutybot roster leave list")
    person = session.get(Person, leave.person_id)
    assert person is not None
    session.delete(leave)
    audit.record(session=session, at=now, entity_type="leave", entity_id=leave_id, action="removed", actor=actor,
                 zh=f"删除 {person.name} 的请假：{span_zh(leave.start_day, leave.end_day)}", person=person.name)
    session.flush()
    return leave, person
