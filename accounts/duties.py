"""Account duties: what an account's unit must do, by when, and who is reminded.

A duty (:class:`~accounts.models.AccountDuty`) names the rule and its citation (the
office's own article, or ``参照《…》第…条``). Where the article sets a time limit the duty
has a deadline and a reminder ladder of due items (``account.remind``), keyed by the duty
and the stage so that a restart loses nothing:

``before``   ``lead_workdays`` working days before the last day, at ``remind_time``
``due``      the morning of the last day
``breach``   at the deadline → the holders and the admins
``leader``   ``leader_after`` later → the leaders (带班领导) of the account's unit

Where the article names no time limit (及时) the duty has no deadline and is listed in the
daily briefing until done; no date is invented. Duties are routine: with office hours set,
a reminder falling at night or on a rest day goes out when the office opens.

A duty may carry ``not_before`` (a closure cannot be completed before its public notice
has run its term): completing it earlier is refused with the day it becomes possible.

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from accounts.models import Account, AccountDuty, DutyStatus
from core import audit, schedule
from core.clock import SHANGHAI, fmt_date_zh, local
from core.errors import InputError, NotFound
from core.messages import Outbound
from core.office_hours import OfficeHours
from core.outbox import enqueue
from core.schedule import CronRegistry, DueItem
from core.words_zh import by_when_zh
from core.workdays import Deadline, WorkdayCalendar
from people.models import Person, Role
from people.service import people_with_role
from roster.models import Site

log = logging.getLogger(__name__)

REMIND_KIND = "account.remind"
STAGES = ("before", "due", "breach", "leader")
DONE_HINT = "办结后发送 /account done 编号 [备注或备案编号]"
NO_DEADLINE = "条款未规定时限，请及时办理"
#: Overdue longer than this, a deadline is shown by its date and the days past.
LONG_OVERDUE = timedelta(days=30)

#: What each kind of duty is called in a list.
KIND_ZH = {
    "filing": "备案", "notice": "公告", "close": "关停办结", "cancel": "注销办结",
    "explain": "说明理由", "backfill": "补办备案", "place_name": "名称使用同意",
    "cadence": "更新频次", "original": "原创发布", "offline": "申请永久下线",
    "change": "变更办结", "comments": "开启互动功能",
}


class DutyNotFound(NotFound):
    """No account duty has this number."""

    def __init__(self, duty_id: int) -> None:
        super().__init__(f"找不到账号事项 {duty_id}。可用 /account duties 查看待办事项。")
        self.duty_id = duty_id


@dataclass(frozen=True)
class DutyPolicy:
    """When duty reminders go out (``[accounts]`` in the config)."""

    lead_workdays: int = 2
    remind_time: time = time(9, 0)
    leader_after: timedelta = timedelta(days=1)
    # Reminders outside these wait for the next working period; None: at any hour.
    office_hours: OfficeHours | None = None

    def deliver_at(self, at: datetime) -> datetime:
        """When a reminder due at ``at`` goes out: at once, or when the office opens."""
        return at if self.office_hours is None else self.office_hours.next_open(at)


def ref_of(duty: AccountDuty) -> str:
    """The due-item ``ref`` of all of a duty's reminders."""
    return f"account-duty:{duty.id}"


def site_of(session: Session, account: Account) -> Site:
    """The account's row in the reading register."""
    site = session.get(Site, account.site_id)
    if site is None:  # the foreign key forbids it; a broken database is not the user's fault
        raise NotFound(f"账号 {account.id} 缺少对应的读网登记")
    return site


def account_name(session: Session, account: Account) -> str:
    """``梁平发布（微信公众号）``-style label: the site's name."""
    return site_of(session, account).name


def unit_of(session: Session, account: Account) -> str:
    """The owner unit (主办单位), else the unit of its site row."""
    return account.owner_unit or site_of(session, account).unit


