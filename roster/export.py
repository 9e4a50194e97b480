"""The office's own 值班表 out: a printable xlsx (same columns as the import reads, so
an export imports back to the same roster; see ``roster.importer``), and one iCalendar
file per person.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from core.clock import WEEKDAYS_ZH, ensure_utc, fmt_span_zh, local
from core.errors import InputError
from core.text import append_row
from people.models import Person
from roster.models import DUTY_ROLE_ZH, DutyRole, Shift, ShiftAssignment
from roster.service import MAX_DAYS, ShiftView, label, shifts_between, views

EXPORT_COLUMNS = ("日期", "星期", "班次", "时间", "带班领导", "值班员", "联系电话")


def time_zh(shift: Shift) -> str:
    """``17:30–次日08:30``."""
    start, end = local(shift.starts_at), local(shift.ends_at)
    return f"{start:%H:%M}–{'次日' if end.date() != start.date() else ''}{end:%H:%M}"


def _phones(people: list[Person]) -> str:
    return "、".join(f"{p.name} {p.phone}".rstrip() for p in people if p.active)


def export_rows(views_: list[ShiftView]) -> list[list[object]]:
    """The 值班表 rows (:data:`EXPORT_COLUMNS`) of the given shifts; 日期 as a date.

    People who have been deactivated are left out: they no longer count as on duty.
    """
    rows: list[list[object]] = []
    for v in views_:
        leaders, officers = [p for p in v.leaders if p.active], [p for p in v.officers if p.active]
        rows.append([v.shift.day, WEEKDAYS_ZH[v.shift.day.weekday()], v.shift.name, time_zh(v.shift),
                     "、".join(p.name for p in leaders), "、".join(p.name for p in officers),
                     _phones(leaders + officers)])
    return rows


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename it into place.

    Raises:
        InputError: the folder is missing or the file cannot be replaced (open in Excel).
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise InputError(f"无法写入 {path}：{exc.strerror or exc}（目录是否存在？）") from None
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"无法写入 {path}：{exc.strerror or exc}（文件是否正在 Excel 中打开？）") from None
    finally:
        tmp.unlink(missing_ok=True)


def export_xlsx(*, session: Session, start: date, end: date, path: Path) -> int:
    """Write the published roster of ``start``..``end`` as a printable 值班表 xlsx.

    One row per shift, header in row 1 (so the file imports back as it is); the title
    ``值班表 2026年12月1日—12月31日`` is printed in the page header of every page.

    Returns:
        The number of shifts written.

    Raises:
        InputError: a bad range, no published shift in it, or the file cannot be written.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    if end < start:
        raise InputError("结束日期不能早于开始日期。")
    if (end - start).days >= MAX_DAYS:
        raise InputError(f"一次最多导出 {MAX_DAYS} 天。")
    shift_views = views(session, shifts_between(session=session, start=start, end=end))
    if not shift_views:
        raise InputError(f"{fmt_span_zh(start, end)}没有已发布的排班，未生成文件。")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "值班表"
    append_row(sheet, EXPORT_COLUMNS)
    for values in export_rows(shift_views):
        append_row(sheet, values)
        sheet.cell(sheet.max_row, 1).number_format = "yyyy-mm-dd"
    thin = Side(style="thin")
    for row in sheet.iter_rows():
        for cell in row:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
            cell.alignment = Alignment(vertical="center", wrap_text=True,
                                       horizontal="center" if cell.column <= 5 else "left")
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDDDDD")
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for letter, width in zip("ABCDEFG", (12, 8, 8, 15, 12, 22, 40), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    sheet.print_title_rows = "1:1"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.horizontalCentered = True
    sheet.oddHeader.center.text = f"值班表 {fmt_span_zh(start, end)}"
    sheet.oddHeader.center.size = 14
    sheet.oddHeader.center.font = "宋体,Bold"
    sheet.oddFooter.center.text = "第 &P 页，共 &N 页"
    write_atomic(path, lambda tmp: book.save(tmp))
    return len(shift_views)


# ---------------------------------------------------------------- iCalendar

def person_ical(*, session: Session, person: Person, start: date, end: date, now: datetime) -> tuple[bytes, int]:
    """``person``'s published shifts of ``start``..``end`` as one iCalendar file.

    One VEVENT per shift and role, times in Asia/Shanghai (with its VTIMEZONE); the UID
    stays the same for the same shift, role and person, so re-importing updates events.

    Returns:
        The ``.ics`` bytes and the number of events.

    Raises:
        InputError: a bad range.
    """
    from icalendar import Calendar, Event

    if end < start:
        raise InputError("结束日期不能早于开始日期。")
    if (end - start).days >= MAX_DAYS:
        raise InputError(f"一次最多导出 {MAX_DAYS} 天。")
    rows = session.exec(select(ShiftAssignment, Shift).join(Shift, col(Shift.id) == ShiftAssignment.shift_id)
                        .where(ShiftAssignment.person_id == person.id, col(Shift.day) >= start,
                               col(Shift.day) <= end, Shift.published == True)  # noqa: E712
                        .order_by(col(Shift.starts_at), col(ShiftAssignment.role))).all()
    by_id = {v.shift.id: v for v in views(session, list({s.id: s for _, s in rows}.values()))}
    cal = Calendar()
    cal.add("prodid", "-//dutybot//roster//ZH")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"{person.name}的值班安排")
    cal.add("x-wr-timezone", "Asia/Shanghai")
    stamp = ensure_utc(now)
    for assignment, shift in rows:
        role = DutyRole(assignment.role)
        view = by_id[shift.id]
        event = Event()
        event.add("uid", f"dutybot-shift-{shift.id}-{role.value}-{person.id}@dutybot")
        event.add("dtstamp", stamp)
        event.add("dtstart", local(shift.starts_at))
        event.add("dtend", local(shift.ends_at))
        event.add("summary", f"值班：{shift.name}（{DUTY_ROLE_ZH[role]}）")
        lines = [f"{label(shift)}（{DUTY_ROLE_ZH[role]}）",
                 f"带班领导：{_phones(view.leaders) or '（空缺）'}",
                 f"值班员：{_phones(view.officers) or '（空缺）'}"]
        if shift.provisional:
            lines.append("（该年度节假日安排尚未发布，班次为暂定）")
        event.add("description", "\n".join(lines))
        event.add("categories", ["值班"])
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    # Only the rules of the exported span: Asia/Shanghai has had no DST since 1991.
    cal.add_missing_timezones(first_date=start - timedelta(days=1), last_date=end + timedelta(days=2))
    return cal.to_ical(), len(rows)
