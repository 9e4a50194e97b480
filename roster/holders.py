"""Who holds which shift, and whether someone is free to take one: the checks that swaps
(``roster.changes``) and substitutions (``roster.substitute``) share.

Queries only; they raise :class:`SwapRefused` with the Chinese reason when the roster
does not allow a change.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlmodel import Session, col, select

from core.clock import fmt_date_zh
from core.errors import DutybotError
from people.models import Person, Role
from roster.models import DutyRole, Shift, ShiftAssignment
from roster.service import find_shift, label, on_leave, shifts_of

PERSON_ROLE = {DutyRole.officer: Role.officer, DutyRole.leader: Role.leader}


class SwapRefused(DutybotError):
    """The roster does not allow this swap or substitution; the message says why."""


def roles_on(session: Session, shift: Shift, person: Person) -> list[DutyRole]:
    """The duty roles ``person`` holds on ``shift``."""
    rows = session.exec(select(ShiftAssignment.role).where(
        ShiftAssignment.shift_id == shift.id, ShiftAssignment.person_id == person.id)).all()
    return [DutyRole(r) for r in rows]


def holder_role(session: Session, shift: Shift, person: Person, *, who: str) -> DutyRole:
    """The one role ``person`` holds on ``shift``.

    Raises:
        SwapRefused: they hold none, or both (which one to change would be a guess).
    """
    roles = roles_on(session, shift, person)
    if not roles:
        raise SwapRefused(f"{who}没有担任{label(shift)}的值班。")
    if len(roles) > 1:
        raise SwapRefused(f"{who}在{label(shift)}同时担任值班员和带班领导，无法确定要调整哪一个角色；"
                          "请联系管理员用 /substitute 调整。")
    return roles[0]


def held_shift(*, session: Session, day: date, name: str | None, person: Person, who: str) -> Shift:
    """``person``'s shift on ``day``: the one called ``name``, or their only one that day.

    Raises:
        DutybotError: the day has no shifts, or ``name`` is not one of them.
        SwapRefused: ``name`` is None and they hold no shift, or several, that day.
    """
    if name is not None:
        return find_shift(session=session, day=day, name=name)
    stmt = (select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
            .where(Shift.day == day, ShiftAssignment.person_id == person.id)
            .order_by(col(Shift.starts_at)))
    shifts = list({s.id: s for s in session.exec(stmt)}.values())
    if not shifts:
        raise SwapRefused(f"{who}在{fmt_date_zh(day)}没有值班。")
    if len(shifts) > 1:
        raise SwapRefused(f"{who}在{fmt_date_zh(day)}有 {len(shifts)} 个班次（{'、'.join(s.name for s in shifts)}），"
                          "请写明班次。")
    return shifts[0]


def conflict(session: Session, *, person: Person, shift: Shift,
             ignore: Collection[int | None] = ()) -> tuple[str, Shift | None] | None:
    """Why ``person`` cannot take ``shift`` (an overlapping shift, or leave), or None.

    Returns:
        The Chinese reason, and the overlapping shift when that is the reason.
    """
    busy = [s for s in shifts_of(session=session, person=person, start=shift.starts_at, end=shift.ends_at)
            if s.id != shift.id and s.id not in ignore]
    if busy:
        return f"{person.name} 在该时段已有值班（{label(busy[0])}）", busy[0]
    assert person.id is not None
    leave = on_leave(session=session, person_ids=[person.id], start=shift.day, end=shift.day).get(person.id)
    if leave:
        span = leave[0]
        return (f"{person.name} {fmt_date_zh(shift.day)}请假（{span.start_day.month}月{span.start_day.day}日至"
                f"{span.end_day.month}月{span.end_day.day}日）"), None
    return None
