"""Evidence fetching cannot be turned against the bot's own network (issue 16 item 2):
``fetch_page`` goes through the guarded fetcher, which refuses internal addresses unless
``[incidents] fetch_allow`` names them. The attacks in detail are tests/core/test_fetcher.py."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.config import load_settings
from core.clock import SHANGHAI
from core.errors import ConfigError, InputError
from core.fetcher import NOT_ALLOWED, GuardedFetcher
from core.netguard import AllowList
from incidents.fetch import FetchFailed, fetch_page
from roster.models import Site
from roster.sites import is_intranet
from tests.core.fake_net import (
    PUBLIC_IP,
    FakeResolver,
    LoopbackNetwork,
    closed_port,
    http_server,
    page,
)

NOW = datetime(2026, 11, 23, 9, 5, tzinfo=SHANGHAI)
SECRET = b"<html>internal admin console</html>"


async def test_the_default_fetcher_refuses_the_bots_own_host() -> None:
    with http_server(page(SECRET)) as (port, seen):
        for url in (f"http://127.0.0.1:{port}/", f"http://2130706433:{port}/",
                    f"http://[::ffff:127.0.0.1]:{port}/", f"http://0x7f000001:{port}/"):
            with pytest.raises(FetchFailed) as err:
                await fetch_page(url, timeout=2, max_bytes=100_000, now=NOW)
            assert err.value.message == f"无法获取网页 {url}：{NOT_ALLOWED}"
    assert seen.paths == []


async def test_an_allow_listed_intranet_site_is_fetched_and_nothing_else() -> None:
    with http_server(page(b"<html>intranet notice</html>")) as (port, seen), \
            http_server(page(SECRET)) as (other, other_seen):
        settings = load_settings(None, env={"DUTYBOT_INCIDENTS_FETCH_ALLOW": f"127.0.0.1:{port}"})
        fetcher = settings.incidents.fetcher()
        got = await fetch_page(f"http://127.0.0.1:{port}/notice", fetcher=fetcher, timeout=2,
                               max_bytes=100_000, now=NOW)
        assert (got.status, got.body) == (200, b"<html>intranet notice</html>")
        with pytest.raises(FetchFailed) as err:
            await fetch_page(f"http://127.0.0.1:{other}/", fetcher=fetcher, timeout=2,
                             max_bytes=100_000, now=NOW)
    assert err.value.reason == NOT_ALLOWED
    assert seen.paths == ["/notice"] and other_seen.paths == []


async def test_a_closed_internal_port_reads_like_a_refused_one() -> None:
    fetcher = GuardedFetcher(allow=AllowList.parse(["127.0.0.1"]))
    with closed_port() as port, pytest.raises(FetchFailed) as err:
        await fetch_page(f"http://127.0.0.1:{port}/", fetcher=fetcher, timeout=1,
                         max_bytes=100_000, now=NOW)
    assert err.value.reason == NOT_ALLOWED


async def test_the_size_cap_names_the_setting() -> None:
    fetcher = GuardedFetcher(resolver=FakeResolver({"big.example.test": [PUBLIC_IP]}),
                             network=LoopbackNetwork())
    with http_server(page(b"x" * 20_000)) as (port, _), pytest.raises(FetchFailed) as err:
        await fetch_page(f"http://big.example.test:{port}/", fetcher=fetcher, timeout=2,
                         max_bytes=10_000, now=NOW)
    assert err.value.reason.startswith("内容超过 0.01 MB 的上限，未保存。")
    assert "[incidents] fetch_max_bytes" in err.value.reason


async def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(InputError, match="用户名或密码"):
        await fetch_page("https://admin:admin@www.example.test/", timeout=2, max_bytes=100_000,
                         now=NOW, fetcher=GuardedFetcher(resolver=FakeResolver({})))


def test_the_allow_list_setting() -> None:
    settings = load_settings(None, env={
        "DUTYBOT_INCIDENTS_FETCH_ALLOW": "oa.intranet.test, 10.20.0.0/16、cms.intranet.test:8443"})
    assert settings.incidents.fetch_allow == ["oa.intranet.test", "10.20.0.0/16", "cms.intranet.test:8443"]
    assert load_settings(None, env={}).incidents.fetcher().allow == AllowList()
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"DUTYBOT_INCIDENTS_FETCH_ALLOW": "http://oa.intranet.test/"})
    assert "incidents.fetch_allow" in err.value.message and "无法识别" in err.value.message


def test_an_intranet_site_is_a_website_the_allow_list_names() -> None:
    allow = AllowList.parse(["oa.intranet.test", "10.20.0.0/16"])

    def site(url: str, kind: str = "website") -> Site:
        return Site(name="门户", kind=kind, url=url, created_at=NOW)

    assert is_intranet(site("http://oa.intranet.test/cms"), allow)
    assert is_intranet(site("http://10.20.3.4:8080/"), allow)
    assert not is_intranet(site("https://www.example.gov.cn/"), allow)
    assert not is_intranet(site("oa.intranet.test", kind="wechat"), allow)
    assert not is_intranet(site("https://oa.intranet.test/"), AllowList())
