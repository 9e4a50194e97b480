"""Reply statistics for a period: on-time rate, time to reply, overdue counts, and the
items a national check (全国政府网站抽查) would flag.

The period selects items by the Asia/Shanghai date they were *received*. An item is
closed when answered or explained; it was on time when closed by its effective deadline
(``due_at``: the category's period, extensions, the REPLY-4 ceiling). "More than a month"
is the same day (and time) of the next month after receipt, or that month's last day.
"""

from __future__ import annotations

import calendar as _cal
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from core.clock import fmt_short_zh, local, local_midnight
from core.errors import InputError
from core.text import append_row
from replies.models import CATEGORY_ZH, ReplyCategory, ReplyItem, ReplyStatus

NO_UNIT = "未指定单位"
TOTAL = "合计"
FLAG_ERROR_OPEN = "error_report_open"      # 找错 (REPLY-1) still unanswered
FLAG_CLOSED_LATE_MONTH = "closed_after_month"   # answered more than a month after receipt
FLAG_OPEN_MONTH = "open_after_month"        # still unanswered a month after receipt
FLAG_ZH = {FLAG_ERROR_OPEN: "找错留言未答复", FLAG_CLOSED_LATE_MONTH: "超过一个月才答复",
           FLAG_OPEN_MONTH: "超过一个月仍未答复"}
MAX_NUMBERS_SHOWN = 10


@dataclass
class GroupStats:
    """Counts for one unit, one category, or everything (``合计``)."""

    name: str
    received: int = 0
    on_time: int = 0          # closed by the deadline
    late: int = 0             # closed after the deadline
    open: int = 0
    open_overdue: int = 0     # still open and past the deadline
    reply_hours: list[float] = field(default_factory=list, repr=False)

    @property
    def closed(self) -> int:
        """Answered or explained."""
        return self.on_time + self.late

    @property
    def on_time_rate(self) -> float | None:
        """Closed on time / closed (None when nothing is closed)."""
        return self.on_time / self.closed if self.closed else None

    @property
    def median_hours(self) -> float | None:
        """Median hours from receipt to closing, over closed items."""
        return statistics.median(self.reply_hours) if self.reply_hours else None


@dataclass(frozen=True)
class FlaggedItem:
    """An item a national check would flag, and why (``flag``: one of :data:`FLAG_ZH`)."""

    flag: str
    number: str
    category: str
    unit: str
    received_at: datetime
    due_at: datetime
    closed_at: datetime | None
    summary: str


@dataclass
class ReplyStats:
    """Everything :func:`render_zh` and :func:`write_xlsx` show."""

    start: date
    end: date
    now: datetime
    total: GroupStats
    by_unit: list[GroupStats]
    by_category: list[GroupStats]
    flags: list[FlaggedItem]

    def flagged(self, flag: str) -> list[str]:
        """Numbers of the items with ``flag``."""
        return [f.number for f in self.flags if f.flag == flag]

    @property
    def open_error_reports(self) -> list[str]:
        """找错 items still open."""
        return self.flagged(FLAG_ERROR_OPEN)

    @property
    def closed_after_month(self) -> list[str]:
        """Items closed more than a month after receipt."""
        return self.flagged(FLAG_CLOSED_LATE_MONTH)

    @property
    def open_after_month(self) -> list[str]:
        """Items still open more than a month after receipt."""
        return self.flagged(FLAG_OPEN_MONTH)


def one_month_after(instant: datetime) -> datetime:
    """Same local day and time a month later (the month's last day where it is shorter)."""
    loc = local(instant)
    year, month = (loc.year + 1, 1) if loc.month == 12 else (loc.year, loc.month + 1)
    return loc.replace(year=year, month=month, day=min(loc.day, _cal.monthrange(year, month)[1]))


def _category_zh(value: str) -> str:
    try:
        return CATEGORY_ZH[ReplyCategory(value)]
    except ValueError:
        return value


def compute_stats(*, session: Session, start: date, end: date, now: datetime) -> ReplyStats:
    """Statistics over the items received from ``start`` to ``end`` (inclusive).

    Args:
        session: a read-only use of the caller's session.
        start: first day (Asia/Shanghai) of the period.
        end: last day (Asia/Shanghai) of the period.
        now: what "still open and overdue" is measured against.

    Returns:
        Totals, rows per unit (most received first) and per category (every category,
        in rule order), and the flagged items.

    Raises:
        InputError: ``start`` is after ``end``.
    """
    if start > end:
        raise InputError(f"开始日期 {start.isoformat()} 晚于结束日期 {end.isoformat()}")
    stmt = (select(ReplyItem)
            .where(col(ReplyItem.received_at) >= local_midnight(start),
                   col(ReplyItem.received_at) < local_midnight(end + timedelta(days=1)))
            .order_by(col(ReplyItem.received_at), col(ReplyItem.id)))
    return _aggregate(session.exec(stmt), start=start, end=end, now=now)


