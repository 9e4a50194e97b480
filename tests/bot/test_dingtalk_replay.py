"""DingTalk HTTP callbacks cannot be replayed with another body (issue 16, item 1).

DingTalk signs only the ``timestamp`` header of a callback, so before the fix one captured
``(timestamp, sign)`` pair let anyone post any body for an hour: claim to be the admin,
run ``/people add … 管理员``, and point ``sessionWebhook`` at their own server to read the
replies. These tests play that attack against the real adapter and app behind the HTTP
service, with the fake DingTalk on loopback:

* the pair is accepted once — in one process, and across two apps on two engines of one
  SQLite file (a second worker); a fresh pair goes through;
* a ``sessionWebhook`` that is not https on DingTalk's own hosts is never posted to: the
  reply goes through the robot API instead.
"""

# Fixtures come from tests.bot.test_dingtalk_adapter (imported below), so a test parameter with a
# fixture's name is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bot import one_use
from bot.adapters.dingtalk import CALLBACK_PATH, DingTalkAdapter
from bot.adapters.dingtalk.sessions import trusted_webhook
from bot.app import App
from bot.http import HttpService
from bot.models import ProcessedUpdate
from core.clock import FakeClock
from core.db import make_engine
from people.models import Person, Role
from tests.bot.test_dingtalk_adapter import (  # noqa: F401  (fixtures)
    SECRET,
    base_url,
    bind_person,
    callback_app,
    eventually,
    fake,
    processed,
    settings_for,
    texts,
)
from tests.fakes.fake_dingtalk import FakeDingTalk

ADMIN = "staffadmin"
EVIL = "http://evil.example/robot/sendBySession?session=stolen"


def attack_body(fake: FakeDingTalk, *, webhook: str = EVIL) -> dict[str, Any]:
    """What an attacker posts with a captured pair: the admin adding an admin, replies to
    their own server."""
    data = fake.bot_message("/people add 赵六 13800000009 管理员", staff_id=ADMIN, nick="张伟",
                            msg_id="msg-forged-1")
    data["sessionWebhook"] = webhook
    return data


def people_named(engine: Engine, name: str) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Person).where(Person.name == name)).one()


@asynccontextmanager
async def serving(adapter: DingTalkAdapter) -> AsyncIterator[str]:
    """The adapter's callback routes on loopback; the callback URL."""
    service = HttpService(host="127.0.0.1", port=0, routes=adapter.http_routes(),
                          health=lambda: {})
    await service.start()
    try:
        yield f"http://127.0.0.1:{service.port}{CALLBACK_PATH}"
    finally:
        await service.stop()


async def post(url: str, data: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=json.dumps(data, ensure_ascii=False),
                                 headers=headers)


# ------------------------------------------------------------------ one process


async def test_a_captured_pair_with_another_body_is_refused(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    app, adapter, url = callback_app
    bind_person(engine, clock, "张伟", staff_id=ADMIN, roles=(Role.admin,))
    captured = fake.callback_headers()
    genuine = fake.bot_message("/whoami", staff_id=ADMIN, nick="张伟")
    assert (await post(url, genuine, captured)).status_code == 200
    await eventually(lambda: bool(texts(fake.session_sent, ADMIN)), step=app.drain,
                     what="the genuine reply")

    caplog.set_level(logging.WARNING, logger="dutybot.dingtalk")
    forged = attack_body(fake)
    response = await post(url, forged, captured)  # same timestamp and sign, another body
    assert response.status_code == 403
    assert not adapter._background  # nothing was handed to the bot
    await app.drain()
    assert not processed(engine, "msg-forged-1")
    assert people_named(engine, "赵六") == 0
    assert len(texts(fake.session_sent, ADMIN)) == 1 and fake.oto_sent == []
    refusal = [r.getMessage() for r in caplog.records if "replayed" in r.getMessage()]
    assert len(refusal) == 1 and captured["timestamp"] in refusal[0]
    assert captured["sign"] not in caplog.text and SECRET not in caplog.text

    # The very same request again (DingTalk retrying a lost answer) passes the pair, which
    # is bound to its body, and the update ledger handles it once: nothing new is said.
    assert (await post(url, genuine, captured)).status_code == 200
    await app.drain()
    assert len(texts(fake.session_sent, ADMIN)) == 1


async def test_a_fresh_pair_is_accepted_after_a_replay_was_refused(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock) -> None:
    app, _, url = callback_app
    bind_person(engine, clock)
    captured = fake.callback_headers()
    assert (await post(url, fake.bot_message("/whoami"), captured)).status_code == 200
    assert (await post(url, fake.bot_message("/help"), captured)).status_code == 403
    clock.advance(timedelta(milliseconds=1))  # DingTalk's next callback: a new pair
    later = fake.bot_message("/help")
    assert (await post(url, later, fake.callback_headers())).status_code == 200
    await eventually(lambda: processed(engine, later["msgId"]), step=app.drain,
                     what="the fresh callback to be handled")
    await eventually(lambda: len(texts(fake.session_sent, "staff001")) == 2, step=app.drain,
                     what="both replies")


async def test_a_refused_request_leaves_its_pair_unused(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock) -> None:
    """A body that is not JSON is refused before the pair is claimed (DingTalk never sends
    one, but nothing is spent on it)."""
    app, _, url = callback_app
    bind_person(engine, clock)
    headers = fake.callback_headers()
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, content=b"{not json", headers=headers)).status_code == 400
    data = fake.bot_message("/whoami")
    assert (await post(url, data, headers)).status_code == 200
    await eventually(lambda: processed(engine, data["msgId"]), step=app.drain,
                     what="the message to be handled")


