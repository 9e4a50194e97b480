"""The site-watch run: every check of every site, its findings stored and dispatched.

For each site, :func:`run_checks` does the checks asked for (:data:`CHECKS`):

- ``availability``: probes the homepage and the columns (``watch.availability``), records
  them, and reads the findings they add up to (down for ``down_after`` probes in a row,
  slow, the month's failure share); the certificate of an ``https://`` homepage.
- ``freshness``: each column page against the profile's FRESH-1 limits, and empty
  columns (``watch.freshness``).
- ``links``: a bounded crawl of the site checking every link (``watch.crawl``); the
  crawled pages are scanned for terms and hidden links too.
- ``content``: the homepage and the column pages scanned for wrong and sensitive terms
  (``watch.terms``) and hidden links (``watch.hidden``), and the homepage compared with
  its baseline (``watch.baseline``).

A site at a non-public address that is not registered ``--intranet`` is not fetched at
all: the run reports one ``unreachable`` finding saying so (a registration to fix, not
an outage: no incident), and records no probe that would count against its availability.

The network part of a site's run holds no database session; afterwards one transaction
records the probes, updates the baseline, stores the findings (``watch.store``) and
dispatches them (``watch.dispatch``). Findings close only for what the run read: a page
that did not load keeps its findings. Sites run a few at a time; one site's failure is
logged and does not stop the others.

Parsing is the one CPU-heavy part, and a hostile page can make it very slow (the parser's
time grows with the square of the nesting: ``watch.markup``). A page whose estimated
parse work is too high is not parsed at all; each page's content checks (parse, terms,
hidden links, snapshot) run on a worker thread, so the event loop goes on fetching, and
are given up after :data:`PAGE_SECONDS`. Either way the page gives no content findings,
keeps the ones it had, a warning is logged, and the site's progress says so in Chinese
(:attr:`_Read.unparsed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from core.fetcher import GuardedFetcher
from core.profiles import Profile
from roster.models import Site
from watch.availability import (
    availability_findings,
    cert_findings,
    certificate_not_after,
    probe_site,
    record_probes,
)
from watch.baseline import check_homepage
from watch.columns import columns_of
from watch.crawl import CrawlResult, crawl
from watch.dispatch import Dispatched, Workflow, dispatch
from watch.freshness import freshness_findings
from watch.hidden import hidden_link_findings
from watch.markup import MAX_PARSE_WORK
from watch.models import FindingKind, SiteColumn
from watch.pages import HostLimiter, Page, fetcher_for, get_page
from watch.store import StoreResult, store_findings
from watch.tamper import Snapshot, snapshot
from watch.terms import Lexicon, term_findings
from watch.text import read_page
from watch.types import Found, WatchPolicy, finding_key

log = logging.getLogger(__name__)

CHECKS = frozenset({"availability", "freshness", "links", "content"})
CHECK_ZH = {"availability": "可用性", "freshness": "栏目更新", "links": "链接", "content": "内容"}
AVAILABILITY = frozenset({FindingKind.unreachable, FindingKind.slow, FindingKind.availability})
FRESHNESS = frozenset({FindingKind.stale_column, FindingKind.empty_column})
TERMS = frozenset({FindingKind.wrong_term, FindingKind.sensitive_term, FindingKind.hidden_link})
#: Sites checked at a time (each politely, per host).
SITE_CONCURRENCY = 4
#: A crawl says how far it is every this many fetches.
CRAWL_PROGRESS_EVERY = 25
#: Seconds one page's content checks may take on their worker thread before the page is
#: given up (an ordinary page takes well under one; the thread cannot be stopped and
#: finishes in the background — the parse-work estimate keeps that short).
PAGE_SECONDS = 30.0

Progress = Callable[[str], None]


@dataclass
class _Read:
    """What the network part of one site's run read."""

    home: Page | None = None
    probes: list[Page] | None = None
    cert_read: bool = False
    not_after: datetime | None = None
    column_pages: dict[int, Page] = field(default_factory=dict)
    crawl: CrawlResult | None = None
    scanned: list[Page] = field(default_factory=list)
    snap: Snapshot | None = None
    found_in_pages: list[Found] = field(default_factory=list)
    unparsed: dict[str, str] = field(default_factory=dict)   # URL → why its content was not checked

    def pages(self) -> dict[str, Page]:
        """Every page read, by requested and final URL (the evidence of the findings)."""
        out: dict[str, Page] = {}
        every = [*(self.probes or []), *self.column_pages.values(), *(self.crawl.pages if self.crawl else []),
                 *([self.home] if self.home else [])]
        for page in every:
            out.setdefault(page.url, page)
            out.setdefault(page.final_url or page.url, page)
        return out


def _merge(into: StoreResult, part: StoreResult) -> None:
    into.new += part.new
    into.still_open += part.still_open
    into.closed += part.closed


def _readable(page: Page | None) -> bool:
    return page is not None and page.ok and page.is_html


