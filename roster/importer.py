"""The office's own 值班表 in: import from CSV/xlsx (the export is ``roster.export``).

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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from core import audit
from core.clock import DateOutOfRange, check_year_range, fmt_date_zh, fmt_span_zh
from core.errors import InputError
from core.text import HIDDEN_CHARS_ZH, has_hidden
from core.workdays import WorkdayCalendar
from people.models import ROLE_ZH, Person, Role
from roster.models import DUTY_ROLE_ZH, DutyRole, Shift
from roster.patterns import ShiftPatterns
from roster.service import (
    MAX_DAYS,
    Gap,
    ShiftView,
    assign,
    ensure_shifts,
    find_gaps,
    label,
    unassign,
    views,
)

IMPORT_COLUMNS = ("日期", "班次", "带班领导", "值班员")
REQUIRED = ("日期", "带班领导", "值班员")
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
        InputError: none of these, not a real date, or a year outside 2000–2100.
    """
    text = text.strip()
    if _EXCEL_SERIAL.match(text):
        # A date cell that lost its date format shows Excel's day number (1900 system).
        return check_year_range(date(1899, 12, 30) + timedelta(days=int(float(text))))
    m = _DAY.match(text)
    if m is None:
        raise InputError(f"日期“{text}”无法识别：应为 YYYY-MM-DD，如 2026-12-01")
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise InputError(f"日期“{text}”不存在") from None
    try:
        return check_year_range(day)
    except DateOutOfRange as exc:
        raise DateOutOfRange(f"“{text}”：{exc.message}") from None


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
        if has_hidden(name):
            problems.append(f"{column}的姓名{HIDDEN_CHARS_ZH}")
        elif person is None:
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
    assert shift.id is not None
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
