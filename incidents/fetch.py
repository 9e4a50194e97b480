"""Fetching a web page as evidence: as it stands now, any HTTP status, with size and time
limits and a Chinese reason when it cannot be fetched. Storing it is ``incidents.evidence``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from core.clock import ensure_utc
from core.errors import InputError

USER_AGENT = "Mozilla/5.0 (compatible; dutybot-evidence/1.0)"
MAX_URL = 1000
# httpx's timeout bounds each phase (connect, each read); a server that trickles bytes
# could still hold a fetch for ever, so the whole fetch gets this many timeouts at most.
TOTAL_TIMEOUTS = 4


class FetchFailed(InputError):
    """A page could not be fetched; ``reason`` is the Chinese cause."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"无法获取网页 {url}：{reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class FetchedPage:
    """A page as the server returned it (any HTTP status)."""

    url: str            # as requested
    final_url: str      # after redirects
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime   # aware UTC


# ---- fetching --------------------------------------------------------------------------

def check_url(url: str) -> str:
    """The URL stripped, if it is an http(s) URL we may fetch.

    Raises:
        InputError: no scheme, another scheme, no host, or too long.
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


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _reason(exc: httpx.HTTPError) -> str:
    """A short Chinese cause for a failed fetch."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "连接超时"
    if isinstance(exc, httpx.TimeoutException):
        return "等待响应超时"
    if isinstance(exc, httpx.TooManyRedirects):
        return "跳转次数过多"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "跳转到了不支持的地址（只支持 http/https）"
    if isinstance(exc, httpx.ConnectError):
        causes = _causes(exc)
        if any(isinstance(c, socket.gaierror) for c in causes):
            return "域名无法解析"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return "连接被拒绝"
        if any(isinstance(c, ssl.SSLError) for c in causes):
            return "HTTPS 证书或加密连接有误"
        return "无法连接到服务器"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "连接中途断开"
    if isinstance(exc, httpx.InvalidURL):
        return "网址格式有误"
    return f"网络错误（{type(exc).__name__}）"


def _too_large(url: str, max_bytes: int) -> FetchFailed:
    limit = f"{max_bytes / 1_000_000:.2f}".rstrip("0").rstrip(".")
    return FetchFailed(url, f"内容超过 {limit} MB 的上限，未保存。"
                            "可截图后作为照片发送，或请管理员调大 [incidents] fetch_max_bytes")


async def fetch_page(url: str, *, client: httpx.AsyncClient, timeout: float, max_bytes: int,
                     now: datetime) -> FetchedPage:
    """Fetch ``url`` as it stands, following redirects; any HTTP status is kept.

    Args:
        url: an http:// or https:// URL.
        client: the HTTP client (tests pass one pointed at a local server).
        timeout: seconds for connecting and for each read; the whole fetch may take at
            most ``TOTAL_TIMEOUTS`` times this.
        max_bytes: the largest body accepted.
        now: the capture instant (aware).

    Returns:
        The page, with the status, final URL and raw body.

    Raises:
        InputError: not an http(s) URL.
        FetchFailed: (an InputError) network failure, timeout, or a body over ``max_bytes``.
    """
    url = check_url(url)
    fetched_at = ensure_utc(now)
    headers = {"User-Agent": USER_AGENT,
               "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
               "Accept-Language": "zh-CN,zh;q=0.9"}
    try:
        async with asyncio.timeout(timeout * TOTAL_TIMEOUTS), client.stream(
                "GET", url, headers=headers, follow_redirects=True, timeout=timeout) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(url, max_bytes)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise _too_large(url, max_bytes)
                chunks.append(chunk)
            return FetchedPage(url=url, final_url=str(response.url), status=response.status_code,
                               content_type=response.headers.get("content-type", ""),
                               body=b"".join(chunks), fetched_at=fetched_at)
    except TimeoutError as exc:
        raise FetchFailed(url, "下载超时（网站响应过慢）") from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(url, _reason(exc)) from exc