def holders(session: Session, account: Account) -> list[Person]:
    """Who does the account's duties: its operator when registered and active, else the
    admins of its unit (all admins if its unit has none)."""
    if account.operator_id is not None:
        person = session.get(Person, account.operator_id)
        if person is not None and person.active:
            return [person]
    return _of_unit(session, unit_of(session, account), Role.admin)


def _of_unit(session: Session, unit: str, role: Role) -> list[Person]:
    people = people_with_role(session=session, role=role)
    same = [p for p in people if unit and p.unit == unit]
    return same or people


def deadline_zh(duty: AccountDuty, now: datetime | None = None) -> str:
    """``截止：12月15日 24:00 前（还剩3天）`` / ``截止：2026年12月15日（星期二）24:00（暂定）`` / 条款未规定时限."""
    if duty.due_at is None:
        return NO_DEADLINE
    last = duty.due_last_day or local(duty.due_at).date()
    if now is not None and duty.status == DutyStatus.open and now - duty.due_at > LONG_OVERDUE:
        # Long past (a 补办备案 due in 2019): the date and the days, not "2593天13小时".
        text = f"截止：{fmt_date_zh(last)}24:00（已超期{(now - duty.due_at).days}天）"
    elif now is not None and duty.status == DutyStatus.open:
        text = "截止：" + by_when_zh(duty.due_at, now)
    else:
        text = f"截止：{fmt_date_zh(last)}24:00"
    return text + ("（暂定：该年度节假日安排尚未发布）" if duty.provisional else "")


def line(session: Session, duty: AccountDuty, now: datetime) -> str:
    """``编号 3｜梁平发布｜备案：…｜截止：…｜依据：…`` on one line."""
    account = session.get(Account, duty.account_id)
    name = account_name(session, account) if account is not None else f"账号{duty.account_id}"
    after = ""
    if duty.not_before is not None and duty.not_before > now:
        after = f"｜{fmt_date_zh(local(duty.not_before).date())}起可办结"
    return f"编号 {duty.id}｜{name}｜{duty.title}｜{deadline_zh(duty, now)}{after}｜依据：{duty.citation}"


def card(session: Session, duty: AccountDuty, now: datetime, head: str) -> str:
    """The message about one duty: what, by when, what to press, why."""
    account = session.get(Account, duty.account_id)
    name = account_name(session, account) if account is not None else f"账号{duty.account_id}"
    lines = [f"{head}{name}：{duty.title}", deadline_zh(duty, now)]
    if duty.not_before is not None and duty.not_before > now:
        lines.append(f"公告期满前不能办结：{fmt_date_zh(local(duty.not_before).date())}起可办结")
    lines += [f"编号 {duty.id}，{DONE_HINT}", f"依据：{duty.citation}"]
    return "\n".join(lines)


def _notify(session: Session, people: Sequence[Person], text: str, *, event: str, now: datetime) -> int:
    for person in people:
        enqueue(session=session, message=Outbound(text, person_id=person.id), now=now, event_key=event)
    return len(people)


def find_open(*, session: Session, account_id: int, kind: str, request_id: int | None = None) -> AccountDuty | None:
    """The open duty of this kind (for this request) on the account, if any."""
    query = select(AccountDuty).where(AccountDuty.account_id == account_id, AccountDuty.kind == kind,
                                      AccountDuty.status == DutyStatus.open)
    query = query.where(col(AccountDuty.request_id).is_(None) if request_id is None
                        else AccountDuty.request_id == request_id)
    return session.exec(query).first()


