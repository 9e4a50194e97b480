"""Fetching a watched page: decoding Chinese pages (declared or not), redirects, the size
cap, timeouts, the User-Agent, intranet sites admitted by their registration only, and
the per-host politeness."""

from __future__ import annotations

import asyncio
import itertools

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.fetcher import GuardedFetcher
from tests.core.fake_net import PUBLIC_IP, FakeResolver, LoopbackNetwork
from tests.watch.conftest import SiteServer
from watch.pages import (
    INTRANET_DOWN,
    REFUSED,
    HostLimiter,
    decode_body,
    fetcher_for,
    get_page,
    header_safe,
)
from watch.types import WatchPolicy

POLICY = WatchPolicy(timeout_seconds=2, polite_delay_ms=0)
NOTICE = "关于做好2026年政务公开工作的通知"


def public_fetcher() -> GuardedFetcher:
    """``www.example.test`` "at" a public address, served by the loopback fixture server."""
    return GuardedFetcher(resolver=FakeResolver({"www.example.test": [PUBLIC_IP]}), network=LoopbackNetwork())


def html(text: str, head: str = "") -> str:
    return f"<html><head>{head}<title>通知公告</title></head><body><p>{text}</p></body></html>"


async def test_gbk_pages_are_read_declared_or_not(engine: Engine, site_server: SiteServer) -> None:
    gbk = html(NOTICE).encode("gbk")
    site_server.set("/header", gbk, content_type="text/html; charset=GBK")
    site_server.set("/meta", html(NOTICE, '<meta charset="gb2312">').encode("gbk"), content_type="text/html")
    site_server.set("/http-equiv", html(NOTICE, '<meta http-equiv="Content-Type" '
                                        'content="text/html; charset=gbk">').encode("gbk"), content_type="text/html")
    site_server.set("/undeclared", gbk, content_type="text/html")
    site_server.set("/wrong-latin1", gbk, content_type="text/html; charset=ISO-8859-1")
    site_server.set("/wrong-utf8", gbk, content_type="text/html; charset=utf-8")
    site_server.set("/utf8", html(NOTICE))
    with Session(engine) as session:
        fetcher = fetcher_for(site_server.site(session))
    for path in ("/header", "/meta", "/http-equiv", "/undeclared", "/wrong-latin1", "/wrong-utf8", "/utf8"):
        page = await get_page(fetcher, site_server.url(path), POLICY)
        assert page.ok and NOTICE in page.html, path
        assert "\ufffd" not in page.html, path


def test_a_body_cut_inside_a_character_is_still_read_in_its_charset() -> None:
    body = html(NOTICE).encode("gbk")
    cut = body[: body.index("工作".encode("gbk")) + 1]            # half of 工
    assert "关于做好2026年政务公开" in decode_body(cut, "text/html", truncated=True)
    assert decode_body(b"\xef\xbb\xbf" + NOTICE.encode()) == NOTICE      # a UTF-8 BOM wins


