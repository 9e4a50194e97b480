"""Reply items' side effects: reminders, escalation and the messages people receive.

Every reminder is a due item (``reply.remind``) keyed by the item and the stage, so it
survives restarts and moves when the deadline moves. Stages, in order:

``before``     ``lead_workdays`` working days before the due day, at ``remind_time``
``due``        the morning of the due day, at ``remind_time``
``breach``     at the deadline → the responsible person
``leader``     ``leader_after`` later → the leaders
``principal``  ``principal_after`` later → the principal

Replies are routine: with office hours set (``[calendar] office_hours``), a stage that
falls outside them — a night, a weekend, a public holiday — is delivered at the start of
the next working period, and the leader and principal stages count from the delivered
breach (a deadline at Saturday 24:00 is reminded on Monday at opening time, the leaders
``leader_after`` later).

Closing the item cancels what is left. Every reminder names the rule and its article.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import Session

from core import schedule
from core.clock import SHANGHAI, fmt_short_zh, local
from core.messages import Button, Outbound
from core.numbering import short_form
from core.office_hours import OfficeHours
from core.outbox import enqueue
from core.schedule import DueItem
from core.words_zh import by_when_zh
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from people.service import people_with_role
from replies.models import CATEGORY_ZH, ReplyCategory, ReplyItem
from replies.service import get_item

REMIND_KIND = "reply.remind"
STAGES = ("before", "due", "breach", "leader", "principal")
LEVEL = {"breach": 1, "leader": 2, "principal": 3}
SUMMARY_CHARS = 12


@dataclass(frozen=True)
class ReminderPolicy:
    """When reminders go out (from ``[replies]`` in the config)."""

    lead_workdays: int = 1
    remind_time: time = time(9, 0)
    leader_after: timedelta = timedelta(hours=4)
    principal_after: timedelta = timedelta(hours=24)
    # Reminders outside these wait for the next working period; None: at any hour.
    office_hours: OfficeHours | None = None

    def deliver_at(self, at: datetime) -> datetime:
        """When a reminder due at ``at`` goes out: at once, or when the office opens."""
        return at if self.office_hours is None else self.office_hours.next_open(at)


def ref_of(item: ReplyItem) -> str:
    """The due-item ``ref`` of all of an item's reminders."""
    return f"reply:{item.number}"


def deadline_zh(item: ReplyItem) -> str:
    """``11月26日 24:00``, with 24:00 for a midnight deadline, and 暂定 when provisional."""
    local_due = item.due_at.astimezone(SHANGHAI)
    text = (f"{item.due_last_day.month}月{item.due_last_day.day}日 24:00"
            if local_due.hour == 0 and local_due.minute == 0 and local_due.date() != item.due_last_day
            else fmt_short_zh(item.due_at))
    return text + ("（暂定）" if item.provisional else "")


def card(item: ReplyItem, *, now: datetime | None = None, head: str = "", action: str | None = None) -> str:
    """The card every message about an item carries, short on a phone: WHAT (``head``, id,
    category, the summary's start), BY WHEN (``截止：今天 24:00 前（还剩5小时）``) and WHAT TO
    PRESS (``action``, else how to record the answer) first; then the summary and the rule."""
    what = f"{item.number}｜{CATEGORY_ZH[ReplyCategory(item.category)]}｜{item.summary[:SUMMARY_CHARS]}"
    first = f"{head}{'' if not head or head.endswith('】') else '：'}{what}"
    if now is not None and item.is_open:
        when = f"截止：{by_when_zh(item.due_at, now)}" + ("（暂定）" if item.provisional else "")
    else:
        when = f"截止：{deadline_zh(item)}"
    ref = short_form(item.number, local(now).date()) if now is not None else item.number
    press = action or (f"答复后回复“答复 答复摘要”或发送 /reply done {ref} 答复摘要" if item.is_open
                       else f"查看：/reply show {ref}")
    return f"{first}\n{when}\n{press}\n摘要：{item.summary[:80]}\n{item.citation}"


