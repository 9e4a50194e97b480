"""The DingTalk adapter against the fake DingTalk (real HTTP and WebSocket on loopback)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from urllib.parse import quote, unquote

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.dingtalk import CALLBACK_PATH, DingTalkAdapter
from bot.adapters.dingtalk.render import SEND_MESSAGE_URL, command_url, render, to_markdown
from bot.adapters.redact import redact
from bot.app import App
from bot.config import Settings, load_settings
from bot.dispatcher import DispatchResult
from bot.http import HttpService
from bot.models import ProcessedUpdate
from core.clock import FakeClock
from core.errors import AdapterError
from core.messages import Button, Inbound, Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from people.models import ChatIdentity, Role
from people.service import create_invite
from tests.factories import make_person
from tests.fakes.fake_dingtalk import FakeDingTalk
from tests.fakes.serve import serve_asgi

CLIENT_ID = "dingclient001"
SECRET = "app-secret-7f3c"
ROBOT_CODE = "dingrobot001"
ROBOT_TOKEN = "robot-token-1"
ROBOT_SECRET = "SECrobot-secret-1"
GROUP = "cidDutyGroup001=="


@pytest.fixture
def fake(clock: FakeClock) -> FakeDingTalk:
    return FakeDingTalk(client_id=CLIENT_ID, client_secret=SECRET, robot_code=ROBOT_CODE,
                        robot_token=ROBOT_TOKEN, robot_secret=ROBOT_SECRET,
                        time_source=clock.now)


@pytest.fixture
async def base_url(fake: FakeDingTalk) -> AsyncIterator[str]:
    async with serve_asgi(fake.app) as url:
        fake.base_url = url
        yield url


def settings_for(base_url: str, mode: str = "stream", **extra: str) -> Settings:
    env = {"DUTYBOT_DINGTALK_MODE": mode, "DUTYBOT_DINGTALK_CLIENT_ID": CLIENT_ID,
           "DUTYBOT_DINGTALK_CLIENT_SECRET": SECRET, "DUTYBOT_DINGTALK_ROBOT_CODE": ROBOT_CODE,
           "DUTYBOT_DINGTALK_API_BASE": base_url,
           "DUTYBOT_DINGTALK_ROBOT_WEBHOOK": f"{base_url}/robot/send?access_token={ROBOT_TOKEN}",
           "DUTYBOT_DINGTALK_ROBOT_SECRET": ROBOT_SECRET}
    env.update({f"DUTYBOT_DINGTALK_{k.upper()}": v for k, v in extra.items()})
    return load_settings(None, env=env)


async def eventually(predicate: Callable[[], bool], *, step: Callable[[], object] | None = None,
                     timeout: float = 3.0, what: str = "condition") -> None:
    """Wait (bounded) until ``predicate()`` holds, running ``step`` (sync or async) first
    on every round."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if step is not None:
            result = step()
            if asyncio.iscoroutine(result):
                await result
        if predicate():
            return
        if loop.time() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def texts(items: list[dict[str, object]], chat: str) -> list[str]:
    """The texts (plain or card) of session-webhook messages to ``chat``."""
    out = []
    for item in items:
        if item["chat"] != chat:
            continue
        body = item["body"]
        assert isinstance(body, dict)
        out.append(body["text"]["content"] if body["msgtype"] == "text"
                   else body["actionCard"]["text"])
    return out


def bind_person(engine: Engine, clock: FakeClock, name: str = "王芳",
                staff_id: str = "staff001", roles: tuple[Role, ...] = (Role.officer,)) -> int:
    with Session(engine) as session:
        person = make_person(session, name, roles=roles, now=clock.now(), platform="dingtalk",
                             external_id=staff_id)
        session.commit()
        assert person.id is not None
        return person.id


def processed(engine: Engine, update_id: str) -> bool:
    with Session(engine) as session:
        return session.exec(select(ProcessedUpdate).where(
            ProcessedUpdate.platform == "dingtalk",
            ProcessedUpdate.update_id == update_id)).first() is not None


def dingtalk_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("dingtalk") and not t.done()]


