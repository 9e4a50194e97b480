"""Incidents in the daily briefing (早报) and the weekly summary (周报).

``briefing.service`` finds this module through ``DOMAIN_MODULES`` and runs :data:`DAILY`
and :data:`WEEKLY` before its own providers (see ``briefing.models`` for the shapes). It
sits in the briefing layer, which reads incidents (incidents know nothing of briefings).

Daily, most urgent first, each open incident in exactly one of the first three:

1. incidents with a required pending step past its deadline, the longest overdue first
   (optional steps are reminded, never escalated: past their deadline they are not
   overdue);
2. incidents nobody has acknowledged yet (status 待确认), the longest waiting first;
3. every other open incident, by its next deadline;
4. yesterday's (Asia/Shanghai) new and ended incidents: counts, 重大/特级 ones listed.

Weekly: the figures of :func:`briefing.sections.week_before`'s seven days.

Cost: a bounded number of queries per provider, each starting from an index. Open
incidents come from ``ix_incident_status_reported`` (``status IN (…)``, and a date
range on ``reported_at`` where there is one: the status list is spelled out so the
index serves it), their steps through ``incident_step.incident_id``. What happened on a
day or in a week (ended, acknowledged, resolved, steps done) is found through the audit
log's ``at`` index, then incidents by their unique number: ``incident`` has no index on
those times. Lists fetch only the first ``max_lines`` rows, next to a count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.orm import Mapped, aliased
from sqlmodel import Session, col, select

from briefing.models import BriefingConfig, Section, SectionProvider, Urgency
from briefing.sections import week_before
from core.audit import AuditEvent
from core.clock import fmt_duration_zh, fmt_short_zh, local, local_midnight, median_duration
from core.db import select_row
from core.workdays import WorkdayCalendar
from incidents.models import (
    GRADE_ZH,
    OPEN_STATUSES,
    STATUS_ZH,
    TYPE_ZH,
    Grade,
    Incident,
    IncidentStatus,
    IncidentStep,
    IncidentType,
    StepStatus,
)
from incidents.service import next_step, step_due_zh

__all__ = ["DAILY", "WEEKLY", "duration_zh", "open_incidents", "overdue_incidents",
           "unacknowledged_incidents", "weekly_incidents", "yesterday_incidents"]

_OPEN = [s.value for s in OPEN_STATUSES]
_ALL = [s.value for s in IncidentStatus]
_IN_PROGRESS = [s.value for s in OPEN_STATUSES if s != IncidentStatus.reported]
_NOTABLE = [Grade.major.value, Grade.special.value]
# Audit actions (incidents.service.record) that end an incident; each is also the status.
_ENDED_ACTIONS = (IncidentStatus.closed.value, IncidentStatus.cancelled.value,
                  IncidentStatus.false_alarm.value)


duration_zh = fmt_duration_zh


def _zh(mapping: dict[Any, str], value: str) -> str:
    """The Chinese label of a stored enum value (the value itself when unknown)."""
    return mapping.get(value, value)


def _head(number: str, type_: str, grade: str, grade_name: str | None) -> str:
    """``INC-… 篡改/挂马 重大``; the grade as recorded in the office's own words (重要信息)."""
    return f"{number} {_zh(TYPE_ZH, type_)} {grade_name or _zh(GRADE_ZH, grade)}"


def _late_step(now: datetime) -> Any:
    """EXISTS a required pending step of the outer incident whose deadline has passed
    (optional steps are reminded, never escalated: they are not overdue)."""
    step = aliased(IncidentStep)   # the outer query may join incident_step itself
    return (select(step.id)
            .where(step.incident_id == Incident.id, step.status == StepStatus.pending,
                   step.optional == False, col(step.due_at) < now)  # noqa: E712
            .correlate(Incident).exists())


def _count(session: Session, *where: Any) -> int:
    return int(session.exec(select(func.count()).select_from(Incident).where(*where)).one())


def _reported_between(lo: datetime, hi: datetime) -> tuple[Any, ...]:
    return (col(Incident.status).in_(_ALL), col(Incident.reported_at) >= lo,
            col(Incident.reported_at) < hi)


def _events(lo: datetime, hi: datetime, *actions: str) -> tuple[Any, ...]:
    """Incident audit events of ``actions`` in ``[lo, hi)``, read through the ``at`` index.

    ``entity_type`` is compared as an expression so that SQLite, which has no statistics
    unless someone ran ANALYZE, does not pick ``ix_audit_event_entity`` instead: that
    would read every incident event ever recorded.
    """
    return (col(AuditEvent.at) >= lo, col(AuditEvent.at) < hi,
            col(AuditEvent.entity_type).concat("") == "incident", col(AuditEvent.action).in_(actions))