def stage_times(*, item: ReplyItem, calendar: WorkdayCalendar,
                policy: ReminderPolicy) -> dict[str, datetime]:
    """When each reminder stage of ``item`` falls due."""
    def at_morning(day: date) -> datetime:
        return datetime.combine(day, policy.remind_time, tzinfo=SHANGHAI)

    times: dict[str, datetime] = {}
    if policy.lead_workdays > 0:
        day, left = item.due_last_day, policy.lead_workdays
        for _ in range(60):
            day -= timedelta(days=1)
            if calendar.is_workday(day):
                left -= 1
                if left == 0:
                    break
        times["before"] = at_morning(day)
    times["due"] = at_morning(item.due_last_day)
    breach = policy.deliver_at(item.due_at)
    times["breach"] = breach
    times["leader"] = breach + policy.leader_after
    times["principal"] = breach + policy.principal_after
    return {stage: policy.deliver_at(at) for stage, at in times.items()}


def schedule_reminders(*, session: Session, item: ReplyItem, calendar: WorkdayCalendar,
                       policy: ReminderPolicy, now: datetime) -> None:
    """(Re)schedule every stage; stages already past before the deadline are dropped,
    escalations already past fire at once."""
    for stage, at in stage_times(item=item, calendar=calendar, policy=policy).items():
        key = f"{ref_of(item)}:{stage}"
        if stage in ("before", "due") and (at <= now or at >= item.due_at):
            schedule.cancel(session=session, key=key)
            continue
        if stage not in LEVEL or LEVEL[stage] > item.escalation_level:
            schedule.schedule(session=session, key=key, kind=REMIND_KIND, ref=ref_of(item),
                              due_at=policy.deliver_at(max(at, now)), now=now,
                              payload={"stage": stage, "due": item.due_at.isoformat()})


def cancel_reminders(*, session: Session, item: ReplyItem) -> int:
    """Cancel what is left (the item was answered or explained)."""
    return schedule.cancel_for(session=session, ref=ref_of(item))


def responsible(session: Session, item: ReplyItem) -> list[Person]:
    """The assignee, else whoever logged the item, else the admins."""
    for pid in (item.assignee_id, item.created_by_id):
        if pid is not None:
            person = session.get(Person, pid)
            if person is not None and person.active:
                return [person]
    return people_with_role(session=session, role=Role.admin)


def rung(session: Session, item: ReplyItem, role: Role) -> list[Person]:
    """People with ``role``, those of the item's unit first (all of them if none is)."""
    people = people_with_role(session=session, role=role)
    same_unit = [p for p in people if item.unit and p.unit == item.unit]
    return same_unit or people


def notify(session: Session, people: list[Person], text: str, *, event: str, now: datetime,
           buttons: tuple[Button, ...] = (), card: str | None = None) -> int:
    """Queue ``text`` for each person (in the caller's transaction); ``card`` makes it
    replace the person's earlier message with the same card key where the platform can."""
    for person in people:
        enqueue(session=session, message=Outbound(text, person_id=person.id, buttons=buttons,
                                                  card_key=card), now=now, event_key=event)
    return len(people)


def extension_card(item: ReplyItem) -> str:
    """The card key of an item's extension request (the approver's buttons)."""
    return f"{ref_of(item)}:extension"


def process_reminder(session: Session, due: DueItem, now: datetime) -> None:
    """The ``reply.remind`` processor."""
    stage = due.data()["stage"]
    item = get_item(session=session, number=due.ref.removeprefix("reply:"))
    if not item.is_open:
        return
    event = f"{ref_of(item)}:{stage}:{item.due_at.isoformat()}"
    holder = responsible(session, item)
    holder_names = "、".join(p.name for p in holder) or "未指定"
    ref = short_form(item.number, local(now).date())
    if stage == "before":
        notify(session, holder, card(item, now=now, head="【答复提醒】即将到期"), event=event, now=now)
    elif stage == "due":
        notify(session, holder, card(item, now=now, head="【答复提醒】今天到期"), event=event, now=now)
    elif stage == "breach":
        notify(session, holder, card(item, now=now, head="【已超期】已过答复期限，请立即处理"), event=event, now=now)
    elif stage == "leader":
        notify(session, rung(session, item, Role.leader),
               card(item, now=now, head=f"【超期升级·带班领导】留言超期未答复，负责人：{holder_names}",
                    action=f"请督促办理；如需改派：/reply assign {ref} 姓名"), event=event, now=now)
    elif stage == "principal":
        notify(session, rung(session, item, Role.principal),
               card(item, now=now, head=f"【超期升级·主要负责人】留言超期仍未答复，负责人：{holder_names}",
                    action=f"请督促办理；如需改派：/reply assign {ref} 姓名"), event=event, now=now)
    item.escalation_level = max(item.escalation_level, LEVEL.get(stage, 0))
    session.add(item)