@pytest.fixture
async def stream_app(base_url: str, engine: Engine, clock: FakeClock
                     ) -> AsyncIterator[tuple[App, DingTalkAdapter]]:
    settings = settings_for(base_url, "stream")
    adapter = DingTalkAdapter(settings.dingtalk, clock=clock, retry_base_seconds=0.01,
                              stop_grace_seconds=0.5)
    app = App(settings, clock=clock, adapter=adapter, engine=engine)
    await adapter.start(app.handle)
    try:
        yield app, adapter
    finally:
        await adapter.stop()


@pytest.fixture
async def callback_app(base_url: str, engine: Engine, clock: FakeClock
                       ) -> AsyncIterator[tuple[App, DingTalkAdapter, str]]:
    settings = settings_for(base_url, "callback")
    adapter = DingTalkAdapter(settings.dingtalk, clock=clock, stop_grace_seconds=0.5)
    app = App(settings, clock=clock, adapter=adapter, engine=engine)
    await adapter.start(app.handle)
    service = HttpService(host="127.0.0.1", port=0, routes=adapter.http_routes(),
                          health=lambda: {})
    await service.start()
    try:
        yield app, adapter, f"http://127.0.0.1:{service.port}{CALLBACK_PATH}"
    finally:
        await adapter.stop()
        await service.stop()


# ------------------------------------------------------------------ 1. HTTP callback mode


async def test_callback_mode_answers_through_the_session_webhook(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock) -> None:
    app, _, url = callback_app
    bind_person(engine, clock)
    data = fake.bot_message("/help", staff_id="staff001")
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=json.dumps(data, ensure_ascii=False),
                                     headers=fake.callback_headers())
    assert response.status_code == 200 and response.json() == {}
    await eventually(lambda: bool(texts(fake.session_sent, "staff001")), step=app.drain,
                     what="the /help reply")
    reply = texts(fake.session_sent, "staff001")[0]
    assert "王芳，您好" in reply and "/due" in reply
    assert fake.oto_sent == [] and fake.group_sent == []  # the session webhook was used


async def test_callback_mode_group_message_after_an_at_mention(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock) -> None:
    app, _, url = callback_app
    bind_person(engine, clock)
    data = fake.bot_message("  /whoami", staff_id="staff001", group=GROUP)
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=data, headers=fake.callback_headers())
    assert response.status_code == 200
    await eventually(lambda: bool(texts(fake.session_sent, GROUP)), step=app.drain,
                     what="the group reply")
    assert "值班员" in texts(fake.session_sent, GROUP)[0]


@pytest.mark.parametrize("case", ["forged", "stale", "missing"])
async def test_callback_mode_refuses_bad_signatures(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock, case: str) -> None:
    app, adapter, url = callback_app
    bind_person(engine, clock)
    data = fake.bot_message("/help", staff_id="staff001")
    if case == "forged":
        headers = fake.callback_headers(secret="not-the-secret")
    elif case == "stale":  # correctly signed, but 61 minutes old
        headers = fake.callback_headers(timestamp_ms=fake.now_ms() - 61 * 60 * 1000)
    else:
        headers = {"content-type": "application/json"}
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=data, headers=headers)
    assert response.status_code == 403
    assert not adapter._background  # nothing was handed to the bot
    await app.drain()
    assert not processed(engine, data["msgId"])
    assert fake.session_sent == [] and fake.oto_sent == []


async def test_callback_mode_refuses_a_body_that_is_not_json(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk) -> None:
    _, _, url = callback_app
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=b"not json", headers=fake.callback_headers())
    assert response.status_code == 400


async def test_stream_mode_has_no_http_routes(base_url: str, clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "stream").dingtalk, clock=clock)
    assert adapter.http_routes() == []
    callback = DingTalkAdapter(settings_for(base_url, "callback").dingtalk, clock=clock)
    assert [getattr(r, "path", None) for r in callback.http_routes()] == [CALLBACK_PATH]
    await adapter.stop()
    await callback.stop()


# ------------------------------------------------------------------ 2. Stream mode


