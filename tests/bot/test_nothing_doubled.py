"""Nothing lost, nothing doubled (issue 16 item 6) on the platforms: a WeCom callback is
answered only after its update is stored, and a send whose answer is slow or lost is not
delivered twice (WeCom's duplicate check) or is counted as a possible duplicate (Telegram).

Slowness is simulated, never waited for: :class:`SlowAnswers` lets the fake platform
process the request and then, when the platform's answer would take longer than the
client's read timeout, raises the read timeout a real client would."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.adapters.memory import MemoryAdapter
from bot.adapters.telegram import convert
from bot.adapters.wecom import WeComAdapter
from bot.app import App
from bot.cli.outbox import pending_report
from bot.config import load_settings
from bot.delivery import POSSIBLE_DUPLICATE, UncertainDelivery
from bot.models import ProcessedUpdate
from core.clock import FakeClock
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from people.models import Person, Role
from tests.bot.test_store_failure import fail_commits
from tests.bot.test_wecom_adapter import (  # noqa: F401  (fixtures)
    AGENT,
    CORP,
    ROBOT_KEY,
    SECRET,
    Rig,
    api_url,
    fake,
    http,
    rig,
    wecom_env,
)
from tests.factories import make_person
from tests.fakes.fake_wecom import FakeWeComApi
from tests.fakes.serve import serve_asgi

# ------------------------------------------------------------------ WeCom callbacks


async def test_wecom_callback_not_stored_is_answered_5xx_and_its_retry_handled_once(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (imported fixture)
    fail_commits(monkeypatch)
    first = await rig.say("wangfang", "/whoami", msg_id=555)
    assert first.status_code == 500                      # WeCom retries anything but 200
    await rig.settle()
    assert any("消息未能保存" in t for t in rig.texts("wangfang"))   # told directly
    with Session(rig.engine) as session:
        assert session.exec(select(ProcessedUpdate)).all() == []
    for _ in range(2):                                   # WeCom's retries
        assert (await rig.say("wangfang", "/whoami", msg_id=555)).status_code == 200
    await rig.settle()
    texts = rig.texts("wangfang")
    assert sum("王芳" in t and "未能保存" not in t for t in texts) == 1
    assert sum("未能保存" in t for t in texts) == 1


async def test_wecom_callback_answers_200_only_after_the_commit(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (imported fixture)
    seen: list[int] = []
    real = rig.app.dispatcher.dispatch

    async def dispatch(inbound: Any) -> Any:
        result = await real(inbound)
        with Session(rig.engine) as session:
            seen.append(len(session.exec(select(ProcessedUpdate)).all()))
        return result

    monkeypatch.setattr(rig.app.dispatcher, "dispatch", dispatch)
    response = await rig.say("wangfang", "/whoami")
    assert response.status_code == 200 and seen == [1]   # committed before the answer


async def test_a_slow_wecom_update_is_answered_503_and_the_retry_joins_it(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (imported fixture)
    import asyncio
    gate = asyncio.Event()
    real = rig.app.handle

    async def slow(inbound: Any) -> Any:
        await gate.wait()
        return await real(inbound)

    rig.adapter.handler = slow
    rig.adapter.ack_deadline = 0.01
    assert (await rig.say("wangfang", "/whoami", msg_id=777)).status_code == 503
    gate.set()
    assert (await rig.say("wangfang", "/whoami", msg_id=777)).status_code == 200
    await rig.settle()
    assert len(rig.fake.sent_to("wangfang")) == 1


# ------------------------------------------------------------------ slow send APIs


class DedupingWeCom(FakeWeComApi):
    """The fake WeCom with ``enable_duplicate_check``: a request whose JSON equals one
    accepted within its ``duplicate_check_interval`` is answered ok and not delivered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checked: dict[str, Any] = {}
        self.duplicates = 0

    def routes(self) -> list[Any]:
        routes = super().routes()
        from starlette.routing import Route
        return [Route("/cgi-bin/message/send", self._dedupe, methods=["POST"]), *routes]

    async def _dedupe(self, request: Request) -> Response:
        body = json.loads(await request.body())
        if body.get("enable_duplicate_check") == 1:
            key = json.dumps(body, sort_keys=True)
            now = self.time_source()
            earlier = self.checked.get(key)
            if earlier is not None and now - earlier < timedelta(seconds=body["duplicate_check_interval"]):
                self.duplicates += 1
                return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": "dup"})
            self.checked[key] = now
        return await self._message_send(request)


