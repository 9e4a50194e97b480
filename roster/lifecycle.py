"""The shift lifecycle (DUTY-1, CHECK-2): reminders, check-in (接班), handover (交班).

Shifts come from imports, the generator and swaps; nothing here hooks into those.
Instead a **planner** cron job (every 15 minutes, and once after downtime through the
scheduler's catch-up) looks at the shifts starting within the next 48 hours and keeps
four due items per shift in step with the roster, under the ref ``shift:<id>``:

``shift:<id>:remind-evening``   the evening before the shift's local start date, at
                                ``evening_time``; left out when it would come less than
                                3 hours before the next reminder (an early-morning shift)
``shift:<id>:remind-soon``      ``remind_before`` before the start (0: none)
``shift:<id>:checkin``          start + ``checkin_window``: officers not checked in are reminded
``shift:<id>:checkin-escalate`` ``escalate_after`` later: the shift's leader on duty is told

Processors re-read the shift and its people when they fire, so a swap just before a
shift reminds the person who now holds it. An item that already fired is never re-armed;
a pending one is moved or cancelled when the shift changes (unpublished, everyone checked
in). A reminder or escalation missed by downtime (or for a shift published late) is
sent late only within 2 hours of its time, and a shift reminder only before the shift.

Check-in is accepted from ``checkin_window`` before a shift's start until its end; it is
on time up to start + ``checkin_window`` and late after that. Handover is done by an
officer of the running shift, or of one that ended less than 2 hours ago.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any, Protocol

from sqlmodel import Session, col, select

from core import audit, schedule
from core.clock import SHANGHAI, fmt_short_zh, local
from core.errors import DutybotError, InputError
from core.messages import Button, Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import DueItem, DueStatus
from people.models import Person, Role
from people.service import people_with_role
from roster.dutylog import handover_summary
from roster.models import DutyRole, Handover, Shift, ShiftAssignment
from roster.service import ShiftView, label, views

log = logging.getLogger(__name__)

REMIND_KIND = "roster.remind"
CHECKIN_KIND = "roster.checkin"
PLANNER_JOB = "roster.lifecycle"
PLAN_HORIZON = timedelta(hours=48)
EVENING_MIN_GAP = timedelta(hours=3)     # evening reminder at least this long before the next one
LATE_GRACE = timedelta(hours=2)          # a reminder missed by downtime (or planned late) is sent this late at most
HANDOVER_GRACE = timedelta(hours=2)      # handover still possible this long after the shift ended
MAX_NOTE = 1000

# stage → (kind, payload stage)
STAGES = {"remind-evening": (REMIND_KIND, "evening"), "remind-soon": (REMIND_KIND, "soon"),
          "checkin": (CHECKIN_KIND, "remind"), "checkin-escalate": (CHECKIN_KIND, "escalate")}


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
    return f"shift:{shift.id}"


def key_of(shift: Shift, stage: str) -> str:
    return f"{ref_of(shift)}:{stage}"


def minutes(delta: timedelta) -> int:
    return max(int(delta.total_seconds() // 60), 0)


def is_late(checked_in_at: datetime, shift: Shift, policy: LifecyclePolicy) -> bool:
    """Checked in after start + the check-in window."""
    return checked_in_at > shift.starts_at + policy.checkin_window


# -- planning ------------------------------------------------------------------------


def wanted_times(shift: Shift, *, policy: LifecyclePolicy, now: datetime, missing: bool) -> dict[str, datetime]:
    """The due time of each stage ``shift`` should have now (stages left out: none)."""
    out: dict[str, datetime] = {}
    start = shift.starts_at
    soon = start - policy.remind_before
    evening = datetime.combine(local(start).date() - timedelta(days=1), policy.evening_time, tzinfo=SHANGHAI)
    if now < start:
        if soon - evening >= EVENING_MIN_GAP and now <= evening + LATE_GRACE:
            out["remind-evening"] = evening
        if policy.remind_before > timedelta(0):     # 0 turns the shortly-before reminder off
            out["remind-soon"] = soon
    if missing and now < shift.ends_at:
        checkin = start + policy.checkin_window
        escalate = checkin + policy.escalate_after
        if checkin < shift.ends_at and now <= checkin + LATE_GRACE:
            out["checkin"] = checkin
        if escalate < shift.ends_at and now <= escalate + LATE_GRACE:
            out["checkin-escalate"] = escalate
    return out


def plan(*, session: Session, now: datetime, policy: LifecyclePolicy, horizon: timedelta = PLAN_HORIZON) -> int:
    """Bring the due items of shifts starting within ``horizon`` (or running) in step
    with the roster, in the caller's transaction.

    Returns:
        How many due items were created, moved or cancelled.
    """
    shifts = list(session.exec(select(Shift).where(col(Shift.starts_at) <= now + horizon, col(Shift.ends_at) > now)))
    if not shifts:
        return 0
    ids = [s.id for s in shifts]
    existing = {d.key: d for d in session.exec(select(DueItem).where(col(DueItem.ref).in_([ref_of(s) for s in shifts])))}
    missing = set(session.exec(
        select(ShiftAssignment.shift_id).join(Person, col(Person.id) == ShiftAssignment.person_id)
        .where(col(ShiftAssignment.shift_id).in_(ids), ShiftAssignment.role == DutyRole.officer.value,
               col(ShiftAssignment.checked_in_at).is_(None), Person.active == True)))  # noqa: E712
    changed = 0
    for shift in shifts:
        wanted = wanted_times(shift, policy=policy, now=now, missing=shift.id in missing) if shift.published else {}
        for stage, (kind, payload_stage) in STAGES.items():
            key, item, at = key_of(shift, stage), existing.get(key_of(shift, stage)), wanted.get(stage)
            if at is None:
                if item is not None and item.status == DueStatus.pending:
                    item.status = DueStatus.cancelled
                    session.add(item)
                    changed += 1
                continue
            if item is not None and item.status in (DueStatus.done, DueStatus.failed):
                continue    # already fired: never twice
            if item is not None and item.status == DueStatus.pending and (
                    item.due_at == at or (item.due_at <= now and at <= now)):
                continue
            schedule.schedule(session=session, key=key, kind=kind, ref=ref_of(shift), due_at=max(at, now), now=now,
                              payload={"stage": payload_stage, "starts_at": shift.starts_at.isoformat()})
            changed += 1
    return changed


def planner_job(session: Session, fire_time: datetime, now: datetime, *, policy: LifecyclePolicy) -> int:
    """The cron job: :func:`plan` as of ``now``."""
    changed = plan(session=session, now=now, policy=policy)
    if changed:
        log.info("shift lifecycle: %d due item(s) planned or moved", changed)
    return changed


# -- processors ----------------------------------------------------------------------


def _shift_of(session: Session, item: DueItem) -> Shift | None:
    try:
        return session.get(Shift, int(item.ref.removeprefix("shift:")))
    except ValueError:
        return None


def _names(people: list[Person]) -> str:
    return "、".join(f"{p.name} {p.phone}".rstrip() for p in people) or "（空缺）"


def shift_lines(view: ShiftView) -> str:
    """``班次：…`` / ``值班员：…`` / ``带班领导：…`` with phones."""
    officers = [p for p in view.officers if p.active]
    leaders = [p for p in view.leaders if p.active]
    return f"班次：{label(view.shift)}\n值班员：{_names(officers)}\n带班领导：{_names(leaders)}"


def _people_with_roles(view: ShiftView) -> list[tuple[Person, DutyRole]]:
    out: dict[int | None, tuple[Person, DutyRole]] = {}
    for role in (DutyRole.officer, DutyRole.leader):
        for person in view.people(role):
            if person.active and person.id not in out:
                out[person.id] = (person, role)
    return list(out.values())


def process_reminder(session: Session, item: DueItem, now: datetime, *, profile: Profile) -> None:
    """The ``roster.remind`` processor: the evening-before and shortly-before reminders."""
    shift = _shift_of(session, item)
    if shift is None or not shift.published or now >= shift.starts_at:
        return
    stage = item.data().get("stage")
    start = local(shift.starts_at)
    if stage == "evening" and local(now).date() >= start.date():
        return      # run late (downtime) on the shift's own day: "明天" would be wrong; the next reminder follows
    view = views(session, [shift])[0]
    if stage == "evening":
        head = f"【值班提醒】您明天（{start.month}月{start.day}日）{start:%H:%M} 起值班"
    else:
        head = f"【值班提醒】您的值班将于 {start:%H:%M} 开始（还有 {minutes(shift.starts_at - now)} 分钟）"
    event = f"{item.key}:{shift.starts_at.isoformat()}"
    told = []
    for person, role in _people_with_roles(view):
        if role == DutyRole.officer:
            mine, hint = "值班员", "请按时到岗；到岗后发送 /checkin（接班）。"
        else:
            mine, hint = "带班领导", "值班员未按时接班时，机器人会通知您。"
        text = f"{head}，岗位：{mine}\n{shift_lines(view)}\n{hint}\n依据：{profile.citation('DUTY-1')}（7×24小时值班读网）"
        enqueue(session=session, message=Outbound(text, person_id=person.id), now=now, event_key=event)
        told.append(person.name)
    if told:
        audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action=f"reminded_{stage}",
                     zh=f"{label(shift)}：发送{'前一晚' if stage == 'evening' else '班前'}值班提醒：{'、'.join(told)}")


def _not_checked_in(session: Session, shift: Shift) -> list[Person]:
    rows = session.exec(select(Person).join(ShiftAssignment, col(ShiftAssignment.person_id) == Person.id)
                        .where(ShiftAssignment.shift_id == shift.id, ShiftAssignment.role == DutyRole.officer.value,
                               col(ShiftAssignment.checked_in_at).is_(None), Person.active == True)  # noqa: E712
                        .order_by(col(ShiftAssignment.id)))
    return list(rows)


def leaders_of(session: Session, shift: Shift) -> list[Person]:
    """The shift's leader(s) on duty; the admins when it has none."""
    leaders = [p for p in views(session, [shift])[0].leaders if p.active]
    return leaders or people_with_role(session=session, role=Role.admin)


