"""Incident statistics and the incident register (事件台账) for a period.

The period selects incidents by the Asia/Shanghai date they were *reported*. MTTA is
acknowledged_at − reported_at, MTTR is resolved_at − reported_at, each a median over the
incidents that have the time. A step counts as overdue when it was done after its
deadline or a required step is still pending past it (see
:func:`incidents.report.step_overdue`). "Open" is any status before closing
(待确认、已确认、处置中、已处置).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from core.clock import fmt_short_zh, local, local_midnight, median_duration
from core.errors import InputError
from core.text import append_row
from incidents.models import (
    OPEN_STATUSES,
    SOURCE_ZH,
    STATUS_ZH,
    TYPE_ZH,
    Incident,
    IncidentStep,
    IncidentType,
)
from incidents.report import NO_UNIT, atomic_write, duration_zh, label, person_names, step_overdue

TOTAL = "合计"
REGISTER_COLUMNS = ("编号", "报告时间", "类型", "等级", "来源", "网站/账号", "URL", "描述", "责任单位",
                    "报告人", "负责人", "状态", "确认时间", "处置完成时间", "结案时间", "结论",
                    "超期步骤数")
_TIME_COLUMNS = (2, 13, 14, 15)


@dataclass
class IncidentGroup:
    """Counts for one type, one unit, or everything (``合计``)."""

    name: str
    count: int = 0
    open: int = 0
    overdue_steps: int = 0
    ack_times: list[timedelta] = field(default_factory=list, repr=False)
    resolve_times: list[timedelta] = field(default_factory=list, repr=False)

    @property
    def mtta(self) -> timedelta | None:
        """Median time from report to acknowledgement (None when nothing was acknowledged)."""
        return median_duration(self.ack_times) if self.ack_times else None

    @property
    def mttr(self) -> timedelta | None:
        """Median time from report to resolution (None when nothing was resolved)."""
        return median_duration(self.resolve_times) if self.resolve_times else None


@dataclass
class IncidentStats:
    """Everything :func:`render_zh` and the register's 统计 sheet show."""

    start: date
    end: date
    now: datetime
    total: IncidentGroup
    by_type: list[IncidentGroup]     # every type, in the order of IncidentType
    by_unit: list[IncidentGroup]     # units with incidents, most first


@dataclass(frozen=True)
class _Period:
    incidents: list[Incident]
    steps: dict[int, list[IncidentStep]]


def _load(session: Session, start: date, end: date, units: Sequence[str] | None = None) -> _Period:
    if start > end:
        raise InputError(f"开始日期 {start.isoformat()} 晚于结束日期 {end.isoformat()}")
    lo, hi = local_midnight(start), local_midnight(end + timedelta(days=1))
    in_period: tuple[Any, ...] = (col(Incident.reported_at) >= lo, col(Incident.reported_at) < hi)
    if units is not None:   # the web board: one unit's register (bot/web)
        in_period = (*in_period, col(Incident.unit).in_(list(units)))
    incidents = list(session.exec(select(Incident).where(*in_period)
                                  .order_by(col(Incident.reported_at), col(Incident.id))))
    steps: dict[int, list[IncidentStep]] = defaultdict(list)
    stmt = (select(IncidentStep).join(Incident, col(Incident.id) == col(IncidentStep.incident_id))
            .where(*in_period).order_by(col(IncidentStep.incident_id), col(IncidentStep.seq)))
    for step in session.exec(stmt):
        steps[step.incident_id].append(step)
    return _Period(incidents, steps)


def _overdue_count(incident: Incident, period: _Period, now: datetime) -> int:
    return sum(step_overdue(s, incident=incident, now=now)
               for s in period.steps.get(incident.id or -1, []))


def compute_incident_stats(*, session: Session, start: date, end: date,
                           now: datetime) -> IncidentStats:
    """Statistics over the incidents reported from ``start`` to ``end`` (inclusive).

    Args:
        session: read-only use of the caller's session.
        start: first day (Asia/Shanghai) of the period.
        end: last day (Asia/Shanghai) of the period.
        now: what "pending and past its deadline" is measured against.

    Returns:
        Totals, a row per incident type (all types) and per unit (most incidents first).

    Raises:
        InputError: ``start`` is after ``end``.
    """
    return _aggregate(_load(session, start, end), start=start, end=end, now=now)


def _aggregate(period: _Period, *, start: date, end: date, now: datetime) -> IncidentStats:
    total = IncidentGroup(TOTAL)
    types = {t.value: IncidentGroup(TYPE_ZH[t]) for t in IncidentType}
    units: dict[str, IncidentGroup] = {}
    for incident in period.incidents:
        unit = incident.unit or NO_UNIT
        groups = (total, types.setdefault(incident.type, IncidentGroup(incident.type)),
                  units.setdefault(unit, IncidentGroup(unit)))
        overdue = _overdue_count(incident, period, now)
        for g in groups:
            g.count += 1
            g.open += incident.status in OPEN_STATUSES
            g.overdue_steps += overdue
            if incident.acknowledged_at is not None:
                g.ack_times.append(incident.acknowledged_at - incident.reported_at)
            if incident.resolved_at is not None:
                g.resolve_times.append(incident.resolved_at - incident.reported_at)
    by_unit = sorted(units.values(), key=lambda g: (-g.count, g.name))
    return IncidentStats(start, end, now, total, list(types.values()), by_unit)