def _numbers_with(lo: datetime, hi: datetime, *actions: str) -> Any:
    """Numbers of the incidents with an audit event of ``actions`` in ``[lo, hi)``."""
    return col(Incident.number).in_(select(AuditEvent.entity_id).where(*_events(lo, hi, *actions)))


def _pending_steps(session: Session, ids: Sequence[int], *where: Any) -> dict[int, list[IncidentStep]]:
    """Pending steps of the incidents ``ids`` (a list's few), by incident, earliest first."""
    found: dict[int, list[IncidentStep]] = {i: [] for i in ids}
    if ids:
        for step in session.exec(select(IncidentStep).where(
                col(IncidentStep.incident_id).in_(ids), IncidentStep.status == StepStatus.pending,
                *where).order_by(col(IncidentStep.incident_id), col(IncidentStep.due_at),
                                 col(IncidentStep.seq))):
            found[step.incident_id].append(step)
    return found


def _ids(rows: Sequence[tuple[int | None, *tuple[Any, ...]]]) -> list[int]:
    """The incident ids that start ``rows`` (read from the table: never None)."""
    return [row[0] for row in rows if row[0] is not None]


def _rung_label(ladder: str, level: int) -> str:
    rungs = json.loads(ladder or "[]")
    return str(rungs[level]["label"]) if 0 < level < len(rungs) else ""


# ---------------------------------------------------------------- daily providers

def overdue_incidents(session: Session, now: datetime, calendar: WorkdayCalendar,
                      settings: BriefingConfig) -> Section | None:
    """Open incidents with a pending step past its deadline, the earliest deadline first."""
    where = (col(Incident.status).in_(_OPEN), _late_step(now))
    total = _count(session, *where)
    if not total:
        return None
    first_due = func.min(IncidentStep.due_at)
    rows = session.exec(
        select_row(Incident.id, Incident.number, Incident.type, Incident.grade, Incident.grade_name,
                   Incident.status)
        .join(IncidentStep, col(IncidentStep.incident_id) == col(Incident.id))
        .where(col(Incident.status).in_(_OPEN), IncidentStep.status == StepStatus.pending,
               IncidentStep.optional == False, col(IncidentStep.due_at) < now)  # noqa: E712
        .group_by(col(Incident.id), col(Incident.number), col(Incident.type), col(Incident.grade),
                  col(Incident.grade_name), col(Incident.status))
        .order_by(first_due, col(Incident.id)).limit(settings.max_lines)).all()
    late = _pending_steps(session, _ids(rows), IncidentStep.optional == False,  # noqa: E712
                          col(IncidentStep.due_at) < now)
    items = []
    for incident_id, number, type_, grade, grade_name, status in rows:
        assert incident_id is not None
        if not late[incident_id]:
            continue   # done between the two reads (PostgreSQL reads each statement afresh)
        step, *others = late[incident_id]
        line = (f"{_head(number, type_, grade, grade_name)} 步骤{step.seq}“{step.title}” "
                f"截止 {step_due_zh(step)}，已超期{duration_zh(now - (step.due_at or now))}")
        line += f"（另有 {len(others)} 步超期）" if others else ""
        line += "，无人确认" if status == IncidentStatus.reported else ""
        items.append(line)
    return Section("incidents.overdue", Urgency.overdue, f"【超期事件】{total} 起",
                   tag=f"超期事件{total}", items=tuple(items), total_items=total,
                   hint="请督促处置：/incident list overdue")


def unacknowledged_incidents(session: Session, now: datetime, calendar: WorkdayCalendar,
                             settings: BriefingConfig) -> Section | None:
    """Open incidents nobody has acknowledged (not already overdue), the oldest first."""
    where = (Incident.status == IncidentStatus.reported, ~_late_step(now))
    total = _count(session, *where)
    if not total:
        return None
    rows = session.exec(select_row(Incident.number, Incident.type, Incident.grade, Incident.grade_name,
                                   Incident.reported_at, Incident.escalation_level, Incident.ladder)
                        .where(*where).order_by(col(Incident.reported_at), col(Incident.id))
                        .limit(settings.max_lines)).all()
    items = []
    for number, type_, grade, grade_name, reported_at, level, ladder in rows:
        label = _rung_label(ladder, level)
        items.append(f"{_head(number, type_, grade, grade_name)} {fmt_short_zh(reported_at)} 报告，"
                     f"{duration_zh(now - reported_at)}无人确认" + (f"，已提醒{label}" if label else ""))
    return Section("incidents.unacknowledged", Urgency.overdue, f"【未确认事件】{total} 起",
                   tag=f"未确认事件{total}", items=tuple(items), total_items=total,
                   hint="请尽快确认：/incident ack 编号；接手处置：/incident take 编号")