async def test_the_page_is_fetched_with_the_policy_user_agent_and_timed(
        engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/", html(NOTICE))
    ticks = iter([100.0, 100.25])
    with Session(engine) as session:
        fetcher = fetcher_for(site_server.site(session))
    page = await get_page(fetcher, site_server.url("/"), POLICY, monotonic=lambda: next(ticks))
    assert (page.status, page.elapsed_ms, page.error) == (200, 250, "")
    assert site_server.hits[-1].user_agent == header_safe(POLICY.user_agent)
    assert site_server.hits[-1].user_agent.startswith("dutybot-watch/")


async def test_a_redirect_is_followed_and_the_final_address_kept(engine: Engine, site_server: SiteServer) -> None:
    site_server.redirect("/old/", "/new/index.html", 301)
    site_server.set("/new/index.html", html(NOTICE))
    with Session(engine) as session:
        fetcher = fetcher_for(site_server.site(session))
    page = await get_page(fetcher, site_server.url("/old/"), POLICY)
    assert page.ok and page.url == site_server.url("/old/")
    assert page.final_url == site_server.url("/new/index.html") and NOTICE in page.html


async def test_a_huge_page_is_read_only_up_to_the_cap(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/huge", b"<html><body>" + "信息".encode() * 600_000 + b"</body></html>")
    with Session(engine) as session:
        fetcher = fetcher_for(site_server.site(session))
    page = await get_page(fetcher, site_server.url("/huge"), WatchPolicy(max_bytes=100_000))
    assert page.ok and page.truncated
    assert len(page.html.encode()) <= 100_000 and page.html.startswith("<html><body>信息信息")
    assert "\ufffd" not in page.html


async def test_a_slow_page_times_out_with_its_reason(site_server: SiteServer) -> None:
    site_server.set("/slow", html(NOTICE), delay=3)
    page = await get_page(public_fetcher(), f"http://www.example.test:{site_server.port}/slow",
                          WatchPolicy(timeout_seconds=0.2))
    assert not page.ok and page.status is None and page.html == ""
    assert page.error in ("等待响应超时", "下载超时（网站响应过慢）")


async def test_http_errors_are_pages_with_their_status(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/boom", "<html>oops</html>", 500)
    with Session(engine) as session:
        fetcher = fetcher_for(site_server.site(session))
    page = await get_page(fetcher, site_server.url("/boom"), POLICY)
    missing = await get_page(fetcher, site_server.url("/nothing-here"), POLICY)
    assert (page.ok, page.status, page.error, page.failure) == (False, 500, "", "HTTP 500（服务器内部错误）")
    assert missing.failure == "HTTP 404（页面不存在）"


async def test_a_loopback_site_not_registered_intranet_is_refused(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/", html(NOTICE))
    with Session(engine) as session:
        site = site_server.site(session, intranet=False)
    page = await get_page(fetcher_for(site), site.url, POLICY)
    assert not page.ok and page.refused and page.error == REFUSED
    assert site_server.hits == []                                   # never connected


async def test_an_intranet_site_admits_its_own_host_only(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/", html(NOTICE))
    with Session(engine) as session:
        site = site_server.site(session)
    fetcher = fetcher_for(site, GuardedFetcher())
    assert (await get_page(fetcher, site.url, POLICY)).ok
    other_host = await get_page(fetcher, f"http://127.0.0.2:{site_server.port}/", POLICY)
    assert other_host.refused and other_host.error == REFUSED
    assert [hit.path for hit in site_server.hits] == ["/"]
    # Its own host failing reads alike whatever the cause (the fetcher's SSRF rule).
    site_server.set("/slow", html(NOTICE), delay=3)
    slow = await get_page(fetcher, site_server.url("/slow"), WatchPolicy(timeout_seconds=0.2))
    assert (slow.refused, slow.error) == (False, INTRANET_DOWN)


async def test_the_host_limiter_spaces_requests_and_caps_concurrency() -> None:
    now = [0.0]
    starts: list[tuple[str, float]] = []
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    limiter = HostLimiter(2, 500, sleep=fake_sleep, monotonic=lambda: now[0])

    async def request(url: str) -> None:
        host = url.split("/")[2]
        async with limiter.slot(url):
            starts.append((host, now[0]))
            running[host] = running.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), running[host])
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            running[host] -= 1

    await asyncio.gather(*(request(f"http://a.example.test/{n}") for n in range(4)),
                         request("http://b.example.test/"))
    a_starts = [at for host, at in starts if host == "a.example.test"]
    assert all(later - earlier >= 0.5 for earlier, later in itertools.pairwise(a_starts))
    assert peak["a.example.test"] <= 2 and len(a_starts) == 4
    # Another host does not queue behind the first: it starts second, and only the first
    # host's requests ever waited (three polite delays of half a second).
    assert [host for host, _ in starts].index("b.example.test") == 1
    assert sum(waits) == 1.5
