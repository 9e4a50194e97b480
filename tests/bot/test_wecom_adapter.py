"""The WeCom adapter end to end: real HTTP on loopback in both directions.

WeCom → bot: callbacks are encrypted and signed here exactly as WeCom does, and POSTed to
the adapter's routes served by :class:`bot.http.HttpService`. Bot → WeCom: the adapter
talks to :class:`~tests.fakes.fake_wecom.FakeWeComApi` (which drops messages beyond the
per-member limits, as WeCom does). Time is a FakeClock; waits are bounded and on
conditions, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.wecom import CALLBACK_PATH, WeComAdapter
from bot.adapters.wecom.crypto import WeComCrypto, signature
from bot.adapters.wecom.support import (
    MAX_UPDATE_ID_CHARS,
    SEE_ABOVE_NOTE,
    TEXT_MAX_BYTES,
    card_layout,
    fit_bytes,
    ledger_id,
)
from bot.app import App
from bot.config import Settings, WeComSettings, load_settings
from bot.http import HttpService
from bot.models import ProcessedUpdate
from bot.outbox import OutboxSender
from core.clock import FakeClock
from core.errors import AdapterError
from core.messages import Button, Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from incidents.models import Incident
from people.models import ChatIdentity, InviteCode, Person, Role
from tests.factories import make_person
from tests.fakes.fake_wecom import FakeWeComApi
from tests.fakes.serve import serve_asgi

CORP = "ww-corp-1"
SECRET = "app-s3cret"
AGENT = 1000002
TOKEN = "cbToken123"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters
ROBOT_KEY = "robot-key"


def wecom_env(api_url: str) -> dict[str, str]:
    return {
        "DUTYBOT_WECOM_CORP_ID": CORP,
        "DUTYBOT_WECOM_AGENT_ID": str(AGENT),
        "DUTYBOT_WECOM_SECRET": SECRET,
        "DUTYBOT_WECOM_TOKEN": TOKEN,
        "DUTYBOT_WECOM_AES_KEY": AES_KEY,
        "DUTYBOT_WECOM_API_BASE": api_url,
        "DUTYBOT_WECOM_ROBOT_WEBHOOK": f"{api_url}/cgi-bin/webhook/send?key={ROBOT_KEY}",
    }


def cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def text_xml(user: str, content: str, msg_id: int, created: int) -> str:
    return (f"<xml><ToUserName>{cdata(CORP)}</ToUserName><FromUserName>{cdata(user)}"
            f"</FromUserName><CreateTime>{created}</CreateTime><MsgType>{cdata('text')}"
            f"</MsgType><Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId>"
            f"<AgentID>{AGENT}</AgentID></xml>")


def click_xml(user: str, key: str, created: int, *, task_id: str = "task-1",
              response_code: str = "") -> str:
    return (f"<xml><ToUserName>{cdata(CORP)}</ToUserName><FromUserName>{cdata(user)}"
            f"</FromUserName><CreateTime>{created}</CreateTime><MsgType>{cdata('event')}"
            f"</MsgType><Event>{cdata('template_card_event')}</Event>"
            f"<EventKey>{cdata(key)}</EventKey><TaskId>{cdata(task_id)}</TaskId>"
            f"<CardType>{cdata('button_interaction')}</CardType>"
            f"<ResponseCode>{cdata(response_code)}</ResponseCode><AgentID>{AGENT}</AgentID>"
            f"<SelectedItems><SelectedItem><QuestionKey>{cdata('q')}</QuestionKey>"
            f"</SelectedItem></SelectedItems></xml>")


def signed(crypto: WeComCrypto, inner: str, timestamp: int,
           nonce: str = "n0nce") -> tuple[dict[str, str], str]:
    """Query parameters and body of a callback, encrypted and signed as WeCom does."""
    encrypted = crypto.encrypt(inner)
    params = {"msg_signature": signature(TOKEN, str(timestamp), nonce, encrypted),
              "timestamp": str(timestamp), "nonce": nonce}
    body = (f"<xml><ToUserName>{cdata(CORP)}</ToUserName><AgentID>{cdata(str(AGENT))}"
            f"</AgentID><Encrypt>{cdata(encrypted)}</Encrypt></xml>")
    return params, body


@dataclass
class Rig:
    """The app on WeCom, its callback service, the fake WeCom API, and a client."""

    app: App
    adapter: WeComAdapter
    fake: FakeWeComApi
    clock: FakeClock
    engine: Engine
    settings: Settings
    base: str
    http: httpx.AsyncClient
    crypto: WeComCrypto
    msg_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_000_000_001))

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    async def post(self, inner: str, *, timestamp: int | None = None,
                   crypto: WeComCrypto | None = None) -> httpx.Response:
        params, body = signed(crypto or self.crypto, inner,
                              self.now() if timestamp is None else timestamp)
        return await self.http.post(self.base + CALLBACK_PATH, params=params, content=body)

    async def say(self, user: str, content: str, *, msg_id: int | None = None) -> httpx.Response:
        mid = next(self.msg_ids) if msg_id is None else msg_id
        return await self.post(text_xml(user, content, mid, self.now()))

    async def settle(self) -> None:
        """Wait (bounded) until the received updates are handled, then deliver."""
        await asyncio.wait_for(self.adapter.wait_idle(), timeout=10)
        await self.app.drain()

    def texts(self, user: str) -> list[str]:
        """What ``user`` received: text contents, and card title + body for cards."""
        out = []
        for m in self.fake.sent_to(user):
            if m["msgtype"] == "template_card":
                out.append(m["card"]["main_title"]["title"] + "\n" + m["card"]["sub_title_text"])
            else:
                out.append(m["content"])
        return out

    def cards(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.fake.sent_to(user) if m["msgtype"] == "template_card"]


@pytest.fixture
def fake(clock: FakeClock) -> FakeWeComApi:
    return FakeWeComApi(corp_id=CORP, secret=SECRET, agent_id=AGENT,
                        robot_keys=(ROBOT_KEY,), time_source=clock.now)


@pytest.fixture
async def api_url(fake: FakeWeComApi) -> AsyncIterator[str]:
    async with serve_asgi(fake.app) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def rig(engine: Engine, clock: FakeClock, fake: FakeWeComApi, api_url: str,
              http: httpx.AsyncClient) -> AsyncIterator[Rig]:
    settings = load_settings(None, env=wecom_env(api_url))
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin, Role.officer), now=clock.now(),
                    platform="wecom", external_id="zhangwei")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(),
                    platform="wecom", external_id="liqiang")
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(),
                    platform="wecom", external_id="wangfang")
        make_person(session, "陈晨", roles=(Role.officer,), now=clock.now(), platform=None)
        session.commit()
    adapter = WeComAdapter(settings.wecom, clock=clock, http=http)
    app = App(settings, clock=clock, adapter=adapter, engine=engine)
    service = HttpService(host="127.0.0.1", port=0, routes=adapter.http_routes(),
                          health=app.health)
    await service.start()
    await adapter.start(app.handle)
    try:
        yield Rig(app=app, adapter=adapter, fake=fake, clock=clock, engine=engine,
                  settings=settings, base=f"http://127.0.0.1:{service.port}", http=http,
                  crypto=WeComCrypto(TOKEN, AES_KEY, CORP))
    finally:
        await adapter.stop()
        await service.stop()


def person_id(engine: Engine, name: str) -> int:
    with Session(engine) as session:
        pid = session.exec(select(Person.id).where(Person.name == name)).one()
        assert pid is not None
        return pid


# ------------------------------------------------------------------ 1. URL verification


async def test_url_verification_answers_the_plain_echostr(rig: Rig) -> None:
    echo = rig.crypto.encrypt("8215474530217745923")
    params = {"msg_signature": signature(TOKEN, str(rig.now()), "abc", echo),
              "timestamp": str(rig.now()), "nonce": "abc", "echostr": echo}
    ok = await rig.http.get(rig.base + CALLBACK_PATH, params=params)
    assert ok.status_code == 200 and ok.text == "8215474530217745923"
    assert ok.headers["content-type"].startswith("text/plain")

    forged = await rig.http.get(rig.base + CALLBACK_PATH,
                                params={**params, "msg_signature": "0" * 40})
    assert forged.status_code == 403 and forged.text == ""


# ------------------------------------------------------------------ 2. full flow


async def test_help_round_trip(rig: Rig) -> None:
    response = await rig.say("wangfang", "/help")
    assert response.status_code == 200 and response.content == b""
    await rig.settle()
    [reply] = rig.fake.sent_to("wangfang")
    assert reply["msgtype"] == "text" and reply["raw"]["agentid"] == AGENT
    assert "王芳，您好" in reply["content"] and "/due" in reply["content"]
    assert len(reply["content"].encode()) <= TEXT_MAX_BYTES


async def test_a_wecom_userid_binds_with_a_code(rig: Rig) -> None:
    await rig.say("zhangwei", "/people invite 陈晨")
    await rig.settle()
    with Session(rig.engine) as session:
        code = session.exec(select(InviteCode)).one().code
    assert code in rig.texts("zhangwei")[-1]

    await rig.say("chenchen", f"/bind {code}")
    await rig.settle()
    assert "绑定成功" in rig.texts("chenchen")[-1]
    with Session(rig.engine) as session:
        ident = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == "chenchen")).one()
        assert (ident.platform, ident.chat_id) == ("wecom", "chenchen")
    await rig.say("chenchen", "/whoami")
    await rig.settle()
    assert "陈晨" in rig.texts("chenchen")[-1]


async def test_messages_of_one_person_are_handled_in_order(rig: Rig) -> None:
    # A guided dialog: the second message only makes sense after the first.
    await rig.say("wangfang", "/incident new 舆情")
    await rig.say("wangfang", "微博@某街道")
    await rig.settle()
    got = rig.texts("wangfang")
    assert "请发送出现问题的网址" in got[0]
    assert "请简要描述情况" in got[-1]


# ------------------------------------------------------------------ 3. incident card and click


async def test_incident_card_click_acknowledges_and_sends_a_new_message(rig: Rig) -> None:
    await rig.say("wangfang", "/incident new 篡改 https://www.example.gov.cn 首页被篡改")
    await rig.settle()
    assert "已登记 INC-20261123-001" in "\n".join(rig.texts("wangfang"))

    # The leader's card is longer than a card holds: full text first, then the card.
    to_leader = rig.fake.sent_to("liqiang")
    assert [m["msgtype"] for m in to_leader] == ["text", "template_card"]
    assert "INC-20261123-001" in to_leader[0]["content"]
    card = to_leader[1]["card"]
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["title"].startswith("【事件报告·带班领导】")
    assert card["sub_title_text"].endswith(SEE_ABOVE_NOTE)
    keys = {b["text"]: b["key"] for b in card["button_list"]}
    assert keys == {"确认收到": "/incident ack INC-20261123-001",
                    "我来处置": "/incident take INC-20261123-001"}

    sent_before = len(rig.fake.sent)
    response = await rig.post(click_xml("liqiang", keys["确认收到"], rig.now(),
                                        task_id=card["task_id"],
                                        response_code=f"rc-{to_leader[1]['msgid']}"))
    assert response.status_code == 200 and response.content == b""
    await rig.settle()

    leader_id = person_id(rig.engine, "李强")
    with Session(rig.engine) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.acknowledged_at is not None and incident.status == "acknowledged"
        assert incident.acknowledged_by_id == leader_id
    # WeCom cannot edit: the answers are new messages.
    new = rig.fake.sent[sent_before:]
    assert any(m["touser"] == "liqiang" and "升级提醒已停止" in (m.get("content") or "")
               for m in new)
    assert any(m["touser"] == "wangfang" and "【已确认】" in (m.get("content") or "")
               for m in new)
    # The clicked card's buttons are replaced for the leader.
    [update] = rig.fake.updates
    assert update["userids"] == ["liqiang"] and update["button"]["replace_name"] == "已提交"


async def test_redelivered_click_is_handled_once(rig: Rig) -> None:
    click = click_xml("wangfang", "/whoami", rig.now())
    for _ in range(2):
        assert (await rig.post(click)).status_code == 200
    await rig.settle()
    assert len(rig.fake.sent_to("wangfang")) == 1
    assert rig.fake.updates == []  # no ResponseCode in this click: nothing to update


# ------------------------------------------------------------------ 4. de-duplication


async def test_same_msgid_three_times_is_handled_once(rig: Rig) -> None:
    for _ in range(3):
        response = await rig.say("wangfang", "/whoami", msg_id=1234567890123456789)
        assert response.status_code == 200
    await rig.settle()
    assert len(rig.fake.sent_to("wangfang")) == 1
    with Session(rig.engine) as session:
        ids = [u.update_id for u in session.exec(select(ProcessedUpdate))]
    assert ids == ["msg:1234567890123456789"]


# ------------------------------------------------------------------ 5. refused callbacks


async def test_forged_stale_and_foreign_callbacks_are_refused(rig: Rig,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    inner = text_xml("wangfang", "/whoami", 42, rig.now())
    params, body = signed(rig.crypto, inner, rig.now())
    forged = await rig.http.post(rig.base + CALLBACK_PATH, content=body,
                                 params={**params, "msg_signature": "f" * 40})
    stale = await rig.post(inner, timestamp=rig.now() - 600)
    foreign = await rig.post(inner, crypto=WeComCrypto(TOKEN, AES_KEY, "ww-other-corp"))
    garbage = await rig.http.post(rig.base + CALLBACK_PATH, params=params, content="not xml")
    assert [r.status_code for r in (forged, stale, foreign)] == [403, 403, 403]
    assert garbage.status_code == 400
    await rig.settle()
    assert rig.fake.sent == []
    with Session(rig.engine) as session:
        assert session.exec(select(ProcessedUpdate)).all() == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "bad_signature" in logged and "stale_timestamp" in logged
    assert "wrong_receive_id" in logged


async def test_callbacks_before_start_ask_wecom_to_retry(clock: FakeClock, api_url: str,
                                                         http: httpx.AsyncClient) -> None:
    settings = load_settings(None, env=wecom_env(api_url))
    adapter = WeComAdapter(settings.wecom, clock=clock, http=http)
    service = HttpService(host="127.0.0.1", port=0, routes=adapter.http_routes(),
                          health=dict)
    await service.start()
    try:
        params, body = signed(WeComCrypto(TOKEN, AES_KEY, CORP),
                              text_xml("wangfang", "/help", 1, int(clock.now().timestamp())),
                              int(clock.now().timestamp()))
        response = await http.post(f"http://127.0.0.1:{service.port}{CALLBACK_PATH}",
                                   params=params, content=body)
        assert response.status_code == 503
    finally:
        await service.stop()


# ------------------------------------------------------------------ 6. per-member limits


async def test_declared_limits_keep_one_member_within_30_a_minute(rig: Rig) -> None:
    pid = person_id(rig.engine, "王芳")
    with Session(rig.engine) as session:
        for i in range(40):
            enqueue(session=session, message=Outbound(f"第{i}条", person_id=pid),
                    now=rig.clock.now(), event_key=f"bulk:{i}")
        session.commit()
    mono = [1000.0]
    sender = OutboxSender(engine=rig.engine, adapter=rig.adapter, clock=rig.clock,
                          settings=rig.settings.outbox, time_source=lambda: mono[0])

    async def passes() -> None:
        for _ in range(20):
            if not (await sender.deliver_due()).progressed:
                return

    def states() -> set[tuple[str, int, str | None]]:
        with Session(rig.engine) as session:
            return {(str(r.status), r.attempts, r.last_error)
                    for r in session.exec(select(OutboxMessage))}

    await passes()
    assert len(rig.fake.sent_to("wangfang")) == 30
    assert rig.fake.dropped == []
    # The sender held the rest back itself: no send failed, nothing waits for a retry.
    assert states() == {(str(OutboxStatus.sent), 0, None), (str(OutboxStatus.pending), 0, None)}
    rig.clock.advance(timedelta(seconds=61))
    mono[0] += 61
    await passes()
    assert [m["content"] for m in rig.fake.sent_to("wangfang")] == [f"第{i}条" for i in range(40)]
    assert rig.fake.dropped == []
    assert states() == {(str(OutboxStatus.sent), 0, None)}


async def test_long_card_uses_a_second_message_only_when_the_budget_allows(rig: Rig) -> None:
    card = Outbound("【新事件】请确认并处置\n" + "情况说明" * 60,
                    buttons=(Button("确认收到", "/incident ack INC-1"),))
    for i in range(29):
        await rig.adapter.send("wangfang", Outbound(f"第{i}条"), is_group=False)
    # One message left this minute: the card goes alone, its text cut.
    await rig.adapter.send("wangfang", card, is_group=False)
    sent = rig.fake.sent_to("wangfang")
    assert len(sent) == 30 and sent[-1]["msgtype"] == "template_card"
    assert sent[-1]["card"]["sub_title_text"].endswith("……（内容过长，已截断）")
    # None left (the outbox would not ask, but another process might have spent it).
    with pytest.raises(AdapterError) as caught:
        await rig.adapter.send("wangfang", Outbound("再来一条"), is_group=False)
    assert caught.value.retryable and caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 60
    assert rig.fake.dropped == []
    # A minute later the full text goes first again.
    rig.clock.advance(timedelta(seconds=60))
    await rig.adapter.send("wangfang", card, is_group=False)
    assert [m["msgtype"] for m in rig.fake.sent_to("wangfang")[-2:]] == ["text", "template_card"]


async def test_a_retried_long_card_does_not_repeat_its_text(rig: Rig,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    card = Outbound("标题\n" + "很长的说明" * 50, buttons=(Button("确认", "/incident ack INC-9"),))
    real = rig.adapter.client.send_template_card
    calls = {"n": 0}

    async def flaky(touser: str, payload: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise AdapterError("WeCom /cgi-bin/message/send: network error", retryable=True)
        return await real(touser, payload)

    monkeypatch.setattr(rig.adapter.client, "send_template_card", flaky)
    with pytest.raises(AdapterError):
        await rig.adapter.send("wangfang", card, is_group=False)
    await rig.adapter.send("wangfang", card, is_group=False)
    assert [m["msgtype"] for m in rig.fake.sent_to("wangfang")] == ["text", "template_card"]


# ------------------------------------------------------------------ 7. unreachable member


@pytest.mark.parametrize("as_errcode", [True, False], ids=["81013", "invaliduser"])
async def test_unreachable_member_is_marked_blocked_and_admins_told(rig: Rig,
                                                                    as_errcode: bool) -> None:
    rig.fake.invalid_users.add("wangfang")
    rig.fake.all_invalid_is_error = as_errcode
    pid = person_id(rig.engine, "王芳")
    with Session(rig.engine) as session:
        enqueue(session=session, message=Outbound("【提醒】请读网", person_id=pid),
                now=rig.clock.now(), event_key="test:blocked")
        session.commit()
    await rig.app.drain()
    with Session(rig.engine) as session:
        ident = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == "wangfang")).one()
        assert ident.blocked_at is not None
        row = session.exec(select(OutboxMessage).where(OutboxMessage.event_key == "test:blocked")).one()
        assert row.status == OutboxStatus.dead and row.attempts == 1
    notice = rig.texts("zhangwei")[-1]
    assert "【消息投递失败】" in notice and "王芳" in notice and "屏蔽" in notice


# ------------------------------------------------------------------ 8. robot broadcast


async def test_robot_chat_goes_to_the_group_robot_with_typed_commands(rig: Rig) -> None:
    with Session(rig.engine) as session:
        enqueue(session=session,
                message=Outbound("【早报】11月23日 值班情况", chat_id="robot",
                                 buttons=(Button("查看早报", "/brief"),)),
                now=rig.clock.now(), event_key="test:robot", platform="wecom")
        session.commit()
    assert await rig.app.drain() == 1
    [posted] = rig.fake.robot_sent
    assert posted["key"] == ROBOT_KEY and posted["msgtype"] == "text"
    assert posted["content"].startswith("【早报】11月23日 值班情况")
    assert "查看早报：发送 /brief" in posted["content"]
    assert rig.fake.sent == []


async def test_robot_without_webhook_is_a_permanent_error(clock: FakeClock, api_url: str,
                                                          http: httpx.AsyncClient) -> None:
    env = {k: v for k, v in wecom_env(api_url).items() if k != "DUTYBOT_WECOM_ROBOT_WEBHOOK"}
    adapter = WeComAdapter(load_settings(None, env=env).wecom, clock=clock, http=http)
    with pytest.raises(AdapterError) as caught:
        await adapter.send("robot", Outbound("早报"), is_group=True)
    assert not caught.value.retryable and "DUTYBOT_WECOM_ROBOT_WEBHOOK" in caught.value.message


# ------------------------------------------------------------------ 9. configuration


def test_missing_configuration_names_the_variables() -> None:
    with pytest.raises(AdapterError) as caught:
        WeComAdapter(WeComSettings())
    message = caught.value.message
    assert not caught.value.retryable and "企业微信" in message
    for name in ("DUTYBOT_WECOM_CORP_ID", "DUTYBOT_WECOM_AGENT_ID", "DUTYBOT_WECOM_SECRET",
                 "DUTYBOT_WECOM_TOKEN", "DUTYBOT_WECOM_AES_KEY"):
        assert name in message

    partial = load_settings(None, env={"DUTYBOT_WECOM_CORP_ID": CORP,
                                       "DUTYBOT_WECOM_AGENT_ID": "1000002",
                                       "DUTYBOT_WECOM_SECRET": SECRET}).wecom
    with pytest.raises(AdapterError) as caught:
        WeComAdapter(partial)
    assert "DUTYBOT_WECOM_TOKEN" in caught.value.message
    assert "DUTYBOT_WECOM_SECRET" not in caught.value.message


def test_unusable_aes_key_is_named() -> None:
    settings = load_settings(None, env={"DUTYBOT_WECOM_CORP_ID": CORP,
                                        "DUTYBOT_WECOM_AGENT_ID": "1000002",
                                        "DUTYBOT_WECOM_SECRET": SECRET,
                                        "DUTYBOT_WECOM_TOKEN": TOKEN,
                                        "DUTYBOT_WECOM_AES_KEY": "too-short"}).wecom
    with pytest.raises(AdapterError) as caught:
        WeComAdapter(settings)
    assert "DUTYBOT_WECOM_AES_KEY" in caught.value.message


async def test_wrong_secret_stops_start_with_a_chinese_message(clock: FakeClock, api_url: str,
                                                               http: httpx.AsyncClient) -> None:
    env = {**wecom_env(api_url), "DUTYBOT_WECOM_SECRET": "wrong"}
    adapter = WeComAdapter(load_settings(None, env=env).wecom, clock=clock, http=http)

    async def handler(_: object) -> None:
        return None

    with pytest.raises(AdapterError) as caught:
        await adapter.start(handler)
    assert "DUTYBOT_WECOM_SECRET" in caught.value.message and not caught.value.retryable


# ------------------------------------------------------------------ mapping and layout


def test_inbound_mapping(clock: FakeClock) -> None:
    adapter = WeComAdapter(load_settings(None, env=wecom_env("http://127.0.0.1:9")).wecom,
                           clock=clock)
    text = adapter.to_inbound({"MsgType": "text", "FromUserName": "wangfang", "Content": "/help",
                               "MsgId": "77", "CreateTime": "1795914000",
                               "AgentID": str(AGENT)})
    assert text is not None
    assert (text.platform, text.chat_id, text.sender_id, text.text, text.update_id,
            text.is_group, text.is_button) == ("wecom", "wangfang", "wangfang", "/help",
                                               "msg:77", False, False)
    click = adapter.to_inbound({"MsgType": "event", "Event": "template_card_event",
                                "FromUserName": "liqiang", "CreateTime": "1795914000",
                                "EventKey": "/incident ack INC-20261123-001",
                                "ResponseCode": "rc-1", "TaskId": "t1"})
    assert click is not None and click.is_button and click.text == "/incident ack INC-20261123-001"
    assert click.update_id == "evt:liqiang:1795914000:/incident ack INC-20261123-001"
    assert (click.callback_id, click.message_ref) == ("rc-1", "t1")
    for ignored in ({"MsgType": "event", "Event": "enter_agent", "FromUserName": "wangfang"},
                    {"MsgType": "image", "FromUserName": "wangfang", "MediaId": "m1",
                     "MsgId": "78"},
                    {"MsgType": "text", "FromUserName": "wangfang", "Content": "hi",
                     "MsgId": "79", "AgentID": "999"}):
        assert adapter.to_inbound(ignored) is None


def test_long_update_ids_fit_the_ledger() -> None:
    raw = "evt:" + "u" * 64 + ":1795914000:" + "/incident note INC-20261123-001 " + "很" * 40
    first, second = ledger_id(raw), ledger_id(raw)
    assert first == second and len(first) <= MAX_UPDATE_ID_CHARS and first.startswith("evt:h:")
    assert ledger_id("msg:1") == "msg:1"


def test_texts_are_cut_by_bytes_on_character_boundaries() -> None:
    text = "值" * 1000  # 3000 bytes
    cut = fit_bytes(text)
    assert len(cut.encode()) <= TEXT_MAX_BYTES and cut.endswith("……（内容过长，已截断）")
    cut.encode().decode("utf-8")  # still valid UTF-8
    assert fit_bytes("短消息") == "短消息"


def test_card_layout() -> None:
    short = card_layout(Outbound("请选择类型\n网站异常或舆情", buttons=(Button("舆情", "/incident new 舆情"),)))
    assert short is not None and short.lead_text is None
    assert (short.title, short.body) == ("请选择类型", "网站异常或舆情")
    many = tuple(Button(f"选项{i}", f"/x {i}") for i in range(8))
    layout = card_layout(Outbound("选择", buttons=many))
    assert layout is not None and len(layout.buttons) == 6
    assert layout.lead_text is not None and "选项7：发送 /x 7" in layout.lead_text
    assert card_layout(Outbound("没有按钮")) is None
