"""Importing reply items from the message platform's exports (CSV/xlsx); all or nothing.

Every row is checked first; any bad row stops the import with one line per problem
(``第N行：…``, N as the spreadsheet shows it) and nothing is stored. Rows that carry a
reply (答复时间 + 答复摘要) are stored already answered, so historical exports feed the
statistics; open rows get their deadline and reminders like items logged in chat.

Columns (Chinese headers; see :data:`COLUMNS`): 外部编号, 渠道, 类别*, 收到时间*, 摘要*,
单位, 负责人, 答复时间, 答复摘要 (* required).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.clock import SHANGHAI, check_year_range, ensure_utc, local
from core.errors import DutybotError, InputError
from core.profiles import Profile
from core.text import check_name, clean_text
from core.workdays import WorkdayCalendar
from people.models import Person
from replies.flows import ReminderPolicy, schedule_reminders
from replies.models import ReplyCategory, ReplyChannel, ReplyItem, ReplyStatus
from replies.service import (
    MAX_SUMMARY,
    compute_deadline,
    create_item,
    default_channel,
    parse_category,
    parse_channel,
)

COLUMNS = ("外部编号", "渠道", "类别", "收到时间", "摘要", "单位", "负责人", "答复时间", "答复摘要")
REQUIRED = ("类别", "收到时间", "摘要")
COLUMNS_HINT = "、".join(COLUMNS) + "（类别、收到时间、摘要必填）"
MAX_REF, MAX_UNIT = 100, 100
_WHEN = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?$")
_WHEN_HINT = "应为 YYYY-MM-DD HH:MM、YYYY-MM-DDTHH:MM、YYYY/MM/DD HH:MM 或日期 YYYY-MM-DD（北京时间）"


class ReplyImportFailed(InputError):
    """A reply file had bad rows; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("导入失败，未导入任何留言：\n" + "\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ImportRow:
    """One checked row, before it is stored."""

    line: int
    external_ref: str | None
    channel: ReplyChannel
    category: ReplyCategory
    received_at: datetime
    summary: str
    unit: str
    assignee: Person | None
    answered_at: datetime | None
    answer: str | None


def parse_when(text: str, what: str) -> tuple[datetime, bool]:
    """A date-time or a date in Asia/Shanghai; also says whether it was a bare date.

    Raises:
        InputError: not one of the accepted forms, not a real date, or a year outside 2000–2100.
    """
    m = _WHEN.match(text.strip())
    if m is None:
        raise InputError(f"{what}“{text}”无法识别：{_WHEN_HINT}")
    y, mo, d, hh, mm, ss = (int(g) if g is not None else None for g in m.groups())
    try:
        value = datetime(y or 0, mo or 0, d or 0, hh or 0, mm or 0, ss or 0, tzinfo=SHANGHAI)
    except ValueError:
        raise InputError(f"{what}“{text}”不是有效的日期时间") from None
    return ensure_utc(check_year_range(value, what)), hh is None


def _check_row(line: int, row: Mapping[str, str], *, people: dict[str, Person],
               calendar: WorkdayCalendar, profile: Profile, now: datetime) -> ImportRow:
    """Check one row; the first problem found is raised."""
    def get(name: str) -> str:
        return (row.get(name) or "").strip()

    def free_text(name: str) -> str:   # control, zero-width and bidi characters dropped
        return clean_text(get(name)).strip()

    category = parse_category(get("类别")) if get("类别") else None
    if category is None:
        raise InputError("缺少类别")
    channel = parse_channel(get("渠道")) if get("渠道") else default_channel(category)
    if not get("收到时间"):
        raise InputError("缺少收到时间")
    received_at, _ = parse_when(get("收到时间"), "收到时间")
    if received_at > now:
        raise InputError(f"收到时间 {get('收到时间')} 晚于现在")
    summary = free_text("摘要")
    if not summary:
        raise InputError("缺少摘要")
    if len(summary) > MAX_SUMMARY:
        raise InputError(f"摘要过长（{len(summary)} 字，上限 {MAX_SUMMARY} 字）")
    ref = free_text("外部编号") or None
    if ref is not None and len(ref) > MAX_REF:
        raise InputError(f"外部编号过长（上限 {MAX_REF} 字）")
    assignee = None
    if get("负责人"):
        assignee = people.get(get("负责人"))
        if assignee is None:
            raise InputError(f"负责人“{get('负责人')}”不是在册人员（可用 dutybot people list 查看）")
    unit = check_name(get("单位"), "单位名称") or (assignee.unit if assignee else "")
    if len(unit) > MAX_UNIT:
        raise InputError(f"单位名称过长（上限 {MAX_UNIT} 字）")
    answered_at, answer = None, free_text("答复摘要") or None
    if bool(get("答复时间")) != bool(answer):
        raise InputError("答复时间和答复摘要应同时填写（未答复的留言两项都留空）")
    if answer is not None:
        answered_at, bare_date = parse_when(get("答复时间"), "答复时间")
        if bare_date and local(answered_at).date() == local(received_at).date():
            answered_at = received_at   # answered on the day of receipt, time unknown
        if answered_at < received_at:
            raise InputError(f"答复时间 {get('答复时间')} 早于收到时间 {get('收到时间')}")
        if answered_at > now:
            raise InputError(f"答复时间 {get('答复时间')} 晚于现在")
        if len(answer) > MAX_SUMMARY:
            raise InputError(f"答复摘要过长（{len(answer)} 字，上限 {MAX_SUMMARY} 字）")
    # The deadline itself can fail (e.g. a calendar gap): report it on its row.
    compute_deadline(calendar=calendar, profile=profile, category=category, received_at=received_at)
    return ImportRow(line, ref, channel, category, received_at, summary, unit, assignee,
                     answered_at, answer)


def check_rows(*, session: Session, rows: Iterable[Mapping[str, str]], calendar: WorkdayCalendar,
               profile: Profile, now: datetime) -> list[ImportRow]:
    """Check every row (nothing is stored).

    Args:
        session: for looking up people and stored external refs.
        rows: dicts keyed by the Chinese headers, as :func:`core.tables.read_table` gives.
        calendar: the working-day calendar.
        profile: the active rule profile.
        now: the current instant; receipt and reply times may not be later.

    Returns:
        The checked rows, in file order (blank rows skipped).

    Raises:
        ReplyImportFailed: one ``第N行：…`` line per bad row, or no data at all.
    """
    people = {p.name: p for p in session.exec(select(Person).where(Person.active == True))}  # noqa: E712
    problems: list[str] = []
    checked: list[ImportRow] = []
    first_line: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):   # row 1 is the header
        if not any((v or "").strip() for v in row.values()):
            continue
        try:
            item = _check_row(line, row, people=people, calendar=calendar, profile=profile, now=now)
        except DutybotError as exc:
            problems.append(f"第{line}行：{exc.message}")
            continue
        if item.external_ref is not None:
            if item.external_ref in first_line:
                problems.append(f"第{line}行：外部编号 {item.external_ref} 与第{first_line[item.external_ref]}行重复")
                continue
            first_line[item.external_ref] = line
        checked.append(item)
    refs = [r.external_ref for r in checked if r.external_ref is not None]
    stored: dict[str, str] = {}
    for start in range(0, len(refs), 500):   # stay under bound-parameter limits
        stmt = select(ReplyItem.external_ref, ReplyItem.number).where(
            col(ReplyItem.external_ref).in_(refs[start:start + 500]))
        stored.update({ref: number for ref, number in session.exec(stmt) if ref is not None})
    for item in checked:
        if item.external_ref in stored:
            problems.append(f"第{item.line}行：外部编号 {item.external_ref} 已登记过"
                            f"（{stored[item.external_ref]}）")
    if problems:
        problems.sort(key=lambda text: int(text[1:text.index("行")]))
        raise ReplyImportFailed(problems)
    if not checked:
        raise ReplyImportFailed([f"文件中没有留言数据（表头应为：{COLUMNS_HINT}）"])
    return checked


