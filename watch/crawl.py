"""Broken links: a bounded crawl of one site that checks every link it meets once.

- **Scope**: pages of the site — the homepage's host and port (``http`` and ``https`` on
  their default ports count as one site), plus the host the homepage redirects to — are
  *crawled* breadth-first from the homepage: fetched, kept in ``CrawlResult.pages`` for
  the content checks, and their links collected, down to ``crawl_depth`` link hops
  (0: the homepage only).
- **Checks**: every link on a crawled page is checked once per run. A same-site link
  within the depth is checked by crawling it; a same-site link one hop deeper and every
  external link by a status check (GET, reading at most :data:`CHECK_MAX_BYTES`), never
  crawled. ``a[href]`` and ``area[href]`` count, resolved against the page (and its
  ``<base href>``), fragments dropped; ``mailto:``, ``javascript:``, ``tel:``, ``data:``
  and other non-web schemes are skipped.
- **Broken**: a fetch failure (timeout, refused connection, unknown name, TLS, too many
  redirects, malformed URL) or a 4xx/5xx status, except the statuses a server gives a
  robot it does not want (401, 403, 405, 412, 429): those say nothing about a visitor.
  A link to a loopback or private address is broken for the public on a public site; on
  an intranet site it is left unchecked (other internal systems stay out of reach). One
  ``broken_link`` finding per target URL, naming the first page it was found on and the
  link text. The homepage failing is availability's finding, not a broken link.
- **Limits**: ``crawl_max_pages`` same-site fetches and as many external checks at most
  (links past the caps are counted in ``unchecked`` and the result says ``capped``);
  ``per_host_concurrency`` requests at a time to a host, starts ``polite_delay_ms``
  apart (:class:`~watch.pages.HostLimiter`). Links are read on a worker thread; a page
  whose structure would make parsing too slow (``watch.markup``) is kept, but its links
  are not followed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from core.fetcher import GuardedFetcher
from roster.models import Site
from watch.models import FindingKind
from watch.pages import HostLimiter, Page, get_page
from watch.types import Found, WatchPolicy, finding_key

log = logging.getLogger(__name__)

#: A status check reads at most this much of the body.
CHECK_MAX_BYTES = 64 * 1024
#: Statuses that tell a robot it is not welcome rather than that the page is gone.
RESTRICTED = frozenset({401, 403, 405, 412, 429})
PRIVATE_LINK = "链接指向内网、本机或保留地址，公众无法访问"
_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TEXT_MAX = 40
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_MAX_WORKERS = 32

Progress = Callable[[int, int], None]


@dataclass
class CrawlResult:
    """What one crawl saw: the site's pages, the broken links, and how much was checked."""

    pages: list[Page] = field(default_factory=list)
    broken: list[Found] = field(default_factory=list)
    checked: int = 0            # URLs fetched (pages crawled and links checked)
    unchecked: int = 0          # links not checked: past the caps, or internal on an intranet site
    restricted: int = 0         # links answered 401/403/405/412/429 (not judged)
    capped: bool = False        # a cap was reached


@dataclass(frozen=True)
class _Job:
    url: str
    depth: int
    crawl: bool                 # crawl (fetch, keep, follow) or only check the status
    same_site: bool
    found_on: str | None        # None: the homepage
    text: str