async def test_stream_mode_end_to_end(stream_app: tuple[App, DingTalkAdapter],
                                      fake: FakeDingTalk, engine: Engine,
                                      clock: FakeClock) -> None:
    app, adapter = stream_app
    bind_person(engine, clock)
    first = await fake.wait_connections(1)
    assert fake.opens[0]["clientId"] == CLIENT_ID
    assert fake.opens[0]["clientSecret"] == SECRET
    assert fake.opens[0]["subscriptions"] == [
        {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]
    assert first.ticket == "ticket-1"

    # A bot message: answered with the same messageId, the reply through the session.
    data = fake.bot_message("/help", staff_id="staff001")
    frame = await fake.push_callback(data)
    ack = await fake.wait_ack(frame)
    assert ack["code"] == 200 and ack["message"] == "OK"
    assert ack["headers"] == {"contentType": "application/json", "messageId": frame}
    assert isinstance(ack["data"], str)
    assert processed(engine, data["msgId"])  # handled before it was confirmed
    await eventually(lambda: bool(texts(fake.session_sent, "staff001")), step=app.drain,
                     what="the /help reply")
    assert "王芳，您好" in texts(fake.session_sent, "staff001")[0]

    # A ping is answered at once with its own data.
    opaque = json.dumps({"opaque": "3f2a-keepalive"})
    ping = await fake.push_system("ping", opaque)
    pong = await fake.wait_ack(ping)
    assert pong["code"] == 200 and pong["data"] == opaque
    assert pong["headers"]["messageId"] == ping

    # The same msgId twice (a redelivery) is handled once; both frames are answered.
    again = fake.bot_message("/whoami", staff_id="staff001", msg_id="msg-redelivered")
    one, two = await fake.push_callback(again), await fake.push_callback(again)
    assert (await fake.wait_ack(one))["code"] == 200
    assert (await fake.wait_ack(two))["code"] == 200
    await eventually(lambda: len(texts(fake.session_sent, "staff001")) >= 2, step=app.drain,
                     what="the /whoami reply")
    await app.drain()
    assert len(texts(fake.session_sent, "staff001")) == 2  # /help and one /whoami

    # disconnect: answered, then a new connection with a new ticket, and work goes on.
    bye = await fake.push_system("disconnect")
    assert (await fake.wait_ack(bye))["code"] == 200
    second = await fake.wait_connections(2)
    assert len(fake.opens) == 2 and second.ticket == "ticket-2"
    await fake.wait_for(lambda: first.closed, what="the old connection to close")
    later = fake.bot_message("/whoami", staff_id="staff001")
    frame = await fake.push_callback(later, connection=second)
    assert (await fake.wait_ack(frame))["code"] == 200
    await eventually(lambda: len(texts(fake.session_sent, "staff001")) == 3, step=app.drain,
                     what="the reply after reconnecting")

    # stop() returns promptly and leaves nothing running.
    started = time.monotonic()
    await asyncio.wait_for(adapter.stop(), timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert dingtalk_tasks() == []
    assert adapter.stream is not None and not adapter.stream.running
    await fake.wait_for(lambda: not fake.live_connections, what="the gateway to see the close")


async def test_stream_reconnects_after_a_dropped_connection_and_failed_open(
        stream_app: tuple[App, DingTalkAdapter], fake: FakeDingTalk) -> None:
    _, adapter = stream_app
    await fake.wait_connections(1)
    fake.fail_next("/v1.0/gateway/connections/open", status=503)  # the next open fails
    await fake.drop()
    second = await fake.wait_connections(2)
    assert len(fake.opens) == 3  # first, the failed one, the one that worked
    ping = await fake.push_system("ping", "{}", connection=second)
    assert (await fake.wait_ack(ping))["code"] == 200
    assert adapter.stream is not None and adapter.stream.connections == 2


async def test_stream_start_retries_in_background_when_the_gateway_is_down(
        base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    fake.fail_next("/v1.0/gateway/connections/open", status=502, times=2)
    adapter = DingTalkAdapter(settings_for(base_url, "stream").dingtalk, clock=clock,
                              retry_base_seconds=0.01)
    handled: list[Inbound] = []

    async def handler(inbound: Inbound) -> None:
        handled.append(inbound)

    await adapter.start(handler)  # returns although the gateway is not reachable
    try:
        await fake.wait_connections(1)
        frame = await fake.push_callback(fake.bot_message("你好", staff_id="staff009"))
        await fake.wait_ack(frame)
        assert [(i.chat_id, i.sender_id, i.text, i.is_group) for i in handled] == [
            ("staff009", "staff009", "你好", False)]
    finally:
        await adapter.stop()
    assert dingtalk_tasks() == []


async def test_stream_start_refuses_wrong_credentials(base_url: str, clock: FakeClock) -> None:
    settings = settings_for(base_url, "stream", client_secret="wrong-secret")
    adapter = DingTalkAdapter(settings.dingtalk, clock=clock)

    async def handler(inbound: Inbound) -> None:
        raise AssertionError("not called")

    with pytest.raises(AdapterError) as caught:
        await adapter.start(handler)
    assert caught.value.retryable is False
    assert "DUTYBOT_DINGTALK_CLIENT_SECRET" in caught.value.message
    await adapter.stop()
    assert dingtalk_tasks() == []


async def test_stream_failed_handler_is_answered_500(base_url: str, fake: FakeDingTalk,
                                                     clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "stream").dingtalk, clock=clock,
                              retry_base_seconds=0.01)

    async def handler(inbound: Inbound) -> None:
        raise RuntimeError("database down")

    await adapter.start(handler)
    try:
        await fake.wait_connections(1)
        frame = await fake.push_callback(fake.bot_message("/help"))
        assert (await fake.wait_ack(frame))["code"] == 500
        event = await fake.push_callback({"x": 1}, topic="/v1.0/card/instances/callback")
        assert (await fake.wait_ack(event))["code"] == 200  # other topics: answered, ignored
    finally:
        await adapter.stop()



async def test_stream_message_not_stored_is_answered_500(base_url: str, fake: FakeDingTalk,
                                                        clock: FakeClock) -> None:
    """Nothing lost (issue 16 item 6): when the bot could not store a message (its handler
    says ``stored=False``; the person had the apology) the frame is answered 500, so the
    gateway delivers it again; a stored one is answered 200."""
    adapter = DingTalkAdapter(settings_for(base_url, "stream").dingtalk, clock=clock,
                              retry_base_seconds=0.01)
    results = [DispatchResult(stored=False), DispatchResult()]

    async def handler(inbound: Inbound) -> DispatchResult:
        return results.pop(0)

    await adapter.start(handler)
    try:
        await fake.wait_connections(1)
        message = fake.bot_message("/help")
        first = await fake.push_callback(message)
        assert (await fake.wait_ack(first))["code"] == 500
        again = await fake.push_callback(message)
        assert (await fake.wait_ack(again))["code"] == 200
    finally:
        await adapter.stop()

async def test_stop_gives_a_slow_handler_a_short_grace_then_cancels(
        base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "stream").dingtalk, clock=clock,
                              retry_base_seconds=0.01, stop_grace_seconds=0.2)
    entered = asyncio.Event()

    async def handler(inbound: Inbound) -> None:
        entered.set()
        await asyncio.Event().wait()  # never finishes on its own

    await adapter.start(handler)
    await fake.wait_connections(1)
    frame = await fake.push_callback(fake.bot_message("/help"))
    await asyncio.wait_for(entered.wait(), timeout=3)
    started = time.monotonic()
    await asyncio.wait_for(adapter.stop(), timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert fake.ack_for(frame) == []  # not confirmed: DingTalk delivers it again
    assert dingtalk_tasks() == []


# ------------------------------------------------------------------ 3. pushes and buttons


async def test_push_to_a_bound_person_goes_through_batch_send_with_buttons(
        base_url: str, fake: FakeDingTalk, engine: Engine, clock: FakeClock) -> None:
    settings = settings_for(base_url, "callback")
    adapter = DingTalkAdapter(settings.dingtalk, clock=clock)
    app = App(settings, clock=clock, adapter=adapter, engine=engine)
    person_id = bind_person(engine, clock, staff_id="staff001")
    with Session(engine) as session:
        enqueue(session=session, message=Outbound("新的舆情事件待认领", person_id=person_id),
                now=clock.now(), event_key="test:plain")
        enqueue(session=session, message=Outbound(
            "事件 INC-20261123-001\n请确认收到", person_id=person_id,
            buttons=(Button("确认收到", "/incident ack INC-20261123-001"),
                     Button("查看详情", "/incident show 1"))),
            now=clock.now(), event_key="test:card")
        session.commit()
    assert await app.drain() == 2
    plain, card = fake.oto_sent
    assert plain["user"] == "staff001" and plain["robotCode"] == ROBOT_CODE
    assert plain["msgKey"] == "sampleText" and plain["msgParam"] == {"content": "新的舆情事件待认领"}
    assert card["msgKey"] == "sampleActionCard2" and card["user"] == "staff001"
    param = card["msgParam"]
    assert param["title"] == "事件 INC-20261123-001"
    assert param["actionTitle1"] == "确认收到" and param["actionTitle2"] == "查看详情"
    assert param["actionURL1"] == (
        "dtmd://dingtalkclient/sendMessage?content=%2Fincident%20ack%20INC-20261123-001")
    assert unquote(param["actionURL2"].removeprefix(SEND_MESSAGE_URL)) == "/incident show 1"
    assert fake.tokens_issued == ["tok-1"]  # one token for both
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
    assert {r.status for r in rows} == {OutboxStatus.sent}
    assert {r.platform_message_id for r in rows} == {"pqk-1", "pqk-2"}
    await adapter.stop()


async def test_a_pressed_button_comes_back_as_the_command(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock) -> None:
    app, _, url = callback_app
    bind_person(engine, clock)
    link = command_url("/whoami")
    # The DingTalk client sends the link's content as the person's own message.
    data = fake.bot_message(unquote(link.removeprefix(SEND_MESSAGE_URL)), staff_id="staff001")
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, json=data, headers=fake.callback_headers())).status_code == 200
    await eventually(lambda: bool(texts(fake.session_sent, "staff001")), step=app.drain,
                     what="the reply to the pressed button")
    assert "值班员" in texts(fake.session_sent, "staff001")[0]


