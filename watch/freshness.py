"""Freshness of a site's columns (FRESH-1): the newest date on a column page, how many
entries it lists, and the findings they give against the rule profile.

- :func:`newest_date` reads the dates in the page's visible text (scripts, styles and
  templates are left out) in the formats Chinese CMSs print: ``2026-11-23``,
  ``2026/11/23``, ``2026.11.23``, ``2026年11月23日``, and month-day only as ``[11-23]``,
  ``(11-23)``, ``【11-23】`` or a bare two-digit ``11-23``, its year the latest that does
  not put it in the future. Years outside 2000–2100 (:func:`core.clock.check_year_range`),
  impossible days and dates after tomorrow are ignored.
- :func:`item_count` counts the entries of the page's list (heuristic, below); 0 is an
  empty column.
- :func:`freshness_findings`: ``empty_column`` for a page without entries, ``stale_column``
  when the newest date is older than the FRESH-1 limit of the column's kind, and a
  warning-level one ``fresh_warn_days`` before that.

The limits and their citations come from the profile (``profile.find("FRESH-1", kind)``).
A profile that states no limit for a kind gets no stale finding for it — the bot does not
invent a deadline. An empty column is reported whatever the profile says: where the
office's rules cite 严禁/不得出现空白栏目 (梁平第十七条, 古丈第八条) the finding cites them;
elsewhere it says 本地规定未作要求 and names the national inspection indicators, which list
空白栏目 among their checks, as the reference. A page that did not load gives no freshness
finding (availability reports it).

**Counting entries** (a heuristic, documented in docs/watch.md): an entry is an ``li``,
``tr`` or ``dd`` holding a real link (not ``#`` or ``javascript:``, not a page number or
上一页/下一页), or a ``div``/``p`` row holding a link and a date; entries are grouped by
their parent element and the largest group is the list. Lists inside ``nav``, ``header``,
``footer`` and ``aside``, or inside elements whose id or class names them navigation,
menus, breadcrumbs, pagination or friendly links, are not counted: an empty column page
still carries the site's menus. A list filled in by a script after loading is invisible
to it; a page with an ``iframe`` and no entries is therefore not called empty.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from selectolax.lexbor import LexborHTMLParser, LexborNode

from core.clock import DateOutOfRange, check_year_range, fmt_date_zh, local
from core.profiles import NOT_REQUIRED, Profile, Quantity
from roster.models import Site
from watch.models import COLUMN_KIND_ZH, ColumnKind, FindingKind, SiteColumn
from watch.pages import Page
from watch.types import Found, WatchPolicy, finding_key

#: The reference for blank columns where the office's rules say nothing.
INDICATORS = "参照《政府网站与政务新媒体检查指标》（空白栏目列入检查）"

_INVISIBLE = ["script", "style", "noscript", "template"]
_FULL = re.compile(r"(?<!\d)(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})(?!\d)")
_CN = re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_SHORT_BRACKETED = re.compile(r"[\[［(（【]\s*(\d{1,2})\s*-\s*(\d{1,2})\s*[\]］)）】]")
_SHORT_BARE = re.compile(r"(?<![\d\-/.:])(\d{2})-(\d{2})(?![\d\-/.:])")
#: How many years back a month-day is placed at most (02-29 needs a leap year).
_YEARS_BACK = 8

_ENTRY_TAGS = "li, tr, dd"
_ROW_TAGS = frozenset({"div", "p", "span", "section", "article"})
_CHROME_TAGS = frozenset({"nav", "header", "footer", "aside", "menu"})
_CHROME_WORDS = re.compile(
    r"^(nav|menu|header|footer|foot|breadcrumb|crumb|bread|pagination|pager|page|pages|fenye|"
    r"yqlj|friendlink|friend|links|share|dh|daohang|topbar|toolbar|position|weizhi|dqwz)", re.I)
_TOKEN = re.compile(r"[\s_\-]+")
_PAGER_TEXT = frozenset({"首页", "上一页", "下一页", "尾页", "末页", "上页", "下页", "更多", "more", "更多>>"})


# ---- dates -----------------------------------------------------------------------------

def visible_text(html: str) -> str:
    """The text a reader sees: without scripts, styles and templates."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(_INVISIBLE)
    root = tree.root
    return root.text(separator=" ") if root is not None else ""


