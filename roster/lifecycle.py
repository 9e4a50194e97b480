"""The shift lifecycle (DUTY-1, CHECK-2): check-in (接班) and handover (交班), and the
policy that says when reminders, check-in deadlines and escalations fall.

Check-in is accepted from ``checkin_window`` before a shift's start until its end; it is
on time up to start + ``checkin_window`` and late after that. Handover is done by an
officer of the running shift, or of one that ended less than 2 hours ago; the summary
the next shift gets is built by the caller's ``summarize`` (``reports.handover``: it
reads incidents and replies, which the roster does not import).

The reminders before a shift and the check-in escalation are due items planned and
processed by ``roster.reminders``, under the keys :func:`key_of` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Protocol

from sqlmodel import Session, col, select

from core import audit, schedule
from core.clock import fmt_short_zh
from core.errors import DutybotError, InputError
from core.messages import Outbound, duration_zh
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import DueItem, DueStatus
from people.models import Person, Role
from people.service import people_with_role
from roster.models import DutyRole, Handover, Shift, ShiftAssignment
from roster.service import ShiftView, label, views

HANDOVER_GRACE = timedelta(hours=2)      # handover still possible this long after the shift ended
MAX_NOTE = 1000


class RosterTimes(Protocol):
    """What :meth:`LifecyclePolicy.from_settings` reads from ``[roster]``."""

    @property
    def evening_reminder_time(self) -> str: ...
    @property
    def remind_before_minutes(self) -> int: ...
    @property
    def checkin_minutes(self) -> int: ...
    @property
    def checkin_escalate_minutes(self) -> int: ...


@dataclass(frozen=True)
class LifecyclePolicy:
    """When reminders, check-in deadlines and escalations fall (from ``[roster]``)."""

    evening_time: time = time(20, 0)
    remind_before: timedelta = timedelta(minutes=30)
    checkin_window: timedelta = timedelta(minutes=30)
    escalate_after: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, roster: RosterTimes) -> LifecyclePolicy:
        hour, minute = (int(part) for part in roster.evening_reminder_time.split(":"))
        return cls(time(hour, minute), timedelta(minutes=roster.remind_before_minutes),
                   timedelta(minutes=roster.checkin_minutes), timedelta(minutes=roster.checkin_escalate_minutes))


class NotOnShift(DutybotError):
    """The person has no shift to check in to or hand over."""


def ref_of(shift: Shift) -> str:
    """The ref of a shift's due items (planned by ``roster.reminders``)."""
    return f"shift:{shift.id}"


def key_of(shift: Shift, stage: str) -> str:
    """The key of one stage's due item (``shift:<id>:checkin``)."""
    return f"{ref_of(shift)}:{stage}"


