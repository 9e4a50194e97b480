"""The bot's one fetcher for URLs people give it, guarded against SSRF.

Anyone allowed to keep evidence can name a URL (``/incident evidence INC http://…``);
fetching it must not let them read, or probe, what only the bot's own host can reach.
:class:`GuardedFetcher` keeps these rules (docs/security.md, "Evidence fetching (SSRF)"):

1. Only ``http://`` and ``https://`` URLs of at most :data:`MAX_URL` characters, with a
   plain host name or address, a port in 1–65535 and no ``user:password@``.
2. For every hop the host is resolved once, here (a :data:`~core.netguard.Resolver`; by
   default ``getaddrinfo`` on the event loop); numeric hosts are read as ``inet_aton``
   reads them and not resolved. Every address must be public, or allowed by the
   :class:`~core.netguard.AllowList` (:mod:`core.netguard` says which are which).
3. The connection goes to the checked addresses and nowhere else: httpx's transport
   opens its sockets through :class:`PinnedBackend`, which knows only the addresses
   checked for this hop, so a second DNS answer (rebinding) is never used. The Host
   header (HTTP/2's ``:authority``), TLS SNI and the certificate check keep the name.
   HTTP/2 is used where an HTTPS server offers it (:class:`PinnedTransport`). Proxies
   named in the environment are not used.
4. Redirects are followed here, at most :data:`MAX_REDIRECTS`, each hop checked as the
   first one was.
5. The body is capped at ``max_bytes`` (announced or received, after decoding); the whole
   fetch, resolutions and redirects included, at :data:`TOTAL_TIMEOUTS` × ``timeout``.
6. A refused address and any failure while reaching a non-public one give the same reason,
   :data:`NOT_ALLOWED`, so nobody learns whether a port is open or a host is up. For
   public addresses the reason is specific (timeout, DNS, TLS, refused).

Errors: :class:`FetchFailed` (an :class:`~core.errors.InputError`, its message shown to
the person as it is) with the Chinese ``reason``; :class:`BodyTooLarge` for the size cap.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from core.errors import InputError
from core.netguard import (
    DEFAULT_PORTS,
    HOST_NAME,
    AllowList,
    IPAddress,
    Resolver,
    is_public,
    numeric_host,
    system_resolver,
    unmapped,
)

log = logging.getLogger(__name__)

MAX_URL = 2000
MAX_REDIRECTS = 5
#: httpx's timeout bounds each phase (connect, each read); a server that trickles bytes
#: could still hold a fetch for ever, so the whole fetch gets this many timeouts at most.
TOTAL_TIMEOUTS = 4
#: Checked addresses of one hop tried in turn when connecting fails.
MAX_ADDRESSES = 4
REDIRECTS = frozenset({301, 302, 303, 307, 308})

NOT_ALLOWED = ("该地址不能抓取（内网、本机或保留地址，或无法连接；为安全起见不细分原因）。"
               "如需保全本单位内网网站，请管理员在配置 [incidents] fetch_allow 中登记")


class FetchFailed(InputError):
    """A URL could not be fetched; ``reason`` is the Chinese cause."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"无法获取网页 {url}：{reason}")
        self.url = url
        self.reason = reason


class BodyTooLarge(FetchFailed):
    """The body is over ``max_bytes``; it was not read further."""

    def __init__(self, url: str, max_bytes: int) -> None:
        limit = f"{max_bytes / 1_000_000:.2f}".rstrip("0").rstrip(".")
        super().__init__(url, f"内容超过 {limit} MB 的上限，未保存")
        self.max_bytes = max_bytes


# ---- the connection --------------------------------------------------------------------

