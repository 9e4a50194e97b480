"""The guarded fetcher (core.fetcher): each test reproduces an SSRF attack on evidence
fetching — internal addresses in every spelling, DNS answers pointing inside, redirects,
DNS rebinding, port probing — and shows it refused, while allowed intranet sites and
public sites (local servers behind a fake resolver) are fetched; over HTTP/2 where an
HTTPS server offers it, with the same guards."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.fetcher import MAX_REDIRECTS, NOT_ALLOWED, BodyTooLarge, FetchFailed, GuardedFetcher
from core.netguard import AllowList
from tests.core.fake_net import (
    OTHER_PUBLIC_IP,
    PUBLIC_IP,
    FakeResolver,
    LoopbackNetwork,
    closed_port,
    h2_server,
    http_server,
    make_certs,
    page,
    tcp_server,
)

SECRET = b"db password: hunter2"


async def get(fetcher: GuardedFetcher, url: str, *, timeout: float = 2,
              max_bytes: int = 1_000_000) -> bytes:
    return (await fetcher.fetch(url, timeout=timeout, max_bytes=max_bytes)).body


async def refused(fetcher: GuardedFetcher, url: str, *, timeout: float = 2) -> str:
    with pytest.raises(FetchFailed) as err:
        await fetcher.fetch(url, timeout=timeout, max_bytes=1_000_000)
    return err.value.reason


# ---- internal addresses in every spelling ----------------------------------------------

async def test_loopback_on_any_port_is_refused_without_connecting() -> None:
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(network=network, resolver=FakeResolver({}))
    with http_server(page(SECRET)) as (port, seen):
        assert await refused(fetcher, f"http://127.0.0.1:{port}/") == NOT_ALLOWED
    assert network.connected == [] and seen.paths == []


@pytest.mark.parametrize("url", [
    "http://2130706433/", "http://0x7f000001/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
    "http://127.1/", "http://0x7f.1/", "http://017700000001/", "http://[::ffff:a00:5]/",
    "http://10.0.0.5/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://0.0.0.0:5432/", "https://[fd00::1]/", "http://[2002:7f00:1::1]/",
    "http://127.0.0.1.:8080/",
])
async def test_internal_addresses_in_any_spelling_are_refused(url: str) -> None:
    resolver, network = FakeResolver({}), LoopbackNetwork()
    assert await refused(GuardedFetcher(resolver=resolver, network=network), url) == NOT_ALLOWED
    assert resolver.calls == [] and network.connected == []   # numeric: never looked up


@pytest.mark.parametrize("url, reason", [
    ("http://0177.0.0.1/", "网址格式有误"),        # httpx itself refuses this spelling
    ("http://user:secret@www.example.test/", "用户名或密码"),
    ("http://www.example.test@127.0.0.1/", "用户名或密码"),
    ("http://www.example.test:99999/", "端口号有误"),
    ("http://[fe80::1%25eth0]/", "网址格式有误"),
    ("http://%31%32%37.0.0.1/", "网址格式有误"),
    ("ftp://www.example.test/", "只支持 http:// 或 https://"),
    ("file:///etc/passwd", "只支持 http:// 或 https://"),
    ("http://www.example.test/" + "a" * 2000, "网址过长"),
])
async def test_malformed_urls_are_refused_before_any_lookup(url: str, reason: str) -> None:
    resolver, network = FakeResolver({"www.example.test": [PUBLIC_IP]}), LoopbackNetwork()
    assert reason in await refused(GuardedFetcher(resolver=resolver, network=network), url)
    assert resolver.calls == [] and network.connected == []


async def test_a_public_looking_name_resolving_inside_is_refused() -> None:
    resolver = FakeResolver({"news.example-gov.test": ["10.0.0.5"],
                             "mixed.example.test": [PUBLIC_IP, "192.168.0.10"],
                             "v6.example.test": ["::1"]})
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(resolver=resolver, network=network)
    for host in ("news.example-gov.test", "mixed.example.test", "v6.example.test"):
        assert await refused(fetcher, f"https://{host}/a") == NOT_ALLOWED
    assert network.connected == []
    assert [h for h, _ in resolver.calls] == ["news.example-gov.test", "mixed.example.test",
                                              "v6.example.test"]


async def test_the_system_resolver_answer_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[object]:
        assert host == "intranet-db.example.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    network = LoopbackNetwork()
    assert await refused(GuardedFetcher(network=network), "http://intranet-db.example.test/") == NOT_ALLOWED
    assert network.connected == []


async def test_an_unknown_name_is_explained() -> None:
    fetcher = GuardedFetcher(resolver=FakeResolver({}), network=LoopbackNetwork())
    assert await refused(fetcher, "http://no-such-host.example.test/") == "域名无法解析"


# ---- redirects and rebinding -----------------------------------------------------------

async def test_a_redirect_to_an_internal_port_is_refused_at_the_hop() -> None:
    with http_server(page(SECRET)) as (inner_port, inner), \
            http_server(page(b"", 302, Location=f"http://127.0.0.1:{inner_port}/admin")) as (port, outer):
        # The redirecting server is allowed (its port only); the target port is not.
        fetcher = GuardedFetcher(allow=AllowList.parse([f"127.0.0.1:{port}"]))
        with pytest.raises(FetchFailed) as err:
            await fetcher.fetch(f"http://127.0.0.1:{port}/go", timeout=2, max_bytes=1000)
    assert err.value.reason == NOT_ALLOWED
    assert err.value.url == f"http://127.0.0.1:{port}/go"
    assert outer.paths == ["/go"] and inner.paths == []


async def test_a_public_redirect_into_the_intranet_is_refused() -> None:
    resolver = FakeResolver({"www.example.test": [PUBLIC_IP]})
    with http_server(page(b"", 301, Location="http://2130706433:5432/")) as (port, seen):
        network = LoopbackNetwork()
        fetcher = GuardedFetcher(resolver=resolver, network=network)
        assert await refused(fetcher, f"http://www.example.test:{port}/") == NOT_ALLOWED
    assert network.connected == [(PUBLIC_IP, port)] and seen.paths == ["/"]


async def test_redirects_are_followed_and_each_hop_checked() -> None:
    resolver = FakeResolver({"a.example.test": [PUBLIC_IP], "b.example.test": [OTHER_PUBLIC_IP]})

    def route(handler: object) -> tuple[int, dict[str, str], bytes]:
        path = handler.path  # type: ignore[attr-defined]
        if path == "/start":
            return 302, {"Location": "//b.example.test:PORT/next"}, b""
        if path == "/next":
            return 303, {"Location": "/final?x=1"}, b""
        return 200, {"Content-Type": "text/plain"}, b"final page"

    with http_server(lambda h: _with_port(route(h), port)) as (port, seen):
        network = LoopbackNetwork()
        fetcher = GuardedFetcher(resolver=resolver, network=network)
        got = await fetcher.fetch(f"http://a.example.test:{port}/start", timeout=2, max_bytes=1000)
    assert (got.status, got.body, got.final_url) == (200, b"final page",
                                                     f"http://b.example.test:{port}/final?x=1")
    assert [h for h, _ in resolver.calls] == ["a.example.test", "b.example.test", "b.example.test"]
    assert {ip for ip, _ in network.connected} == {PUBLIC_IP, OTHER_PUBLIC_IP}
    assert seen.hosts == [f"a.example.test:{port}"] + [f"b.example.test:{port}"] * 2


def _with_port(answer: tuple[int, dict[str, str], bytes], port: int) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = answer
    return status, {k: v.replace("PORT", str(port)) for k, v in headers.items()}, body


async def test_too_many_redirects() -> None:
    resolver = FakeResolver({"loop.example.test": [PUBLIC_IP]})
    with http_server(page(b"", 307, Location="/again")) as (port, seen):
        fetcher = GuardedFetcher(resolver=resolver, network=LoopbackNetwork())
        assert await refused(fetcher, f"http://loop.example.test:{port}/") == "跳转次数过多"
    assert len(seen.paths) == MAX_REDIRECTS + 1


async def test_dns_rebinding_connects_only_to_the_checked_address() -> None:
    # The attacker's DNS answers a public address first and 127.0.0.1 to every later query.
    resolver = FakeResolver({"rebind.example.test": [[PUBLIC_IP], ["127.0.0.1"]]})
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(resolver=resolver, network=network)
    with http_server(page(b"public page")) as (port, seen):
        assert await get(fetcher, f"http://rebind.example.test:{port}/") == b"public page"
    assert resolver.calls == [("rebind.example.test", port)]       # looked up once
    assert network.connected == [(PUBLIC_IP, port)]                  # at the checked address
    assert seen.hosts == [f"rebind.example.test:{port}"]             # Host header keeps the name

    # A redirect back to the same name is a new hop: looked up and checked again.
    resolver = FakeResolver({"rebind.example.test": [[PUBLIC_IP], ["127.0.0.1"]]})
    fetcher = GuardedFetcher(resolver=resolver, network=network)
    with http_server(page(b"", 302, Location="/internal")) as (port, seen):
        assert await refused(fetcher, f"http://rebind.example.test:{port}/") == NOT_ALLOWED
    assert seen.paths == ["/"] and len(resolver.calls) == 2


async def test_https_keeps_the_name_for_sni_and_the_certificate(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "www.example.test")
    resolver = FakeResolver({"www.example.test": [PUBLIC_IP], "other.example.test": [PUBLIC_IP]})
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(resolver=resolver, network=network, ssl_context=certs.client)
    with http_server(page(b"secure page"), tls=certs.server) as (port, seen):
        assert await get(fetcher, f"https://www.example.test:{port}/") == b"secure page"
        assert seen.server_names == ["www.example.test"] and network.connected == [(PUBLIC_IP, port)]
        # The same server under another name: its certificate does not match.
        assert await refused(fetcher, f"https://other.example.test:{port}/") == "HTTPS 证书或加密连接有误"


# ---- HTTP/2 -----------------------------------------------------------------------------

async def test_https_speaks_http2_when_the_server_offers_it(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "www.example.test")
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(resolver=FakeResolver({"www.example.test": [PUBLIC_IP]}), network=network,
                             ssl_context=certs.client)
    with h2_server(lambda path: (200, {"Content-Type": "text/html"}, b"h2 page"), tls=certs.server) as (port, seen):
        fetched = await fetcher.fetch(f"https://www.example.test:{port}/a?b=1", timeout=2, max_bytes=1000)
    assert (fetched.status, fetched.body, fetched.headers["content-type"]) == (200, b"h2 page", "text/html")
    assert seen.protocols == ["h2"] and seen.paths == ["/a?b=1"]          # the server speaks nothing else
    assert seen.hosts == [f"www.example.test:{port}"] and network.connected == [(PUBLIC_IP, port)]


async def test_http2_redirects_rebinding_and_size_caps_are_guarded(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "www.example.test")
    resolver = FakeResolver({"www.example.test": [PUBLIC_IP]})
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(resolver=resolver, network=network, ssl_context=certs.client)
    big = b"x" * 300_000

    def route(path: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/":
            return 302, {"Location": "/next"}, b""
        if path == "/next":
            return 302, {"Location": f"http://127.0.0.1:{port}/secret"}, b""
        if path == "/moved":
            return 302, {"Location": "/"}, b""
        return (200, {}, big) if path == "/big" else (200, {}, SECRET)

    with h2_server(route, tls=certs.server) as (port, seen):
        assert await refused(fetcher, f"https://www.example.test:{port}/") == NOT_ALLOWED
        assert seen.paths == ["/", "/next"]                       # the internal hop never reached
        resolver.table["www.example.test"] = [[PUBLIC_IP], ["127.0.0.1"]]   # rebinding between hops
        resolver.calls.clear()
        assert await refused(fetcher, f"https://www.example.test:{port}/moved") == NOT_ALLOWED
        assert seen.paths[2:] == ["/moved"]                       # refused at the second hop's answer
        resolver.table["www.example.test"] = [PUBLIC_IP]
        with pytest.raises(BodyTooLarge):
            await fetcher.fetch(f"https://www.example.test:{port}/big", timeout=2, max_bytes=100_000)
        cut = await fetcher.fetch(f"https://www.example.test:{port}/big", timeout=2, max_bytes=100_000,
                                  truncate=True)
        assert (len(cut.body), cut.truncated) == (100_000, True)
    assert set(seen.protocols) == {"h2"} and "/secret" not in seen.paths
    assert {address for address, _ in network.connected} == {PUBLIC_IP}


async def test_https_servers_without_http2_are_fetched_over_http1(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "www.example.test")
    certs.server.set_alpn_protocols(["http/1.1"])
    fetcher = GuardedFetcher(resolver=FakeResolver({"www.example.test": [PUBLIC_IP]}), network=LoopbackNetwork(),
                             ssl_context=certs.client)
    with http_server(page(b"http/1.1 page"), tls=certs.server) as (port, seen):
        assert await get(fetcher, f"https://www.example.test:{port}/") == b"http/1.1 page"
    with http_server(page(b"plain page")) as (port, plain):
        assert await get(fetcher, f"http://www.example.test:{port}/") == b"plain page"
    assert seen.protocols == ["http/1.1"] and plain.protocols == [None]


# ---- port probing ----------------------------------------------------------------------

async def test_closed_and_open_internal_ports_answer_alike() -> None:
    """Whether refused outright or allowed (a CIDR), a closed port, a non-HTTP service and
    a silent one give the same reason."""
    with closed_port() as closed, tcp_server(b"SSH-2.0-OpenSSH_9.6\r\n") as ssh, \
            tcp_server(b"\x00\x00\x00\x08\x04\xd2\x16\x2f") as pg, tcp_server(None) as silent:
        for allow in ([], ["127.0.0.0/8"]):
            fetcher = GuardedFetcher(allow=AllowList.parse(allow))
            messages = set()
            for port in (closed, ssh, pg, silent):
                with pytest.raises(FetchFailed) as err:
                    await fetcher.fetch(f"http://127.0.0.1:{port}/", timeout=0.3, max_bytes=1000)
                messages.add(err.value.message.replace(str(port), "PORT"))
                assert err.value.__cause__ is None
            assert messages == {f"无法获取网页 http://127.0.0.1:PORT/：{NOT_ALLOWED}"}


async def test_public_failures_keep_their_reasons() -> None:
    resolver = FakeResolver({"down.example.test": [PUBLIC_IP]})
    fetcher = GuardedFetcher(resolver=resolver, network=LoopbackNetwork())
    with closed_port() as port:
        assert await refused(fetcher, f"http://down.example.test:{port}/") == "连接被拒绝"
    with tcp_server(None) as port:
        assert await refused(fetcher, f"http://down.example.test:{port}/", timeout=0.3) == "等待响应超时"
    with tcp_server(b"garbage\r\n") as port:
        assert await refused(fetcher, f"http://down.example.test:{port}/") == "连接中途断开"


# ---- caps and allowed intranet sites ---------------------------------------------------

async def test_the_body_is_capped() -> None:
    resolver = FakeResolver({"big.example.test": [PUBLIC_IP]})
    fetcher = GuardedFetcher(resolver=resolver, network=LoopbackNetwork())
    with http_server(page(b"x" * 5000)) as (port, _):
        with pytest.raises(BodyTooLarge) as err:
            await fetcher.fetch(f"http://big.example.test:{port}/", timeout=2, max_bytes=4999)
        assert "内容超过" in err.value.reason and err.value.max_bytes == 4999
        assert await get(fetcher, f"http://big.example.test:{port}/", max_bytes=5000) == b"x" * 5000


async def test_allow_listed_intranet_sites_are_fetched() -> None:
    resolver = FakeResolver({"oa.intranet.test": ["10.1.2.3"], "cms.intranet.test": ["172.16.0.9"],
                             "db.intranet.test": ["10.1.2.4"]})
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(allow=AllowList.parse(["oa.intranet.test", "172.16.0.0/12"]),
                             resolver=resolver, network=network)
    with http_server(page(b"intranet page")) as (port, seen):
        assert await get(fetcher, f"http://oa.intranet.test:{port}/notice") == b"intranet page"
        assert await get(fetcher, f"http://cms.intranet.test:{port}/") == b"intranet page"
        assert await refused(fetcher, f"http://db.intranet.test:{port}/") == NOT_ALLOWED
    assert network.connected == [("10.1.2.3", port), ("172.16.0.9", port)]
    assert seen.hosts == [f"oa.intranet.test:{port}", f"cms.intranet.test:{port}"]


async def test_environment_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    resolver = FakeResolver({"www.example.test": [PUBLIC_IP]})
    network = LoopbackNetwork()
    with http_server(page(b"direct")) as (port, _):
        fetcher = GuardedFetcher(resolver=resolver, network=network)
        assert await get(fetcher, f"http://www.example.test:{port}/") == b"direct"
    assert network.connected == [(PUBLIC_IP, port)]