def open_incidents(session: Session, now: datetime, calendar: WorkdayCalendar,
                   settings: BriefingConfig) -> Section | None:
    """The other open incidents (acknowledged, none overdue), by their next deadline."""
    where = (col(Incident.status).in_(_IN_PROGRESS), ~_late_step(now))
    total = _count(session, *where)
    if not total:
        return None
    next_due = func.min(IncidentStep.due_at)
    rows = session.exec(
        select_row(Incident.id, Incident.number, Incident.type, Incident.grade, Incident.grade_name,
                   Incident.status)
        .outerjoin(IncidentStep, (col(IncidentStep.incident_id) == col(Incident.id))
                   & (IncidentStep.status == StepStatus.pending))
        .where(*where)
        .group_by(col(Incident.id), col(Incident.number), col(Incident.type), col(Incident.grade),
                  col(Incident.grade_name), col(Incident.status), col(Incident.reported_at))
        .order_by(next_due.is_(None), next_due, col(Incident.reported_at), col(Incident.id))
        .limit(settings.max_lines)).all()
    pending = _pending_steps(session, _ids(rows))
    items = []
    for incident_id, number, type_, grade, grade_name, status in rows:
        assert incident_id is not None
        line = f"{_head(number, type_, grade, grade_name)} {_zh(STATUS_ZH, status)}"
        step = next_step(pending[incident_id])
        if step is None:
            line += "，待结案"
        else:
            what = f" 下一步：步骤{step.seq}“{step.title}”" + ("（可选）" if step.optional else "")
            line += what + (f"（{step_due_zh(step)}）" if step.due_at is None else f" 截止 {step_due_zh(step)}")
        items.append(line)
    return Section("incidents.open", Urgency.today, f"【在办事件】{total} 起", tag=f"在办事件{total}",
                   items=tuple(items), total_items=total, hint="查看：/incident list")


def yesterday_incidents(session: Session, now: datetime, calendar: WorkdayCalendar,
                        settings: BriefingConfig) -> Section | None:
    """Incidents reported, and incidents ended, on the day before ``now``'s day."""
    day = local(now).date() - timedelta(days=1)
    lo, hi = local_midnight(day), local_midnight(day + timedelta(days=1))
    notable = col(Incident.grade).in_(_NOTABLE)
    # A notable incident reported yesterday is listed once, with where it stands now.
    notable_before = notable & (col(Incident.reported_at) < lo)
    opened, opened_notable = session.exec(
        select(func.count(), func.sum(case((notable, 1), else_=0)))
        .select_from(Incident).where(*_reported_between(lo, hi))).one()
    ended: dict[str, tuple[int, int]] = {
        action: (int(n), int(n_notable or 0)) for action, n, n_notable in session.exec(
            select(AuditEvent.action, func.count(), func.sum(case((notable_before, 1), else_=0)))
            .join(Incident, col(Incident.number) == col(AuditEvent.entity_id))
            .where(*_events(lo, hi, *_ENDED_ACTIONS)).group_by(col(AuditEvent.action)))}
    closed = ended.get(IncidentStatus.closed.value, (0, 0))[0]
    withdrawn = sum(n for action, (n, _) in ended.items() if action != IncidentStatus.closed)
    if not opened and not closed and not withdrawn:
        return None
    opened_notable, ended_notable = int(opened_notable or 0), sum(n for _, n in ended.values())
    items: list[str] = []
    if opened_notable:
        items += [f"{_head(number, type_, grade, grade_name)} 新增（{_zh(STATUS_ZH, status)}）"
                  for number, type_, grade, grade_name, status in session.exec(
                      select_row(Incident.number, Incident.type, Incident.grade, Incident.grade_name,
                                 Incident.status)
                      .where(*_reported_between(lo, hi), notable)
                      .order_by(col(Incident.reported_at), col(Incident.id))
                      .limit(settings.max_lines))]
    if ended_notable and len(items) < settings.max_lines:
        items += [f"{_head(number, type_, grade, grade_name)} {_zh(STATUS_ZH, action)}"
                  for number, type_, grade, grade_name, action in session.exec(
                      select_row(Incident.number, Incident.type, Incident.grade, Incident.grade_name,
                                 AuditEvent.action)
                      .join(Incident, col(Incident.number) == col(AuditEvent.entity_id))
                      .where(*_events(lo, hi, *_ENDED_ACTIONS), notable_before)
                      .order_by(col(AuditEvent.at), col(AuditEvent.id))
                      .limit(settings.max_lines - len(items)))]
    headline = f"【昨日事件】新增 {opened} 起，结案 {closed} 起"
    headline += f"，撤销或误报 {withdrawn} 起" if withdrawn else ""
    return Section("incidents.yesterday", Urgency.info, headline,
                   figures=("重大、特级事件：",) if items else (), items=tuple(items),
                   total_items=opened_notable + ended_notable)


