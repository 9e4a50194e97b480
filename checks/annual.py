"""The annual report (CHECK-1.annual_report_by): 古丈办法第十五条 各镇人民政府、县直相关单位要
在县政府网站按时编制上一年度政府网站年度工作报表，于每年1月31日前向社会公开.

Only where the profile states it as a standing duty (:func:`checks.service.annual_report_by`):
from 1 January until the due day a daily job makes sure every unit (with sites or people)
has its duty for the previous year, due at the end of the stated day. The duty is created
with its reminder ladder (:mod:`checks.reminders`): a notice when the office opens, a
reminder before and on the due day, and an escalation to the admins once it has passed. A
unit marks it done with the address where the report is published. A deployment that starts
after the due day does not invent that year's overdue duties.

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

import calendar as _cal
import logging
import re
from datetime import date, datetime, timedelta
from functools import partial

from sqlmodel import Session

from checks.models import ITEM_STATUS_ZH, AnnualReport, ItemStatus
from checks.reminders import cancel_ladder, schedule_ladder
from checks.service import (
    CheckPolicy,
    admins,
    annual_report_by,
    annual_reports,
    units_of,
)
from core import audit
from core.clock import SHANGHAI, fmt_date_zh, local, local_midnight
from core.errors import InputError, NotFound, PermissionDenied
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile, RuleValue
from core.schedule import CronRegistry
from people.models import Person, Role

log = logging.getLogger(__name__)

CREATE_JOB = "checks.annual_reports"
WHAT = "政府网站年度工作报表"
DONE_HINT = "公开后发送 /check annual 网址（或 dutybot checks annual done 单位 网址）"
_URL = re.compile(r"^https?://\S{1,990}$")


def annual_ref(row: AnnualReport) -> str:
    """The due-item ``ref`` of a duty's reminders."""
    return f"annual:{row.id}"


def due_day(value: RuleValue, year: int) -> date:
    """The stated month-day (``01-31``) in ``year`` (29 February → 28 in other years)."""
    assert value.quantity.month_day is not None
    month, day = map(int, value.quantity.month_day.split("-"))
    return date(year, month, min(day, _cal.monthrange(year, month)[1]))


def due_zh(row: AnnualReport) -> str:
    """``2027年1月31日（星期日）24:00``."""
    at = local(row.due_at)
    return f"{fmt_date_zh(row.due_on)}{'24:00' if at.date() != row.due_on else f'{at:%H:%M}'}"


def line(row: AnnualReport) -> str:
    """``2026年度｜区教育局｜截止 2027年1月31日（星期日）24:00｜待公开`` (or the address)."""
    state = (f"已公开 {row.url}" if row.status == ItemStatus.done
             else ITEM_STATUS_ZH[ItemStatus.open].replace("整改", "公开"))
    return f"{row.year}年度｜{row.unit}｜截止 {due_zh(row)}｜{state}"


def ask(row: AnnualReport) -> str:
    """``请于 2027年1月31日（星期日）24:00 前向社会公开2026年度政府网站年度工作报表（依据：古丈办法第十五条）``."""
    return f"请于 {due_zh(row)} 前向社会公开{row.year}年度{WHAT}（依据：{row.citation}）"


def ensure_reports(*, session: Session, profile: Profile, policy: CheckPolicy, now: datetime) -> list[AnnualReport]:
    """Create the missing duties of this year's report period (from 1 January to the due day).

    Returns:
        The duties created ([] where the profile states no annual report, outside the
        period, or when every unit has its duty).
    """
    value = annual_report_by(profile)
    if value is None:
        return []
    today = local(now).date()
    due_on = due_day(value, today.year)
    if today > due_on:
        return []
    year = today.year - 1
    have = {r.unit for r in annual_reports(session=session, year=year)}
    cutoff = policy.calendar.cutoff
    due_at = (local_midnight(due_on + timedelta(days=1)) if cutoff is None
              else datetime.combine(due_on, cutoff, tzinfo=SHANGHAI))
    created = []
    for unit in units_of(session=session):
        if unit in have:
            continue
        row = AnnualReport(year=year, unit=unit, due_on=due_on, due_at=due_at, citation=value.citation[:200],
                           created_at=now)
        session.add(row)
        session.flush()
        assert row.id is not None
        schedule_ladder(session=session, ref=annual_ref(row), last_day=due_on, due_at=due_at, policy=policy,
                        now=now, notice=True)
        audit.record(session=session, at=now, entity_type="annual_report", entity_id=row.id, action="opened",
                     to_state=ItemStatus.open, zh=f"{year}年度{WHAT}待公开：{unit}，{value.quantity.zh()}",
                     citation=value.citation)
        created.append(row)
    return created


def _find(session: Session, unit: str, year: int | None) -> AnnualReport:
    rows = annual_reports(session=session, year=year, unit=unit)
    if not rows:
        raise NotFound(f"{unit} 没有{f'{year}年度的' if year else ''}年度工作报表事项。可用 dutybot checks annual 查看。")
    return next((r for r in rows if r.status == ItemStatus.open), rows[0])


def mark_published(*, session: Session, unit: str, url: str, now: datetime, actor: str,
                   year: int | None = None, person: Person | None = None) -> AnnualReport:
    """``unit`` published its report at ``url``: close the duty, cancel its reminders, tell
    the admins.

    Raises:
        NotFound: the unit has no such duty.
        PermissionDenied: ``person`` is of another unit and not an admin.
        InputError: not an http(s) address, or already published.
    """
    url = url.strip()
    if not _URL.match(url):
        raise InputError("请给出公开年度工作报表的网址（以 http:// 或 https:// 开头）。")
    row = _find(session, unit, year)
    if person is not None and person.unit != row.unit and Role.admin not in person.role_set():
        raise PermissionDenied(f"只能登记本单位的年度工作报表（此事项属于{row.unit}）。")
    if row.status == ItemStatus.done:
        raise InputError(f"{row.unit} 的{row.year}年度{WHAT}已登记公开：{row.url}")
    row.status, row.url, row.done_by, row.done_at = ItemStatus.done, url, actor[:100], now
    session.add(row)
    cancel_ladder(session=session, ref=annual_ref(row))
    audit.record(session=session, at=now, entity_type="annual_report", entity_id=row.id or 0, action="published",
                 actor=actor, from_state=ItemStatus.open, to_state=ItemStatus.done,
                 zh=f"{row.unit} 已公开{row.year}年度{WHAT}：{url}", url=url)
    text = f"【年度工作报表】{row.unit} 已登记公开{row.year}年度{WHAT}：{url}（登记人：{audit.actor_zh(actor)}）"
    for admin in admins(session=session):
        if person is None or admin.id != person.id:
            enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now,
                    event_key=f"checks:annual:{row.id}:done")
    return row


def create_reports(session: Session, fire_time: datetime, now: datetime, *, profile: Profile,
                   policy: CheckPolicy) -> None:
    """The daily job (00:05, and at start): the duties of this year's report period."""
    created = ensure_reports(session=session, profile=profile, policy=policy, now=now)
    if created:
        log.info("annual report duties created for %d unit(s), year %d", len(created), created[0].year)


def register_annual(scheduler: CronRegistry, *, profile: Profile, policy: CheckPolicy) -> None:
    """Register the daily job, only where the profile states the annual report.

    Raises:
        ValueError: the job is already registered.
    """
    if annual_report_by(profile) is None:
        return
    job = partial(create_reports, profile=profile, policy=policy)
    scheduler.register_cron(CREATE_JOB, job, run_at_start=True, hour=0, minute=5)
