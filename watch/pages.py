"""Fetching a page of a watched site: the one place site watch calls the fetcher.

Every check reads pages through :func:`get_page`, which goes through the bot's one
:class:`~core.fetcher.GuardedFetcher` (SSRF rules in docs/security.md) and never raises for
a network or HTTP problem: a failure is a :class:`Page` with ``error`` set, so a check can
report it. What it does besides fetching:

- **Size**: the body is read up to ``policy.max_bytes`` and cut there (``truncated``); a
  huge page is still a page that answered, and the checks read its beginning.
- **Decoding**: the charset of ``Content-Type``, else of ``<meta charset>`` /
  ``<meta http-equiv … content="…charset=…">`` in the first bytes, else UTF-8, else
  GB18030. GBK and GB2312 are read as GB18030 (a superset); a declared charset that does
  not decode cleanly gives way to the next candidate, and a Latin-1 declaration (a
  server default, never meant for a Chinese page) is tried last. Bodies that are not text
  (images, PDF) are not decoded: ``html`` is empty.
- **Intranet sites**: :func:`fetcher_for` admits the registered host of a site marked
  ``intranet`` and nothing else of its network.
- **Politeness**: :class:`HostLimiter` keeps at most ``per_host_concurrency`` requests to a
  host at a time and starts them at least ``polite_delay_ms`` apart.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote, urlsplit

import httpx

from core.fetcher import NOT_ALLOWED, FetchFailed, GuardedFetcher
from roster.models import Site
from watch.markup import ParseCost, parse_cost
from watch.types import WatchPolicy

#: Reason of a failure at a registered intranet host: the fetcher does not tell why (so
#: nobody maps internal ports through it), and neither can site watch.
INTRANET_DOWN = "无法连接到内网网站（内网地址的连接错误不细分原因）"
#: Reason for a URL at a non-public address that no registration admits.
REFUSED = ("该网址指向内网、本机或保留地址，未抓取（如为本单位内网网站，"
           "请登记为内网网站：dutybot sites add … --intranet）")

_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
#: How far into the body a ``<meta>`` charset is looked for (the HTML standard's prescan
#: reads 1024 bytes; Chinese CMS templates often put long comments first).
_META_WINDOW = 4096
_GB = "gb18030"
_GB_LABELS = frozenset({"gbk", "gb2312", "x-gbk", "gb_2312-80", "gb_2312", "cp936", "ms936",
                        "windows-936", "euc-cn", "csgb2312", "x-gb18030", "gb18030", "chinese"})
_LATIN = frozenset({"iso8859-1", "cp1252", "ascii", "latin-1", "us-ascii"})
_TEXT_TYPES = ("html", "xml", "text/")
_HTTP_REASON_ZH = {400: "请求有误", 401: "需要登录", 403: "禁止访问", 404: "页面不存在", 410: "页面已删除",
                   429: "请求过多", 500: "服务器内部错误", 502: "网关错误", 503: "服务暂不可用",
                   504: "网关超时"}


@dataclass(frozen=True)
class Page:
    """A fetched page, or why it could not be fetched.

    ``error`` is "" when the server answered (any status) and the Chinese reason
    otherwise; ``html`` is then "". ``refused``: the URL is at a non-public address no
    registration admits (never connected to). ``truncated``: the body passed the size cap
    and only its beginning was read.
    """

    url: str
    final_url: str
    status: int | None
    elapsed_ms: int | None
    html: str
    error: str
    content_type: str = ""
    truncated: bool = False
    refused: bool = False

    @property
    def ok(self) -> bool:
        """Whether the server answered with 2xx or 3xx."""
        return not self.error and self.status is not None and 200 <= self.status < 400

    @property
    def failure(self) -> str:
        """Why the page is not ok, in Chinese ("" when it is): the fetch error or the status."""
        if self.error:
            return self.error
        if self.ok or self.status is None:
            return ""
        meaning = _HTTP_REASON_ZH.get(self.status)
        return f"HTTP {self.status}（{meaning}）" if meaning else f"HTTP {self.status}"

    @property
    def is_html(self) -> bool:
        """Whether the body is a text page worth parsing (HTML, XHTML, or unlabelled)."""
        return bool(self.html) and (not self.content_type or any(t in self.content_type for t in _TEXT_TYPES))

    @cached_property
    def parse_cost(self) -> ParseCost:
        """The estimated work of parsing the page (``watch.markup``; worked out once)."""
        return parse_cost(self.html)

    @property
    def unparsable(self) -> str:
        """Why the page is not given to the HTML parser, in Chinese ("" when it may be):
        its structure would make parsing take too long (``watch.markup``)."""
        cost = self.parse_cost
        return cost.reason_zh() if cost.too_costly else ""


# ---- decoding --------------------------------------------------------------------------

def _codec(label: str) -> str | None:
    """Python's codec name for a charset label (GBK family → GB18030); None if unknown."""
    label = label.strip().strip("\"'").lower()
    if label in _GB_LABELS:
        return _GB
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _GB if name in ("gbk", "gb2312") else name


def _declared(content_type: str, body: bytes) -> list[str]:
    """The charsets the header and the page's ``<meta>`` declare, in that order."""
    found: list[str] = []
    header = _HEADER_CHARSET.search(content_type)
    meta = _META_CHARSET.search(body[:_META_WINDOW])
    for label in (header.group(1) if header else None,
                  meta.group(1).decode("ascii", "ignore") if meta else None):
        codec = _codec(label) if label else None
        if codec and codec not in found:
            found.append(codec)
    return found


