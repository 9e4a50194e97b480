"""Broken links: a crawl of a fixture site with planted faults (a 404, a 500, a slow page,
a dead external link on an unused loopback port) and pages that must not raise an alarm
(a working external link, a refused robot, a redirect, a huge page, a PDF, bad HTML), the
depth and page caps, each link fetched once, and the address rules for links."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.fetcher import GuardedFetcher
from tests.core.fake_net import PUBLIC_IP, FakeResolver, LoopbackNetwork, closed_port
from tests.watch.conftest import SiteServer
from watch.crawl import PRIVATE_LINK, crawl, links, normalize
from watch.models import FindingKind
from watch.pages import INTRANET_DOWN, HostLimiter, fetcher_for
from watch.types import WatchPolicy

POLICY = WatchPolicy(timeout_seconds=0.5, polite_delay_ms=0, crawl_depth=1, crawl_max_pages=50,
                     per_host_concurrency=2)


@pytest.fixture
def dead_port() -> Iterator[int]:
    with closed_port() as port:
        yield port


def page(*anchors: str, title: str = "区政府门户网站") -> str:
    return f"<html><head><title>{title}</title></head><body>{''.join(anchors)}</body></html>"


def a(href: str, text: str) -> str:
    return f"<a href=\"{href}\">{text}</a>"


def plant(site: SiteServer, other: SiteServer, dead_port: int) -> None:
    """The fixture site: every kind of link on the homepage, a second level below the news."""
    site.set("/", page(
        a("/xwdt/", "新闻动态"), a("/xwdt/#top", "新闻动态（锚点）"), a("tzgg/", "通知公告"),
        a("/about.html", "关于我们"), a("/missing.html", "机构设置"), a("/error.jsp", "在线办事"),
        a(f"http://127.0.0.1:{dead_port}/index.html", "市政府门户"), a(other.url("/"), "省政府门户"),
        a("/slow.html", "慢页面"), a("/forbidden/", "内部系统"), a("/old.html", "旧地址"),
        a("/huge.html", "大页面"), a("/file.pdf", "附件"), a("mailto:gov@example.cn", "来信"),
        a("javascript:void(0)", "展开"), a("tel:0743-1234567", "电话"), a("#main", "跳到正文"),
        '<a href="/about.html"><img src="/logo.png" alt="网站标识"></a>',
        "<div><ul><li><a href='/xwdt/'>断开的<b>标记</li></div></span>"))          # bad HTML
    site.set("/xwdt/", page(a("/art/1.html", "区长调研"), a("/art/2.html", "全区会议"), a("/", "首页")))
    site.set("/tzgg/", page(a("/", "首页")))
    site.set("/about.html", page(a("/", "首页")))
    site.set("/error.jsp", "<html>500</html>", 500)
    site.set("/slow.html", page(), delay=5)
    site.set("/forbidden/", "<html>403</html>", 403)
    site.redirect("/old.html", "/about.html", 301)
    site.set("/huge.html", b"<html><body>" + b"x" * 3_000_000 + b"</body></html>")
    site.set("/file.pdf", b"%PDF-1.4 ...", content_type="application/pdf")
    site.set("/art/1.html", page(a("/art/deeper.html", "更深一层")))
    other.set("/", page(a("/nowhere.html", "外站链接")))


async def test_the_crawl_finds_the_planted_broken_links_and_nothing_else(
        engine: Engine, site_server: SiteServer, make_site_server: Callable[..., SiteServer],
        dead_port: int) -> None:
    other = make_site_server()
    plant(site_server, other, dead_port)
    seen: list[tuple[int, int]] = []
    with Session(engine) as session:
        site = site_server.site(session)
        result = await crawl(fetcher_for(site), site, POLICY, progress=lambda done, total: seen.append((done, total)))
    broken = {f.url: f for f in result.broken}
    url = site_server.url
    assert set(broken) == {url("/missing.html"), url("/error.jsp"), url("/slow.html"), url("/art/2.html"),
                           f"http://127.0.0.1:{dead_port}/index.html"}
    assert all(f.kind == FindingKind.broken_link for f in result.broken)
    missing = broken[url("/missing.html")]
    assert missing.detail == f"链接不可用：“机构设置” → {url('/missing.html')}（HTTP 404（页面不存在）），所在页面：{url('/')}"
    assert missing.data == {"status": 404, "error": "HTTP 404（页面不存在）", "found_on": url("/"), "text": "机构设置",
                            "external": False}
    assert broken[url("/error.jsp")].data["status"] == 500
    assert broken[url("/art/2.html")].data["found_on"] == url("/xwdt/")       # found one level down
    external = broken[f"http://127.0.0.1:{dead_port}/index.html"]
    assert external.data["external"] and external.data["error"] == INTRANET_DOWN
    assert broken[url("/slow.html")].data["status"] is None
    # Each URL once; the external site checked, never crawled; depth 1 pages' links checked only.
    assert site_server.count("/xwdt/") == 1 and site_server.count("/about.html") == 2   # itself, /old.html's target
    assert other.count("/") == 1 and other.count("/nowhere.html") == 0
    assert site_server.count("/art/1.html") == 1 and site_server.count("/art/deeper.html") == 0
    crawled = {p.url for p in result.pages}
    assert {url("/"), url("/xwdt/"), url("/tzgg/"), url("/about.html"), url("/huge.html")} <= crawled
    assert url("/art/1.html") not in crawled and other.url("/") not in crawled
    assert result.restricted == 1 and not result.capped and result.unchecked == 0
    assert seen[-1] == (result.checked, result.checked) and [d for d, _ in seen] == list(range(1, len(seen) + 1))
    assert all(hit.user_agent.startswith("dutybot-watch/") for hit in site_server.hits)


async def test_the_page_cap_and_the_depth_stop_the_crawl_cleanly(
        engine: Engine, site_server: SiteServer, make_site_server: Callable[..., SiteServer],
        dead_port: int) -> None:
    plant(site_server, make_site_server(), dead_port)
    with Session(engine) as session:
        site = site_server.site(session)
        capped = await crawl(fetcher_for(site), site, WatchPolicy(crawl_max_pages=3, crawl_depth=5, polite_delay_ms=0,
                                                                  timeout_seconds=0.5))
        assert capped.capped and capped.unchecked > 0
        assert len({hit.path for hit in site_server.hits}) <= 3
        site_server.hits.clear()
        shallow = await crawl(fetcher_for(site), site, WatchPolicy(crawl_depth=0, polite_delay_ms=0, timeout_seconds=0.5))
    assert [p.url for p in shallow.pages] == [site_server.url("/")]
    assert site_server.count("/xwdt/") == 1 and site_server.count("/art/1.html") == 0


async def test_links_to_internal_addresses(engine: Engine, site_server: SiteServer, dead_port: int) -> None:
    """On a public site a link into 127.0.0.1 is broken for the public; on an intranet site
    a link to another internal host is left alone (not fetched, not reported)."""
    site_server.set("/", page(a("http://127.0.0.2/oa/", "内部办公系统"), a("/ok.html", "正常")))
    site_server.set("/ok.html", page())
    with Session(engine) as session:
        intranet = site_server.site(session)
        result = await crawl(fetcher_for(intranet), intranet, POLICY)
    assert result.broken == [] and result.unchecked == 1

    resolver = FakeResolver({"www.example.test": [PUBLIC_IP], "dead.example.test": [PUBLIC_IP]})
    public = GuardedFetcher(resolver=resolver, network=LoopbackNetwork())
    home = f"http://www.example.test:{site_server.port}/"
    site_server.set("/", page(a(f"http://127.0.0.1:{site_server.port}/ok.html", "内网地址"),
                              a(f"http://dead.example.test:{dead_port}/", "失效外链"), a("/ok.html", "正常")))
    with Session(engine) as session:
        site = site_server.site(session, name="公网网站", intranet=False, path="/")
        site.url = home
        result = await crawl(fetcher_for(site, public), site, POLICY)
    reasons = {f.url: f.data["error"] for f in result.broken}
    assert reasons == {f"http://127.0.0.1:{site_server.port}/ok.html": PRIVATE_LINK,
                       f"http://dead.example.test:{dead_port}/": "连接被拒绝"}


async def test_a_homepage_moved_to_another_host_is_crawled_there(site_server: SiteServer, engine: Engine) -> None:
    resolver = FakeResolver({"gov.example.test": [PUBLIC_IP], "www.gov.example.test": [PUBLIC_IP]})
    fetcher = GuardedFetcher(resolver=resolver, network=LoopbackNetwork())
    port = site_server.port
    site_server.set("/", page(a("/zwgk/", "政务公开")))
    site_server.set("/zwgk/", page())
    with Session(engine) as session:
        site = site_server.site(session, intranet=False)
        site.url = f"http://gov.example.test:{port}/start"
        site_server.redirect("/start", f"http://www.gov.example.test:{port}/")
        result = await crawl(fetcher, site, POLICY)
    assert [p.final_url for p in result.pages] == [f"http://www.gov.example.test:{port}/",
                                                   f"http://www.gov.example.test:{port}/zwgk/"]
    assert result.broken == []


async def test_requests_to_one_host_are_spaced_by_the_polite_delay(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/", page(*(a(f"/p{n}.html", f"第{n}页") for n in range(5))))
    for n in range(5):
        site_server.set(f"/p{n}.html", page())
    now = [0.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    with Session(engine) as session:
        site = site_server.site(session)
        limiter = HostLimiter(1, 500, sleep=fake_sleep, monotonic=lambda: now[0])
        result = await crawl(fetcher_for(site), site, POLICY, limiter=limiter)
    assert result.checked == 6 and waits == [0.5] * 5


def test_links_are_resolved_normalised_and_filtered() -> None:
    html = ("<html><head><base href='/sub/'></head><body>"
            "<a href=' a.html '>相对</a><a href='../b.html#x'>上级</a><a href='HTTP://Example.CN:80/c'>大写</a>"
            "<a href='https://example.cn:443'>默认端口</a><a href='ftp://example.cn/f'>FTP</a>"
            "<a href='data:text/html,hi'>数据</a><a href='#'>空</a><a>无地址</a>"
            "<map><area href='/map.html' alt='地图'></map><a href='a.html'>重复</a></body></html>")
    assert links(html, "http://example.cn/dir/page.html") == [
        ("http://example.cn/sub/a.html", "相对"), ("http://example.cn/b.html", "上级"),
        ("http://example.cn/c", "大写"), ("https://example.cn/", "默认端口"), ("http://example.cn/map.html", "地图")]
    assert normalize("http://Example.cn/a#frag") == "http://example.cn/a"