async def test_session_reply_with_buttons_is_an_action_card(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk) -> None:
    _, adapter, _ = callback_app
    adapter.to_inbound(fake.bot_message("hi", staff_id="staff001"))  # remembers the session
    adapter.to_inbound(fake.bot_message("hi", staff_id="staff001", group=GROUP))
    card = Outbound("请选择", buttons=(Button("同意", "/swap accept 3"), Button("拒绝", "/swap reject 3")))
    assert await adapter.send("staff001", card, is_group=False) == ""
    assert await adapter.send(GROUP, card, is_group=True) == ""
    private, group = fake.session_sent
    assert private["chat"] == "staff001" and private["msgtype"] == "actionCard"
    body = private["body"]["actionCard"]
    assert body["btnOrientation"] == "0"
    assert body["btns"] == [
        {"title": "同意", "actionURL": SEND_MESSAGE_URL + quote("/swap accept 3", safe="")},
        {"title": "拒绝", "actionURL": SEND_MESSAGE_URL + quote("/swap reject 3", safe="")}]
    assert "/swap accept 3" not in body["text"]  # private: the buttons suffice
    # In a group the robot hears only @-messages: the card also lists the typed commands.
    assert group["chat"] == GROUP and "在群内 @我 并发送" in group["body"]["actionCard"]["text"]