# ------------------------------------------------------------------ two workers


async def test_a_replay_to_another_worker_on_the_same_database_is_refused(
        base_url: str, fake: FakeDingTalk, engine: Engine, clock: FakeClock) -> None:
    # Two workers: two apps, each with its own engine on the same SQLite file (PostgreSQL:
    # the same schema), each with its own adapter and HTTP service.
    other = make_engine(str(engine.url)) if engine.dialect.name == "sqlite" else engine
    settings = settings_for(base_url, "callback")
    first = DingTalkAdapter(settings.dingtalk, clock=clock, stop_grace_seconds=0.5)
    second = DingTalkAdapter(settings.dingtalk, clock=clock, stop_grace_seconds=0.5)
    app_one = App(settings, clock=clock, adapter=first, engine=engine)
    app_two = App(settings, clock=clock, adapter=second, engine=other)
    bind_person(engine, clock, "张伟", staff_id=ADMIN, roles=(Role.admin,))
    await first.start(app_one.handle)
    await second.start(app_two.handle)
    try:
        async with serving(first) as url_one, serving(second) as url_two:
            captured = fake.callback_headers()
            genuine = fake.bot_message("/whoami", staff_id=ADMIN, nick="张伟")
            assert (await post(url_one, genuine, captured)).status_code == 200
            await eventually(lambda: processed(engine, genuine["msgId"]), step=app_one.drain,
                             what="the genuine message on worker one")

            assert (await post(url_two, attack_body(fake), captured)).status_code == 403
            assert not second._background
            await app_two.drain()
            assert not processed(engine, "msg-forged-1")
            assert people_named(engine, "赵六") == 0

            clock.advance(timedelta(milliseconds=1))
            fresh = fake.bot_message("/help", staff_id=ADMIN, nick="张伟")
            assert (await post(url_two, fresh, fake.callback_headers())).status_code == 200
            await eventually(lambda: processed(engine, fresh["msgId"]), step=app_two.drain,
                             what="a fresh pair on worker two")
    finally:
        await first.stop()
        await second.stop()
        if other is not engine:
            other.dispose()


def test_one_use_keys_are_kept_for_their_window_then_cleaned(engine: Engine,
                                                             clock: FakeClock) -> None:
    scope, keep = one_use.scope_for("dingtalk"), timedelta(hours=2)

    def claim(key: str) -> bool:
        return one_use.claim(engine, scope=scope, key=key, now=clock.now(), keep=keep)

    assert claim("1700000000000:abc") and not claim("1700000000000:abc")
    assert claim("1700000000001:abc")
    # A real update id of the same text is a different key space.
    with Session(engine) as session:
        session.add(ProcessedUpdate(platform="dingtalk", update_id="1700000000002:abc",
                                    received_at=clock.now()))
        session.commit()
    assert claim("1700000000002:abc")
    clock.advance(keep - timedelta(seconds=1))
    assert not claim("1700000000000:abc")
    clock.advance(timedelta(seconds=2))
    assert claim("later")  # deletes every expired key of the scope …
    with Session(engine) as session:
        keys = session.exec(select(ProcessedUpdate.update_id).where(
            ProcessedUpdate.platform == scope)).all()
    assert sorted(keys) == ["later"]
    assert claim("1700000000000:abc")  # … which is stale by then anyway
    assert processed(engine, "1700000000002:abc")  # the update ledger is untouched


