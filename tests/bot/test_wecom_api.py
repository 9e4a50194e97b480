"""The WeCom API client against the fake WeCom server (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from bot.adapters.redact import redact
from bot.adapters.wecom.api import (
    MEMBER_PER_HOUR,
    MEMBER_PER_MINUTE,
    ROBOT_PER_MINUTE,
    SendResult,
    WeComClient,
    WeComRobot,
)
from bot.adapters.wecom.cards import button_card, new_task_id
from core.clock import FakeClock
from core.errors import AdapterError
from tests.fakes.fake_wecom import FakeWeComApi
from tests.fakes.serve import serve_asgi

SECRET = "sup3r-s3cret-value"
CORP = "ww-corp-1"
AGENT = 1000002


@pytest.fixture
def fake(clock: FakeClock) -> FakeWeComApi:
    return FakeWeComApi(corp_id=CORP, secret=SECRET, agent_id=AGENT, time_source=clock.now)


@pytest.fixture
async def base_url(fake: FakeWeComApi) -> AsyncIterator[str]:
    async with serve_asgi(fake.app) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def client(base_url: str, clock: FakeClock, http: httpx.AsyncClient) -> WeComClient:
    return WeComClient(corp_id=CORP, secret=SECRET, agent_id=AGENT, api_base=base_url,
                       clock=clock, http=http)


# ------------------------------------------------------------------ token


async def test_token_fetched_once_and_cached(client: WeComClient, fake: FakeWeComApi) -> None:
    for i in range(3):
        result = await client.send_text("wangfang", f"第{i}条")
        assert isinstance(result, SendResult)
        assert result.msgid and result.invalid_users == ()
    assert fake.tokens_issued == ["tok-1"]
    assert [m["token"] for m in fake.sent] == ["tok-1"] * 3
    assert [m["content"] for m in fake.sent] == ["第0条", "第1条", "第2条"]


async def test_token_refreshed_before_expiry(client: WeComClient, fake: FakeWeComApi,
                                             clock: FakeClock) -> None:
    assert await client.token() == "tok-1"
    clock.advance(timedelta(seconds=7200 - 300 - 1))
    assert await client.token() == "tok-1"
    clock.advance(timedelta(seconds=1))
    assert await client.token() == "tok-2"
    await client.send_text("wangfang", "hi")
    assert fake.sent[-1]["token"] == "tok-2"
    assert fake.tokens_issued == ["tok-1", "tok-2"]
    assert not [c for c in fake.calls if c["path"] == "/cgi-bin/message/send"
                and c["params"]["access_token"] == "tok-1"]


async def test_short_lived_token_is_still_reused(base_url: str, clock: FakeClock,
                                                 http: httpx.AsyncClient,
                                                 fake: FakeWeComApi) -> None:
    fake.expires_in = 200  # shorter than the 300 s margin: the margin is capped at half
    client = WeComClient(corp_id=CORP, secret=SECRET, agent_id=AGENT, api_base=base_url,
                         clock=clock, http=http)
    assert await client.token() == "tok-1"
    assert await client.token() == "tok-1"
    clock.advance(timedelta(seconds=100))
    assert await client.token() == "tok-2"


async def test_concurrent_callers_share_one_fetch(client: WeComClient,
                                                  fake: FakeWeComApi) -> None:
    tokens = await asyncio.gather(*(client.token() for _ in range(10)))
    assert set(tokens) == {"tok-1"}
    assert fake.gettoken_calls() == 1


async def test_expired_token_42001_refreshes_once(client: WeComClient,
                                                  fake: FakeWeComApi) -> None:
    await client.send_text("wangfang", "one")
    fake.expire_tokens()
    result = await client.send_text("wangfang", "two")
    assert result.msgid
    assert fake.gettoken_calls() == 2
    assert fake.tokens_issued == ["tok-1", "tok-2"]
    assert [m["token"] for m in fake.sent] == ["tok-1", "tok-2"]


async def test_unknown_token_40014_refreshes_once(client: WeComClient,
                                                  fake: FakeWeComApi) -> None:
    await client.send_text("wangfang", "one")
    fake.forget_tokens()
    await client.send_text("wangfang", "two")
    assert fake.gettoken_calls() == 2
    assert fake.sent[-1]["token"] == "tok-2"


async def test_misleading_errmsg_does_not_change_behaviour(client: WeComClient,
                                                           fake: FakeWeComApi) -> None:
    await client.send_text("wangfang", "one")
    # The server claims "ok"/"system busy" in errmsg; only errcode counts.
    fake.fail_next("/cgi-bin/message/send", errcode=42001, errmsg="ok")
    await client.send_text("wangfang", "two")
    assert fake.gettoken_calls() == 2
    fake.errmsg_for[42001] = "system busy, please retry later"
    fake.errmsg_for[81013] = "access_token expired"
    fake.expire_tokens()
    await client.send_text("wangfang", "three")
    assert fake.gettoken_calls() == 3
    fake.invalid_users.add("gone")
    with pytest.raises(AdapterError) as err:
        await client.send_text("gone", "four")
    assert err.value.permanent_reason == "blocked"
    assert fake.gettoken_calls() == 3  # the "expired" text did not trigger a refresh
    assert [m["content"] for m in fake.sent] == ["one", "two", "three"]


async def test_token_refused_twice_is_retryable_and_refreshes_once(
        client: WeComClient, fake: FakeWeComApi) -> None:
    await client.token()
    fake.fail_next("/cgi-bin/message/send", errcode=40014, times=2)
    with pytest.raises(AdapterError) as err:
        await client.send_text("wangfang", "x")
    assert err.value.retryable
    assert fake.gettoken_calls() == 2
    await client.send_text("wangfang", "y")
    assert fake.gettoken_calls() == 2


async def test_wrong_secret_is_a_permanent_config_error(base_url: str, clock: FakeClock,
                                                        http: httpx.AsyncClient) -> None:
    bad = WeComClient(corp_id=CORP, secret="wrong-secret-xyz", agent_id=AGENT,
                      api_base=base_url, clock=clock, http=http)
    with pytest.raises(AdapterError) as err:
        await bad.send_text("wangfang", "x")
    assert not err.value.retryable
    assert "40001" in err.value.message
    assert "wrong-secret-xyz" not in err.value.message
    assert err.value.message.isascii()


@pytest.mark.parametrize("errcode", [40001, 40013, 60020])
async def test_config_errcodes_not_retryable(client: WeComClient, fake: FakeWeComApi,
                                             errcode: int) -> None:
    await client.token()
    fake.fail_next("/cgi-bin/message/send", errcode=errcode)
    with pytest.raises(AdapterError) as err:
        await client.send_text("wangfang", "x")
    assert not err.value.retryable
    assert err.value.permanent_reason is None
    assert str(errcode) in err.value.message
    assert err.value.message.isascii()
    assert fake.gettoken_calls() == 1  # no refresh-and-retry


async def test_gettoken_ip_not_allowed(client: WeComClient, fake: FakeWeComApi) -> None:
    fake.fail_next("/cgi-bin/gettoken", errcode=60020)
    with pytest.raises(AdapterError) as err:
        await client.token()
    assert not err.value.retryable and "60020" in err.value.message


# ------------------------------------------------------------------ error mapping


async def test_all_recipients_invalid_81013_is_blocked(client: WeComClient,
                                                       fake: FakeWeComApi) -> None:
    fake.invalid_users.add("left-company")
    with pytest.raises(AdapterError) as err:
        await client.send_text("left-company", "x")
    assert not err.value.retryable
    assert err.value.permanent_reason == "blocked"
    assert fake.sent == []


async def test_single_user_in_invaliduser_with_errcode_0_is_blocked(
        client: WeComClient, fake: FakeWeComApi) -> None:
    fake.invalid_users.add("left-company")
    fake.all_invalid_is_error = False
    with pytest.raises(AdapterError) as err:
        await client.send_markdown("left-company", "**x**")
    assert not err.value.retryable and err.value.permanent_reason == "blocked"


async def test_partial_invaliduser_on_multi_user_send(client: WeComClient,
                                                      fake: FakeWeComApi) -> None:
    fake.invalid_users.update({"b", "d"})
    result = await client.send_text("a|b|c|d", "广播")
    assert result.msgid
    assert result.invalid_users == ("b", "d")
    assert sorted(m["touser"] for m in fake.sent) == ["a", "c"]


async def test_system_busy_is_retryable(client: WeComClient, fake: FakeWeComApi) -> None:
    fake.fail_next("/cgi-bin/message/send", errcode=-1)
    with pytest.raises(AdapterError) as err:
        await client.send_text("wangfang", "x")
    assert err.value.retryable
    assert err.value.retry_after is not None and 0 < err.value.retry_after <= 5
    await client.send_text("wangfang", "x")  # next attempt succeeds
    assert len(fake.sent) == 1


async def test_http_502_is_retryable(client: WeComClient, fake: FakeWeComApi) -> None:
    await client.token()
    fake.fail_next("/cgi-bin/message/send", status=502)
    with pytest.raises(AdapterError) as err:
        await client.send_text("wangfang", "x")
    assert err.value.retryable
    assert "502" in err.value.message


async def test_gettoken_502_is_retryable(client: WeComClient, fake: FakeWeComApi) -> None:
    fake.fail_next("/cgi-bin/gettoken", status=502)
    with pytest.raises(AdapterError) as err:
        await client.send_text("wangfang", "x")
    assert err.value.retryable
    await client.send_text("wangfang", "x")
    assert fake.tokens_issued == ["tok-1"]


async def test_network_error_is_retryable(clock: FakeClock, http: httpx.AsyncClient) -> None:
    # Bound but not listening: connections are refused, and no server of a test running in
    # parallel can take the port meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = WeComClient(corp_id=CORP, secret=SECRET, agent_id=AGENT,
                             api_base=f"http://127.0.0.1:{port}", clock=clock, http=http)
        with pytest.raises(AdapterError) as err:
            await client.send_text("wangfang", "x")
    assert err.value.retryable


@pytest.mark.parametrize("errcode", [45009, 45033])
async def test_frequency_limit_is_retryable_with_retry_after(
        client: WeComClient, fake: FakeWeComApi, errcode: int) -> None:
    fake.fail_next("/cgi-bin/message/send", errcode=errcode)
    with pytest.raises(AdapterError) as err:
        await client.send_text("wangfang", "x")
    assert err.value.retryable
    assert err.value.retry_after == 60


async def test_other_errcode_not_retryable_with_code_in_message(
        client: WeComClient, fake: FakeWeComApi) -> None:
    fake.fail_next("/cgi-bin/message/send", errcode=44004, errmsg="empty content")
    with pytest.raises(AdapterError) as err:
        await client.send_text("wangfang", "")
    assert not err.value.retryable
    assert err.value.permanent_reason is None
    assert "44004" in err.value.message


# ------------------------------------------------------------------ the fake's limits


async def test_fake_drops_the_31st_message_in_a_minute_silently(
        client: WeComClient, fake: FakeWeComApi, clock: FakeClock) -> None:
    assert MEMBER_PER_MINUTE == 30
    for i in range(MEMBER_PER_MINUTE + 1):
        result = await client.send_text("wangfang", f"m{i}")  # every call "succeeds"
        assert result.msgid
        clock.advance(timedelta(seconds=1))
    assert len(fake.sent_to("wangfang")) == 30
    assert [m["content"] for m in fake.dropped] == ["m30"]
    await client.send_text("lijiang", "other member unaffected")
    assert len(fake.sent_to("lijiang")) == 1
    clock.advance(timedelta(seconds=30))  # the first message left the one-minute window
    await client.send_text("wangfang", "later")
    assert fake.sent_to("wangfang")[-1]["content"] == "later"


async def test_fake_drops_beyond_1000_an_hour(fake: FakeWeComApi, clock: FakeClock) -> None:
    # 1001 sends: in-process ASGI transport (still real httpx) to keep the test fast.
    assert MEMBER_PER_HOUR == 1000
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    client = WeComClient(corp_id=CORP, secret=SECRET, agent_id=AGENT,
                         api_base="http://fake-wecom", clock=clock, http=http)
    for i in range(MEMBER_PER_HOUR + 1):
        await client.send_text("wangfang", f"m{i}")
        clock.advance(timedelta(seconds=3))  # 20 a minute: never the minute limit
    await http.aclose()
    assert len(fake.sent) == 1000
    assert [m["content"] for m in fake.dropped] == ["m1000"]


# ------------------------------------------------------------------ cards


async def test_template_card_payload_and_update(client: WeComClient,
                                                fake: FakeWeComApi) -> None:
    task_id = new_task_id("inc-")
    card = client.button_card("舆情事件 INC-20261123-001", "某网站首页出现错别字",
                              [("确认", "/ack INC-20261123-001"),
                               ("转交", "/handover INC-20261123-001")], task_id)
    assert card == {
        "card_type": "button_interaction",
        "main_title": {"title": "舆情事件 INC-20261123-001"},
        "sub_title_text": "某网站首页出现错别字",
        "task_id": task_id,
        "button_list": [
            {"text": "确认", "style": 1, "key": "/ack INC-20261123-001"},
            {"text": "转交", "style": 1, "key": "/handover INC-20261123-001"},
        ],
    }
    result = await client.send_template_card("lijiang", card)
    raw = fake.sent[0]["raw"]
    assert raw == {"touser": "lijiang", "msgtype": "template_card", "agentid": AGENT,
                   "template_card": card}
    assert fake.sent[0]["card"] == card
    assert result.response_code
    invalid = await client.update_template_card(["lijiang"], result.response_code, "已确认")
    assert invalid == ()
    update = fake.updates[0]
    assert update["userids"] == ["lijiang"] and update["agentid"] == AGENT
    assert update["response_code"] == result.response_code
    assert update["button"] == {"replace_name": "已确认"}
    with pytest.raises(AdapterError):  # a response_code is usable once
        await client.update_template_card(["lijiang"], result.response_code, "已确认")


async def test_text_and_markdown_payloads(client: WeComClient, fake: FakeWeComApi) -> None:
    await client.send_text("a", "纯文本")
    await client.send_markdown("a", "**加粗**")
    assert fake.sent[0]["raw"] == {"touser": "a", "msgtype": "text", "agentid": AGENT,
                                   "text": {"content": "纯文本"}}
    assert fake.sent[1]["raw"] == {"touser": "a", "msgtype": "markdown", "agentid": AGENT,
                                   "markdown": {"content": "**加粗**"}}
    assert (await client.send_text("a", "x")).response_code is None


def test_button_card_validation() -> None:
    ok = [("a", "k")]
    with pytest.raises(ValueError):
        button_card("t", "x", [], "task1")
    with pytest.raises(ValueError):
        button_card("t", "x", [(str(i), str(i)) for i in range(7)], "task1")
    with pytest.raises(ValueError):
        button_card("t", "x", [("a", "键" * 342)], "task1")  # 1026 bytes
    button_card("t", "x", [("a", "k" * 1024)], "task1")
    with pytest.raises(ValueError):
        button_card("t", "x", ok, "bad task id")
    with pytest.raises(ValueError):
        button_card("t", "x", ok, "x" * 129)
    button_card("t", "x", ok, "Az09_-@" + "x" * 121)
    assert new_task_id() != new_task_id()


# ------------------------------------------------------------------ robot


async def test_robot_send_and_rate_limit(base_url: str, fake: FakeWeComApi,
                                         http: httpx.AsyncClient, clock: FakeClock) -> None:
    robot = WeComRobot(f"{base_url}/cgi-bin/webhook/send?key=robot-key", http)
    await robot.send_markdown("**今日值班**：王芳")
    await robot.send_text("纯文本")
    assert fake.robot_sent[0]["msgtype"] == "markdown"
    assert fake.robot_sent[0]["content"] == "**今日值班**：王芳"
    assert fake.calls[0]["json"] == {"msgtype": "markdown",
                                     "markdown": {"content": "**今日值班**：王芳"}}
    assert fake.robot_sent[1] | {"time": None} == {"key": "robot-key", "msgtype": "text",
                                                   "content": "纯文本", "time": None}
    for _ in range(ROBOT_PER_MINUTE - 2):
        await robot.send_text("x")
    with pytest.raises(AdapterError) as err:
        await robot.send_text("one too many")
    assert err.value.retryable and err.value.retry_after == 60
    clock.advance(timedelta(minutes=1))
    await robot.send_text("again")
    assert fake.robot_sent[-1]["content"] == "again"


async def test_robot_bad_key_not_retryable(base_url: str, http: httpx.AsyncClient) -> None:
    robot = WeComRobot(f"{base_url}/cgi-bin/webhook/send?key=nope-123", http)
    with pytest.raises(AdapterError) as err:
        await robot.send_text("x")
    assert not err.value.retryable
    assert "93000" in err.value.message and "nope-123" not in err.value.message
    assert "nope-123" not in repr(robot)


# ------------------------------------------------------------------ log hygiene


async def test_secret_and_token_never_logged(client: WeComClient, fake: FakeWeComApi,
                                             base_url: str, http: httpx.AsyncClient,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # `dutybot run` quiets httpx; not here
    await client.send_text("wangfang", "one")
    fake.expire_tokens()
    await client.send_text("wangfang", "two")
    fake.fail_next("/cgi-bin/message/send", errcode=-1)
    with pytest.raises(AdapterError) as busy:
        await client.send_text("wangfang", "three")
    fake.fail_next("/cgi-bin/message/send", errcode=40001)
    with pytest.raises(AdapterError) as config:
        await client.send_text("wangfang", "four")
    robot = WeComRobot(f"{base_url}/cgi-bin/webhook/send?key=robot-key", http)
    await robot.send_text("x")
    assert caplog.records, "expected httpx and client log records"
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)
    secrets = [SECRET, *fake.tokens_issued, "robot-key"]
    for record in caplog.records:
        text = record.getMessage()
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in log: {text}"
    for exc in (busy.value, config.value):
        assert not any(s in exc.message for s in secrets)
    assert SECRET not in repr(client)


def test_redact() -> None:
    assert redact("GET http://x/cgi-bin/gettoken?corpid=c&corpsecret=abc") == \
        "GET http://x/cgi-bin/gettoken?corpid=c&corpsecret=***"
    assert redact("/send?access_token=tok-9&debug=1") == "/send?access_token=***&debug=1"
    assert redact("webhook/send?key=k-1 done") == "webhook/send?key=*** done"
    assert redact("monkey=1") == "monkey=1"
    assert redact("POST http://127.0.0.1:8081/bot123456:AA-b_c/getUpdates") == \
        "POST http://127.0.0.1:8081/bot***/getUpdates"          # a Telegram token in the path
