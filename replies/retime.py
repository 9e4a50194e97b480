"""Re-time reply deadlines that were counted on a provisional calendar year.

A deadline reaching into a year without holiday data is computed from weekends and the
fixed-date holidays and stored with ``provisional`` set (shown as 暂定). Once the year is
known (an admin installs ``holidays/<year>.toml`` or a newer ``chinese-calendar`` release
is installed, then the bot restarts), :func:`retime_provisional` recomputes every open
provisional item from its time of receipt, clears the mark, moves its reminders, records
the change and tells the person responsible when the deadline moved.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlmodel import Session, col, select

from core import audit
from core.profiles import Profile
from core.schedule import CronRegistry
from core.workdays import WorkdayCalendar
from replies.flows import (
    ReminderPolicy,
    card,
    deadline_zh,
    notify,
    ref_of,
    responsible,
    schedule_reminders,
)
from replies.models import ReplyCategory, ReplyItem, ReplyStatus
from replies.service import compute_deadline

JOB = "replies.retime"


def retime_provisional(session: Session, fire_time: datetime, now: datetime, *,
                       calendar: WorkdayCalendar, profile: Profile, policy: ReminderPolicy) -> int:
    """Recompute every open item marked provisional; returns how many changed.

    An item whose year is still unknown keeps its deadline and its mark.
    """
    stmt = (select(ReplyItem)
            .where(ReplyItem.status == ReplyStatus.open, ReplyItem.provisional == True)  # noqa: E712
            .order_by(col(ReplyItem.id)))
    changed = 0
    for item in session.exec(stmt).all():
        deadline = compute_deadline(calendar=calendar, profile=profile,
                                    category=ReplyCategory(item.category),
                                    received_at=item.received_at,
                                    extended_workdays=item.extended_workdays)
        new_due = deadline.due.due
        if new_due == item.due_at and deadline.provisional:
            continue   # nothing learnt yet
        before = deadline_zh(item)
        old_due = item.due_at
        item.due_at, item.due_last_day = new_due, deadline.due.last_day
        item.ceiling_at, item.provisional = deadline.ceiling.due, deadline.provisional
        item.citation = deadline.basis_zh()
        moved = new_due != old_due
        if moved and new_due > now:
            item.escalation_level = 0
        session.add(item)
        audit.record(session=session, at=now, entity_type="reply", entity_id=item.number,
                     action="retimed", actor="calendar", before=old_due.isoformat(),
                     due=new_due.isoformat(), provisional=deadline.provisional)
        if moved:
            schedule_reminders(session=session, item=item, calendar=calendar, policy=policy,
                               now=now)
            lines = card(item, now=now, head="【期限调整】原“暂定”的答复期限已按新的节假日安排重新计算").split("\n")
            lines.insert(3, f"原截止：{before}")   # after what, by when and what to press
            notify(session, responsible(session, item), "\n".join(lines),
                   event=f"{ref_of(item)}:retimed:{new_due.isoformat()}", now=now)
        changed += 1
    return changed


def register_retime(scheduler: CronRegistry, *, calendar: WorkdayCalendar, profile: Profile,
                    policy: ReminderPolicy) -> None:
    """Run :func:`retime_provisional` at start and every 15 minutes."""
    scheduler.register_cron(JOB, partial(retime_provisional, calendar=calendar, profile=profile,
                                         policy=policy), run_at_start=True, minute="*/15")
