"""Where each watched site stands: this month's availability and its open findings, as
short lines for a phone (``/sites status``, ``dutybot watch status``, the briefing).

Read-only; every query is by site on the findings' ``(status, site_id)`` index and the
probes' ``(site_id, at)`` index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from roster.models import Site
from roster.sites import SiteKind
from watch.availability import monthly_availability
from watch.models import FINDING_ZH, Finding, FindingKind
from watch.store import open_findings

#: The order kinds are listed in: what stops a site first.
ORDER = (FindingKind.unreachable, FindingKind.tampered, FindingKind.hidden_link, FindingKind.sensitive_term,
         FindingKind.availability, FindingKind.cert_expiry, FindingKind.slow, FindingKind.stale_column,
         FindingKind.empty_column, FindingKind.wrong_term, FindingKind.broken_link)
MAX_DETAIL = 60


@dataclass(frozen=True)
class SiteHealth:
    """One site: this month's availability (percent; None without probes) and its open
    findings."""

    site: Site
    availability: float | None
    findings: tuple[Finding, ...]

    def of(self, kind: FindingKind) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind.value]


def watched_sites(session: Session, *, unit: str | None = None, name: str | None = None) -> list[Site]:
    """The active websites with an address (of ``unit`` and the shared ones; called
    ``name``), by unit and name."""
    stmt = select(Site).where(Site.active == True, Site.kind == SiteKind.website, Site.url != "")  # noqa: E712
    if unit is not None:
        stmt = stmt.where(col(Site.unit).in_([unit, ""]))
    if name is not None:
        stmt = stmt.where(Site.name == name.strip())
    return list(session.exec(stmt.order_by(col(Site.unit), col(Site.name), col(Site.id))))


def health(session: Session, sites: Sequence[Site], now: datetime) -> list[SiteHealth]:
    """Each site's availability this month and open findings."""
    out = []
    for site in sites:
        if site.id is None:
            continue
        rank = {k.value: n for n, k in enumerate(ORDER)}
        found = sorted(open_findings(session, site.id), key=lambda f: (rank.get(f.kind, 99), f.first_seen, f.id or 0))
        out.append(SiteHealth(site, monthly_availability(session, site, now), tuple(found)))
    return out


def pct_zh(value: float | None) -> str:
    """``99.2%``, ``100%``; ``暂无探测`` without probes."""
    if value is None:
        return "暂无探测"
    return f"{value:.1f}".removesuffix(".0") + "%"


def _short(text: str, limit: int = MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def item_lines(entry: SiteHealth) -> list[str]:
    """One line per kind of open finding: its detail when alone, else how many."""
    lines = []
    for kind in ORDER:
        rows = entry.of(kind)
        if not rows:
            continue
        incident = next((f.incident_number for f in rows if f.incident_number), "")
        tail = f"（事件 {incident}）" if incident else ""
        if len(rows) == 1:
            lines.append(f"{FINDING_ZH[kind]}：{_short(rows[0].detail)}{tail}")
        else:
            lines.append(f"{FINDING_ZH[kind]} {len(rows)} 处{tail}")
    return lines


def head_line(entry: SiteHealth) -> str:
    """``区政府门户网站：本月可用率 99.2%｜待处理 3 项`` (or ``｜无待处理问题``)."""
    open_count = len(entry.findings)
    state = f"待处理 {open_count} 项" if open_count else "无待处理问题"
    return f"{entry.site.name}：本月可用率 {pct_zh(entry.availability)}｜{state}"


def status_lines(entries: Sequence[SiteHealth], *, max_items: int = 5) -> list[str]:
    """Every site's head line and (indented) up to ``max_items`` kinds of its findings."""
    lines = []
    for entry in entries:
        lines.append(head_line(entry))
        items = item_lines(entry)
        lines += [f"  · {line}" for line in items[:max_items]]
        if len(items) > max_items:
            lines.append(f"  · ……另有 {len(items) - max_items} 类问题")
    return lines


def incident_findings(session: Session) -> list[Finding]:
    """Open findings that opened (or joined) an incident, newest first."""
    stmt = (select(Finding).where(Finding.status == "open", Finding.incident_number != "")
            .order_by(col(Finding.first_seen).desc(), col(Finding.id).desc()))
    return list(session.exec(stmt))