# ------------------------------------------------------------------ session webhooks


@pytest.mark.parametrize("webhook", [
    "http://evil.example/",
    "https://oapi.dingtalk.com.evil.example/robot/sendBySession?session=s1",
    "http://oapi.dingtalk.com/robot/sendBySession?session=s1",
    "https://oapi.dingtalk.com@evil.example/robot/sendBySession?session=s1",
    "https://evil.example@oapi.dingtalk.com/robot/sendBySession?session=s1",
    "https://oapi.dingtalk.com:8443/robot/sendBySession?session=s1",
    "ftp://oapi.dingtalk.com/robot",
])
async def test_a_session_webhook_off_dingtalk_is_never_used(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock, caplog: pytest.LogCaptureFixture, webhook: str) -> None:
    app, adapter, url = callback_app
    bind_person(engine, clock)
    caplog.set_level(logging.WARNING, logger="dutybot.dingtalk")
    data = fake.bot_message("/whoami", staff_id="staff001")
    data["sessionWebhook"] = webhook
    assert (await post(url, data, fake.callback_headers())).status_code == 200
    await eventually(lambda: bool(fake.oto_sent), step=app.drain,
                     what="the reply through the robot API")
    assert "值班员" in fake.oto_sent[0]["msgParam"]["content"]
    assert fake.oto_sent[0]["user"] == "staff001"
    assert fake.session_sent == []
    assert adapter.sessions.live("staff001", fake.now_ms()) is None
    assert "ignored the sessionWebhook" in caplog.text


def test_trusted_session_webhooks() -> None:
    api = "https://api.dingtalk.com"
    for good in ("https://oapi.dingtalk.com/robot/sendBySession?session=1",
                 "https://OAPI.dingtalk.com:443/robot/sendBySession?session=1",
                 "https://api.dingtalk.com/v1.0/robot/x"):
        assert trusted_webhook(good, api_base=api), good
    for bad in ("http://evil.example/", "https://oapi.dingtalk.com.evil.example/",
                "https://evil.example/?https://oapi.dingtalk.com/", "//oapi.dingtalk.com/x",
                "https://oapi.dingtalk.com:99999/", "https://[::1/", "", "robot/sendBySession"):
        assert not trusted_webhook(bad, api_base=api), bad
    # The configured API root's own origin is trusted (a private deployment, a test fake).
    local = "http://127.0.0.1:8089"
    assert trusted_webhook("http://127.0.0.1:8089/robot/sendBySession?session=1", api_base=local)
    assert not trusted_webhook("http://127.0.0.1:8090/robot/sendBySession", api_base=local)
    assert not trusted_webhook("https://127.0.0.1:8089/robot/sendBySession", api_base=local)


async def test_a_callback_not_stored_is_answered_500_and_its_retry_handled_once(
        callback_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store first, answer after (issue 16 item 6): a full disk refuses the message's
    commit; DingTalk gets 500 and its retry of the same request is handled once."""
    from tests.bot.test_store_failure import fail_commits
    app, _, url = callback_app
    bind_person(engine, clock)
    captured = fake.callback_headers()
    message = fake.bot_message("/whoami")
    fail_commits(monkeypatch)
    assert (await post(url, message, captured)).status_code == 500
    await app.drain()
    assert (await post(url, message, captured)).status_code == 200
    await app.drain()
    assert (await post(url, message, captured)).status_code == 200   # once more: ignored
    await app.drain()
    answers = texts(fake.session_sent, "staff001")
    assert sum("未能保存" in t for t in answers) == 1
    assert sum(t.startswith("姓名：王芳") for t in answers) == 1
