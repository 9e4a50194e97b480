"""The duty log (DUTY-3, CHECK-2): the detailed record of every shift of a period.

For each shift: who held it, each officer's check-in (time, on time or late, missed),
the reading rounds (done, anomalies, missed) and the handover. Built from the tables
(``shift_assignment.checked_in_at``, ``reading_round``, ``handover``), so it shows what
happened whoever recorded it. Rendered compactly for a phone (``/duty log``) or as an
xlsx workbook (``dutybot roster log --xlsx``). The handover summary (what the next
officer must know) is in ``reports.handover``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlmodel import Session, col, select

from core.clock import fmt_date_zh, fmt_short_zh, local
from core.errors import InputError
from core.messages import duration_zh
from core.text import append_row
from people.models import Person
from roster.models import (
    ROUND_STATUS_ZH,
    DutyRole,
    Handover,
    ReadingRound,
    RoundStatus,
    Shift,
    ShiftAssignment,
)
from roster.service import label, shifts_between

MAX_LOG_DAYS = 92


class CheckinState(StrEnum):
    on_time = "on_time"
    late = "late"
    missed = "missed"        # never checked in; the shift is over
    overdue = "overdue"      # running, past the check-in window, not checked in
    waiting = "waiting"      # within the check-in window
    upcoming = "upcoming"    # not started


CHECKIN_ZH = {CheckinState.on_time: "按时接班", CheckinState.late: "迟到接班", CheckinState.missed: "未接班",
              CheckinState.overdue: "未接班（已超时）", CheckinState.waiting: "待接班", CheckinState.upcoming: "未开始"}


def checkin_state(checked_in_at: datetime | None, shift: Shift, now: datetime,
                  window: timedelta) -> tuple[CheckinState, int]:
    """The state of one officer's check-in and, when late, the minutes after the start."""
    deadline = shift.starts_at + window
    if checked_in_at is not None:
        if checked_in_at > deadline:
            return CheckinState.late, int((checked_in_at - shift.starts_at).total_seconds() // 60)
        return CheckinState.on_time, 0
    if now < shift.starts_at:
        return CheckinState.upcoming, 0
    if now <= deadline:
        return CheckinState.waiting, 0
    return (CheckinState.overdue if now < shift.ends_at else CheckinState.missed), 0


@dataclass
class RoundTally:
    """A shift's reading rounds."""

    rounds: list[ReadingRound] = field(default_factory=list)

    def count(self, status: RoundStatus) -> int:
        return sum(1 for r in self.rounds if r.status == status)

    def zh(self) -> str:
        if not self.rounds:
            return "无读网记录"
        return (f"{len(self.rounds)} 次：正常 {self.count(RoundStatus.ok)}，发现异常 {self.count(RoundStatus.anomaly)}，"
                f"未按时完成 {self.count(RoundStatus.missed)}" + (f"，待读网 {self.count(RoundStatus.pending)}"
                                                             if self.count(RoundStatus.pending) else ""))

    def short_zh(self) -> str:
        if not self.rounds:
            return "读网 无"
        return (f"读网 {len(self.rounds)}（正常{self.count(RoundStatus.ok)} 异常{self.count(RoundStatus.anomaly)} "
                f"未按时{self.count(RoundStatus.missed)}）")


def round_tallies(session: Session, shift_ids: Sequence[int | None]) -> dict[int | None, RoundTally]:
    out: dict[int | None, RoundTally] = {sid: RoundTally() for sid in shift_ids}
    if shift_ids:
        for row in session.exec(select(ReadingRound).where(col(ReadingRound.shift_id).in_(list(shift_ids)))
                                .order_by(col(ReadingRound.seq))):
            out[row.shift_id].rounds.append(row)
    return out


def round_line(row: ReadingRound) -> str:
    """``第2次 14:52 发现异常：首页链接失效（INC-20260930-001）``."""
    when = local(row.answered_at or row.prompt_at)
    text = f"第{row.seq}次 {when:%H:%M} {ROUND_STATUS_ZH[RoundStatus(row.status)]}"
    if row.note:
        text += f"：{row.note[:40]}"
    return text + (f"（{row.incident_number}）" if row.incident_number else "")


@dataclass(frozen=True)
class OfficerLog:
    name: str
    checked_in_at: datetime | None
    state: CheckinState
    late_minutes: int

    def zh(self) -> str:
        at = f" {local(self.checked_in_at):%H:%M}" if self.checked_in_at else ""
        late = f"（迟{duration_zh(timedelta(minutes=self.late_minutes))}）" if self.state == CheckinState.late else ""
        return f"{self.name} {CHECKIN_ZH[self.state]}{at}{late}"


@dataclass(frozen=True)
class HandoverLog:
    at: datetime
    by: str
    note: str
    summary: str


@dataclass
class ShiftLog:
    shift: Shift
    officers: list[OfficerLog]
    leaders: list[str]
    rounds: RoundTally
    handover: HandoverLog | None


@dataclass
class DutyLog:
    start: date
    end: date
    now: datetime
    shifts: list[ShiftLog]

    def totals_zh(self) -> str:
        states = [o.state for s in self.shifts for o in s.officers]
        rounds = [r for s in self.shifts for r in s.rounds.rounds]
        return (f"合计：{len(self.shifts)} 个班次；接班 按时 {states.count(CheckinState.on_time)}，"
                f"迟到 {states.count(CheckinState.late)}，未接班 {states.count(CheckinState.missed) + states.count(CheckinState.overdue)}；"
                f"读网 {len(rounds)} 次（异常 {sum(r.status == RoundStatus.anomaly for r in rounds)}，"
                f"未按时 {sum(r.status == RoundStatus.missed for r in rounds)}）；"
                f"交班 {sum(1 for s in self.shifts if s.handover)} 次")


def build_log(*, session: Session, start: date, end: date, now: datetime, checkin_window: timedelta) -> DutyLog:
    """The log of the published shifts of duty days ``start``..``end`` (inclusive).

    Raises:
        InputError: the period is reversed or longer than MAX_LOG_DAYS.
    """
    if end < start:
        raise InputError("结束日期不能早于开始日期。")
    if (end - start).days >= MAX_LOG_DAYS:
        raise InputError(f"值班日志一次最多 {MAX_LOG_DAYS} 天。")
    shifts = shifts_between(session=session, start=start, end=end)
    ids = [s.id for s in shifts]
    people: dict[int | None, list[tuple[ShiftAssignment, Person]]] = {sid: [] for sid in ids}
    handovers: dict[int, HandoverLog] = {}
    if ids:
        for assignment, person in session.exec(
                select(ShiftAssignment, Person).join(Person, col(Person.id) == ShiftAssignment.person_id)
                .where(col(ShiftAssignment.shift_id).in_(ids)).order_by(col(ShiftAssignment.id))):
            people[assignment.shift_id].append((assignment, person))
        for row, person in session.exec(select(Handover, Person).join(Person, col(Person.id) == Handover.person_id)
                                        .where(col(Handover.shift_id).in_(ids)).order_by(col(Handover.at))):
            handovers[row.shift_id] = HandoverLog(row.at, person.name, row.note, row.summary)
    tallies = round_tallies(session, ids)
    out = []
    for shift in shifts:
        officers = []
        for assignment, person in people[shift.id]:
            if assignment.role == DutyRole.officer.value:
                state, late = checkin_state(assignment.checked_in_at, shift, now, checkin_window)
                officers.append(OfficerLog(person.name, assignment.checked_in_at, state, late))
        leaders = [p.name for a, p in people[shift.id] if a.role == DutyRole.leader.value]
        out.append(ShiftLog(shift, officers, leaders, tallies[shift.id], handovers.get(shift.id or 0)))
    return DutyLog(start, end, now, out)


def _period_zh(log: DutyLog) -> str:
    if log.start == log.end:
        return fmt_date_zh(log.start)
    return f"{log.start.month}月{log.start.day}日至{log.end.month}月{log.end.day}日"


def render_zh(log: DutyLog, *, compact: bool = False) -> str:
    """The log as chat text: per shift a block (``compact``: two lines)."""
    lines = [f"值班日志：{_period_zh(log)}（截至 {fmt_short_zh(log.now)}）"]
    if not log.shifts:
        return lines[0] + "\n该期间没有已发布的班次。"
    for entry in log.shifts:
        officers = "；".join(o.zh() for o in entry.officers) or "值班员空缺"
        leaders = "、".join(entry.leaders) or "空缺"
        handover = (f"已交班 {local(entry.handover.at):%H:%M} {entry.handover.by}" if entry.handover
                    else ("未交班" if log.now >= entry.shift.ends_at else ""))
        if compact:
            lines.append(f"■ {label(entry.shift)}")
            lines.append("  " + "｜".join(x for x in (officers, f"带班 {leaders}", entry.rounds.short_zh(), handover) if x))
            continue
        lines.append(f"■ {label(entry.shift)}")
        lines.append(f"  值班员：{officers}")
        lines.append(f"  带班领导：{leaders}")
        lines.append(f"  读网：{entry.rounds.zh()}")
        lines += [f"    {round_line(r)}" for r in entry.rounds.rounds
                  if r.status in (RoundStatus.anomaly, RoundStatus.missed)]
        if entry.handover:
            note = f"，备注：{entry.handover.note[:60]}" if entry.handover.note else ""
            lines.append(f"  交班：{fmt_short_zh(entry.handover.at)} {entry.handover.by}{note}")
        elif handover:
            lines.append(f"  交班：{handover}")
    lines.append(log.totals_zh())
    return "\n".join(lines)


def _naive_local(instant: datetime | None) -> datetime | None:
    """Excel has no time zones: Beijing wall-clock time."""
    return None if instant is None else local(instant).replace(tzinfo=None)


def write_xlsx(log: DutyLog, path: Path) -> None:
    """Sheets 班次 (one row per shift), 接班, 读网, 交班 and 说明.

    Raises:
        InputError: the file cannot be written.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    shifts = book.active
    assert shifts is not None
    shifts.title = "班次"
    checkins, rounds, handovers = book.create_sheet("接班"), book.create_sheet("读网"), book.create_sheet("交班")
    append_row(shifts, ["值班日", "班次", "开始", "结束", "值班员", "接班情况", "带班领导", "读网次数", "正常", "发现异常",
                        "未按时完成", "交班时间", "交班人", "交班备注"])
    append_row(checkins, ["值班日", "班次", "值班员", "接班时间", "情况", "迟到分钟"])
    append_row(rounds, ["值班日", "班次", "序号", "提示时间", "应答截止", "状态", "完成时间", "备注", "事件编号"])
    append_row(handovers, ["值班日", "班次", "交班时间", "交班人", "备注", "交班摘要"])
    for entry in log.shifts:
        s, h, t = entry.shift, entry.handover, entry.rounds
        append_row(shifts, [s.day, s.name, _naive_local(s.starts_at), _naive_local(s.ends_at),
                            "、".join(o.name for o in entry.officers), "；".join(o.zh() for o in entry.officers),
                            "、".join(entry.leaders), len(t.rounds), t.count(RoundStatus.ok), t.count(RoundStatus.anomaly),
                            t.count(RoundStatus.missed), _naive_local(h.at) if h else None, h.by if h else "",
                            h.note if h else ""])
        for o in entry.officers:
            append_row(checkins, [s.day, s.name, o.name, _naive_local(o.checked_in_at), CHECKIN_ZH[o.state],
                                  o.late_minutes or None])
        for r in t.rounds:
            append_row(rounds, [s.day, s.name, r.seq, _naive_local(r.prompt_at), _naive_local(r.due_at),
                                ROUND_STATUS_ZH[RoundStatus(r.status)], _naive_local(r.answered_at), r.note,
                                r.incident_number or ""])
        if h:
            append_row(handovers, [s.day, s.name, _naive_local(h.at), h.by, h.note, h.summary])
    about = book.create_sheet("说明")
    append_row(about, ["期间", f"{log.start.isoformat()} 至 {log.end.isoformat()}（按值班日，北京时间）"])
    append_row(about, ["统计时点", _naive_local(log.now)])
    append_row(about, ["合计", log.totals_zh().removeprefix("合计：")])
    append_row(about, ["口径", "按时接班：不晚于班次开始后规定分钟数；迟到分钟自班次开始起算；未接班：班次结束仍未接班"])
    for sheet in (shifts, checkins, rounds, handovers):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm"
                elif isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
        sheet.freeze_panes = "A2"
        for index in range(1, sheet.max_column + 1):
            sheet.column_dimensions[chr(64 + index)].width = 16
    about["B2"].number_format = "yyyy-mm-dd hh:mm"
    about.column_dimensions["A"].width, about.column_dimensions["B"].width = 12, 90
    try:
        book.save(path)
    except OSError as exc:
        raise InputError(f"无法写入 {path}：{exc.strerror or exc}（文件是否正在 Excel 中打开？）") from None