def open_duty(*, session: Session, account: Account, kind: str, rule_id: str, citation: str, title: str,
              now: datetime, actor: str, calendar: WorkdayCalendar, policy: DutyPolicy,
              deadline: Deadline | None = None, request_id: int | None = None,
              not_before: datetime | None = None, announce: bool = True) -> AccountDuty:
    """Open a duty (or return the open one of the same kind and request: never twice),
    schedule its reminders and, with ``announce``, tell its holders at once.

    Args:
        deadline: from the article's time limit; None where the article sets none.
        not_before: the earliest moment it may be completed (a notice period's end).
    """
    assert account.id is not None
    existing = find_open(session=session, account_id=account.id, kind=kind, request_id=request_id)
    if existing is not None:
        return existing
    duty = AccountDuty(account_id=account.id, request_id=request_id, kind=kind, rule_id=rule_id,
                       citation=citation[:200], title=title[:200], opened_at=now, not_before=not_before,
                       due_at=deadline.due if deadline else None,
                       due_last_day=deadline.last_day if deadline else None,
                       provisional=bool(deadline and deadline.provisional),
                       basis_start=deadline.start if deadline else None,
                       basis_amount=deadline.amount if deadline else None,
                       basis_unit=deadline.kind if deadline else "")
    session.add(duty)
    session.flush()
    audit.record(session=session, at=now, entity_type="account_duty", entity_id=duty.id or 0, action="opened",
                 actor=actor, to_state=DutyStatus.open,
                 zh=f"账号事项：{account_name(session, account)} {title}（{deadline_zh(duty)}；依据：{citation}）",
                 account_id=account.id, kind=kind, rule=rule_id)
    schedule_reminders(session=session, duty=duty, calendar=calendar, policy=policy, now=now)
    if announce:
        _notify(session, holders(session, account), card(session, duty, now, "【账号事项】"),
                event=f"{ref_of(duty)}:opened", now=now)
    return duty


def stage_times(*, duty: AccountDuty, calendar: WorkdayCalendar, policy: DutyPolicy) -> dict[str, datetime]:
    """When each reminder stage of a duty with a deadline falls due."""
    assert duty.due_at is not None
    last = duty.due_last_day or local(duty.due_at).date()

    def morning(day: date) -> datetime:
        return datetime.combine(day, policy.remind_time, tzinfo=SHANGHAI)

    times: dict[str, datetime] = {}
    if policy.lead_workdays > 0:
        day, left = last, policy.lead_workdays
        for _ in range(60):
            day -= timedelta(days=1)
            if calendar.is_workday(day):
                left -= 1
                if left == 0:
                    break
        times["before"] = morning(day)
    times["due"] = morning(last)
    breach = policy.deliver_at(duty.due_at)
    times["breach"] = breach
    times["leader"] = breach + policy.leader_after
    return {stage: policy.deliver_at(at) for stage, at in times.items()}


def schedule_reminders(*, session: Session, duty: AccountDuty, calendar: WorkdayCalendar, policy: DutyPolicy,
                       now: datetime) -> None:
    """(Re)schedule the ladder of a duty with a deadline; reminders before the deadline
    that are already past are dropped, escalations already past fire at once."""
    if duty.due_at is None:
        return
    for stage, at in stage_times(duty=duty, calendar=calendar, policy=policy).items():
        key = f"{ref_of(duty)}:{stage}"
        if stage in ("before", "due") and (at <= now or at >= duty.due_at):
            schedule.cancel(session=session, key=key)
            continue
        schedule.schedule(session=session, key=key, kind=REMIND_KIND, ref=ref_of(duty),
                          due_at=policy.deliver_at(max(at, now)), now=now,
                          payload={"stage": stage, "due": duty.due_at.isoformat()})


def get_duty(*, session: Session, duty_id: int) -> AccountDuty:
    """The duty numbered ``duty_id``.

    Raises:
        DutyNotFound: no such duty.
    """
    duty = session.get(AccountDuty, duty_id)
    if duty is None:
        raise DutyNotFound(duty_id)
    return duty


