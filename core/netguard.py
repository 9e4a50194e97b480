"""Which addresses the bot may connect to for a URL a person gave it (SSRF).

An address is *public* when it is globally reachable unicast (:func:`is_public`): not
loopback, private (RFC 1918, fc00::/7), link-local, CGNAT (100.64/10), multicast,
reserved, unspecified or documentation space, nor an IPv6 address embedding such an IPv4
address (``::ffff:127.0.0.1``, 6to4, NAT64). Numeric hosts are read as ``inet_aton``
reads them (:func:`numeric_host`: ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and
``127.1`` are all 127.0.0.1). A non-public address may be used only when the
:class:`AllowList` (``[incidents] fetch_allow``) names its host or host:port, or holds
its network. The fetcher that applies this is :mod:`core.fetcher`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import httpx

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port) -> addresses``: the host's addresses as text, in the order to try them.
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
_NOT_PUBLIC: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96",            # unspecified, loopback and the deprecated IPv4-compatible form
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
    "fec0::/10", "ff00::/8"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: A host name as httpx sends it (IDNA-encoded, lower case).
HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")
_PART = re.compile(r"^(0[x][0-9a-f]*|0[0-7]*|[1-9][0-9]*)$")


def unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally reachable unicast address, and any IPv4 address
    embedded in it (6to4, NAT64) is too."""
    address = unmapped(address)
    if any(address in network for network in _NOT_PUBLIC):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


def numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host means, IPv4 read as ``inet_aton`` reads it (``127.1``,
    ``0x7f000001``, ``0177.0.0.1``, ``2130706433``); None for a name."""
    text = host.strip().lower().removeprefix("[").removesuffix("]")
    try:
        return unmapped(ipaddress.ip_address(text))
    except ValueError:
        pass
    parts = text.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.match(p) for p in parts):
        return None
    values = [int(p[2:] or "0", 16) if p.startswith("0x") else int(p, 8) if p.startswith("0")
              else int(p) for p in parts]
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for value in head:
        number = number * 256 + value
    return ipaddress.IPv4Address((number << 8 * (4 - len(head))) | last)


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# ---- the allow-list --------------------------------------------------------------------

@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a host name (``*.`` for its subdomains) or a network, with
    an optional port."""

    text: str
    name: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def permits(self, host: str, port: int, address: IPAddress | None) -> bool:
        """Whether a connection to ``host:port`` at ``address`` is allowed by this entry."""
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return address is not None and unmapped(address) in self.network
        host = host.rstrip(".")
        if self.name is not None and self.name.startswith("*."):
            return host.endswith(self.name[1:])
        return host == self.name


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"fetch_allow 条目“{entry}”的端口有误（应为 1–65535）")
    return int(text)


def parse_entry(text: str) -> AllowEntry:
    """One entry: ``oa.example.gov.cn``, ``*.intra.example.cn``, ``oa.example.gov.cn:8080``,
    ``10.1.2.3``, ``10.1.2.3:8080``, ``[fd00::1]:8080``, ``10.20.0.0/16`` or ``fd00::/8``.

    Raises:
        ValueError: not one of these forms (the message is Chinese, for the config check).
    """
    raw = text.strip().lower()
    bad = ValueError(f"fetch_allow 条目“{text}”无法识别：应为域名、域名:端口、IP 地址、"
                     "IP:端口或网段（如 10.20.0.0/16）")
    if "/" in raw:
        try:
            return AllowEntry(raw, network=ipaddress.ip_network(raw, strict=False))
        except ValueError:
            raise bad from None
    host, port = raw, None
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", raw)
    if bracketed:
        host, port = bracketed.group(1), bracketed.group(2)
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    number = _port(port, text) if port is not None else None
    address = numeric_host(host)
    if address is not None:
        return AllowEntry(raw, network=ipaddress.ip_network(address), port=number)
    wildcard = host.startswith("*.")
    try:
        name = httpx.URL(f"http://{host.removeprefix('*.')}/").raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        raise bad from None
    if not name or not HOST_NAME.match(name):
        raise bad
    return AllowEntry(raw, name=("*." if wildcard else "") + name.rstrip("."), port=number)


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks that may be fetched although they are not public (an office's
    intranet sites); empty by default."""

    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> AllowList:
        """The list of these entries (see :func:`parse_entry`).

        Raises:
            ValueError: an entry is malformed.
        """
        return cls(tuple(parse_entry(t) for t in texts if t.strip()))

    def permits(self, host: str, port: int, address: IPAddress | None) -> bool:
        """Whether some entry allows ``host:port`` at ``address``."""
        return any(e.permits(host, port, address) for e in self.entries)

    def covers(self, url: str) -> bool:
        """Whether an entry allows ``url``'s host without looking its name up (a name
        entry, or a network holding a numeric host)."""
        try:
            parsed = httpx.URL(url.strip())
            host = parsed.raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeError):
            return False
        port = parsed.port or DEFAULT_PORTS.get(parsed.scheme, 0)
        return bool(host) and self.permits(host, port, numeric_host(host))