async def test_group_and_unknown_chats_without_a_session_use_the_api(
        base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "callback").dingtalk, clock=clock)
    ref = await adapter.send(GROUP, Outbound("今日值班简报"), is_group=True)
    assert ref == "pqk-1"
    assert fake.group_sent[0]["conversation"] == GROUP
    assert fake.group_sent[0]["msgParam"] == {"content": "今日值班简报"}
    # An unbound person's private chat reaches the adapter flagged as a group: the chat
    # id decides (a staff id, not a cid… conversation id).
    await adapter.send("staff777", Outbound("您好"), is_group=True)
    assert fake.oto_sent[0]["user"] == "staff777"
    fake.groups_without_robot.add("cidGone==")
    with pytest.raises(AdapterError) as caught:
        await adapter.send("cidGone==", Outbound("hi"), is_group=True)
    assert caught.value.retryable is False and caught.value.permanent_reason == "blocked"
    await adapter.stop()


async def test_expired_session_falls_back_to_the_api(
        base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "callback").dingtalk, clock=clock)
    adapter.to_inbound(fake.bot_message("hi", staff_id="staff001"))
    clock.advance(timedelta(minutes=89, seconds=30))  # inside the last minute: not used
    await adapter.send("staff001", Outbound("提醒"), is_group=False)
    assert fake.session_sent == [] and fake.oto_sent[0]["user"] == "staff001"
    # A session the platform refuses (errcode) is dropped and the API used instead.
    adapter.to_inbound(fake.bot_message("hi", staff_id="staff002"))
    fake.fail_next("/robot/sendBySession", errcode=300001)
    await adapter.send("staff002", Outbound("提醒"), is_group=False)
    assert [m["user"] for m in fake.oto_sent] == ["staff001", "staff002"]
    await adapter.send("staff002", Outbound("再次提醒"), is_group=False)
    assert fake.session_sent == [] and len(fake.oto_sent) == 3
    await adapter.stop()


