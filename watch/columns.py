"""The columns (栏目) of the registered websites that site watch reads for freshness and
emptiness (FRESH-1: 动态要闻 2 weeks, 通知公告·政策文件 6 months, 其他 1 year; no blank
columns).

A column belongs to a website of the registry (``roster.sites``) and is named within it.
Removing a column deactivates it, so its old probes still name it; adding it again makes
it active. Every change is recorded in the audit log against the site (entity ``site``,
actions ``column_added`` / ``column_updated`` / ``column_removed``). Functions work in the
caller's transaction and raise :class:`~core.errors.InputError` (Chinese) on bad input.

Columns are imported from a table of their own (:data:`COLUMNS`): the sheet ``栏目`` of
the sites workbook, or a CSV/xlsx given to ``dutybot sites column import``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from core.errors import DutybotError, InputError, NotFound
from core.text import check_name
from roster.models import Site
from roster.sites import KIND_ZH, SiteKind, SiteNotFound, kind_zh
from watch.models import COLUMN_KIND_ZH, ColumnKind, SiteColumn

MAX_NAME, MAX_URL = 100, 1000
COLUMNS = ("网站", "栏目", "网址", "类型", "单位")
REQUIRED = ("网站", "栏目", "网址")
COLUMNS_HINT = "、".join(COLUMNS) + "（网站、栏目、网址必填；类型：动态要闻、通知公告、政策文件、其他，留空为动态要闻；单位：网站同名登记在多个单位时填写）"
KIND_WORDS_ZH = "动态、要闻、通知公告、政策文件、其他"
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)

COLUMN_KIND_ALIASES: dict[str, ColumnKind] = {k.value: k for k in ColumnKind} | {
    v: k for k, v in COLUMN_KIND_ZH.items()} | {
    "动态": ColumnKind.news, "要闻": ColumnKind.news, "新闻": ColumnKind.news, "工作动态": ColumnKind.news,
    "动态要闻类": ColumnKind.news, "通知公告": ColumnKind.notices, "通知": ColumnKind.notices,
    "公告": ColumnKind.notices, "政策文件": ColumnKind.notices, "政策": ColumnKind.notices,
    "文件": ColumnKind.notices, "通知公告类": ColumnKind.notices, "政策文件类": ColumnKind.notices,
    "其他": ColumnKind.other, "其它": ColumnKind.other,
}


class ColumnNotFound(NotFound):
    def __init__(self, site: str, name: str) -> None:
        super().__init__(f"网站“{site}”没有在用的栏目“{name}”（查看：dutybot sites column list {site}）。")
        self.site = site
        self.name = name


class ColumnImportFailed(InputError):
    """A columns table had bad rows; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("栏目导入失败，未导入任何栏目：\n" + "\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class NewColumn:
    """A checked column, before it is stored."""

    name: str
    url: str
    kind: ColumnKind


def parse_column_kind(text: str) -> ColumnKind:
    """``news`` / ``动态`` / ``通知公告`` … as a :class:`ColumnKind` (empty: news).

    Raises:
        InputError: an unknown word, with the accepted ones.
    """
    word = text.strip()
    if not word:
        return ColumnKind.news
    found = COLUMN_KIND_ALIASES.get(word) or COLUMN_KIND_ALIASES.get(word.lower())
    if found is None:
        raise InputError(f"无法识别的栏目类型“{word}”（可用：{KIND_WORDS_ZH}）")
    return found


def validate_column(name: str, url: str, kind: str = "") -> NewColumn:
    """Check one column's fields; the first problem is raised as an InputError."""
    name, url = check_name(name, "栏目名称"), check_name(url, "栏目网址")
    if not name:
        raise InputError("缺少栏目名称")
    if len(name) > MAX_NAME:
        raise InputError(f"栏目名称过长（上限 {MAX_NAME} 字）")
    if not url:
        raise InputError(f"栏目“{name}”须填写网址")
    if len(url) > MAX_URL:
        raise InputError(f"栏目网址过长（上限 {MAX_URL} 字）")
    if not _URL.match(url):
        raise InputError(f"栏目网址“{url}”应以 http:// 或 https:// 开头")
    return NewColumn(name, url, parse_column_kind(kind))


def website_named(*, session: Session, name: str, unit: str | None = None) -> Site:
    """The active website called ``name`` (of ``unit`` when given).

    Raises:
        SiteNotFound: no such active site.
        InputError: it is not a website, or the name is used by several units and ``unit``
            was not given.
    """
    stmt = select(Site).where(Site.name == name.strip(), Site.active == True)  # noqa: E712
    if unit is not None:
        stmt = stmt.where(Site.unit == unit.strip())
    found = list(session.exec(stmt.order_by(col(Site.id))))
    if not found:
        raise SiteNotFound(name.strip())
    if len(found) > 1:
        units = "、".join(s.unit or "各单位" for s in found)
        raise InputError(f"“{name.strip()}”在多个单位登记（{units}），请指明单位。")
    site = found[0]
    if site.kind != SiteKind.website:
        raise InputError(f"“{site.name}”是{kind_zh(site)}，只有{KIND_ZH[SiteKind.website]}才能登记栏目。")
    return site


def _describe(site: Site, column: SiteColumn) -> str:
    return f"{site.name}｜{column_line(column)}"


def add_column(*, session: Session, site: Site, new: NewColumn, now: datetime,
               actor: str) -> tuple[SiteColumn, bool]:
    """Register ``new`` on ``site`` (or update and reactivate its column of the same name).

    Returns:
        The column and whether it was newly created.
    """
    assert site.id is not None
    column = session.exec(select(SiteColumn).where(SiteColumn.site_id == site.id,
                                                   SiteColumn.name == new.name)).first()
    created = column is None
    if column is None:
        column = SiteColumn(site_id=site.id, name=new.name, url=new.url, kind=new.kind.value, created_at=now)
    else:
        column.url, column.kind, column.active = new.url, new.kind.value, True
    session.add(column)
    session.flush()
    audit.record(session=session, at=now, entity_type="site", entity_id=site.id,
                 action="column_added" if created else "column_updated", actor=actor,
                 zh=("登记栏目：" if created else "更新栏目：") + _describe(site, column),
                 column=column.name, url=column.url, kind=column.kind)
    return column, created


def remove_column(*, session: Session, site: Site, name: str, now: datetime, actor: str) -> SiteColumn:
    """Deactivate the active column ``name`` of ``site``.

    Raises:
        ColumnNotFound: the site has no such active column.
    """
    column = session.exec(select(SiteColumn).where(SiteColumn.site_id == site.id, SiteColumn.name == name.strip(),
                                                   SiteColumn.active == True)).first()  # noqa: E712
    if column is None:
        raise ColumnNotFound(site.name, name.strip())
    column.active = False
    session.add(column)
    audit.record(session=session, at=now, entity_type="site", entity_id=site.id or 0, action="column_removed",
                 actor=actor, from_state="active", to_state="inactive", zh=f"停用栏目：{_describe(site, column)}",
                 column=column.name)
    return column


def columns_of(*, session: Session, site_id: int | None = None, include_inactive: bool = False) -> list[SiteColumn]:
    """Columns (of one site when ``site_id`` is given), by site and name."""
    stmt = select(SiteColumn)
    if site_id is not None:
        stmt = stmt.where(SiteColumn.site_id == site_id)
    if not include_inactive:
        stmt = stmt.where(SiteColumn.active == True)  # noqa: E712
    return list(session.exec(stmt.order_by(col(SiteColumn.site_id), col(SiteColumn.name), col(SiteColumn.id))))


def kind_label(column: SiteColumn) -> str:
    """The Chinese name of the column's kind."""
    try:
        return COLUMN_KIND_ZH[ColumnKind(column.kind)]
    except ValueError:
        return column.kind


def column_line(column: SiteColumn) -> str:
    """``通知公告（通知公告·政策文件） https://…``."""
    return f"{column.name}（{kind_label(column)}） {column.url}"


def check_column_rows(*, session: Session, rows: Iterable[Mapping[str, str]],
                      line_of_first: int = 2) -> list[tuple[Site, NewColumn]]:
    """Check every row of a columns table against the stored websites (nothing stored);
    blank rows are skipped.

    Raises:
        ColumnImportFailed: one ``第N行：…`` line per bad row, or no data at all.
    """
    problems: list[str] = []
    checked: list[tuple[Site, NewColumn]] = []
    first: dict[tuple[int, str], int] = {}
    for line, row in enumerate(rows, start=line_of_first):
        if not any((v or "").strip() for v in row.values()):
            continue
        try:
            site_name = check_name(row.get("网站") or "", "网站名称")
            if not site_name:
                raise InputError("缺少网站名称")
            unit = (row.get("单位") or "").strip() or None
            site = website_named(session=session, name=site_name, unit=unit)
            new = validate_column(row.get("栏目") or "", row.get("网址") or "", row.get("类型") or "")
        except DutybotError as exc:
            problems.append(f"第{line}行：{exc.message}")
            continue
        assert site.id is not None
        key = (site.id, new.name)
        if key in first:
            problems.append(f"第{line}行：“{site.name}”的栏目“{new.name}”与第{first[key]}行重复")
            continue
        first[key] = line
        checked.append((site, new))
    if problems:
        raise ColumnImportFailed(problems)
    if not checked:
        raise ColumnImportFailed([f"没有栏目数据（表头应为：{COLUMNS_HINT}）"])
    return checked


def import_columns(*, session: Session, rows: Iterable[Mapping[str, str]], now: datetime,
                   actor: str) -> tuple[list[SiteColumn], int]:
    """Import columns from table rows (:data:`COLUMNS`); all or nothing. Does not commit.

    Returns:
        The stored columns in file order, and how many of them were new.

    Raises:
        ColumnImportFailed: one line per bad row; nothing is stored.
    """
    stored, created = [], 0
    for site, new in check_column_rows(session=session, rows=rows):
        column, was_new = add_column(session=session, site=site, new=new, now=now, actor=actor)
        stored.append(column)
        created += was_new
    return stored, created
