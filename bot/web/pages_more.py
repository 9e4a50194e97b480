"""留言 (open reply items of the viewer's units, overdue first, and the period's statistics)
and 网站 (site watch: availability this month, stale columns, open findings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import col, select
from starlette.responses import Response

from bot.web.board import Page
from core.clock import local
from core.messages import duration_zh
from replies.models import CATEGORY_ZH, ReplyItem, ReplyStatus
from replies.stats import GroupStats, compute_stats
from watch.models import FINDING_ZH, FindingKind
from watch.status import SiteHealth, health, item_lines, pct_zh, watched_sites

MAX_ITEMS = 300


@dataclass(frozen=True)
class ReplyRow:
    item: ReplyItem
    category: str
    overdue: bool
    left: str


def _rate(g: GroupStats) -> str:
    rate = g.on_time_rate
    return "—" if rate is None else f"{rate * 100:.1f}".removesuffix(".0") + "%"


def replies_page(page: Page) -> Response:
    now = page.now
    stmt = select(ReplyItem).where(ReplyItem.status == ReplyStatus.open)
    units = page.viewer.units_filter()
    if units is not None:
        stmt = stmt.where(col(ReplyItem.unit).in_(units))
    items = list(page.db.exec(stmt.order_by(col(ReplyItem.due_at)).limit(MAX_ITEMS)))
    rows = [ReplyRow(i, CATEGORY_ZH.get(i.category, i.category), i.due_at <= now,  # type: ignore[call-overload]
                     ("已超期 " + duration_zh(now - i.due_at)) if i.due_at <= now
                     else ("剩余 " + duration_zh(i.due_at - now))) for i in items]
    by_unit: dict[str, list[ReplyRow]] = {}
    for row in sorted(rows, key=lambda r: (not r.overdue, r.item.due_at)):
        by_unit.setdefault(row.item.unit or "未登记单位", []).append(row)
    today = local(now).date()
    start = _start(page, today)
    stats = compute_stats(session=page.db, start=start, end=today, now=now)
    groups = [g for g in stats.by_unit if page.viewer.sees_unit(g.name)]
    if page.viewer.district:
        groups = [stats.total, *groups]
    return page.render("replies.html", title="留言", active="replies", by_unit=by_unit, count=len(rows),
                       groups=[(g, _rate(g)) for g in groups], start=start, end=today,
                       period=page.query.get("period", "month"))


def _start(page: Page, today: date) -> date:
    period = page.query.get("period", "month")
    if period == "year":
        return today.replace(month=1, day=1)
    if period == "quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    if period == "week":
        return today - timedelta(days=today.weekday())
    return today.replace(day=1)


def sites_page(page: Page) -> Response:
    unit = None if page.viewer.district else page.viewer.unit
    sites = watched_sites(page.db, unit=unit) if unit != "" else []
    entries = []
    for entry in health(page.db, sites, page.now):
        stale = [f.detail for f in entry.of(FindingKind.stale_column)]
        others = SiteHealth(entry.site, entry.availability,
                            tuple(f for f in entry.findings if f.kind != FindingKind.stale_column.value))
        css = "muted" if entry.availability is None else "warn" if entry.availability < 99 else "ok"
        entries.append({"site": entry.site, "availability": pct_zh(entry.availability), "css": css,
                        "stale": stale, "lines": item_lines(others), "count": len(entry.findings)})
    return page.render("sites.html", title="网站", active="sites", entries=entries,
                       stale_zh=FINDING_ZH[FindingKind.stale_column])