# ---------------------------------------------------------------- presentation

def _median_zh(value: timedelta | None) -> str:
    return "—" if value is None else duration_zh(value)


def _line(g: IncidentGroup) -> str:
    return (f"事件 {g.count} 起，未结案 {g.open} 起，确认用时中位数 {_median_zh(g.mtta)}，"
            f"处置用时中位数 {_median_zh(g.mttr)}，超期步骤 {g.overdue_steps} 个")


def _period_zh(start: date, end: date) -> str:
    tail = f"{end.month}月{end.day}日" if end.year == start.year else f"{end.year}年{end.month}月{end.day}日"
    return f"{start.year}年{start.month}月{start.day}日至{tail}"


def render_zh(stats: IncidentStats) -> str:
    """A compact Chinese report for the terminal and chat."""
    lines = [f"【事件处置统计】{_period_zh(stats.start, stats.end)}报告的事件"
             f"（截至 {fmt_short_zh(stats.now)}）"]
    if stats.total.count == 0:
        lines.append("本期没有登记事件。")
        return "\n".join(lines)
    lines.append(f"合计：{_line(stats.total)}")
    lines.append("按类型：")
    lines += [f"  {g.name}：{_line(g)}" for g in stats.by_type if g.count]
    lines.append("按单位：")
    lines += [f"  {g.name}：{_line(g)}" for g in stats.by_unit]
    return "\n".join(lines)


def _naive_local(instant: datetime | None) -> datetime | None:
    """Excel has no time zones: Beijing wall-clock time."""
    return None if instant is None else local(instant).replace(tzinfo=None)


def _minutes(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 60, 1)


def write_register_xlsx(*, session: Session, start: date, end: date, path: Path,
                        now: datetime, units: Sequence[str] | None = None) -> IncidentStats:
    """Write the register: sheet 台账 (one row per incident), 统计, 说明 (atomically).

    Args:
        session: read-only use of the caller's session.
        start: first day (Asia/Shanghai) of the period.
        end: last day (Asia/Shanghai) of the period.
        path: the .xlsx file to write.
        now: what overdue steps are measured against.
        units: only these units' incidents (None: every unit).

    Returns:
        The statistics shown on the 统计 sheet.

    Raises:
        InputError: ``start`` is after ``end``, or the file cannot be written.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    period = _load(session, start, end, units)
    stats = _aggregate(period, start=start, end=end, now=now)
    names = person_names(session, [pid for i in period.incidents
                                   for pid in (i.reporter_id, i.owner_id)])
    book = Workbook()
    register = book.active
    assert register is not None
    register.title = "台账"
    append_row(register, REGISTER_COLUMNS)
    for i in period.incidents:
        append_row(register, [
            i.number, _naive_local(i.reported_at), label(TYPE_ZH, i.type), i.grade_label,
            label(SOURCE_ZH, i.source), i.site, i.url or "", i.description, i.unit or NO_UNIT,
            names.get(i.reporter_id, "") if i.reporter_id else "",
            names.get(i.owner_id, "") if i.owner_id else "", label(STATUS_ZH, i.status),
            _naive_local(i.acknowledged_at), _naive_local(i.resolved_at), _naive_local(i.closed_at),
            i.conclusion or i.status_reason or "", _overdue_count(i, period, now)])
        for column in _TIME_COLUMNS:
            register.cell(register.max_row, column).number_format = "yyyy-mm-dd hh:mm"
        register.cell(register.max_row, 8).alignment = Alignment(wrap_text=True, vertical="top")
    summary = book.create_sheet("统计")
    append_row(summary, ["维度", "名称", "事件数", "未结案", "确认用时中位数（分钟）",
                         "处置用时中位数（分钟）", "超期步骤数"])
    rows = ([("合计", stats.total)] + [("类型", g) for g in stats.by_type]
            + [("单位", g) for g in stats.by_unit])
    for dim, g in rows:
        append_row(summary, [dim, g.name, g.count, g.open, _minutes(g.mtta), _minutes(g.mttr),
                             g.overdue_steps])
    about = book.create_sheet("说明")
    append_row(about, ["统计期间", f"{start.isoformat()} 至 {end.isoformat()}（按报告日期，北京时间）"])
    append_row(about, ["统计时点", _naive_local(now)])
    about.cell(2, 2).number_format = "yyyy-mm-dd hh:mm"
    append_row(about, ["口径", "确认用时 = 确认时间 − 报告时间；处置用时 = 处置完成时间 − 报告时间（取中位数）；"
                               "超期步骤：完成时间晚于截止时间，或必做步骤至统计时点（已结案的至结案时）仍未完成且已过截止时间；"
                               "未结案：待确认、已确认、处置中、已处置"])
    widths = {register: (18, 17, 12, 6, 16, 20, 40, 60, 16, 10, 10, 8, 17, 17, 17, 40, 10),
              summary: (8, 24, 8, 8, 20, 20, 10), about: (12, 100)}
    for sheet, cols in widths.items():
        if sheet is not about:
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            sheet.freeze_panes = "A2"
        for index, width in enumerate(cols, start=1):
            sheet.column_dimensions[_column_letter(index)].width = width
    atomic_write(path, lambda tmp: book.save(tmp))
    return stats


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    letter: str = get_column_letter(index)
    return letter