class SlowAnswers(httpx.AsyncBaseTransport):
    """Forwards to the fake on loopback; the answers to ``path`` take ``delay`` seconds:
    when that is longer than the request's read timeout, the request is processed by the
    platform and the client gets ``ReadTimeout`` — without anyone waiting."""

    def __init__(self, path: str, delay: float) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.path, self.delay = path, delay
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        read = (request.extensions.get("timeout") or {}).get("read")
        if request.url.path.endswith(self.path) and read is not None and self.delay > read:
            await response.aread()
            await response.aclose()
            self.lost += 1
            raise httpx.ReadTimeout("simulated: no answer in time", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_send_timeouts_outlast_a_slow_platform(clock: FakeClock) -> None:
    settings = load_settings(None, env=wecom_env("http://127.0.0.1:9"))
    assert settings.wecom.send_timeout_seconds == 60
    assert settings.telegram.send_timeout_seconds == 60
    assert settings.dingtalk.send_timeout_seconds == 60
    adapter = WeComAdapter(settings.wecom, clock=clock)
    assert adapter.http.timeout.read == 60


@pytest.mark.parametrize("timeout", [10.0, 60.0])
async def test_a_slow_wecom_send_is_delivered_once(engine: Engine, clock: FakeClock,
                                                   timeout: float) -> None:
    """WeCom answers after 40 s: with the old 10 s timeout the answer is lost and the
    outbox retries, and WeCom's duplicate check drops the repeat; with 60 s nothing is
    retried at all. Either way the person gets the message once."""
    fake_api = DedupingWeCom(corp_id=CORP, secret=SECRET, agent_id=AGENT,
                             robot_keys=(ROBOT_KEY,), time_source=clock.now)
    async with serve_asgi(fake_api.app) as url:
        settings = load_settings(None, env=wecom_env(url))
        with Session(engine) as session:
            make_person(session, "王芳", roles=(Role.officer,), now=clock.now(),
                        platform="wecom", external_id="wangfang")
            pid = session.exec(select(Person.id).where(Person.name == "王芳")).one()
            for n in range(3):
                enqueue(session=session, message=Outbound(f"提醒 {n}", person_id=pid),
                        now=clock.now(), event_key=f"test:{n}")
            enqueue(session=session, message=Outbound("提醒 0", person_id=pid),
                    now=clock.now(), event_key="test:same-text")
            session.commit()
        transport = SlowAnswers("/cgi-bin/message/send", delay=40.0)
        async with httpx.AsyncClient(transport=transport,
                                     timeout=httpx.Timeout(timeout, connect=5.0)) as client:
            adapter = WeComAdapter(settings.wecom, clock=clock, http=client)
            app = App(settings, clock=clock, adapter=adapter, engine=engine)
            for _ in range(10):
                await app.drain()
                clock.advance(timedelta(minutes=1))   # past the retry's backoff
                transport.delay = 0.0 if transport.lost >= 4 else transport.delay
        texts = [m["content"] for m in fake_api.sent_to("wangfang")]
        assert sorted(texts) == ["提醒 0", "提醒 0", "提醒 1", "提醒 2"]   # same text, two events
        assert all(c["json"].get("enable_duplicate_check") == 1
                   for c in fake_api.calls if c["path"] == "/cgi-bin/message/send")
        if timeout < 40:
            assert transport.lost == 4 and fake_api.duplicates == 4
        else:
            assert transport.lost == 0 and fake_api.duplicates == 0
        with Session(engine) as session:
            rows = session.exec(select(OutboxMessage)).all()
            assert {r.status for r in rows} == {OutboxStatus.sent}
            assert not any((r.last_error or "").startswith(POSSIBLE_DUPLICATE) for r in rows)


def test_a_telegram_read_timeout_is_an_uncertain_delivery() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/bot1:x/sendMessage")
    for cause, uncertain in ((httpx.ReadTimeout("t", request=request), True),
                             (httpx.WriteTimeout("t", request=request), True),
                             (httpx.ConnectTimeout("t", request=request), False),
                             (httpx.PoolTimeout("t", request=request), False)):
        try:
            raise convert.TimedOut() from cause
        except convert.TimedOut as exc:
            error = convert.adapter_error(exc)
        assert isinstance(error, UncertainDelivery) is uncertain
        assert error.retryable


async def test_a_resend_after_an_unknown_outcome_is_counted_as_a_possible_duplicate(
        engine: Engine, clock: FakeClock) -> None:
    """Telegram has no idempotency key: never lose wins, the resend happens, and counts."""
    adapter = MemoryAdapter()
    app = App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine)
    with Session(engine) as session:
        enqueue(session=session, message=Outbound("值班提醒", chat_id="g-1"), now=clock.now(),
                event_key="test:uncertain", platform="memory")
        enqueue(session=session, message=Outbound("另一条", chat_id="g-2"), now=clock.now(),
                event_key="test:plain", platform="memory")
        session.commit()
    adapter.fail_with = [UncertainDelivery("Telegram: no answer in time (ReadTimeout)"),
                         UncertainDelivery("again no answer")]
    first = await app.sender.deliver_due()
    assert first.retried == 2 and first.possible_duplicates == 0
    clock.advance(timedelta(minutes=30))
    second = await app.sender.deliver_due()
    assert second.sent == 2 and second.possible_duplicates == 2
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
        assert all((r.last_error or "").startswith(POSSIBLE_DUPLICATE) for r in rows)
        assert "可能重复送达：2 条" in pending_report(session)


async def test_a_resend_on_a_platform_that_drops_repeats_is_not_counted(
        engine: Engine, clock: FakeClock) -> None:
    adapter = MemoryAdapter()
    adapter.resend_is_safe = True  # type: ignore[attr-defined]
    app = App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine)
    with Session(engine) as session:
        enqueue(session=session, message=Outbound("值班提醒", chat_id="g-1"), now=clock.now(),
                event_key="test:safe", platform="memory")
        session.commit()
    adapter.fail_with = [UncertainDelivery("no answer in time")]
    await app.sender.deliver_due()
    clock.advance(timedelta(minutes=30))
    report = await app.sender.deliver_due()
    assert report.sent == 1 and report.possible_duplicates == 0