async def test_send_errors_are_mapped(base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "callback").dingtalk, clock=clock)
    fake.invalid_users.add("staff404")
    with pytest.raises(AdapterError) as caught:
        await adapter.send("staff404", Outbound("hi"), is_group=False)
    assert caught.value.retryable is False and caught.value.permanent_reason == "blocked"

    fake.flow_controlled.add("staff429")
    with pytest.raises(AdapterError) as caught:
        await adapter.send("staff429", Outbound("hi"), is_group=False)
    assert caught.value.retryable is True and caught.value.retry_after == 60

    fake.fail_next("/v1.0/robot/oToMessages/batchSend", status=403,
                   code="Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
    with pytest.raises(AdapterError) as caught:
        await adapter.send("staff001", Outbound("hi"), is_group=False)
    assert caught.value.retryable is True and caught.value.retry_after == 1.0

    fake.fail_next("/v1.0/robot/oToMessages/batchSend", status=429, code="Throttling")
    with pytest.raises(AdapterError) as caught:
        await adapter.send("staff001", Outbound("hi"), is_group=False)
    assert caught.value.retryable is True and caught.value.retry_after is not None

    fake.fail_next("/v1.0/robot/oToMessages/batchSend", status=500)
    with pytest.raises(AdapterError) as caught:
        await adapter.send("staff001", Outbound("hi"), is_group=False)
    assert caught.value.retryable is True

    fake.fail_next("/v1.0/robot/oToMessages/batchSend", status=403,
                   code="Forbidden.AccessDenied.AccessTokenPermissionDenied")
    with pytest.raises(AdapterError) as caught:
        await adapter.send("staff001", Outbound("hi"), is_group=False)
    assert caught.value.retryable is False and caught.value.permanent_reason is None
    await adapter.stop()

    # The network: retryable.
    closed = DingTalkAdapter(settings_for("http://127.0.0.1:9", "callback").dingtalk,
                             clock=clock)
    with pytest.raises(AdapterError) as caught:
        await closed.send("staff001", Outbound("hi"), is_group=False)
    assert caught.value.retryable is True
    await closed.stop()


async def test_token_is_cached_refreshed_early_and_after_401(
        base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "callback").dingtalk, clock=clock)
    for _ in range(3):
        await adapter.send("staff001", Outbound("hi"), is_group=False)
    assert fake.tokens_issued == ["tok-1"]
    headers = [c["headers"] for c in fake.calls if c["path"].endswith("batchSend")]
    assert {h["x-acs-dingtalk-access-token"] for h in headers} == {"tok-1"}
    clock.advance(timedelta(seconds=7200 - 300))  # refreshed five minutes early
    await adapter.send("staff001", Outbound("hi"), is_group=False)
    assert fake.tokens_issued == ["tok-1", "tok-2"]
    fake.forget_tokens()  # DingTalk revoked it: 401, a new token, the call again
    await adapter.send("staff001", Outbound("hi"), is_group=False)
    assert fake.tokens_issued == ["tok-1", "tok-2", "tok-3"]
    assert len(fake.oto_sent) == 5
    await adapter.stop()