def _full(year: int, month: int, day: int, latest: date) -> date | None:
    try:
        found = check_year_range(date(year, month, day))
    except (ValueError, DateOutOfRange):
        return None
    return found if found <= latest else None


def _month_day(month: int, day: int, today: date) -> date | None:
    """The latest date with this month and day that is not after tomorrow."""
    latest = today + timedelta(days=1)
    for year in range(latest.year, latest.year - _YEARS_BACK - 1, -1):
        found = _full(year, month, day, latest)
        if found is not None:
            return found
    return None


def page_dates(html: str, today: date) -> Iterator[date]:
    """Every plausible date in the visible text of ``html`` (module docstring)."""
    text = visible_text(html)
    latest = today + timedelta(days=1)
    for match in _FULL.finditer(text):
        found = _full(int(match.group(1)), int(match.group(3)), int(match.group(4)), latest)
        if found is not None:
            yield found
    for match in _CN.finditer(text):
        found = _full(int(match.group(1)), int(match.group(2)), int(match.group(3)), latest)
        if found is not None:
            yield found
    for pattern in (_SHORT_BRACKETED, _SHORT_BARE):
        for match in pattern.finditer(text):
            found = _month_day(int(match.group(1)), int(match.group(2)), today)
            if found is not None:
                yield found


def newest_date(html: str, today: date) -> date | None:
    """The newest plausible date shown on a column page, or None if it shows none."""
    return max(page_dates(html, today), default=None)


# ---- entries ---------------------------------------------------------------------------

def _is_chrome(node: LexborNode) -> bool:
    """Whether ``node`` is navigation, a menu, a header/footer or pagination."""
    if node.tag in _CHROME_TAGS:
        return True
    names = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
    return any(_CHROME_WORDS.match(token) for token in _TOKEN.split(names) if token)


def _in_chrome(node: LexborNode, cache: dict[int, bool]) -> bool:
    path: list[int] = []
    current: LexborNode | None = node
    verdict = False
    while current is not None and current.tag not in ("body", "html", "-undef"):
        known = cache.get(current.mem_id)
        if known is not None:
            verdict = known
            break
        path.append(current.mem_id)
        if _is_chrome(current):
            verdict = True
            break
        current = current.parent
    for mem_id in path:
        cache[mem_id] = verdict
    return verdict


def _real_link(node: LexborNode) -> bool:
    """Whether ``node`` holds a link to a page (not ``#``, a script, or a page number)."""
    for link in node.css("a[href]"):
        href = (link.attributes.get("href") or "").strip().lower()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
            continue
        text = link.text(strip=True)
        if text.isdigit() or text.lower() in _PAGER_TEXT:
            continue
        return True
    return False


def _has_date(node: LexborNode) -> bool:
    text = node.text(separator=" ")
    return bool(_FULL.search(text) or _CN.search(text) or _SHORT_BRACKETED.search(text)
                or _SHORT_BARE.search(text))


