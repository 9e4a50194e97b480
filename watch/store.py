"""Storing what the checks found: one open :class:`~watch.models.Finding` per (site, kind,
key) while the problem persists.

A run of some checks on a site hands :func:`store_findings` what it saw and the kinds it
looked for. A problem seen again keeps its row (``last_seen``, detail and data
refreshed); a new one gets a row and is returned as new, for ``watch.dispatch`` to push;
an open finding of a looked-for kind that was not seen is closed — only on the pages the
run read (``within``), when it says which: not seeing a term on a page that did not load,
or that this run did not scan, says nothing about the term.

Keys of ``data`` that start with ``_`` are the dispatcher's own (who was told, the
evidence kept); a refresh keeps them. Everything works in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from roster.models import Site
from watch.models import Finding, FindingKind, FindingStatus
from watch.types import Found

MAX_DETAIL, MAX_URL, MAX_KEY = 500, 1000, 64


@dataclass
class StoreResult:
    """What one store did: the findings first seen now, those seen again, those closed."""

    new: list[Finding] = field(default_factory=list)
    still_open: list[Finding] = field(default_factory=list)
    closed: list[Finding] = field(default_factory=list)


def finding_data(finding: Finding) -> dict[str, Any]:
    """The finding's ``data`` as a dict (``{}`` when unreadable)."""
    try:
        value = json.loads(finding.data or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def set_finding_data(finding: Finding, data: dict[str, Any]) -> None:
    finding.data = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def _refresh(finding: Finding, found: Found, now: datetime) -> None:
    own = {k: v for k, v in finding_data(finding).items() if k.startswith("_")}
    finding.url, finding.detail = found.url[:MAX_URL], found.detail[:MAX_DETAIL]
    set_finding_data(finding, {**found.data, **own})
    finding.last_seen = now


def _unique(found: Iterable[Found]) -> list[Found]:
    """One per (kind, key), the first seen."""
    seen: dict[tuple[str, str], Found] = {}
    for item in found:
        seen.setdefault((item.kind.value, item.key), item)
    return list(seen.values())


def store_findings(session: Session, site: Site, found: list[Found], kinds: Collection[FindingKind],
                   now: datetime, *, within: Collection[str] | None = None) -> StoreResult:
    """Store one run's findings on ``site``.

    Args:
        session: the caller's; not committed here.
        site: the site checked.
        found: what the run saw (other sites' items are ignored).
        kinds: the kinds the run looked for; open findings of these kinds not in ``found``
            are closed (the kinds in ``found`` count as looked for too).
        now: when the run looked.
        within: the pages the run read; open findings on other pages stay as they are
            (None: every page of the site counts as read).

    Returns:
        The new, still open and closed findings, each list in a stable order.
    """
    assert site.id is not None
    looked = {FindingKind(k).value for k in kinds} | {f.kind.value for f in found}
    open_rows = list(session.exec(
        select(Finding).where(Finding.site_id == site.id, Finding.status == FindingStatus.open,
                              col(Finding.kind).in_(sorted(looked)))
        .order_by(col(Finding.id))))
    by_key = {(f.kind, f.key): f for f in open_rows}
    result = StoreResult()
    seen: set[tuple[str, str]] = set()
    for item in _unique(f for f in found if f.site_id == site.id):
        ident = (item.kind.value, item.key[:MAX_KEY])
        seen.add(ident)
        row = by_key.get(ident)
        if row is None:
            row = Finding(site_id=site.id, kind=item.kind.value, key=item.key[:MAX_KEY], url=item.url[:MAX_URL],
                          detail=item.detail[:MAX_DETAIL], first_seen=now, last_seen=now)
            set_finding_data(row, dict(item.data))
            result.new.append(row)
        else:
            _refresh(row, item, now)
            result.still_open.append(row)
        session.add(row)
    read = set(within) if within is not None else None
    for row in open_rows:
        if (row.kind, row.key) in seen or (read is not None and row.url not in read):
            continue
        row.status, row.closed_at = FindingStatus.closed, now
        session.add(row)
        result.closed.append(row)
    session.flush()
    return result


def open_findings(session: Session, site_id: int | None = None,
                  kinds: Collection[FindingKind] | None = None) -> list[Finding]:
    """Open findings (of one site, of some kinds), by site, kind and first seen."""
    stmt = select(Finding).where(Finding.status == FindingStatus.open)
    if site_id is not None:
        stmt = stmt.where(Finding.site_id == site_id)
    if kinds is not None:
        stmt = stmt.where(col(Finding.kind).in_([FindingKind(k).value for k in kinds]))
    return list(session.exec(stmt.order_by(col(Finding.site_id), col(Finding.kind), col(Finding.first_seen),
                                           col(Finding.id))))


def close_open(session: Session, site_id: int, kind: FindingKind, now: datetime) -> list[Finding]:
    """Close every open finding of ``kind`` on the site (a baseline accepted, say)."""
    rows = open_findings(session, site_id, (kind,))
    for row in rows:
        row.status, row.closed_at = FindingStatus.closed, now
        session.add(row)
    return rows