def process_checkin(session: Session, item: DueItem, now: datetime, *, policy: LifecyclePolicy,
                    profile: Profile) -> None:
    """The ``roster.checkin`` processor: remind officers not checked in, then tell the leader."""
    shift = _shift_of(session, item)
    if shift is None or not shift.published or now >= shift.ends_at:
        return
    missing = _not_checked_in(session, shift)
    if not missing:
        return
    event = f"{item.key}:{shift.starts_at.isoformat()}"
    leaders = leaders_of(session, shift)
    since = minutes(now - shift.starts_at)
    if item.data().get("stage") == "remind":
        text = (f"【接班提醒】{label(shift)} 已开始 {since} 分钟，您还没有接班。\n"
                f"请立即到岗并发送 /checkin（接班）；{minutes(policy.escalate_after)} 分钟后仍未接班，"
                f"将告知带班领导 {'、'.join(p.name for p in leaders) or '（空缺）'}。\n"
                f"依据：{profile.citation('DUTY-1')}（7×24小时值班读网）")
        for person in missing:
            enqueue(session=session, message=Outbound(text, person_id=person.id, buttons=(Button("接班", "/checkin"),)),
                    now=now, event_key=event)
        action, zh = "checkin_reminded", f"提醒未接班的值班员：{'、'.join(p.name for p in missing)}"
    else:
        text = (f"【未接班】{label(shift)} 已开始 {since} 分钟，值班员仍未接班：{_names(missing)}\n"
                f"请联系确认到岗；无法到岗时请安排替班（管理员：/substitute 日期 [班次] 原人员 新人员）。\n"
                f"依据：{profile.citation('DUTY-1')}（7×24小时值班读网）")
        for person in leaders:
            enqueue(session=session, message=Outbound(text, person_id=person.id), now=now, event_key=event)
        action = "checkin_escalated"
        zh = f"值班员未接班（{'、'.join(p.name for p in missing)}），已告知：{'、'.join(p.name for p in leaders) or '无人'}"
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action=action,
                 zh=f"{label(shift)}：{zh}", people=[p.name for p in missing])


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
    return (f"您的下一班：{label(upcoming[0])}，可在开始前 {minutes(policy.checkin_window)} 分钟内接班。")