def minutes(delta: timedelta) -> int:
    return max(int(delta.total_seconds() // 60), 0)


def is_late(checked_in_at: datetime, shift: Shift, policy: LifecyclePolicy) -> bool:
    """Checked in after start + the check-in window."""
    return checked_in_at > shift.starts_at + policy.checkin_window


class HandoverSummary(Protocol):
    """Builds the handover text of ``shift`` as of ``now`` (``reports.handover.handover_summary``)."""

    def __call__(self, *, session: Session, shift: Shift, now: datetime) -> str: ...


# -- who is on the shift -------------------------------------------------------------


def with_phones(people: list[Person]) -> str:
    """``王芳 138…、陈晨 139…`` of ``people``; ``（空缺）`` when none."""
    return "、".join(f"{p.name} {p.phone}".rstrip() for p in people) or "（空缺）"


def shift_lines(view: ShiftView) -> str:
    """``班次：…`` / ``值班员：…`` / ``带班领导：…`` with phones."""
    officers = [p for p in view.officers if p.active]
    leaders = [p for p in view.leaders if p.active]
    return f"班次：{label(view.shift)}\n值班员：{with_phones(officers)}\n带班领导：{with_phones(leaders)}"


def not_checked_in(session: Session, shift: Shift) -> list[Person]:
    """The active officers of ``shift`` who have not checked in."""
    rows = session.exec(select(Person).join(ShiftAssignment, col(ShiftAssignment.person_id) == Person.id)
                        .where(ShiftAssignment.shift_id == shift.id, ShiftAssignment.role == DutyRole.officer.value,
                               col(ShiftAssignment.checked_in_at).is_(None), Person.active == True)  # noqa: E712
                        .order_by(col(ShiftAssignment.id)))
    return list(rows)


def leaders_of(session: Session, shift: Shift) -> list[Person]:
    """The shift's leader(s) on duty; the admins when it has none."""
    leaders = [p for p in views(session, [shift])[0].leaders if p.active]
    return leaders or people_with_role(session=session, role=Role.admin)


# -- check-in ------------------------------------------------------------------------


@dataclass
class CheckIn:
    """What :func:`check_in` did."""

    shift: Shift
    assignment: ShiftAssignment
    late_by: timedelta | None         # minutes after the start, when late
    already: bool = False             # had checked in before (nothing changed)
    leaders_told: list[Person] = field(default_factory=list)   # leaders who had been told and now hear


def _officer_rows(session: Session, person: Person, start: datetime, end: datetime) -> list[tuple[ShiftAssignment, Shift]]:
    """``person``'s officer assignments of published shifts overlapping start..end, by start."""
    rows = session.exec(select(ShiftAssignment, Shift).join(Shift, col(Shift.id) == ShiftAssignment.shift_id)
                        .where(ShiftAssignment.person_id == person.id, ShiftAssignment.role == DutyRole.officer.value,
                               Shift.published == True, col(Shift.ends_at) > start,  # noqa: E712
                               col(Shift.starts_at) <= end)
                        .order_by(col(Shift.starts_at)))
    return [(a, s) for a, s in rows]


def _next_shift_hint(session: Session, person: Person, now: datetime, policy: LifecyclePolicy) -> str:
    upcoming = [s for _, s in _officer_rows(session, person, now, now + timedelta(days=30)) if s.starts_at > now]
    if not upcoming:
        return "您接下来 30 天没有值班员班次。"
    return (f"您的下一班：{label(upcoming[0])}，可在开始前{duration_zh(policy.checkin_window)}内接班。")


def check_in(*, session: Session, person: Person, now: datetime, policy: LifecyclePolicy, actor: str) -> CheckIn:
    """Record that ``person`` took over their shift (the earliest not yet checked in among
    the running one and one starting within the check-in window).

    Raises:
        NotOnShift: no such shift; the message names the person's next one.
    """
    rows = _officer_rows(session, person, now, now + policy.checkin_window)
    if not rows:
        raise NotOnShift("您当前没有需要接班的班次（接班须在班次开始前"
                         f"{duration_zh(policy.checkin_window)}内或班次进行中）。{_next_shift_hint(session, person, now, policy)}")
    open_rows = [(a, s) for a, s in rows if a.checked_in_at is None]
    if not open_rows:
        assignment, shift = rows[-1]
        assert assignment.checked_in_at is not None
        late = assignment.checked_in_at - shift.starts_at if is_late(assignment.checked_in_at, shift, policy) else None
        return CheckIn(shift, assignment, late, already=True)
    assignment, shift = open_rows[0]
    assignment.checked_in_at = now
    session.add(assignment)
    late = now - shift.starts_at if is_late(now, shift, policy) else None
    late_zh = f"（迟到{duration_zh(late)}）" if late is not None else "（按时）"
    assert shift.id is not None
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action="checked_in", actor=actor,
                 actor_id=person.id, zh=f"{label(shift)}：值班员 {person.name} 接班{late_zh}", person=person.name,
                 late_minutes=minutes(late) if late is not None else 0)
    result = CheckIn(shift, assignment, late)
    if not not_checked_in(session, shift):
        schedule.cancel(session=session, key=key_of(shift, "checkin"))
        schedule.cancel(session=session, key=key_of(shift, "checkin-escalate"))
    escalated = session.exec(select(DueItem).where(DueItem.key == key_of(shift, "checkin-escalate"),
                                                   DueItem.status == DueStatus.done)).first()
    if escalated is not None:
        text = f"【已接班】{person.name} 已于 {fmt_short_zh(now)} 接班{late_zh}：{label(shift)}"
        for leader in leaders_of(session, shift):
            enqueue(session=session, message=Outbound(text, person_id=leader.id), now=now,
                    event_key=f"{ref_of(shift)}:checked-in:{person.id}")
            result.leaders_told.append(leader)
    return result


# -- handover ------------------------------------------------------------------------


@dataclass
class HandoverResult:
    """What :func:`hand_over` did."""

    handover: Handover
    shift: Shift
    next_view: ShiftView | None
    replaced_at: datetime | None          # when the earlier handover of this shift was made
    told_officers: list[Person] = field(default_factory=list)
    told_leaders: list[Person] = field(default_factory=list)


def shift_to_hand_over(*, session: Session, person: Person, now: datetime) -> Shift:
    """The running shift ``person`` is an officer of, else one that ended within 2 hours.

    Raises:
        NotOnShift: neither.
    """
    rows = _officer_rows(session, person, now - HANDOVER_GRACE, now)
    running = [s for _, s in rows if s.starts_at <= now < s.ends_at]
    ended = [s for _, s in rows if s.ends_at <= now]
    if running:
        return running[0]
    if ended:
        return ended[-1]
    raise NotOnShift("您不是当前班次（或 2 小时内刚结束的班次）的值班员，无法交班。查看值班安排：/duty")


def next_shift(session: Session, shift: Shift) -> Shift | None:
    """The published shift that follows ``shift`` (starting within a day of its end)."""
    return session.exec(select(Shift).where(col(Shift.starts_at) >= shift.ends_at,
                                            col(Shift.starts_at) < shift.ends_at + timedelta(days=1),
                                            Shift.published == True)  # noqa: E712
                        .order_by(col(Shift.starts_at))).first()


def hand_over(*, session: Session, person: Person, note: str, now: datetime, profile: Profile,
              actor: str, summarize: HandoverSummary) -> HandoverResult:
    """Store the handover of ``person``'s shift and send it to the next shift's officers,
    with a copy to the leaders of both shifts, in the caller's transaction.

    A second handover of the same shift replaces the first: the summary (from
    ``summarize``) is rebuilt as of now; an empty note keeps the earlier note.

    Raises:
        InputError: the note is too long.
        NotOnShift: ``person`` has no shift to hand over.
    """
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise InputError(f"备注过长（{len(note)} 字，上限 {MAX_NOTE} 字）。")
    shift = shift_to_hand_over(session=session, person=person, now=now)
    assert shift.id is not None and person.id is not None
    summary = summarize(session=session, shift=shift, now=now)
    row = session.exec(select(Handover).where(Handover.shift_id == shift.id).order_by(col(Handover.id))).first()
    replaced_at = row.at if row is not None else None
    if row is None:
        row = Handover(shift_id=shift.id, person_id=person.id, at=now, note=note, summary=summary)
    else:
        row.person_id, row.at, row.summary, row.note = person.id, now, summary, note or row.note
    session.add(row)
    session.flush()
    following = next_shift(session, shift)
    next_view = views(session, [following])[0] if following is not None else None
    result = HandoverResult(row, shift, next_view, replaced_at)
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id,
                 action="handover_updated" if replaced_at else "handover", actor=actor, actor_id=person.id,
                 zh=f"{label(shift)}：{person.name} 交班" + ("（更新）" if replaced_at else "")
                 + (f"，备注：{row.note[:100]}" if row.note else ""))
    head = "【交班·更新】" if replaced_at else "【交班】"
    replaces = f"（替换 {fmt_short_zh(replaced_at)} 的交班记录）" if replaced_at else ""
    to = f"接班：{label(following)}" if following is not None else "下一班：尚未排班"
    body = (f"{label(shift)} 交班{replaces}\n交班人：{person.name} {person.phone}".rstrip()
            + f"（{fmt_short_zh(now)}）\n{to}\n{summary}\n备注：{row.note or '无'}\n"
            + profile.basis("CHECK-2"))
    event = f"{ref_of(shift)}:handover:{now.isoformat()}"
    officers = [p for p in (next_view.officers if next_view else []) if p.active and p.id != person.id]
    for officer in officers:
        enqueue(session=session, message=Outbound(f"{head}{body}\n接班后请发送 /checkin（接班）。",
                                                  person_id=officer.id), now=now, event_key=event)
    result.told_officers = officers
    leaders: dict[int | None, Person] = {}
    for view in [views(session, [shift])[0]] + ([next_view] if next_view else []):
        for leader in view.leaders:
            if leader.active and leader.id != person.id and leader.id not in {o.id for o in officers}:
                leaders.setdefault(leader.id, leader)
    for leader in leaders.values():
        enqueue(session=session, message=Outbound(f"{head[:-1]}·抄送】{body}", person_id=leader.id),
                now=now, event_key=event)
    result.told_leaders = list(leaders.values())
    return result