def complete(*, session: Session, duty_id: int, now: datetime, actor: str, reference: str = "") -> AccountDuty:
    """Mark a duty done (with the 备案编号 or a note in ``reference``).

    Raises:
        DutyNotFound: no such duty.
        InputError: already done or cancelled; or its notice period has not run its term.
    """
    duty = get_duty(session=session, duty_id=duty_id)
    if duty.status != DutyStatus.open:
        when = f"于 {local(duty.done_at):%Y-%m-%d %H:%M} " if duty.done_at else ""
        state = "办结" if duty.status == DutyStatus.done else "撤销"
        raise InputError(f"账号事项 {duty_id} 已{when}{state}（{duty.done_by or '系统'}）。")
    if duty.not_before is not None and now < duty.not_before:
        raise InputError(f"账号事项 {duty_id}（{duty.title}）尚不能办结：公告期未满，"
                         f"最早 {fmt_date_zh(local(duty.not_before).date())} 起可办结（依据：{duty.citation}）。")
    duty.status, duty.done_at, duty.done_by = DutyStatus.done, now, actor[:100]
    duty.reference = reference.strip()[:200]
    session.add(duty)
    schedule.cancel_for(session=session, ref=ref_of(duty))
    audit.record(session=session, at=now, entity_type="account_duty", entity_id=duty_id, action="done",
                 actor=actor, from_state=DutyStatus.open, to_state=DutyStatus.done,
                 zh=f"账号事项办结：{duty.title}" + (f"（{duty.reference}）" if duty.reference else ""))
    return duty


def cancel(*, session: Session, duty: AccountDuty, now: datetime, actor: str, why: str) -> None:
    """Withdraw an open duty (its request was withdrawn or rejected; the account is gone)."""
    if duty.status != DutyStatus.open:
        return
    duty.status, duty.done_at, duty.done_by, duty.reference = DutyStatus.cancelled, now, actor[:100], why[:200]
    session.add(duty)
    schedule.cancel_for(session=session, ref=ref_of(duty))
    audit.record(session=session, at=now, entity_type="account_duty", entity_id=duty.id or 0, action="cancelled",
                 actor=actor, from_state=DutyStatus.open, to_state=DutyStatus.cancelled,
                 zh=f"账号事项撤销：{duty.title}（{why}）")


def open_duties(*, session: Session, account_id: int | None = None, unit: str | None = None) -> list[AccountDuty]:
    """Open duties, those with the nearest deadline first and those without one last;
    of one account, or of the accounts of one unit."""
    query = select(AccountDuty).where(AccountDuty.status == DutyStatus.open)
    if account_id is not None:
        query = query.where(AccountDuty.account_id == account_id)
    rows = list(session.exec(query.order_by(col(AccountDuty.id))))
    if unit is not None:
        rows = [d for d in rows if (a := session.get(Account, d.account_id)) is not None
                and unit_of(session, a) == unit]
    far = datetime.max.replace(tzinfo=SHANGHAI)
    return sorted(rows, key=lambda d: (d.due_at or far, d.id or 0))


def process_reminder(session: Session, due: DueItem, now: datetime) -> None:
    """The ``account.remind`` processor."""
    stage = due.data()["stage"]
    duty = session.get(AccountDuty, int(due.ref.removeprefix("account-duty:")))
    if duty is None or duty.status != DutyStatus.open:
        return
    account = session.get(Account, duty.account_id)
    if account is None:
        return
    event = f"{ref_of(duty)}:{stage}:{duty.due_at.isoformat() if duty.due_at else ''}"
    people = holders(session, account)
    names = "、".join(p.name for p in people) or "未指定"
    if stage == "before":
        _notify(session, people, card(session, duty, now, "【账号事项提醒】即将到期："), event=event, now=now)
    elif stage == "due":
        _notify(session, people, card(session, duty, now, "【账号事项提醒】今天到期："), event=event, now=now)
    elif stage == "breach":
        admins = [p for p in _of_unit(session, unit_of(session, account), Role.admin) if p not in people]
        _notify(session, [*people, *admins], card(session, duty, now, "【账号事项已超期】"), event=event, now=now)
    elif stage == "leader":
        _notify(session, _of_unit(session, unit_of(session, account), Role.leader),
                card(session, duty, now, f"【账号事项超期·带班领导】负责人：{names}；"), event=event, now=now)
    log.info("account duty %s: %s reminder", duty.id, stage)


def register_duty_reminders(scheduler: CronRegistry) -> None:
    """Hand the ``account.remind`` processor to the scheduler (the ladder's times were
    fixed when each duty was scheduled)."""
    scheduler.register(REMIND_KIND, process_reminder)