def test_rendering_limits_and_markdown() -> None:
    many = Outbound("选择", buttons=tuple(Button(f"选项{i}", f"/pick {i}") for i in range(1, 8)))
    shown = render(many, group=False)
    assert len(shown.buttons) == 5
    assert "· 选项6：/pick 6" in shown.text and "· 选项7：/pick 7" in shown.text
    assert "/pick 1" not in shown.text
    long = render(Outbound("长" * 10000), group=False)
    assert len(long.text) <= DingTalkAdapter.capabilities.max_text
    assert long.text.endswith("（内容过长，已截断）")
    assert to_markdown("a_b *c*\n- x\n1. y") == "a\\_b \\*c\\*  \n\\- x  \n1\\. y"
    assert command_url("/bind AB12 中文") == (
        "dtmd://dingtalkclient/sendMessage?content=%2Fbind%20AB12%20%E4%B8%AD%E6%96%87")


def test_capabilities_and_limits() -> None:
    caps = DingTalkAdapter.capabilities
    assert caps.buttons and not caps.edit and caps.max_text == 4000
    scopes = {(w.scope, w.count, w.seconds) for w in DingTalkAdapter.limits}
    assert scopes == {("global", 20, 1.0), ("group", 20, 60.0)}


def test_secrets_are_redacted_in_logs() -> None:
    line = ("POST https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1&sign=x%2B "
            "and wss://gw/connect?ticket=t-1 and /robot/sendBySession?session=s1")
    cleaned = redact(line)
    for secret in ("abc", "x%2B", "t-1", "s1"):
        assert secret not in cleaned
    assert "timestamp=1" in cleaned


# ------------------------------------------------------------------ 4. custom robot


async def test_custom_robot_is_signed_and_throttling_is_retryable(
        base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "callback").dingtalk, clock=clock)
    await adapter.send("robot", Outbound("今日值班：王芳", buttons=(Button("接班", "/checkin"),)),
                       is_group=True)
    sent = fake.robot_sent[0]
    assert sent["timestamp"] == str(fake.now_ms())  # signed with the current time
    assert sent["msgtype"] == "actionCard"
    assert sent["body"]["actionCard"]["btns"][0]["actionURL"] == command_url("/checkin")
    robot_calls = [c for c in fake.calls if c["path"] == "/robot/send"]
    assert set(robot_calls[0]["params"]) == {"access_token", "timestamp", "sign"}

    fake.fail_next("/robot/send", errcode=130101)
    with pytest.raises(AdapterError) as caught:
        await adapter.send("robot", Outbound("第二条"), is_group=True)
    assert caught.value.retryable is True and caught.value.retry_after == 60

    # The fake's own 20-a-minute limit gives the same answer.
    for i in range(19):
        await adapter.send("robot", Outbound(f"第{i}条"), is_group=True)
    with pytest.raises(AdapterError) as caught:
        await adapter.send("robot", Outbound("超出"), is_group=True)
    assert caught.value.retryable is True and caught.value.retry_after == 60
    clock.advance(timedelta(minutes=1))
    await adapter.send("robot", Outbound("一分钟后"), is_group=True)
    assert len(fake.robot_sent) == 21
    await adapter.stop()


