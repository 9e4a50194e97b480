"""Shift reminders and the check-in escalation (DUTY-1): due items kept in step with the
roster.

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
Check-in and handover themselves are in ``roster.lifecycle``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlmodel import Session, col, select

from core import audit, schedule
from core.clock import SHANGHAI, local
from core.messages import Button, Outbound, duration_zh
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import DueItem, DueStatus
from people.models import Person
from roster.lifecycle import (
    LifecyclePolicy,
    key_of,
    leaders_of,
    not_checked_in,
    ref_of,
    shift_lines,
    with_phones,
)
from roster.models import DutyRole, Shift, ShiftAssignment
from roster.service import ShiftView, label, views

log = logging.getLogger(__name__)

REMIND_KIND = "roster.remind"
CHECKIN_KIND = "roster.checkin"
PLANNER_JOB = "roster.lifecycle"
PLAN_HORIZON = timedelta(hours=48)
EVENING_MIN_GAP = timedelta(hours=3)     # evening reminder at least this long before the next one
LATE_GRACE = timedelta(hours=2)          # a reminder missed by downtime (or planned late) is sent this late at most

# stage → (kind, payload stage)
STAGES = {"remind-evening": (REMIND_KIND, "evening"), "remind-soon": (REMIND_KIND, "soon"),
          "checkin": (CHECKIN_KIND, "remind"), "checkin-escalate": (CHECKIN_KIND, "escalate")}


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
        head = f"【值班提醒】您的值班将于 {start:%H:%M} 开始（还有{duration_zh(shift.starts_at - now)}）"
    event = f"{item.key}:{shift.starts_at.isoformat()}"
    told = []
    for person, role in _people_with_roles(view):
        if role == DutyRole.officer:
            mine, hint = "值班员", "请按时到岗；到岗后发送 /checkin（接班）。"
        else:
            mine, hint = "带班领导", "值班员未按时接班时，机器人会通知您。"
        # On a phone the first three lines say what, when and what to do; the crew follows.
        when, _, crew = shift_lines(view).partition("\n")
        text = f"{head}，岗位：{mine}\n{when}\n{hint}\n{crew}\n{profile.basis('DUTY-1', 'DUTY-5')}"
        enqueue(session=session, message=Outbound(text, person_id=person.id), now=now, event_key=event)
        told.append(person.name)
    if told:
        assert shift.id is not None
        audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action=f"reminded_{stage}",
                     zh=f"{label(shift)}：发送{'前一晚' if stage == 'evening' else '班前'}值班提醒：{'、'.join(told)}")


def process_checkin(session: Session, item: DueItem, now: datetime, *, policy: LifecyclePolicy,
                    profile: Profile) -> None:
    """The ``roster.checkin`` processor: remind officers not checked in, then tell the leader."""
    shift = _shift_of(session, item)
    if shift is None or not shift.published or now >= shift.ends_at:
        return
    assert shift.id is not None
    missing = not_checked_in(session, shift)
    if not missing:
        return
    event = f"{item.key}:{shift.starts_at.isoformat()}"
    leaders = leaders_of(session, shift)
    since = duration_zh(now - shift.starts_at)
    if item.data().get("stage") == "remind":
        text = (f"【接班提醒】{label(shift)} 已开始{since}，您还没有接班。\n"
                f"请立即到岗并发送 /checkin（接班）；{duration_zh(policy.escalate_after)}后仍未接班，"
                f"将告知带班领导 {'、'.join(p.name for p in leaders) or '（空缺）'}。\n"
                + profile.basis("DUTY-1", "DUTY-5"))
        for person in missing:
            enqueue(session=session, message=Outbound(text, person_id=person.id, buttons=(Button("接班", "/checkin"),)),
                    now=now, event_key=event)
        action, zh = "checkin_reminded", f"提醒未接班的值班员：{'、'.join(p.name for p in missing)}"
    else:
        text = (f"【未接班】{label(shift)} 已开始{since}，值班员仍未接班：{with_phones(missing)}\n"
                f"请联系确认到岗；无法到岗时请安排替班（管理员：/substitute 日期 [班次] 原人员 新人员）。\n"
                + profile.basis("DUTY-1", "DUTY-5"))
        for person in leaders:
            enqueue(session=session, message=Outbound(text, person_id=person.id), now=now, event_key=event)
        action = "checkin_escalated"
        zh = f"值班员未接班（{'、'.join(p.name for p in missing)}），已告知：{'、'.join(p.name for p in leaders) or '无人'}"
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action=action,
                 zh=f"{label(shift)}：{zh}", people=[p.name for p in missing])


# -- wiring --------------------------------------------------------------------------


class Registry(Protocol):
    """The part of ``bot.scheduler.Scheduler`` used here."""

    def register(self, kind: str, fn: Any) -> None: ...
    def register_cron(self, name: str, fn: Any, **cron_fields: object) -> None: ...


def register_reminders(scheduler: Registry, *, policy: LifecyclePolicy, profile: Profile) -> None:
    """Register the two processors and the planner (every 15 minutes, Asia/Shanghai)."""
    scheduler.register(REMIND_KIND, partial(process_reminder, profile=profile))
    scheduler.register(CHECKIN_KIND, partial(process_checkin, policy=policy, profile=profile))
    scheduler.register_cron(PLANNER_JOB, partial(planner_job, policy=policy), run_at_start=True, minute="*/15")