def check_in(*, session: Session, person: Person, now: datetime, policy: LifecyclePolicy, actor: str) -> CheckIn:
    """Record that ``person`` took over their shift (the earliest not yet checked in among
    the running one and one starting within the check-in window).

    Raises:
        NotOnShift: no such shift; the message names the person's next one.
    """
    rows = _officer_rows(session, person, now, now + policy.checkin_window)
    if not rows:
        raise NotOnShift("您当前没有需要接班的班次（接班须在班次开始前 "
                         f"{minutes(policy.checkin_window)} 分钟内或班次进行中）。{_next_shift_hint(session, person, now, policy)}")
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
    late_zh = f"（迟到 {minutes(late)} 分钟）" if late is not None else "（按时）"
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action="checked_in", actor=actor,
                 actor_id=person.id, zh=f"{label(shift)}：值班员 {person.name} 接班{late_zh}", person=person.name,
                 late_minutes=minutes(late) if late is not None else 0)
    result = CheckIn(shift, assignment, late)
    if not _not_checked_in(session, shift):
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
              actor: str) -> HandoverResult:
    """Store the handover of ``person``'s shift and send it to the next shift's officers,
    with a copy to the leaders of both shifts, in the caller's transaction.

    A second handover of the same shift replaces the first: the summary is rebuilt as of
    now; an empty note keeps the earlier note.

    Raises:
        InputError: the note is too long.
        NotOnShift: ``person`` has no shift to hand over.
    """
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise InputError(f"备注过长（{len(note)} 字，上限 {MAX_NOTE} 字）。")
    shift = shift_to_hand_over(session=session, person=person, now=now)
    summary = handover_summary(session=session, shift=shift, now=now)
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
            f"依据：{profile.citation('CHECK-2')}（值班情况详细记录）")
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


# -- wiring --------------------------------------------------------------------------


class Registry(Protocol):
    """The part of ``bot.scheduler.Scheduler`` used here."""

    def register(self, kind: str, fn: Any) -> None: ...
    def register_cron(self, name: str, fn: Any, **cron_fields: object) -> None: ...


def register_lifecycle(scheduler: Registry, *, policy: LifecyclePolicy, profile: Profile) -> None:
    """Register the two processors and the planner (every 15 minutes, Asia/Shanghai)."""
    scheduler.register(REMIND_KIND, partial(process_reminder, profile=profile))
    scheduler.register(CHECKIN_KIND, partial(process_checkin, policy=policy, profile=profile))
    scheduler.register_cron(PLANNER_JOB, partial(planner_job, policy=policy), run_at_start=True, minute="*/15")