def normalize(url: str) -> str:
    """``url`` without its fragment, scheme and host in lower case, the default port and
    an empty path spelled out once (``HTTP://Example.cn:80`` → ``http://example.cn/``)."""
    url, _ = urldefrag(url.strip())
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    if parts.username or parts.password:     # kept as given; the fetcher refuses it
        netloc = parts.netloc
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def site_key(url: str) -> str | None:
    """``host:port`` a URL belongs to, http and https default ports as one; None for a
    URL that is not http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        return None
    default = port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower())
    return f"{parts.hostname.lower()}:{'default' if default else port}"


@functools.lru_cache(maxsize=32768)
def _resolve(base: str, href: str) -> str | None:
    """``href`` on a page at ``base``, absolute and normalised; None for a link that is
    not http(s). A malformed one is kept as written (checked, and reported as such)."""
    try:
        absolute = urljoin(base, href)
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:
        return href
    return normalize(absolute) if scheme in _SCHEMES else None


def links(html: str, page_url: str) -> list[tuple[str, str]]:
    """The web links of a page, resolved and normalised, each once: (URL, link text)."""
    tree = LexborHTMLParser(html)
    base = page_url
    base_tag = tree.css_first("base[href]")
    if base_tag is not None:
        try:
            base = urljoin(page_url, (base_tag.attributes.get("href") or "").strip())
        except ValueError:
            base = page_url
    try:
        parts = urlsplit(base)
        root = f"{parts.scheme}://{parts.netloc}/"
    except ValueError:
        root = base
    found: dict[str, str] = {}
    for node in tree.css("a[href], area[href]"):
        href = _TAB_NEWLINE.sub("", node.attributes.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        # A site-absolute path resolves the same on every page: cached across pages.
        url = _resolve(root if href.startswith("/") and not href.startswith("//") else base, href)
        if url is None or url in found:
            continue
        text = node.text(strip=True) or node.attributes.get("title") or node.attributes.get("alt") or ""
        if not text:
            image = node.css_first("img[alt]")
            text = (image.attributes.get("alt") or "") if image is not None else ""
        found[url] = " ".join(text.split())[:_TEXT_MAX]
    return list(found.items())


def page_links(page: Page) -> list[tuple[str, str]]:
    """:func:`links` of a crawled page (on a worker thread); none when the page is not to
    be parsed (:attr:`~watch.pages.Page.unparsable`: its links are not followed)."""
    if page.unparsable:
        log.warning("site watch crawl: links of %s not read: estimated parse work %d",
                    page.url, page.parse_cost.work)
        return []
    return links(page.html, page.final_url)


class _Crawl:
    """One run's state: the queue, what was seen, the caps and the result."""

    def __init__(self, site: Site, policy: WatchPolicy, progress: Progress | None) -> None:
        self.site = site
        self.policy = policy
        self.progress = progress
        self.result = CrawlResult()
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.seen: set[str] = set()
        home = site_key(site.url)
        self.hosts: set[str] = {home} if home else set()
        self.same_site_planned = 0
        self.external_planned = 0
        self.total = 0
        self.done = 0

    def offer(self, url: str, depth: int, found_on: str | None, text: str) -> None:
        """Queue ``url`` (found at ``depth``) unless seen or past a cap."""
        if url in self.seen:
            return
        self.seen.add(url)
        same = site_key(url) in self.hosts
        if same:
            if self.same_site_planned >= self.policy.crawl_max_pages:
                self.result.unchecked += 1
                self.result.capped = True
                return
            self.same_site_planned += 1
        else:
            if self.external_planned >= self.policy.crawl_max_pages:
                self.result.unchecked += 1
                self.result.capped = True
                return
            self.external_planned += 1
        crawl = same and depth <= self.policy.crawl_depth
        self.total += 1
        self.queue.put_nowait(_Job(url, depth, crawl, same, found_on, text))

    def judge(self, job: _Job, page: Page) -> None:
        """Record ``page`` as a broken link, restricted, unchecked, or fine."""
        if job.found_on is None:
            return
        if page.refused and self.site.intranet:
            self.result.unchecked += 1
            return
        if page.ok:
            return
        if page.status in RESTRICTED and not page.error:
            self.result.restricted += 1
            return
        reason = PRIVATE_LINK if page.refused else page.failure
        text = f"“{job.text}”" if job.text else "（无文字的链接）"
        assert self.site.id is not None
        self.result.broken.append(Found(
            kind=FindingKind.broken_link, site_id=self.site.id, url=job.url, key=finding_key(job.url),
            detail=f"链接不可用：{text} → {job.url}（{reason}），所在页面：{job.found_on}",
            data={"status": page.status, "error": reason, "found_on": job.found_on,
                  "text": job.text, "external": not job.same_site}))

    def keep(self, job: _Job, page: Page) -> bool:
        """Keep a crawled page (whose links are then followed); False when it is not read."""
        if not job.crawl or not page.ok or not page.is_html:
            return False
        final = site_key(page.final_url)
        if job.found_on is None and final is not None:
            self.hosts.add(final)          # the homepage moved (http → https, another name)
        elif final not in self.hosts:
            return False                   # redirected off the site: not ours to read
        self.result.pages.append(page)
        self.seen.add(normalize(page.final_url))
        return True

    def follow(self, job: _Job, page: Page, found: list[tuple[str, str]]) -> None:
        """Queue the links ``found`` on a kept page."""
        for url, text in found:
            self.offer(url, job.depth + 1, page.url, text)

    def tick(self) -> None:
        self.done += 1
        self.result.checked += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


async def crawl(fetcher: GuardedFetcher, site: Site, policy: WatchPolicy, *,
                progress: Progress | None = None, limiter: HostLimiter | None = None,
                monotonic: Callable[[], float] = time.monotonic,
                check_max_bytes: int = CHECK_MAX_BYTES) -> CrawlResult:
    """Crawl ``site`` from its homepage and check every link met (module docstring).

    Args:
        fetcher: :func:`~watch.pages.fetcher_for` the site (a ``GuardedFetcher``).
        site: the website (saved: its id is the findings' site).
        policy: depth, page cap, per-host concurrency, polite delay, timeout, size cap.
        progress: called after each fetch with (done, known so far): "已检查 N/M".
        limiter: per-host limits shared with other checks (default: a new one).
        monotonic: times each request (tests pass a fake).
        check_max_bytes: how much of a checked (not crawled) link's body is read.

    Returns:
        The crawled pages, the ``broken_link`` findings and the counts.
    """
    if site.id is None:
        raise ValueError("the site is not saved yet (no id)")
    limiter = limiter or HostLimiter.from_policy(policy)

    async def fetch(job: _Job) -> Page:
        async with limiter.slot(job.url):
            return await get_page(fetcher, job.url, policy, monotonic=monotonic,
                                  max_bytes=None if job.crawl else check_max_bytes)

    state = _Crawl(site, policy, progress)
    state.offer(normalize(site.url), 0, None, "")

    async def worker() -> None:
        while True:
            job = await state.queue.get()
            try:
                page = await fetch(job)
                state.judge(job, page)
                if state.keep(job, page):
                    state.follow(job, page, await asyncio.to_thread(page_links, page))
                state.tick()
            finally:
                state.queue.task_done()

    count = min(_MAX_WORKERS, max(4, 4 * policy.per_host_concurrency))
    async with asyncio.TaskGroup() as group:
        workers = [group.create_task(worker()) for _ in range(count)]
        await state.queue.join()
        for task in workers:
            task.cancel()
    return state.result
