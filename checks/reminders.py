"""The reminder ladder of a check duty (a rectification item, an annual report), as due items.

Every reminder is a :class:`~core.schedule.DueItem` of kind ``checks.remind`` keyed by the
duty and the stage, so it survives restarts. Stages, in order:

``notice``   (annual reports) when the duty is created, at the next office opening
``before``   ``lead_workdays`` working days before the last day, at the office's opening time
``due``      the morning of the last day
``overdue``  at the deadline → the unit, and the escalation to the admins (the district office)

Reminders are routine: one falling at night, on a weekend or a public holiday goes out when
the office next opens (``[calendar] office_hours``); ``before`` and ``due`` stages that would
only go out after the deadline are dropped. The processor is in :mod:`checks.flows`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session

from checks.service import CheckPolicy
from core import schedule

REMIND_KIND = "checks.remind"
STAGES = ("notice", "before", "due", "overdue")
_LOOKBACK_DAYS = 60


def stage_times(*, last_day: date, due_at: datetime, policy: CheckPolicy, now: datetime,
                notice: bool = False) -> dict[str, datetime]:
    """When each stage goes out (stages that would fall after the deadline left out)."""
    times: dict[str, datetime] = {}
    if notice:
        times["notice"] = policy.deliver_at(now)
    if policy.lead_workdays > 0:
        day, left = last_day, policy.lead_workdays
        for _ in range(_LOOKBACK_DAYS):
            day -= timedelta(days=1)
            if policy.calendar.is_workday(day):
                left -= 1
                if left == 0:
                    times["before"] = policy.deliver_at(policy.at_morning(day))
                    break
    times["due"] = policy.deliver_at(policy.at_morning(last_day))
    times["overdue"] = policy.deliver_at(due_at)
    return {stage: at for stage, at in times.items()
            if stage in ("notice", "overdue") or (now < at < due_at)}


def schedule_ladder(*, session: Session, ref: str, last_day: date, due_at: datetime,
                    policy: CheckPolicy, now: datetime, notice: bool = False) -> list[str]:
    """(Re)schedule the stages of the duty ``ref`` (``rectify:3``, ``annual:5``).

    Returns:
        The stages scheduled.
    """
    scheduled = []
    for stage, at in stage_times(last_day=last_day, due_at=due_at, policy=policy, now=now,
                                 notice=notice).items():
        schedule.schedule(session=session, key=f"{ref}:{stage}", kind=REMIND_KIND, ref=ref,
                          due_at=max(at, now), now=now, payload={"stage": stage, "due": due_at.isoformat()})
        scheduled.append(stage)
    return scheduled


def cancel_ladder(*, session: Session, ref: str) -> int:
    """Cancel what is left of a duty's reminders (it was done)."""
    return schedule.cancel_for(session=session, ref=ref)
