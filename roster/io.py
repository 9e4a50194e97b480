"""The office's own 值班表 in and out: import from CSV/xlsx, export to a printable xlsx,
and one iCalendar file per person.

Import is all or nothing: every row is checked first, and any problem stops the import
with one ``第N行：…`` line per problem (N as the spreadsheet shows it; row 1 is the
header) before anything is stored. The exported xlsx has the same columns, so an export
imports back to the same roster.

Columns read: 日期* (YYYY-MM-DD or an Excel date cell), 班次 (a configured shift name;
when the column is absent or the cell empty, the day's first shift), 带班领导* (one
name, may be empty), 值班员* (one or more names separated by 、 , ， ; ； or spaces).
Columns 星期, 时间, 联系电话 (written by the export) are ignored on import.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from core import audit
from core.clock import WEEKDAYS_ZH, ensure_utc, fmt_date_zh, fmt_span_zh, local
from core.errors import InputError
from core.workdays import WorkdayCalendar
from people.models import ROLE_ZH, Person, Role
from roster.models import DUTY_ROLE_ZH, DutyRole, Shift, ShiftAssignment
from roster.patterns import ShiftPatterns
from roster.service import (
    MAX_DAYS,
    Gap,
    ShiftView,
    assign,
    ensure_shifts,
    find_gaps,
    label,
    shifts_between,
    unassign,
    views,
)

IMPORT_COLUMNS = ("日期", "班次", "带班领导", "值班员")
REQUIRED = ("日期", "带班领导", "值班员")
EXPORT_COLUMNS = ("日期", "星期", "班次", "时间", "带班领导", "值班员", "联系电话")
COLUMNS_HINT = ("日期、班次、带班领导、值班员（班次可省略，省略时为当天第一个班次；"
                "值班员多人以顿号分隔；表头须在第一行）")
MAX_GAP_LINES = 20
_DAY = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]00:00(?::00)?)?$")
_EXCEL_SERIAL = re.compile(r"^\d{5}(?:\.0+)?$")
_NAME_SEPARATORS = re.compile(r"[、,，;；\s]+")
_ROLE_FOR = {DutyRole.officer: Role.officer, DutyRole.leader: Role.leader}


class RosterImportFailed(InputError):
    """A 值班表 had bad rows; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("导入失败，未导入任何排班：\n" + "\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RosterRow:
    """One checked row of the 值班表, before it is stored."""

    line: int
    day: date
    shift_name: str
    leader: Person | None
    officers: tuple[Person, ...]


@dataclass
class ImportResult:
    """What an import did, for the Chinese summary."""

    start: date
    end: date
    shifts: list[Shift]
    people: int
    added: int = 0
    removed: int = 0
    gaps: list[Gap] = field(default_factory=list)
    provisional: bool = False

    def summary_zh(self) -> str:
        """The Chinese summary printed after an import."""
        days = len({s.day for s in self.shifts})
        lines = [f"已导入值班表（{span_zh(self.start, self.end)}）：{days} 天、{len(self.shifts)} 个班次、"
                 f"{self.people} 人；新增安排 {self.added} 项，撤下 {self.removed} 项。"]
        if self.provisional:
            lines.append("注意：部分日期所在年度的节假日安排尚未发布，班次按暂定日历生成。")
        if not self.gaps:
            lines.append("该期间所有班次都已排满。")
            return "\n".join(lines)
        lines.append(f"该期间仍有 {len(self.gaps)} 个班次缺人：")
        for gap in self.gaps[:MAX_GAP_LINES]:
            lines.append(f"  {gap_zh(gap)}")
        if len(self.gaps) > MAX_GAP_LINES:
            lines.append(f"  ……另有 {len(self.gaps) - MAX_GAP_LINES} 个")
        return "\n".join(lines)


def span_zh(start: date, end: date) -> str:
    """``2026年12月1日—12月31日``."""
    return fmt_span_zh(start, end)


def gap_zh(gap: Gap) -> str:
    """``12月5日（星期六）全天：缺带班领导``."""
    return f"{fmt_date_zh(gap.day).split('年', 1)[-1]}{gap.shift_name}：缺{'、'.join(gap.missing)}"


def parse_day(text: str) -> date:
    """A date cell: ``2026-12-01``, ``2026/12/1``, ``2026年12月1日`` or an Excel serial number.

    Raises:
        InputError: none of these, or not a real date.
    """
    text = text.strip()
    if _EXCEL_SERIAL.match(text):
        # A date cell that lost its date format shows Excel's day number (1900 system).
        return date(1899, 12, 30) + timedelta(days=int(float(text)))
    m = _DAY.match(text)
    if m is None:
        raise InputError(f"日期“{text}”无法识别：应为 YYYY-MM-DD，如 2026-12-01")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise InputError(f"日期“{text}”不存在") from None


def split_names(text: str) -> list[str]:
    """``王芳、陈晨`` → ``["王芳", "陈晨"]`` (顿号, commas, semicolons or spaces)."""
    return [name for name in _NAME_SEPARATORS.split(text.strip()) if name]


def day_kind_zh(info_day: date, calendar: WorkdayCalendar) -> str:
    """``工作日`` / ``调休上班日（国庆节）`` / ``节假日（国庆节）`` / ``休息日``."""
    info = calendar.day(info_day)
    if info.is_workday:
        return f"调休上班日（{info.name}）" if info.is_makeup and info.name else (
            "调休上班日" if info.is_makeup else "工作日")
    return f"节假日（{info.name}）" if info.name else "休息日"


def _people_problems(names: list[str], role: DutyRole, people: dict[str, Person]) -> tuple[list[Person], list[str]]:
    found: list[Person] = []
    problems: list[str] = []
    column = DUTY_ROLE_ZH[role]
    for name in names:
        person = people.get(name)
        if person is None:
            problems.append(f"{column}“{name}”不在人员名单中（可用 dutybot people list 查看）")
        elif not person.active:
            problems.append(f"{column}“{name}”已停用")
        elif _ROLE_FOR[role] not in person.role_set():
            problems.append(f"{name}填在{column}栏，但没有{ROLE_ZH[_ROLE_FOR[role]]}角色"
                            f"（现有角色：{person.roles_zh()}）")
        elif any(p.id == person.id for p in found):
            problems.append(f"{column}中“{name}”重复")
        else:
            found.append(person)
    return found, problems


def _check_row(row: Mapping[str, str], *, people: dict[str, Person], calendar: WorkdayCalendar,
               patterns: ShiftPatterns) -> tuple[date | None, str | None, Person | None, list[Person], list[str]]:
    """Check one row; returns what it found and every problem (Chinese, without the row number)."""
    def get(name: str) -> str:
        return (row.get(name) or "").strip()

    problems: list[str] = []
    day: date | None = None
    shift_name: str | None = None
    if not get("日期"):
        problems.append("缺少日期")
    else:
        try:
            day = parse_day(get("日期"))
        except InputError as exc:
            problems.append(exc.message)
    if day is not None:
        names = [plan.name for plan in patterns.for_day(day, calendar)]
        shift_name = get("班次") or names[0]
        if shift_name not in names:
            problems.append(f"{day.month}月{day.day}日是{day_kind_zh(day, calendar)}，当天班次为"
                            f"{'、'.join(names)}，没有“{shift_name}”")
            shift_name = None
    leader_names = split_names(get("带班领导"))
    if len(leader_names) > 1:
        problems.append(f"带班领导只能填一人（收到：{'、'.join(leader_names)}）")
    leaders, leader_problems = _people_problems(leader_names[:1], DutyRole.leader, people)
    officer_names = split_names(get("值班员"))
    if not officer_names:
        problems.append("值班员为空（至少填一人）")
    officers, officer_problems = _people_problems(officer_names, DutyRole.officer, people)
    problems += leader_problems + officer_problems
    return day, shift_name, (leaders[0] if leaders else None), officers, problems


def check_rows(*, session: Session, rows: Iterable[Mapping[str, str]], calendar: WorkdayCalendar,
               patterns: ShiftPatterns) -> list[RosterRow]:
    """Check every row of a 值班表 (nothing is stored).

    Args:
        session: for looking up people.
        rows: dicts keyed by the Chinese headers, as :func:`core.tables.read_table` gives.
        calendar: decides each day's pattern (a make-up Saturday has workday shifts).
        patterns: the configured shift patterns.

    Returns:
        The checked rows in file order (blank rows skipped).

    Raises:
        RosterImportFailed: one ``第N行：…`` line per problem, or no data at all.
    """
    people = {p.name: p for p in session.exec(select(Person))}
    problems: list[str] = []
    checked: list[RosterRow] = []
    first_line: dict[tuple[date, str], int] = {}
    for line, row in enumerate(rows, start=2):   # row 1 is the header
        if not any((v or "").strip() for v in row.values()):
            continue
        day, shift_name, leader, officers, row_problems = _check_row(
            row, people=people, calendar=calendar, patterns=patterns)
        if day is not None and shift_name is not None:
            key = (day, shift_name)
            if key in first_line:
                row_problems.insert(0, f"{day.isoformat()} {shift_name}与第{first_line[key]}行重复")
            else:
                first_line[key] = line
        problems += [f"第{line}行：{p}" for p in row_problems]
        if not row_problems and day is not None and shift_name is not None:
            checked.append(RosterRow(line, day, shift_name, leader, tuple(officers)))
    if not problems and not checked:
        problems.append(f"文件中没有值班数据（表头应为：{COLUMNS_HINT}）")
    if checked and not problems:
        days = [r.day for r in checked]
        if (max(days) - min(days)).days >= MAX_DAYS:
            problems.append(f"值班表跨度过长（{min(days).isoformat()} 至 {max(days).isoformat()}），"
                            f"一次最多导入 {MAX_DAYS} 天")
    if problems:
        raise RosterImportFailed(problems)
    return checked


def import_roster(*, session: Session, rows: Iterable[Mapping[str, str]], calendar: WorkdayCalendar,
                  patterns: ShiftPatterns, now: datetime, actor: str, source: str = "") -> ImportResult:
    """Import a 值班表; all or nothing. Does not commit.

    The shifts of the covered days are created (published) where missing; each imported
    shift's people become exactly those of its row (assignments with source ``import``;
    people already there keep their check-in). A draft shift named in the file is published.

    Args:
        session: the caller's session; the caller commits.
        rows: dicts keyed by the Chinese headers (:data:`IMPORT_COLUMNS`).
        calendar: the working-day calendar (which pattern a day has).
        patterns: the configured shift patterns.
        now: the current instant.
        actor: who imports, for the audit log.
        source: the file name, for the audit log.

    Returns:
        What changed, with the shifts of the covered range still without people.

    Raises:
        RosterImportFailed: one line per problem; nothing is stored.
    """
    checked = check_rows(session=session, rows=rows, calendar=calendar, patterns=patterns)
    start, end = min(r.day for r in checked), max(r.day for r in checked)
    stored = {(s.day, s.name): s for s in ensure_shifts(
        session=session, calendar=calendar, patterns=patterns, start=start, end=end, now=now, published=True)}
    targets = [stored[(r.day, r.shift_name)] for r in checked]
    current = {v.shift.id: v for v in views(session, targets)}
    result = ImportResult(start=start, end=end, shifts=targets,
                          people=len({p.id for r in checked for p in (*r.officers, r.leader) if p is not None}))
    for row, shift in zip(checked, targets, strict=True):
        _apply_row(session=session, row=row, shift=shift, view=current[shift.id], result=result,
                   now=now, actor=actor, source=source)
    session.flush()
    result.gaps = find_gaps(session=session, calendar=calendar, patterns=patterns, start=start, end=end)
    result.provisional = any(s.provisional for s in stored.values())
    return result


def _apply_row(*, session: Session, row: RosterRow, shift: Shift, view: ShiftView, result: ImportResult,
               now: datetime, actor: str, source: str) -> None:
    if not shift.published:
        shift.published = True
        session.add(shift)
        audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action="published",
                     actor=actor, from_state="draft", to_state="published", zh=f"{label(shift)}：随值班表导入发布")
    wanted = {DutyRole.officer: list(row.officers), DutyRole.leader: [row.leader] if row.leader else []}
    for role, people in wanted.items():
        keep = {p.id for p in people}
        for person in view.people(role):
            if person.id not in keep and unassign(session=session, shift=shift, person=person, role=role,
                                                  now=now, actor=actor, why="按导入的值班表调整"):
                result.removed += 1
        have = {p.id for p in view.people(role)}
        for person in people:
            if person.id not in have:
                assign(session=session, shift=shift, person=person, role=role, source="import", now=now, actor=actor)
                result.added += 1
    where = f"{source} 第{row.line}行" if source else f"第{row.line}行"
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action="imported", actor=actor,
                 zh=f"{label(shift)}：按值班表导入（{where}）：带班领导 {row.leader.name if row.leader else '（空）'}，"
                    f"值班员 {'、'.join(p.name for p in row.officers)}",
                 source=source, line=row.line)


# ---------------------------------------------------------------- export

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
        raise InputError(f"{span_zh(start, end)}没有已发布的排班，未生成文件。")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "值班表"
    sheet.append(list(EXPORT_COLUMNS))
    for values in export_rows(shift_views):
        sheet.append(values)
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
    sheet.oddHeader.center.text = f"值班表 {span_zh(start, end)}"
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