def scan_page(site: Site, page: Page, lexicon: Lexicon | None, *,
              home: bool) -> tuple[list[Found], Snapshot | None]:
    """The content checks of one page (parsed once): terms, hidden links and, for the
    homepage, its snapshot. Runs on a worker thread; the caller has checked
    :attr:`Page.unparsable`."""
    content = read_page(page.html, page.url)
    found = term_findings(site, page.url, content.text, lexicon) if lexicon is not None else []
    found += hidden_link_findings(site, page.url, page.html, page=content)
    snap = None
    if home:
        base = page.final_url or page.url
        snap = snapshot(page.html, base, page=content if base == page.url else None)
    return found, snap


async def _scan(site: Site, page: Page, lexicon: Lexicon | None, *,
                home: bool) -> tuple[list[Found], Snapshot | None] | str:
    """:func:`scan_page` on a worker thread within :data:`PAGE_SECONDS`; or why not (Chinese)."""
    cost = await asyncio.to_thread(lambda: page.parse_cost)
    if cost.too_costly:
        log.warning("site watch: page %s of site %s not parsed: estimated parse work %d over %d "
                    "(nesting %d, options in one select %d)", page.url, site.id, cost.work,
                    MAX_PARSE_WORK, cost.depth, cost.options)
        return page.unparsable
    try:
        return await asyncio.wait_for(asyncio.to_thread(scan_page, site, page, lexicon, home=home), PAGE_SECONDS)
    except TimeoutError:
        log.warning("site watch: content checks of page %s of site %s given up after %g s",
                    page.url, site.id, PAGE_SECONDS)
        return f"内容检查超过 {PAGE_SECONDS:g} 秒仍未完成，已放弃"


def refused_finding(site: Site, page: Page) -> Found:
    """The one finding of a site at an address the bot may not fetch."""
    assert site.id is not None
    return Found(kind=FindingKind.unreachable, site_id=site.id, url=site.url, key=finding_key(site.url, "refused"),
                 detail=f"“{site.name}”未巡检：{page.error}", data={"refused": True, "error": page.error})


async def _read_site(site: Site, columns: list[SiteColumn], checks: Collection[str], *, fetcher: GuardedFetcher,
                     policy: WatchPolicy, limiter: HostLimiter, lexicon: Lexicon | None,
                     progress: Progress | None) -> _Read:
    """The network part: fetch what the checks need, and read the pages (no database)."""
    read = _Read()
    own = fetcher_for(site, fetcher)

    async def page_of(url: str) -> Page:
        async with limiter.slot(url):
            return await get_page(own, url, policy)

    if "availability" in checks:
        read.probes = await probe_site(own, site, columns, policy, limiter=limiter)
        read.home = read.probes[0]
    else:
        read.home = await page_of(site.url)
    if read.home.refused:
        return read
    by_url = {p.url: p for p in read.probes or []}
    if "availability" in checks and site.url.lower().startswith("https://"):
        read.not_after = await certificate_not_after(site.url, policy, fetcher=own)
        read.cert_read = read.not_after is not None
    if "freshness" in checks or "content" in checks:
        missing = [c for c in columns if c.url not in by_url]
        for column, page in zip(missing, await asyncio.gather(*(page_of(c.url) for c in missing)), strict=True):
            by_url[column.url] = page
        read.column_pages = {c.id: by_url[c.url] for c in columns if c.id is not None and c.url in by_url}
    if "links" in checks and read.home.ok:
        def crawled(done: int, total: int) -> None:
            if progress is not None and (done % CRAWL_PROGRESS_EVERY == 0 or done == total):
                progress(f"{site.name}：链接检查 已检查 {done}/{total}")

        read.crawl = await crawl(own, site, policy, progress=crawled, limiter=limiter)
    scan: dict[str, Page] = {}
    if "content" in checks:
        for page in [read.home, *read.column_pages.values()]:
            if _readable(page):
                scan.setdefault(page.url, page)
    if read.crawl is not None:
        for page in read.crawl.pages:
            if _readable(page):
                scan.setdefault(page.url, page)
    assert site.id is not None
    for page in scan.values():
        home = "content" in checks and page is read.home
        result = await _scan(site, page, lexicon, home=home)
        if isinstance(result, str):
            read.unparsed[page.url] = result
            continue
        read.scanned.append(page)
        read.found_in_pages += result[0]
        if home:
            read.snap = result[1]
    if "freshness" in checks:
        pages = [p for p in read.column_pages.values() if _readable(p) and p.url not in read.unparsed]
        await asyncio.to_thread(lambda: [p.parse_cost for p in pages])    # worked out off the loop
        read.unparsed.update((p.url, p.unparsable) for p in pages if p.unparsable)
    return read