def _aggregate(items: Iterable[ReplyItem], *, start: date, end: date, now: datetime) -> ReplyStats:
    total = GroupStats(TOTAL)
    units: dict[str, GroupStats] = {}
    categories = {c.value: GroupStats(CATEGORY_ZH[c]) for c in ReplyCategory}
    flags: list[FlaggedItem] = []
    for item in items:
        unit = item.unit or NO_UNIT
        groups = (total, units.setdefault(unit, GroupStats(unit)),
                  categories.setdefault(item.category, GroupStats(_category_zh(item.category))))
        month_after = one_month_after(item.received_at)
        found: list[str] = []
        for g in groups:
            g.received += 1
        if item.status == ReplyStatus.open or item.closed_at is None:
            overdue = item.due_at <= now
            for g in groups:
                g.open += 1
                g.open_overdue += overdue
            if item.category == ReplyCategory.error_report:
                found.append(FLAG_ERROR_OPEN)
            if now > month_after:
                found.append(FLAG_OPEN_MONTH)
        else:
            hours = (item.closed_at - item.received_at).total_seconds() / 3600
            on_time = item.closed_at <= item.due_at
            for g in groups:
                g.on_time += on_time
                g.late += not on_time
                g.reply_hours.append(hours)
            if item.closed_at > month_after:
                found.append(FLAG_CLOSED_LATE_MONTH)
        flags += [FlaggedItem(flag, item.number, _category_zh(item.category), unit,
                              item.received_at, item.due_at, item.closed_at, item.summary)
                  for flag in found]
    by_unit = sorted(units.values(), key=lambda g: (-g.received, g.name))
    flags.sort(key=lambda f: (list(FLAG_ZH).index(f.flag), f.received_at, f.number))
    return ReplyStats(start, end, now, total, by_unit, list(categories.values()), flags)


# ---------------------------------------------------------------- presentation

def _rate(g: GroupStats) -> str:
    return "—" if g.on_time_rate is None else f"{g.on_time_rate:.1%}"


def _hours(g: GroupStats) -> str:
    return "—" if g.median_hours is None else f"{g.median_hours:.1f} 小时"


def _line(g: GroupStats) -> str:
    return (f"收到 {g.received}，按时答复 {g.on_time}，超期答复 {g.late}，未答复 {g.open}"
            f"（已超期 {g.open_overdue}），按时率 {_rate(g)}，用时中位数 {_hours(g)}")


def _period_zh(start: date, end: date) -> str:
    tail = f"{end.month}月{end.day}日" if end.year == start.year else f"{end.year}年{end.month}月{end.day}日"
    return f"{start.year}年{start.month}月{start.day}日至{tail}"


def render_zh(stats: ReplyStats) -> str:
    """A compact Chinese report for the terminal and chat."""
    t = stats.total
    lines = [f"【互动回应统计】{_period_zh(stats.start, stats.end)}收到的留言"
             f"（截至 {fmt_short_zh(stats.now)}）"]
    if t.received == 0:
        lines.append("本期没有收到留言。")
        return "\n".join(lines)
    lines.append(f"合计：{_line(t)}")
    lines.append("按单位：")
    lines += [f"  {g.name}：{_line(g)}" for g in stats.by_unit]
    lines.append("按类别：")
    lines += [f"  {g.name}：{_line(g)}" for g in stats.by_category if g.received]
    lines.append("抽查关注项：")
    for flag, label in FLAG_ZH.items():
        numbers = stats.flagged(flag)
        shown = "、".join(numbers[:MAX_NUMBERS_SHOWN])
        more = f" 等 {len(numbers)} 条" if len(numbers) > MAX_NUMBERS_SHOWN else ""
        lines.append(f"  {label}：{len(numbers)} 条" + (f"（{shown}{more}）" if numbers else ""))
    return "\n".join(lines)


def _naive_local(instant: datetime | None) -> datetime | None:
    """Excel has no time zones: Beijing wall-clock time."""
    return None if instant is None else local(instant).replace(tzinfo=None)


def write_xlsx(stats: ReplyStats, path: Path) -> None:
    """Write the report: sheet 汇总 (total, per unit, per category), 关注项, 说明.

    Raises:
        InputError: the file cannot be written (open in Excel, no such folder).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = "汇总"
    append_row(summary, ["维度", "名称", "收到", "按时答复", "超期答复", "未答复", "未答复且已超期",
                         "按时率", "答复用时中位数（小时）"])
    rows = ([("合计", stats.total)] + [("单位", g) for g in stats.by_unit]
            + [("类别", g) for g in stats.by_category])
    for dim, g in rows:
        append_row(summary, [dim, g.name, g.received, g.on_time, g.late, g.open, g.open_overdue,
                             g.on_time_rate,
                             None if g.median_hours is None else round(g.median_hours, 1)])
        summary.cell(summary.max_row, 8).number_format = "0.0%"
    flagged = book.create_sheet("关注项")
    append_row(flagged, ["关注项", "编号", "类别", "单位", "收到时间", "答复期限", "答复时间", "摘要"])
    for f in stats.flags:
        append_row(flagged, [FLAG_ZH[f.flag], f.number, f.category, f.unit, _naive_local(f.received_at),
                             _naive_local(f.due_at), _naive_local(f.closed_at), f.summary])
        for column in (5, 6, 7):
            flagged.cell(flagged.max_row, column).number_format = "yyyy-mm-dd hh:mm"
    about = book.create_sheet("说明")
    append_row(about, ["统计期间", f"{stats.start.isoformat()} 至 {stats.end.isoformat()}（按收到日期，北京时间）"])
    append_row(about, ["统计时点", _naive_local(stats.now)])
    about.cell(2, 2).number_format = "yyyy-mm-dd hh:mm"
    append_row(about, ["口径", "按时：在答复期限（含批准的延期，且不超过3个月）内答复或说明；"
                               "按时率 = 按时答复 ÷ 已答复；用时自收到起算"])
    for sheet, widths in ((summary, (8, 24, 8, 10, 10, 8, 14, 10, 22)),
                          (flagged, (18, 18, 12, 20, 17, 17, 17, 60)), (about, (12, 90))):
        for cell in sheet[1] if sheet is not about else ():
            cell.font = Font(bold=True)
        for index, width in enumerate(widths, start=1):
            sheet.column_dimensions[chr(64 + index)].width = width
        sheet.freeze_panes = "A2" if sheet is not about else None
    try:
        book.save(path)
    except OSError as exc:
        raise InputError(f"无法写入 {path}：{exc.strerror or exc}（文件是否正在 Excel 中打开？）") from None