def import_items(*, session: Session, rows: Iterable[Mapping[str, str]], calendar: WorkdayCalendar,
                 profile: Profile, policy: ReminderPolicy, now: datetime, actor: str) -> list[ReplyItem]:
    """Import reply items from table rows; all or nothing. Does not commit.

    Args:
        session: the caller's session; the caller commits.
        rows: dicts keyed by the Chinese headers (:data:`COLUMNS`).
        calendar: the working-day calendar for deadlines and reminders.
        profile: the active rule profile (REPLY-1..5).
        policy: when reminders go out, for rows still open.
        now: the current instant.
        actor: who imports, for the audit log.

    Returns:
        The stored items in file order; answered rows are closed (status ``answered``).

    Raises:
        ReplyImportFailed: one line per bad row; nothing is stored.
    """
    checked = check_rows(session=session, rows=rows, calendar=calendar, profile=profile, now=now)
    items: list[ReplyItem] = []
    for row in checked:
        item, _ = create_item(session=session, calendar=calendar, profile=profile,
                              category=row.category, channel=row.channel, summary=row.summary,
                              received_at=row.received_at, unit=row.unit, assignee=row.assignee,
                              created_by=None, now=now, actor=actor, external_ref=row.external_ref)
        if row.answered_at is not None:
            item.status, item.answer, item.closed_at = ReplyStatus.answered, row.answer, row.answered_at
            session.add(item)
            audit.record(session=session, at=now, entity_type="reply", entity_id=item.number,
                         action="imported_answered", actor=actor, from_state=ReplyStatus.open,
                         to_state=ReplyStatus.answered, answered_at=row.answered_at.isoformat(),
                         on_time=row.answered_at <= item.due_at, line=row.line)
        else:
            schedule_reminders(session=session, item=item, calendar=calendar, policy=policy, now=now)
        items.append(item)
    session.flush()
    return items
