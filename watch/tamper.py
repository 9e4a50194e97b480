"""Tampering: a page (the homepage) compared with its accepted baseline (issue 17 item 2).

A :class:`Snapshot` holds what an attacker changes and an editor seldom does: external
script sources, (i)frame sources, the meta refresh and the link targets, plus the SHA-256
of the visible text (whitespace-normalised :func:`watch.text.visible_text`) and the HTML
itself as evidence. Script and frame sources are kept without query string and fragment,
so a cache-busting ``?v=20261123`` or another video id in an embed is not a change.

:func:`compare` reports as tampering (each :class:`Change` with a Chinese description):

- an external script added or removed;
- an iframe or frame added or removed;
- the meta refresh added, removed or pointed elsewhere;
- links to a host that was not linked before, off the site (another registered domain
  than the page) and outside ``gov.cn`` — the hosts no longer linked are listed with them,
  but a removal alone is an editor's work, not an attack;
- the links falling away: at least :data:`DROP_MIN_LINKS` links before and less than a
  fifth of them now (a defaced homepage replaced by a single message).

Text changes — news updated, a date, whitespace — and new links within the site are what
a homepage does every day: never tampering. The first run has no baseline and reports
nothing; the caller stores the snapshot (:func:`apply_to_row`) and compares later runs
with it (:func:`snapshot_from_row`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roster.models import Site
from watch.models import Baseline, FindingKind
from watch.text import PageContent, host_of, is_gov_host, read_page, same_site
from watch.types import Found, finding_key

#: Below this many links before, a fall in their number is not read as defacement.
DROP_MIN_LINKS = 20
#: Items listed by name in a description before "等 N 个".
_SHOWN = 5


@dataclass(frozen=True)
class Snapshot:
    """The state of a page that tampering is judged on (see the module docstring).

    ``links`` are the sorted distinct link targets; ``scripts`` and ``iframes`` sorted
    distinct sources; ``base_url`` the page's address, which says what is off-site.
    """

    text_sha256: str
    links: tuple[str, ...]
    scripts: tuple[str, ...]
    iframes: tuple[str, ...]
    meta_refresh: str
    html: str
    base_url: str = ""


@dataclass(frozen=True)
class Change:
    """One tampering change: ``kind`` (script, iframe, meta_refresh, link_host,
    links_dropped), what was added and removed, and ``detail`` in Chinese."""

    kind: str
    detail: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """A stable text of the change, the same on every run that sees it."""
        return f"{self.kind}|+{','.join(self.added)}|-{','.join(self.removed)}"


def text_digest(text: str) -> str:
    """SHA-256 (hex) of the whitespace-normalised text."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def snapshot(html: str, base_url: str, *, page: PageContent | None = None) -> Snapshot:
    """The snapshot of the page ``html`` fetched from ``base_url`` (``page``: the same
    page already parsed by :func:`watch.text.read_page`, to save parsing it again)."""
    page = page if page is not None else read_page(html, base_url)
    return Snapshot(text_sha256=text_digest(page.text),
                    links=tuple(sorted({link.href for link in page.links})),
                    scripts=tuple(sorted(set(page.scripts))),
                    iframes=tuple(sorted(set(page.iframes))),
                    meta_refresh=page.meta_refresh, html=html, base_url=base_url)


def _listing(items: tuple[str, ...]) -> str:
    shown = "、".join(items[:_SHOWN])
    return f"{shown} 等 {len(items)} 个" if len(items) > _SHOWN else shown


def _offsite_hosts(snap: Snapshot, home: tuple[str, ...]) -> set[str]:
    hosts = {host_of(link) for link in snap.links}
    return {h for h in hosts if h and not same_site(h, *home) and not is_gov_host(h)}


