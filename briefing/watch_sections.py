"""Site watch in the daily briefing: each website with open findings, its availability this
month, its findings counted by kind (stale and empty columns, broken links, term hits …)
and the incidents they opened. Short lines; nothing when no site has an open finding.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlmodel import Session

from briefing.models import Section, SectionProvider, Urgency
from core.workdays import WorkdayCalendar
from watch.models import FINDING_ZH, FindingKind
from watch.status import ORDER, SiteHealth, health, pct_zh, watched_sites

#: Kinds that need someone now: the section goes with today's work, else with tomorrow's.
URGENT = frozenset({FindingKind.unreachable, FindingKind.tampered, FindingKind.hidden_link,
                    FindingKind.sensitive_term, FindingKind.cert_expiry})
HINT = "详情：/sites status；问题消除后下次巡检自动销号"


def _item(entry: SiteHealth) -> str:
    counts = Counter(f.kind for f in entry.findings)
    kinds = "、".join(f"{FINDING_ZH[k]}{counts[k.value]}" for k in ORDER if counts[k.value])
    incidents = list(dict.fromkeys(f.incident_number for f in entry.findings if f.incident_number))
    tail = f"｜事件 {'、'.join(incidents)}" if incidents else ""
    return f"{entry.site.name}（本月可用率 {pct_zh(entry.availability)}）：{kinds}{tail}"


def site_health(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> Section | None:
    """The websites with open findings, the most urgent first."""
    entries = [e for e in health(session, watched_sites(session), now) if e.findings]
    if not entries:
        return None
    urgent = [e for e in entries if any(FindingKind(f.kind) in URGENT for f in e.findings)]
    entries = urgent + [e for e in entries if e not in urgent]
    total = sum(len(e.findings) for e in entries)
    return Section("watch.sites", Urgency.today if urgent else Urgency.soon,
                   f"【网站巡检】{len(entries)} 个网站有 {total} 个待处理问题",
                   tag=f"网站问题{total}", items=tuple(_item(e) for e in entries[:settings.max_lines]),
                   total_items=len(entries), hint=HINT)


DAILY: tuple[SectionProvider, ...] = (site_health,)
WEEKLY: tuple[SectionProvider, ...] = ()
