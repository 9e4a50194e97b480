"""Re-time account-duty deadlines that were counted on a provisional calendar year.

A deadline reaching into a year without holiday data (e.g. 备案 within 7 working days,
counted in late December before the State Council has published the next year's
arrangement) is stored with ``provisional`` set and shown as 暂定. Once the year is known
(``holidays/<year>.toml`` installed or a newer ``chinese-calendar`` release, then the bot
restarts), :func:`retime_provisional` counts every open provisional duty again from the
start it was counted from, clears the mark, moves its reminders, records the change in
the audit log and tells the holders when the deadline moved (issue 14 item 5).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlmodel import Session, col, select

from accounts.duties import DutyPolicy, card, deadline_zh, holders, ref_of, schedule_reminders
from accounts.models import Account, AccountDuty, DutyStatus
from core import audit
from core.messages import Outbound
from core.outbox import enqueue
from core.schedule import CronRegistry
from core.workdays import WorkdayCalendar

JOB = "accounts.retime"


def retime_provisional(session: Session, fire_time: datetime, now: datetime, *,
                       calendar: WorkdayCalendar, policy: DutyPolicy) -> int:
    """Count every open provisional duty again; returns how many changed (a duty whose
    year is still unknown keeps its deadline and its mark)."""
    del fire_time
    stmt = (select(AccountDuty)
            .where(AccountDuty.status == DutyStatus.open, AccountDuty.provisional == True)  # noqa: E712
            .order_by(col(AccountDuty.id)))
    changed = 0
    for duty in session.exec(stmt).all():
        if duty.basis_start is None or duty.basis_amount is None or not duty.basis_unit or duty.due_at is None:
            continue
        deadline = calendar.add(duty.basis_start, duty.basis_amount, duty.basis_unit)
        if deadline.due == duty.due_at and deadline.provisional:
            continue   # nothing learnt yet
        before, old_due = deadline_zh(duty), duty.due_at
        duty.due_at, duty.due_last_day, duty.provisional = deadline.due, deadline.last_day, deadline.provisional
        session.add(duty)
        audit.record(session=session, at=now, entity_type="account_duty", entity_id=duty.id or 0,
                     action="retimed", actor="calendar", before=old_due.isoformat(), due=deadline.due.isoformat(),
                     provisional=deadline.provisional)
        if deadline.due != old_due:
            schedule_reminders(session=session, duty=duty, calendar=calendar, policy=policy, now=now)
            account = session.get(Account, duty.account_id)
            if account is not None:
                text = card(session, duty, now, "【期限调整】原“暂定”的账号事项期限已按新的节假日安排重新计算：")
                lines = text.split("\n")
                lines.insert(2, f"原{before}")
                for person in holders(session, account):
                    enqueue(session=session, message=Outbound("\n".join(lines), person_id=person.id), now=now,
                            event_key=f"{ref_of(duty)}:retimed:{deadline.due.isoformat()}")
        changed += 1
    return changed


def register_retime(scheduler: CronRegistry, *, calendar: WorkdayCalendar, policy: DutyPolicy) -> None:
    """Run :func:`retime_provisional` at start and every 15 minutes."""
    scheduler.register_cron(JOB, partial(retime_provisional, calendar=calendar, policy=policy),
                            run_at_start=True, minute="*/15")