def compare(old: Snapshot, new: Snapshot) -> list[Change]:
    """The tampering changes from ``old`` (the baseline) to ``new``; [] when none."""
    changes: list[Change] = []
    for kind, name, before, after in (("script", "外部脚本", old.scripts, new.scripts),
                                      ("iframe", "内嵌框架（iframe）", old.iframes, new.iframes)):
        added = tuple(sorted(set(after) - set(before)))
        removed = tuple(sorted(set(before) - set(after)))
        parts = ([f"新增{name} {_listing(added)}"] if added else []) + (
            [f"移除{name} {_listing(removed)}"] if removed else [])
        if parts:
            changes.append(Change(kind, "；".join(parts), added, removed))
    if old.meta_refresh != new.meta_refresh:
        if not old.meta_refresh:
            detail = f"新增自动跳转（meta refresh）：{new.meta_refresh}"
        elif not new.meta_refresh:
            detail = f"自动跳转（meta refresh）被移除，原为：{old.meta_refresh}"
        else:
            detail = f"自动跳转（meta refresh）由 {old.meta_refresh} 改为 {new.meta_refresh}"
        changes.append(Change("meta_refresh", detail, tuple(filter(None, [new.meta_refresh])),
                              tuple(filter(None, [old.meta_refresh]))))
    home = tuple(h for h in (host_of(new.base_url), host_of(old.base_url)) if h)
    before_hosts, after_hosts = _offsite_hosts(old, home), _offsite_hosts(new, home)
    added_hosts = tuple(sorted(after_hosts - before_hosts))
    if added_hosts:
        removed_hosts = tuple(sorted(before_hosts - after_hosts))
        gone = f"；不再链接 {_listing(removed_hosts)}" if removed_hosts else ""
        changes.append(Change("link_host", f"新增指向站外网站 {_listing(added_hosts)} 的链接{gone}",
                              added_hosts, removed_hosts))
    if len(old.links) >= DROP_MIN_LINKS and len(new.links) * 5 < len(old.links):
        changes.append(Change("links_dropped",
                              f"页面链接由 {len(old.links)} 个骤减到 {len(new.links)} 个，页面可能被整体替换",
                              (str(len(new.links)),), (str(len(old.links)),)))
    return changes


def _evidence(snap: Snapshot, home: tuple[str, ...]) -> dict[str, Any]:
    offsite = _offsite_hosts(snap, home)
    return {"text_sha256": snap.text_sha256, "scripts": list(snap.scripts),
            "iframes": list(snap.iframes), "meta_refresh": snap.meta_refresh,
            "link_count": len(snap.links),
            "offsite_links": [link for link in snap.links if host_of(link) in offsite]}


def tamper_findings(site: Site, url: str, old: Snapshot | None, new: Snapshot) -> list[Found]:
    """One ``tampered`` finding when ``new`` differs from the baseline ``old`` by any
    :func:`compare` change; none without a baseline.

    The key is built from the sorted change summaries, so the same change seen on later
    runs is the same finding and a further change is a new one. ``data`` holds the changes
    and, for both versions, the scripts, frames, meta refresh, link count and off-site
    links (the HTML of both is in the snapshots, for the caller to keep as evidence).
    """
    if site.id is None:
        raise ValueError("tamper_findings needs a stored site")
    if old is None:
        return []
    changes = compare(old, new)
    if not changes:
        return []
    home = tuple(h for h in (host_of(url), host_of(new.base_url), host_of(site.url)) if h)
    detail = "页面疑似被篡改：" + "；".join(change.detail for change in changes)
    return [Found(
        kind=FindingKind.tampered, site_id=site.id, url=url,
        detail=detail if len(detail) <= 500 else detail[:499] + "…",
        key=finding_key(url, "tamper", *sorted(change.summary for change in changes)),
        data={"changes": [{"kind": c.kind, "detail": c.detail, "added": list(c.added),
                           "removed": list(c.removed)} for c in changes],
              "old": _evidence(old, home), "new": _evidence(new, home)})]


def _json_list(value: str) -> tuple[str, ...]:
    try:
        loaded = json.loads(value or "[]")
    except ValueError:
        return ()
    return tuple(str(item) for item in loaded) if isinstance(loaded, list) else ()


def snapshot_from_row(row: Baseline) -> Snapshot:
    """The snapshot a stored baseline holds."""
    return Snapshot(text_sha256=row.text_sha256, links=_json_list(row.links),
                    scripts=_json_list(row.scripts), iframes=_json_list(row.iframes),
                    meta_refresh=row.meta_refresh, html=row.html, base_url=row.url)


def apply_to_row(row: Baseline, snap: Snapshot, now: datetime) -> None:
    """Make ``row`` hold ``snap``, taken at ``now`` (lists as JSON)."""
    row.text_sha256 = snap.text_sha256
    row.links = json.dumps(list(snap.links), ensure_ascii=False)
    row.scripts = json.dumps(list(snap.scripts), ensure_ascii=False)
    row.iframes = json.dumps(list(snap.iframes), ensure_ascii=False)
    row.meta_refresh = snap.meta_refresh[:1000]
    row.html = snap.html
    row.taken_at = now
