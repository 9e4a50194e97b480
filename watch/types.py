"""What the checks of site watch produce and the settings they run with.

Every check returns :class:`Found` values (pure data, not yet stored); ``watch.store``
turns them into :class:`~watch.models.Finding` rows, one per (site, kind, key) while the
problem persists. :class:`WatchPolicy` is the domain's view of ``[watch]`` in the config.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from watch.models import FindingKind


def finding_key(*parts: str) -> str:
    """A stable 64-character identity for a finding (e.g. its URL and term)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Found:
    """One problem a check saw on one run.

    ``key`` identifies it within (site, kind) across runs, so that a problem seen again
    is the same finding; ``detail`` is the Chinese line people read; ``data`` holds what
    ``--json`` shows besides (status, term, context, days …).
    """

    kind: FindingKind
    site_id: int
    url: str
    detail: str
    key: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchPolicy:
    """``[watch]``: how often each check runs and the limits it applies.

    The thresholds that the national inspection indicators set (a homepage unreachable in
    more than 5% of a month's probes) are facts of that document, not of the office's own
    regulation; where they are shown, they are labelled as 参照《政府网站与政务新媒体检查指标》.
    """

    availability_minutes: int = 5
    freshness_minutes: int = 360
    links_minutes: int = 1440
    content_minutes: int = 60
    down_after: int = 3                 # consecutive failed probes before a site_down incident
    slow_ms: int = 5000
    month_warn_pct: float = 3.0
    month_fail_pct: float = 5.0
    cert_warn_days: int = 14
    fresh_warn_days: int = 3
    crawl_depth: int = 2
    crawl_max_pages: int = 200
    per_host_concurrency: int = 2
    polite_delay_ms: int = 500
    timeout_seconds: float = 15.0
    max_bytes: int = 5_000_000
    user_agent: str = "dutybot-watch/1.0 (government website duty reading)"
    lexicons: tuple[str, ...] = ()      # lexicon files; () = the shipped default lexicon
    probe_keep_days: int = 400          # probes older than this are deleted every night (0: kept)