class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to the addresses pinned for a ``(host, port)``; httpx
    itself never resolves a name. ``inner`` does the actual connecting."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}

    def pin(self, host: str, port: int, addresses: Sequence[str]) -> None:
        self._pins[(host, port)] = tuple(addresses)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get((host, port))
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not checked before connecting")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@functools.cache
def _unverified_ssl_context() -> ssl.SSLContext:
    """For reading a server's certificate only (its expiry), never for trusting it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool opening sockets through ``backend``.

    HTTP/2 where the server offers it: on ``https://`` the TLS handshake offers ``h2`` and
    ``http/1.1`` (ALPN) and the server picks; plain ``http://`` is always HTTP/1.1 (no
    cleartext upgrade). Either way the socket is the one ``backend`` opened to a checked
    address, and each request of a fetch goes through the same checks.
    """

    def __init__(self, backend: PinnedBackend, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or _default_ssl_context()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(ssl_context=context, network_backend=backend,
                                                  max_connections=4, http1=True, http2=True)


# ---- fetching --------------------------------------------------------------------------

@dataclass(frozen=True)
class Fetched:
    """What the last hop answered (any HTTP status)."""

    url: str            # as requested
    final_url: str      # after redirects
    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool = False   # fetched with ``truncate=True`` and cut at ``max_bytes``


@dataclass(frozen=True)
class _Hop:
    host: str
    port: int
    addresses: tuple[str, ...]
    public: bool


def url_problem(url: httpx.URL) -> str | None:
    """Why ``url`` may not be fetched whatever its address (a Chinese reason), or None."""
    if url.scheme not in DEFAULT_PORTS:
        return "只支持 http:// 或 https:// 地址"
    if len(str(url)) > MAX_URL:
        return f"网址过长（最多 {MAX_URL} 个字符）"
    if url.userinfo:
        return "网址中不能含用户名或密码"
    host = url.raw_host.decode("ascii", "replace")
    if not host or (not HOST_NAME.match(host) and ":" not in host) or "%" in host:
        return "网址格式有误"
    if url.port is not None and not 1 <= url.port <= 65535:
        return "端口号有误"
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _reason(exc: httpx.HTTPError) -> str:
    """A short Chinese cause for a failed fetch of a public address."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "连接超时"
    if isinstance(exc, httpx.TimeoutException):
        return "等待响应超时"
    if isinstance(exc, httpx.ConnectError):
        causes = _causes(exc)
        if any(isinstance(c, ssl.SSLError) for c in causes):
            return "HTTPS 证书或加密连接有误"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return "连接被拒绝"
        return "无法连接到服务器"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "连接中途断开"
    if isinstance(exc, httpx.InvalidURL):
        return "网址格式有误"
    return f"网络错误（{type(exc).__name__}）"


def _handshake_reason(exc: BaseException) -> str:
    """A short Chinese cause for a failed TLS connection to a public address."""
    causes = _causes(exc)
    if any(isinstance(c, httpcore.TimeoutException | TimeoutError) for c in causes):
        return "连接超时"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return "HTTPS 证书或加密连接有误"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "连接被拒绝"
    return "无法连接到服务器"


class GuardedFetcher:
    """The one way the bot fetches a URL a person gave it (module docstring for the rules).

    Args:
        allow: non-public hosts and networks that may be fetched.
        resolver: looks names up (tests pass a fake; default: the system resolver).
        network: opens TCP connections to checked addresses (tests pass one that records
            them; default: httpcore's anyio backend).
        ssl_context: for HTTPS (tests pass one trusting their own CA; default: certifi).
    """

    def __init__(self, *, allow: AllowList | None = None, resolver: Resolver | None = None,
                 network: httpcore.AsyncNetworkBackend | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.allow = allow or AllowList()
        self._resolver = resolver or system_resolver
        self._network = network
        self._ssl_context = ssl_context

    async def _check(self, url: str, target: httpx.URL) -> _Hop:
        """The hop to ``target`` with its checked addresses.

        Raises:
            FetchFailed: the name does not resolve, or an address is refused.
        """
        host = target.raw_host.decode("ascii")
        port = target.port or DEFAULT_PORTS[target.scheme]
        literal = numeric_host(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                answers = await self._resolver(host, port)
                addresses = list(dict.fromkeys(unmapped(ipaddress.ip_address(a)) for a in answers))
            except (OSError, UnicodeError, ValueError):
                raise FetchFailed(url, "域名无法解析") from None
            if not addresses:
                raise FetchFailed(url, "域名无法解析")
        refused = [a for a in addresses if not is_public(a) and not self.allow.permits(host, port, a)]
        if refused:
            log.warning("refused to fetch %s: %s:%s is at non-public %s", url, host, port,
                        ", ".join(map(str, refused)))
            raise FetchFailed(url, NOT_ALLOWED)
        return _Hop(host, port, tuple(str(a) for a in addresses[:MAX_ADDRESSES]),
                    public=all(is_public(a) for a in addresses))

    async def fetch(self, url: str, *, timeout: float, max_bytes: int,
                    headers: Mapping[str, str] | None = None, truncate: bool = False) -> Fetched:
        """GET ``url``, following redirects by hand; any HTTP status is kept.

        Args:
            url: the URL as the person gave it.
            timeout: seconds for connecting and for each read; the whole fetch may take at
                most :data:`TOTAL_TIMEOUTS` times this.
            max_bytes: the largest body accepted.
            headers: request headers (User-Agent, Accept…), sent on every hop.
            truncate: keep the first ``max_bytes`` of a larger body (``Fetched.truncated``)
                and stop reading, instead of raising :class:`BodyTooLarge` (site watch reads
                huge pages' beginnings and checks links by their status).

        Raises:
            FetchFailed: a refused URL or address, a network failure, a timeout, too many
                redirects; :class:`BodyTooLarge` past ``max_bytes`` unless ``truncate``.
        """
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise FetchFailed(url, "网址格式有误") from None
        problem = url_problem(target)
        if problem:
            raise FetchFailed(url, problem)
        backend = PinnedBackend(self._network)
        hop: _Hop | None = None
        try:
            async with asyncio.timeout(timeout * TOTAL_TIMEOUTS), httpx.AsyncClient(
                    transport=PinnedTransport(backend, self._ssl_context), trust_env=False,
                    timeout=timeout, follow_redirects=False) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    hop = None
                    hop = await self._check(url, target)
                    backend.pin(hop.host, hop.port, hop.addresses)
                    async with client.stream("GET", target, headers=dict(headers or {})) as response:
                        location = response.headers.get("location", "").strip()
                        if response.status_code not in REDIRECTS or not location:
                            if truncate:
                                body, cut = await read_truncated(response, max_bytes)
                            else:
                                body, cut = await read_capped(response, url, max_bytes), False
                            return Fetched(url=url, final_url=str(target), status=response.status_code,
                                           headers=response.headers, body=body, truncated=cut)
                    target = self._next(url, target, location)
                raise FetchFailed(url, "跳转次数过多")
        except TimeoutError:
            if hop is not None and not hop.public:
                raise FetchFailed(url, NOT_ALLOWED) from None
            raise FetchFailed(url, "域名解析超时" if hop is None else "下载超时（网站响应过慢）") from None
        except httpx.HTTPError as exc:
            if hop is not None and not hop.public:
                log.info("fetching %s failed at non-public %s:%s: %r", url, hop.host, hop.port, exc)
                raise FetchFailed(url, NOT_ALLOWED) from None
            raise FetchFailed(url, _reason(exc)) from exc

    @staticmethod
    def _next(url: str, current: httpx.URL, location: str) -> httpx.URL:
        """The redirect target, checked like the first URL."""
        try:
            target = current.join(location)
        except (httpx.InvalidURL, ValueError):
            raise FetchFailed(url, "跳转地址格式有误") from None
        problem = url_problem(target)
        if problem:
            raise FetchFailed(url, f"跳转到了不能抓取的地址（{problem}）")
        return target

    def allowing(self, *entries: str) -> GuardedFetcher:
        """A fetcher like this one (resolver, network, TLS) whose allow-list also admits
        ``entries`` (the forms of :func:`~core.netguard.parse_entry`).

        Raises:
            ValueError: an entry is malformed.
        """
        allow = AllowList(self.allow.entries + AllowList.parse(entries).entries)
        return GuardedFetcher(allow=allow, resolver=self._resolver, network=self._network,
                              ssl_context=self._ssl_context)

    async def peer_certificate(self, url: str, *, timeout: float) -> bytes | None:
        """The certificate (DER) the server of an ``https://`` URL presents; None for
        ``http://``.

        The URL and its addresses are checked and pinned as for :meth:`fetch`; only the TLS
        handshake is made, nothing is requested. The certificate is read without verifying
        it, so that an expired or untrusted one can still be dated (site watch warns before
        a certificate expires); it says nothing about whether the server can be trusted.

        Raises:
            FetchFailed: as :meth:`fetch`, for the URL, the address and the connection.
        """
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise FetchFailed(url, "网址格式有误") from None
        problem = url_problem(target)
        if problem:
            raise FetchFailed(url, problem)
        if target.scheme != "https":
            return None
        backend = PinnedBackend(self._network)
        hop: _Hop | None = None
        der: bytes | None = None
        try:
            async with asyncio.timeout(timeout * TOTAL_TIMEOUTS):
                hop = await self._check(url, target)
                backend.pin(hop.host, hop.port, hop.addresses)
                stream = await backend.connect_tcp(hop.host, hop.port, timeout=timeout)
                try:
                    stream = await stream.start_tls(_unverified_ssl_context(), server_hostname=hop.host,
                                                    timeout=timeout)
                    ssl_object = stream.get_extra_info("ssl_object")
                    if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
                        der = ssl_object.getpeercert(binary_form=True)
                finally:
                    await stream.aclose()
        except TimeoutError:
            if hop is not None and not hop.public:
                raise FetchFailed(url, NOT_ALLOWED) from None
            raise FetchFailed(url, "域名解析超时" if hop is None else "连接超时") from None
        except (httpcore.NetworkError, httpcore.TimeoutException, OSError) as exc:
            if hop is not None and not hop.public:
                log.info("reading the certificate of %s failed at non-public %s:%s: %r", url,
                         hop.host, hop.port, exc)
                raise FetchFailed(url, NOT_ALLOWED) from None
            raise FetchFailed(url, _handshake_reason(exc)) from exc
        if not der:
            raise FetchFailed(url, "HTTPS 证书或加密连接有误")
        return der


async def read_truncated(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The first ``max_bytes`` of a streamed ``response``'s body, and whether there was more
    (reading stops there)."""
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        received += len(chunk)
        if received > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


async def read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    """The body of a streamed ``response``, refused once it passes ``max_bytes``.

    Raises:
        BodyTooLarge: ``Content-Length`` says more, or more arrived.
    """
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(url, max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLarge(url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)
