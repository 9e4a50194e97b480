"""Fetching a web page as evidence: as it stands now, any HTTP status, with size and time
limits and a Chinese reason when it cannot be fetched. Storing it is ``incidents.evidence``.

The fetching itself is the bot's one guarded fetcher, :class:`core.fetcher.GuardedFetcher`:
internal, loopback and reserved addresses are refused unless ``[incidents] fetch_allow``
names them, every redirect is checked, and the connection goes to the checked address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from core.clock import ensure_utc
from core.errors import InputError
from core.fetcher import TOTAL_TIMEOUTS, BodyTooLarge, FetchFailed, GuardedFetcher

__all__ = ["MAX_URL", "TOTAL_TIMEOUTS", "USER_AGENT", "FetchFailed", "FetchedPage",
           "check_url", "fetch_page"]

USER_AGENT = "Mozilla/5.0 (compatible; dutybot-evidence/1.0)"
MAX_URL = 1000
HEADERS = {"User-Agent": USER_AGENT,
           "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
           "Accept-Language": "zh-CN,zh;q=0.9"}


@dataclass(frozen=True)
class FetchedPage:
    """A page as the server returned it (any HTTP status)."""

    url: str            # as requested
    final_url: str      # after redirects
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime   # aware UTC


def check_url(url: str) -> str:
    """The URL stripped, if it looks like an http(s) URL (the guarded fetcher checks the
    rest: credentials, port, address).

    Raises:
        InputError: no scheme, another scheme, no host, or too long — with a hint.
    """
    url = url.strip()
    if not url:
        raise InputError("请提供要保全的网址，例如 https://www.example.gov.cn/a")
    if len(url) > MAX_URL:
        raise InputError(f"网址过长（{len(url)} 个字符，最多 {MAX_URL} 个）")
    if "://" not in url:
        raise InputError(f"网址需以 http:// 或 https:// 开头，请补全后重发，"
                         f"例如 https://{url.lstrip('/')}")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise InputError(f"只能保全 http:// 或 https:// 开头的网页，不支持“{scheme}”地址")
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise InputError(f"网址格式有误，缺少域名：{url}")
    return url


async def fetch_page(url: str, *, timeout: float, max_bytes: int, now: datetime,
                     fetcher: GuardedFetcher | None = None, client: object = None) -> FetchedPage:
    """Fetch ``url`` as it stands, following redirects; any HTTP status is kept.

    Args:
        url: an http:// or https:// URL.
        timeout: seconds for connecting and for each read; the whole fetch may take at
            most ``TOTAL_TIMEOUTS`` times this.
        max_bytes: the largest body accepted.
        now: the capture instant (aware).
        fetcher: the guarded fetcher with the allow-list (``IncidentsSettings.fetcher()``);
            default: public addresses only.
        client: ignored (kept while callers still pass an ``httpx.AsyncClient``: the
            guarded fetcher opens its own, pinned connections).

    Returns:
        The page, with the status, final URL and raw body.

    Raises:
        InputError: not an http(s) URL.
        FetchFailed: (an InputError) a refused address, network failure, timeout, or a
            body over ``max_bytes``.
    """
    url = check_url(url)
    fetched_at = ensure_utc(now)
    fetcher = fetcher or GuardedFetcher()
    try:
        got = await fetcher.fetch(url, timeout=timeout, max_bytes=max_bytes, headers=HEADERS)
    except BodyTooLarge as exc:
        raise FetchFailed(url, exc.reason + "。可截图后作为照片发送，"
                               "或请管理员调大 [incidents] fetch_max_bytes") from None
    return FetchedPage(url=url, final_url=got.final_url, status=got.status,
                       content_type=got.headers.get("content-type", ""), body=got.body,
                       fetched_at=fetched_at)