# ---------------------------------------------------------------- weekly provider

def _median_since_report(session: Session, column: Mapped[datetime | None], lo: datetime,
                         hi: datetime, *actions: str) -> tuple[timedelta | None, int]:
    """Median of ``column − reported_at`` over the incidents whose ``column`` falls in the
    week, found through their audit events ``actions``; and how many there were."""
    spans = [at - reported for reported, at in session.exec(
        select(Incident.reported_at, column)
        .where(_numbers_with(lo, hi, *actions), column >= lo, column < hi)) if at is not None]
    return (median_duration(spans) if spans else None), len(spans)


def weekly_incidents(session: Session, now: datetime, calendar: WorkdayCalendar,
                     settings: BriefingConfig) -> Section | None:
    """The week's figures: reported (by type), ended, median time to acknowledge (MTTA)
    and to resolve (MTTR), steps finished late; and what is open now.

    MTTA is over the incidents acknowledged in the week, MTTR (to 已处置: every required
    step done) over those resolved in it, each counted from the report: a week's figure
    does not change when the summary is built again later.
    """
    first, last = week_before(now)
    lo, hi = local_midnight(first), local_midnight(last + timedelta(days=1))
    by_type = dict(session.exec(select(Incident.type, func.count())
                                .where(*_reported_between(lo, hi)).group_by(col(Incident.type))).all())
    opened = sum(by_type.values())
    kinds = "，".join(f"{TYPE_ZH[t]} {by_type[t.value]}" for t in IncidentType if by_type.get(t.value))
    ended = dict(session.exec(select(AuditEvent.action, func.count())
                              .where(*_events(lo, hi, *_ENDED_ACTIONS))
                              .group_by(col(AuditEvent.action))).all())
    closed = int(ended.pop(IncidentStatus.closed.value, 0))
    withdrawn = sum(int(n) for n in ended.values())
    mtta, acked = _median_since_report(session, col(Incident.acknowledged_at), lo, hi, "acknowledged")
    mttr, resolved = _median_since_report(session, col(Incident.resolved_at), lo, hi,
                                          "resolved", IncidentStatus.closed.value)
    late_steps = int(session.exec(
        select(func.count()).select_from(IncidentStep)
        .join(Incident, col(Incident.id) == col(IncidentStep.incident_id))
        .where(_numbers_with(lo, hi, "step_done"), IncidentStep.status == StepStatus.done,
               col(IncidentStep.done_at) >= lo, col(IncidentStep.done_at) < hi,
               col(IncidentStep.done_at) > col(IncidentStep.due_at))).one())
    open_now = _count(session, col(Incident.status).in_(_OPEN))
    overdue_now = _count(session, col(Incident.status).in_(_OPEN), _late_step(now)) if open_now else 0
    if not (opened or closed or withdrawn or acked or resolved or late_steps or open_now):
        return Section("incidents.week", Urgency.info, "【事件处置】本周无事件，目前无未结事件")
    return Section("incidents.week", Urgency.info, "【事件处置】", figures=(
        f"新增 {opened} 起" + (f"：{kinds}" if kinds else ""),
        f"结案 {closed} 起" + (f"，撤销或误报 {withdrawn} 起" if withdrawn else ""),
        f"确认用时中位数 {duration_zh(mtta)}（{acked} 起）" if mtta is not None else "确认用时中位数 —（本周无确认）",
        f"处置用时中位数 {duration_zh(mttr)}（{resolved} 起）" if mttr is not None
        else "处置用时中位数 —（本周无处置完毕）",
        f"超期完成步骤 {late_steps} 个",
        f"目前未结 {open_now} 起，其中有超期步骤 {overdue_now} 起"))


DAILY: tuple[SectionProvider, ...] = (overdue_incidents, unacknowledged_incidents, open_incidents,
                                      yesterday_incidents)
WEEKLY: tuple[SectionProvider, ...] = (weekly_incidents,)