def _record(session: Session, site: Site, columns: list[SiteColumn], read: _Read, checks: Collection[str], *,
            policy: WatchPolicy, profile: Profile, now: datetime) -> tuple[list[Found], StoreResult]:
    """The database part: probes, baseline, findings stored (in the caller's transaction)."""
    found: list[Found] = []
    stored = StoreResult()

    def keep(items: list[Found], kinds: Iterable[FindingKind], within: Collection[str] | None = None) -> None:
        found.extend(items)
        _merge(stored, store_findings(session, site, items, set(kinds), now, within=within))

    assert read.home is not None
    if read.home.refused:
        keep([refused_finding(site, read.home)], {FindingKind.unreachable})
        return found, stored
    if read.probes is not None:
        record_probes(session, site, read.probes, columns, now)
        items = availability_findings(session, site, now, policy)
        kinds = set(AVAILABILITY)
        if read.cert_read:
            items += cert_findings(site, site.url, read.not_after, now, policy)
            kinds.add(FindingKind.cert_expiry)
        keep(items, kinds)
    if "freshness" in checks:
        items, read_ok = [], []
        for column in columns:
            page = read.column_pages.get(column.id or 0)
            if page is None or page.url in read.unparsed:
                continue
            items += freshness_findings(site, column, page, profile, now, policy)
            if page.ok:
                read_ok.append(column.url)
        keep(items, FRESHNESS, read_ok)
    if read.crawl is not None and read.crawl.pages and read.crawl.pages[0].ok:
        keep(read.crawl.broken, {FindingKind.broken_link})
    if read.scanned:
        keep(read.found_in_pages, TERMS, [p.url for p in read.scanned])
    if read.snap is not None:
        keep(check_homepage(session, site, read.snap, now), {FindingKind.tampered}, [site.url])
    return found, stored


async def check_site(engine: Engine, site: Site, *, checks: Collection[str], policy: WatchPolicy, profile: Profile,
                     fetcher: GuardedFetcher, now: datetime, workflow: Workflow, limiter: HostLimiter,
                     lexicon: Lexicon | None, progress: Progress | None = None) -> tuple[list[Found], Dispatched]:
    """One site's run: read it, then record, store and dispatch in one transaction.

    Returns:
        What the checks saw, and what the dispatch did (nothing when the site is gone).
    """
    assert site.id is not None
    with Session(engine) as session:
        columns = columns_of(session=session, site_id=site.id)
    read = await _read_site(site, columns, checks, fetcher=fetcher, policy=policy, limiter=limiter,
                            lexicon=lexicon, progress=progress)
    if progress is not None:
        for url, why in read.unparsed.items():
            progress(f"{site.name}：页面 {url} {why}，本次未检查其内容（该页原有问题保持不变）")
    with session_scope(engine) as session:
        current = session.get(Site, site.id)
        if current is None or not current.active or current.url != site.url:
            return [], Dispatched()
        found, stored = _record(session, current, columns, read, checks, policy=policy, profile=profile, now=now)
        done = dispatch(session, site=current, result=stored, workflow=workflow, pages=read.pages(), now=now)
    if progress is not None:
        opened = f"，登记事件 {'、'.join(done.opened)}" if done.opened else ""
        progress(f"{site.name}：完成，发现 {len(found)} 个问题（新增 {len(stored.new)} 个）{opened}")
    return found, done


async def run_checks(engine: Engine, *, sites: Sequence[Site], policy: WatchPolicy, profile: Profile,
                     fetcher: GuardedFetcher, now: datetime, workflow: Workflow,
                     checks: Collection[str] = CHECKS, progress: Progress | None = None,
                     lexicon: Lexicon | None = None) -> list[Found]:
    """Run ``checks`` on every site in ``sites`` (module docstring).

    Args:
        engine: the database; sessions are opened here, short, one transaction per site.
        sites: the websites (``watch.status.watched_sites``).
        policy: ``[watch]``.
        profile: the rule profile (FRESH-1 limits and citations).
        fetcher: the bot's guarded fetcher (each site's own admits it when intranet).
        now: the run's time: probes, findings and messages carry it.
        workflow: what dispatching needs (calendar, profile, incidents policy, evidence).
        checks: some of :data:`CHECKS`.
        progress: called with a Chinese line per site and as a crawl goes on.
        lexicon: the terms (default: loaded from ``policy.lexicons``).

    Returns:
        Every finding the run saw, site by site.

    Raises:
        ValueError: an unknown check.
        LexiconError: a lexicon file cannot be read.
    """
    unknown = set(checks) - CHECKS
    if unknown:
        raise ValueError(f"unknown checks: {sorted(unknown)}")
    if lexicon is None and ("content" in checks or "links" in checks):
        lexicon = Lexicon.load(policy.lexicons)
    limiter = HostLimiter.from_policy(policy)
    gate = asyncio.Semaphore(SITE_CONCURRENCY)
    names = "、".join(CHECK_ZH[c] for c in ("availability", "freshness", "links", "content") if c in checks)

    async def one(number: int, site: Site) -> list[Found]:
        async with gate:
            if progress is not None:
                progress(f"[{number}/{len(sites)}] {site.name}：检查{names}……")
            try:
                found, _ = await check_site(engine, site, checks=checks, policy=policy, profile=profile,
                                            fetcher=fetcher, now=now, workflow=workflow, limiter=limiter,
                                            lexicon=lexicon, progress=progress)
            except Exception:
                log.exception("site watch of site %s (%s) failed", site.id, site.url)
                if progress is not None:
                    progress(f"{site.name}：巡检出错，已记入日志，其他网站继续")
                return []
            return found

    results = await asyncio.gather(*(one(n, s) for n, s in enumerate(sites, start=1)))
    return [f for part in results for f in part]
