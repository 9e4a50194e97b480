"""Re-time incident step deadlines that were counted on a provisional calendar year.

A step whose period (e.g. SENS-3's 1 working day) reaches into a year without holiday data
is stored with ``provisional`` set (暂定). Once the year is known (a new holiday file or
``chinese-calendar`` release, then a restart), :func:`retime_provisional` recounts every
pending provisional step of an open incident from the instant its period started (the
report, or the completion of the step it follows), clears the mark, moves the step's
reminder and breach ladder, writes the change to the incident's timeline and tells the
step's owners when the deadline moved.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlmodel import Session, col, select

from core.profiles import Profile
from core.schedule import CronRegistry
from core.workdays import WorkdayCalendar
from incidents.escalation import cancel_runs, card, notify, schedule_step, step_owners
from incidents.models import ENDED_STATUSES, Incident, IncidentStep, StepStatus
from incidents.playbooks import due_from
from incidents.service import IncidentPolicy, quantity_for, record, step_due_zh

JOB = "incidents.retime"


def _anchor_time(session: Session, incident: Incident, step: IncidentStep) -> datetime | None:
    """When the step's period started: the report, or when the step it follows ended."""
    if step.anchor == "report":
        return incident.reported_at
    key = step.anchor.partition("#")[0].removeprefix("step:")
    before = session.exec(select(IncidentStep).where(IncidentStep.incident_id == incident.id,
                                                     IncidentStep.key == key)).first()
    return before.done_at if before is not None else None


def retime_provisional(session: Session, fire_time: datetime, now: datetime, *,
                       calendar: WorkdayCalendar, profile: Profile, policy: IncidentPolicy) -> int:
    """Recount every pending provisional step of an open incident; returns how many changed.

    A step whose year is still unknown keeps its deadline and its mark.
    """
    stmt = (select(IncidentStep, Incident)
            .join(Incident, col(Incident.id) == IncidentStep.incident_id)
            .where(IncidentStep.provisional == True,  # noqa: E712
                   IncidentStep.status == StepStatus.pending,
                   col(Incident.status).not_in([s.value for s in ENDED_STATUSES]))
            .order_by(col(IncidentStep.id)))
    changed = 0
    for step, incident in session.exec(stmt).all():
        anchor = _anchor_time(session, incident, step)
        quantity = quantity_for(incident, step, profile, policy)
        if anchor is None or quantity is None:
            continue
        due = due_from(anchor, quantity, calendar=calendar, at_once_minutes=policy.at_once_minutes)
        if due.at == step.due_at and due.provisional:
            continue   # nothing learnt yet
        before, old_due = step_due_zh(step), step.due_at
        step.due_at, step.provisional = due.at, due.provisional
        if due.last_day_iso is not None:
            step.due_last_day = datetime.fromisoformat(due.last_day_iso).date()
        moved = due.at != old_due
        if moved and due.at > now:
            step.escalation_level = 0
        session.add(step)
        record(session, incident, now, "step_retimed",
               f"节假日安排更新，步骤{step.seq}“{step.title}”的期限由 {before} 调整为 {step_due_zh(step)}",
               person=None, actor="calendar", step=step.key,
               before=old_due.isoformat() if old_due else None, due=due.at.isoformat())
        if moved:
            cancel_runs(session, incident, prefix=f"step:{step.key}:")
            schedule_step(session, incident, step, policy, now)
            notify(session, step_owners(session, incident, step, policy, now),
                   card(session, incident, now=now, step=step,
                        head=f"【期限调整】步骤{step.seq}“{step.title}”原“暂定”期限已按新的节假日安排重新计算")
                   + f"\n原截止：{before}\n新截止：{step_due_zh(step)}（依据：{step.citation}，{step.period_zh}）",
                   event=f"incident:{incident.number}:retimed:{step.key}:{due.at.isoformat()}", now=now)
        changed += 1
    return changed


def register_retime(scheduler: CronRegistry, *, calendar: WorkdayCalendar, profile: Profile,
                    policy: IncidentPolicy) -> None:
    """Run :func:`retime_provisional` at start and every 15 minutes."""
    scheduler.register_cron(JOB, partial(retime_provisional, calendar=calendar, profile=profile,
                                         policy=policy), run_at_start=True, minute="*/15")