async def test_custom_robot_with_the_wrong_secret_or_none_configured(
        base_url: str, fake: FakeDingTalk, clock: FakeClock) -> None:
    wrong = DingTalkAdapter(settings_for(base_url, "callback", robot_secret="SECwrong").dingtalk,
                            clock=clock)
    with pytest.raises(AdapterError) as caught:
        await wrong.send("robot", Outbound("hi"), is_group=True)
    assert caught.value.retryable is False and "310000" in caught.value.message
    await wrong.stop()
    settings = load_settings(None, env={"DUTYBOT_DINGTALK_CLIENT_ID": CLIENT_ID,
                                        "DUTYBOT_DINGTALK_CLIENT_SECRET": SECRET,
                                        "DUTYBOT_DINGTALK_API_BASE": base_url})
    none = DingTalkAdapter(settings.dingtalk, clock=clock)
    with pytest.raises(AdapterError) as caught:
        await none.send("robot", Outbound("hi"), is_group=True)
    assert caught.value.retryable is False and "DUTYBOT_DINGTALK_ROBOT_WEBHOOK" in caught.value.message
    await none.stop()
    assert fake.robot_sent == []


# ------------------------------------------------------------------ 5. binding


async def test_binding_a_staff_id_then_pushes_reach_them(
        stream_app: tuple[App, DingTalkAdapter], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock) -> None:
    app, _ = stream_app
    with Session(engine) as session:
        person = make_person(session, "陈晨", roles=(Role.officer,), now=clock.now(),
                             platform=None)
        code = create_invite(session=session, person=person, now=clock.now(),
                             ttl=timedelta(hours=72), actor="test").code
        session.commit()
        person_id = person.id
    await fake.wait_connections(1)
    frame = await fake.push_callback(fake.bot_message(f"/bind {code}", staff_id="staff002",
                                                      nick="陈晨"))
    await fake.wait_ack(frame)
    await eventually(lambda: bool(texts(fake.session_sent, "staff002")), step=app.drain,
                     what="the binding reply")
    assert "绑定成功" in texts(fake.session_sent, "staff002")[0]
    with Session(engine) as session:
        ident = session.exec(select(ChatIdentity).where(ChatIdentity.person_id == person_id)).one()
    assert (ident.platform, ident.external_id, ident.chat_id) == ("dingtalk", "staff002", "staff002")

    # Hours later the session webhook has expired: a push goes through batchSend.
    clock.advance(timedelta(hours=2))
    with Session(engine) as session:
        enqueue(session=session, message=Outbound("您明天 08:30 值白班", person_id=person_id),
                now=clock.now(), event_key="test:reminder")
        session.commit()
    assert await app.drain() == 1
    assert [(m["user"], m["msgParam"]["content"]) for m in fake.oto_sent] == [
        ("staff002", "您明天 08:30 值白班")]


async def test_unknown_person_gets_the_binding_hint(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk) -> None:
    app, _, url = callback_app
    data = fake.bot_message("/help", staff_id="staff888", nick="路人")
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, json=data, headers=fake.callback_headers())).status_code == 200
    await eventually(lambda: bool(texts(fake.session_sent, "staff888")), step=app.drain,
                     what="the reply to an unbound person")
    assert "/bind" in texts(fake.session_sent, "staff888")[0]


# ------------------------------------------------------------------ 6. configuration


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(AdapterError) as caught:
        DingTalkAdapter(load_settings(None, env={}).dingtalk)
    assert caught.value.retryable is False
    assert "DUTYBOT_DINGTALK_CLIENT_ID" in caught.value.message
    assert "DUTYBOT_DINGTALK_CLIENT_SECRET" in caught.value.message
    assert "钉钉" in caught.value.message
    only_id = load_settings(None, env={"DUTYBOT_DINGTALK_CLIENT_ID": CLIENT_ID})
    with pytest.raises(AdapterError) as caught:
        DingTalkAdapter(only_id.dingtalk)
    assert "DUTYBOT_DINGTALK_CLIENT_SECRET" in caught.value.message
    assert "DUTYBOT_DINGTALK_CLIENT_ID" not in caught.value.message


async def test_callback_mode_start_refuses_wrong_credentials(base_url: str,
                                                             clock: FakeClock) -> None:
    adapter = DingTalkAdapter(settings_for(base_url, "callback",
                                           client_secret="wrong").dingtalk, clock=clock)

    async def handler(inbound: Inbound) -> None:
        raise AssertionError("not called")

    with pytest.raises(AdapterError) as caught:
        await adapter.start(handler)
    assert caught.value.retryable is False and "钉钉拒绝了应用凭证" in caught.value.message
    await adapter.stop()
