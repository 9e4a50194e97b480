"""The checks' side effects in the scheduler: the ``checks.remind`` processor and the jobs.

:func:`register_checks` hands the scheduler:

- ``checks.remind`` — the reminder ladder of rectification items (``rectify:N``) and annual
  report duties (``annual:N``), see :mod:`checks.reminders`; a stage of a duty already
  done sends nothing;
- ``checks.plan_round`` — where the profile states a check interval (CHECK-1: 梁平办法第二十九条,
  古丈办法第二十一条), the daily job that creates the current period's round over every
  unit when it does not exist yet (:func:`plan_current_round`);
- ``checks.annual_reports`` — where the profile states the annual report (古丈办法第十五条),
  the daily job that creates the year's duties (:mod:`checks.annual`);
- ``checks.training_remind`` — where it states the annual training (宝鸡办法第二十六条,
  江川制度第二十七条), the reminder when none is recorded late in the year
  (:mod:`checks.training`).

Every reminder names the rule and its article; a value that is the office's practice (the
rectification period, the reminder dates) says so.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from sqlmodel import Session

from checks import annual as annual_duties
from checks.indicators import Sheet, load_sheet
from checks.models import AnnualReport, CheckRound, ItemStatus, Rectification
from checks.reminders import REMIND_KIND
from checks.rounds import basis_zh, plan_round, rectify_ref
from checks.service import DONE_HINT, CheckPolicy, admins, check_interval, holders
from checks.training import register_training
from core.errors import InputError
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import CronRegistry, DueItem
from core.words_zh import by_when_zh
from people.models import Person

log = logging.getLogger(__name__)

PLAN_JOB = "checks.plan_round"
MAX_UNITS = 10
UNIT_HEADS = {"before": "【整改提醒】即将到期", "due": "【整改提醒】今天到期",
              "overdue": "【整改超期】已过整改期限，请尽快整改并登记"}
ANNUAL_HEADS = {"notice": "【年度工作报表】", "before": "【年度工作报表】即将到期：",
                "due": "【年度工作报表】今天到期：", "overdue": "【年度工作报表·已超期】"}


def _send(session: Session, people: list[Person], text: str, *, event: str, now: datetime,
          skip: set[int | None] | None = None) -> set[int | None]:
    sent = set()
    for person in people:
        if skip and person.id in skip:
            continue
        enqueue(session=session, message=Outbound(text, person_id=person.id), now=now, event_key=event)
        sent.add(person.id)
    return sent


def rectify_card(item: Rectification, round_: CheckRound | None, *, now: datetime, head: str, action: str) -> str:
    """A reminder about a rectification item: what, by when, what to do, and on what basis."""
    when = by_when_zh(item.due_at, now) + ("（暂定）" if item.provisional else "")
    basis = item.due_basis + (f"；{basis_zh(round_)}" if round_ is not None else "")
    return (f"{head}：编号 {item.id}｜{item.unit}｜{item.code} {item.what}\n截止：{when}\n{action}\n{basis}")


def _remind_rectification(session: Session, item: Rectification, stage: str, now: datetime) -> None:
    round_ = session.get(CheckRound, item.round_id)
    event = f"{rectify_ref(item)}:{stage}:{item.due_at.isoformat()}"
    unit_people = holders(session=session, unit=item.unit)
    told = _send(session, unit_people, rectify_card(item, round_, now=now, head=UNIT_HEADS[stage], action=DONE_HINT),
                 event=event, now=now)
    if stage == "overdue":
        text = rectify_card(item, round_, now=now, head=f"【整改超期·上报】{item.unit} 整改事项超期未办结",
                            action="请督促整改；查看：dutybot checks items --open")
        _send(session, admins(session=session), text, event=event, now=now, skip=told)


def _remind_annual(session: Session, row: AnnualReport, stage: str, now: datetime) -> None:
    event = f"{annual_duties.annual_ref(row)}:{stage}"
    ask = annual_duties.ask(row)
    when = f"截止：{by_when_zh(row.due_at, now)}"
    text = f"{ANNUAL_HEADS[stage]}{row.unit}：{ask}。\n{when}\n{annual_duties.DONE_HINT}"
    told = _send(session, holders(session=session, unit=row.unit), text, event=event, now=now)
    if stage == "overdue":
        text = (f"【年度工作报表·超期上报】{row.unit} 尚未登记公开{row.year}年度{annual_duties.WHAT}"
                f"（依据：{row.citation}）。\n{when}\n请督促公开；查看：dutybot checks annual")
        _send(session, admins(session=session), text, event=event, now=now, skip=told)


def process_reminder(session: Session, due: DueItem, now: datetime) -> None:
    """The ``checks.remind`` processor."""
    stage = str(due.data().get("stage", ""))
    kind, _, number = due.ref.partition(":")
    if not number.isdigit():
        return
    if kind == "rectify":
        item = session.get(Rectification, int(number))
        if item is not None and item.status == ItemStatus.open and stage in UNIT_HEADS:
            _remind_rectification(session, item, stage, now)
    elif kind == "annual":
        row = session.get(AnnualReport, int(number))
        if row is not None and row.status == ItemStatus.open and stage in ANNUAL_HEADS:
            _remind_annual(session, row, stage, now)


def plan_current_round(session: Session, fire_time: datetime, now: datetime, *, profile: Profile,
                       policy: CheckPolicy, sheet: Sheet) -> int:
    """The daily job at the office's opening time: where the profile states a check interval
    (CHECK-1), on a working day inside office hours, create the current period's round if it
    does not exist yet and tell the admins (the district office records each unit's result).

    Returns:
        1 when a round was created now, else 0 (no interval, closed, already planned, or no
        unit registered yet).
    """
    del fire_time
    if check_interval(profile) is None or not policy.is_open(now):
        return 0
    try:
        planned = plan_round(session=session, profile=profile, sheet=sheet, now=now, actor="系统（定期检查）")
    except InputError:
        return 0   # no unit has sites or people yet: nothing to check
    if not planned.created:
        return 0
    round_ = planned.round
    units = "、".join(planned.units[:MAX_UNITS]) + ("等" if len(planned.units) > MAX_UNITS else "")
    text = (f"【定期检查】已建立{round_.title}，检查单位 {len(planned.units)} 个：{units}。\n"
            f"{basis_zh(round_)}\n在管理端登记各单位结果：dutybot checks record 单位（条目编号的写法见 "
            "dutybot checks record -h）；通报：dutybot checks report")
    _send(session, admins(session=session), text, event=f"checks:round:{round_.id}", now=now)
    log.info("check round %s planned for %d unit(s)", round_.id, len(planned.units))
    return 1


def register_checks(scheduler: CronRegistry, *, profile: Profile, policy: CheckPolicy,
                    sheet: Sheet | None = None) -> None:
    """Register the reminder processor, the job that plans each period's round where the
    profile states a check interval, and the annual-report and training jobs where it
    states them.

    Raises:
        ValueError: something is already registered under one of the names.
        SheetError: no ``sheet`` given and the shipped score sheet is unreadable.
    """
    scheduler.register(REMIND_KIND, process_reminder)
    if check_interval(profile) is not None:
        job = partial(plan_current_round, profile=profile, policy=policy, sheet=sheet or load_sheet())
        scheduler.register_cron(PLAN_JOB, job, hour=policy.remind_time.hour, minute=policy.remind_time.minute)
    annual_duties.register_annual(scheduler, profile=profile, policy=policy)
    register_training(scheduler, profile=profile, policy=policy)