def decode_body(body: bytes, content_type: str = "", *, truncated: bool = False) -> str:
    """The text of an HTML body (module docstring for the order of charsets tried).

    A ``truncated`` body may end inside a character; that tail is dropped rather than
    counted against the charset.
    """
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", "replace")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", "replace")
    declared = _declared(content_type, body)
    candidates = [c for c in declared if c not in _LATIN]
    candidates += [c for c in ("utf-8", _GB) if c not in candidates]
    candidates += [c for c in declared if c in _LATIN]
    for codec in candidates:
        try:
            return codecs.getincrementaldecoder(codec)("strict").decode(body, final=not truncated)
        except (UnicodeDecodeError, LookupError):
            continue
    return body.decode(declared[0] if declared else _GB, "replace")


# ---- fetching --------------------------------------------------------------------------

def header_safe(value: str) -> str:
    """``value`` as an HTTP header can carry it: printable ASCII kept, anything else (the
    Chinese of a configured User-Agent) percent-encoded as UTF-8."""
    return quote(value, safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))


def request_headers(policy: WatchPolicy) -> dict[str, str]:
    """What every site-watch request sends."""
    return {"User-Agent": header_safe(policy.user_agent), "Accept": _ACCEPT}


def _reason(fetcher: GuardedFetcher, url: str, exc: FetchFailed) -> tuple[str, bool]:
    """The Chinese reason of a failed fetch for site watch, and whether it was refused."""
    if exc.reason != NOT_ALLOWED:
        return exc.reason, False
    if fetcher.allow.covers(url):
        return INTRANET_DOWN, False
    return REFUSED, True


async def get_page(fetcher: GuardedFetcher, url: str, policy: WatchPolicy, *,
                   monotonic: Callable[[], float] = time.monotonic,
                   max_bytes: int | None = None) -> Page:
    """GET ``url`` for site watch; never raises for a network or HTTP problem.

    Args:
        fetcher: the guarded fetcher (:func:`fetcher_for` the site).
        url: the page.
        policy: timeout, size cap and User-Agent.
        monotonic: the clock that times the request (tests pass a fake).
        max_bytes: read at most this much (default ``policy.max_bytes``); a link check
            needs only the status.

    Returns:
        The page, its status and time in milliseconds; or ``error`` with the reason.
    """
    started = monotonic()
    try:
        got = await fetcher.fetch(url, timeout=policy.timeout_seconds,
                                  max_bytes=max_bytes or policy.max_bytes,
                                  headers=request_headers(policy), truncate=True)
    except FetchFailed as exc:
        reason, refused = _reason(fetcher, url, exc)
        return Page(url=url, final_url=url, status=None, elapsed_ms=None, html="", error=reason,
                    refused=refused)
    elapsed_ms = max(0, round((monotonic() - started) * 1000))
    content_type = got.headers.get("content-type", "").lower()
    textual = not content_type or any(t in content_type for t in _TEXT_TYPES)
    html = decode_body(got.body, content_type, truncated=got.truncated) if textual else ""
    return Page(url=url, final_url=got.final_url, status=got.status, elapsed_ms=elapsed_ms, html=html,
                error="", content_type=content_type, truncated=got.truncated)


def site_allow_entries(site: Site) -> tuple[str, ...]:
    """The allow-list entries an intranet ``site`` needs: its own host (any port), nothing
    of its network; () for a site not marked intranet or without a usable URL."""
    if not site.intranet or not site.url:
        return ()
    try:
        host = httpx.URL(site.url.strip()).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        return ()
    if not host:
        return ()
    return (f"[{host}]" if ":" in host else host,)


def fetcher_for(site: Site, base: GuardedFetcher | None = None) -> GuardedFetcher:
    """The fetcher for ``site``: ``base`` (its resolver, network, TLS and allow-list), also
    admitting the site's own host when the site is registered ``intranet``.

    Loopback and private addresses stay refused for every other host, so a link on an
    intranet site cannot make the bot read another internal system.
    """
    base = base or GuardedFetcher()
    entries = site_allow_entries(site)
    if not entries:
        return base
    try:
        return base.allowing(*entries)
    except ValueError:
        return base


# ---- politeness ------------------------------------------------------------------------

def host_key(url: str) -> str:
    """``host:port`` of ``url`` (lower case, default port filled in), the unit of politeness."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return url
    return f"{(parts.hostname or '').lower()}:{port}"


class HostLimiter:
    """At most ``concurrency`` requests at a time to one host, and their starts at least
    ``delay_ms`` apart (``[watch] per_host_concurrency`` and ``polite_delay_ms``).

    Args:
        concurrency: requests in flight per host.
        delay_ms: the least time between two request starts to one host.
        sleep, monotonic: the waiting and the clock (tests pass fakes).
    """

    def __init__(self, concurrency: int, delay_ms: int, *,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.concurrency = max(1, concurrency)
        self.delay = max(0, delay_ms) / 1000
        self._sleep = sleep
        self._monotonic = monotonic
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @classmethod
    def from_policy(cls, policy: WatchPolicy, *,
                    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                    monotonic: Callable[[], float] = time.monotonic) -> HostLimiter:
        """The limiter of ``policy``."""
        return cls(policy.per_host_concurrency, policy.polite_delay_ms, sleep=sleep, monotonic=monotonic)

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Hold one of the host's slots, waiting for a free one and for the polite delay."""
        key = host_key(url)
        semaphore = self._semaphores.setdefault(key, asyncio.Semaphore(self.concurrency))
        async with semaphore:
            now = self._monotonic()
            start = max(now, self._next_start.get(key, now))
            self._next_start[key] = start + self.delay
            if start > now:
                await self._sleep(start - now)
            yield