def item_count(html: str) -> int:
    """How many entries the main list of a column page shows (module docstring); 0: none."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(_INVISIBLE)
    chrome: dict[int, bool] = {}
    groups: dict[int, int] = {}
    for entry in tree.css(_ENTRY_TAGS):
        parent = entry.parent
        if parent is None or not _real_link(entry) or _in_chrome(entry, chrome):
            continue
        groups[parent.mem_id] = groups.get(parent.mem_id, 0) + 1
    rows: set[int] = set()
    for link in tree.css("a[href]"):
        row = link.parent
        if row is None or row.tag not in _ROW_TAGS or row.parent is None or row.mem_id in rows:
            continue
        rows.add(row.mem_id)
        if not _real_link(row) or not _has_date(row) or _in_chrome(row, chrome):
            continue
        key = -row.parent.mem_id   # apart from the li/tr/dd groups
        groups[key] = groups.get(key, 0) + 1
    return max(groups.values(), default=0)


def _has_frame(html: str) -> bool:
    return LexborHTMLParser(html).css_first("iframe, frame") is not None


# ---- findings --------------------------------------------------------------------------

def due_date(newest: date, limit: Quantity) -> date | None:
    """The last day within ``limit`` of ``newest`` (months and years on the calendar, the
    day clamped to the month's end); None for a unit that is not a span of days."""
    if limit.unit == "days":
        return newest + timedelta(days=limit.amount)
    if limit.unit == "weeks":
        return newest + timedelta(weeks=limit.amount)
    if limit.unit in ("months", "years"):
        months = limit.amount * (12 if limit.unit == "years" else 1)
        index = newest.year * 12 + newest.month - 1 + months
        year, month = divmod(index, 12)
        month += 1
        return date(year, month, min(newest.day, calendar.monthrange(year, month)[1]))
    return None


def _kind(column: SiteColumn) -> ColumnKind:
    try:
        return ColumnKind(column.kind)
    except ValueError:
        return ColumnKind.other


def _empty(site: Site, column: SiteColumn, profile: Profile) -> Found:
    rule = profile.rule("FRESH-1")
    origin: str
    if rule.regulated:
        basis, origin = f"依据：{rule.citation}", rule.origin or ""
    else:
        basis, origin = f"{NOT_REQUIRED}；工作要求{INDICATORS}", "practice"
    assert site.id is not None
    return Found(
        kind=FindingKind.empty_column, site_id=site.id, url=column.url, key=finding_key(column.url),
        detail=(f"栏目“{column.name}”是空白栏目：页面上没有信息条目，不得出现空白栏目，"
                f"请补充内容或撤并栏目（{basis}）。若栏目内容由脚本加载，请人工核实"),
        data={"column": column.name, "items": 0, "citation": rule.citation if rule.regulated else INDICATORS,
              "basis": origin})


def freshness_findings(site: Site, column: SiteColumn, page: Page, profile: Profile, now: datetime,
                       policy: WatchPolicy) -> list[Found]:
    """``empty_column`` / ``stale_column`` findings of one column page (module docstring).

    Args:
        site: the site (saved: its id is the findings' site).
        column: the column; its kind picks the FRESH-1 value.
        page: the column page as fetched; a page that did not load, or is not to be
            parsed (:attr:`~watch.pages.Page.unparsable`), gives nothing.
        profile: the rule profile (limits and citations).
        now: the instant of the check; its Asia/Shanghai date is "today".
        policy: ``fresh_warn_days``.
    """
    if site.id is None:
        raise ValueError("the site is not saved yet (no id)")
    if not page.ok or not page.is_html or page.unparsable:
        return []
    if item_count(page.html) == 0:
        return [] if _has_frame(page.html) else [_empty(site, column, profile)]
    today = local(now).date()
    newest = newest_date(page.html, today)
    kind = _kind(column)
    limit = profile.find("FRESH-1", kind.value)
    if newest is None or limit is None:
        return []
    due = due_date(newest, limit.quantity)
    if due is None:
        return []
    if today > due:
        level = "breach"
        detail = (f"栏目“{column.name}”（{COLUMN_KIND_ZH[kind]}）最新信息的日期是{fmt_date_zh(newest)}，"
                  f"已超过{limit.zh()}未更新（应于{fmt_date_zh(due)}前更新）。请尽快更新"
                  f"（依据：{limit.citation}）")
    elif policy.fresh_warn_days > 0 and today >= due - timedelta(days=policy.fresh_warn_days):
        level = "warning"
        left = (due - today).days
        remaining = "今天是最后一天" if left == 0 else f"还剩{left}天"
        detail = (f"栏目“{column.name}”（{COLUMN_KIND_ZH[kind]}）最新信息的日期是{fmt_date_zh(newest)}，"
                  f"更新时限为{limit.zh()}（至{fmt_date_zh(due)}），{remaining}，请及时更新"
                  f"（依据：{limit.citation}）")
    else:
        return []
    return [Found(
        kind=FindingKind.stale_column, site_id=site.id, url=column.url,
        key=finding_key(column.url, level), detail=detail,
        data={"level": level, "newest": newest.isoformat(), "due": due.isoformat(), "limit": limit.zh(),
              "citation": limit.citation, "column": column.name, "column_kind": kind.value})]
