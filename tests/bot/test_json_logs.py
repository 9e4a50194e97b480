"""Logs an operator can search (issue 19 item 2): one JSON object per line
(``--log-format json`` or ``[logging] format``), the update or request id carried into each
line, and secrets and phone numbers masked in every field — message, traceback, library
lines and extra fields — by the one filter (bot/logs.py). Each adapter's error paths are
driven for real against its fake platform on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import logs
from bot.adapters.dingtalk import DingTalkAdapter
from bot.adapters.memory import MemoryAdapter
from bot.adapters.redact import FILTER
from bot.adapters.telegram import TelegramAdapter
from bot.adapters.wecom import WeComAdapter
from bot.app import App
from bot.config import load_settings
from bot.ratelimit import RateLimiter
from core.clock import FakeClock
from core.db import session_scope
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from people.models import ChatIdentity, Role
from tests.factories import make_person
from tests.fakes.fake_dingtalk import FakeDingTalk
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.fake_wecom import FakeWeComApi
from tests.fakes.serve import serve_asgi
from tests.io_wait import eventually
from tests.log_capture import root_handler_at_debug

TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
PHONE, PHONE_MASKED = "13812345678", "138****5678"
WANG = 1001
cli_main = importlib.import_module("bot.cli.main")   # bot.cli exports main() under that name


class JsonLines:
    """What a service writes to stderr with ``--log-format json``, one record a line."""

    def __init__(self) -> None:
        self.out = io.StringIO()

    @property
    def text(self) -> str:
        return self.out.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line, parsed (a line that is not one JSON object fails the test)."""
        found = []
        for line in self.text.splitlines():
            record = json.loads(line)
            assert isinstance(record, dict)
            assert {"time", "level", "logger", "message", "update_id", "request_id"} <= set(record)
            found.append(record)
        return found

    def having(self, words: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if words in r["message"]]

    def assert_clean(self, *secrets: str) -> None:
        """No secret and no whole phone number anywhere, in any field."""
        self.records()
        for secret in (*secrets, PHONE):
            assert secret not in self.text, secret


@pytest.fixture
def json_log() -> Iterator[JsonLines]:
    """The JSON formatter on a root handler, everything at DEBUG (the libraries' request
    lines included, as with ``--debug``)."""
    lines = JsonLines()
    handler = logging.StreamHandler(lines.out)
    handler.setFormatter(logs.formatter("json"))
    with root_handler_at_debug(handler):
        yield lines



def row(engine: Engine, key: str) -> OutboxMessage:
    with Session(engine) as session:
        return session.exec(select(OutboxMessage).where(OutboxMessage.event_key == key)).one()


def queue_for(engine: Engine, clock: FakeClock, platform: str, external_id: str,
              key: str) -> None:
    with session_scope(engine) as session:
        ident = session.exec(select(ChatIdentity).where(ChatIdentity.platform == platform,
                                                        ChatIdentity.external_id == external_id)).one()
        enqueue(session=session, message=Outbound("【事件提醒】请处理", person_id=ident.person_id),
                now=clock.now(), event_key=key)


# ---------------------------------------------------------------- Telegram

async def test_a_failed_telegram_call_logs_json_without_the_token(json_log: JsonLines, engine: Engine,
                                                                  clock: FakeClock) -> None:
    """The bot runs (``App.run``, polling) against the fake Bot API; a getUpdates and a
    sendMessage fail with answers that quote the token's URL and a phone number; an
    unbound person writes in."""
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), platform="telegram",
                    external_id=str(WANG))
        session.commit()
    fake = FakeBotApi(TOKEN)
    echo = f"Bad Gateway: upstream https://api.telegram.org/bot{TOKEN}/sendMessage, 值班电话 {PHONE}"
    async with serve_asgi(fake.app) as url:
        settings = load_settings(None, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN,
                                            "DUTYBOT_TELEGRAM_BASE_URL": url,
                                            "DUTYBOT_TELEGRAM_POLL_TIMEOUT": "1"})
        with logs.installed(settings):
            adapter = TelegramAdapter(settings.telegram, retry_base_seconds=0.05)
            app = App(settings, clock=clock, adapter=adapter, engine=engine)
            app.sender.limiter = RateLimiter(())
            fake.fail_next("getUpdates", status=502, description=echo)
            fake.fail_next("sendMessage", WANG, status=502, description=echo)
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop))
            try:
                await eventually(lambda: app.running)
                queue_for(engine, clock, "telegram", str(WANG), "tg:1")
                app.sender.wake()
                await eventually(lambda: row(engine, "tg:1").attempts == 1)
                await eventually(lambda: json_log.having("getUpdates failed"))
                fake.push_message(555, 555, f"你好，我的手机 {PHONE}", first_name="新同事")
                await eventually(lambda: fake.sent_to(555))
            finally:
                stop.set()
                fake.close()
                await asyncio.wait_for(task, timeout=10)
    json_log.assert_clean(TOKEN, TOKEN.split(":")[1])
    [failed] = [r for r in json_log.having("failed (attempt 1 of") if r["logger"] == "dutybot.outbox"]
    assert failed["level"] == "WARNING"
    assert "/bot***/sendMessage" in failed["message"] and PHONE_MASKED in failed["message"]
    [polled] = json_log.having("getUpdates failed")
    assert polled["logger"] == "bot.adapters.telegram" and "/bot***/" in polled["message"]
    # The unbound person's line carries the update it was handling.
    [unbound] = json_log.having("unbound user")
    assert re.fullmatch(r"telegram:\d+", unbound["update_id"])
    assert row(engine, "tg:1").status == OutboxStatus.pending   # retried later, never only logged


# ---------------------------------------------------------------- WeCom

async def test_a_wecom_error_url_with_its_access_token_is_masked(json_log: JsonLines,
                                                                engine: Engine,
                                                                clock: FakeClock) -> None:
    fake = FakeWeComApi(corp_id="ww-corp-1", secret="wecom-app-s3cret", time_source=clock.now)
    async with serve_asgi(fake.app) as url, httpx.AsyncClient(timeout=10) as http:
        settings = load_settings(None, env={
            "DUTYBOT_WECOM_CORP_ID": "ww-corp-1", "DUTYBOT_WECOM_AGENT_ID": "1000002",
            "DUTYBOT_WECOM_SECRET": "wecom-app-s3cret", "DUTYBOT_WECOM_TOKEN": "cbToken123",
            "DUTYBOT_WECOM_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "DUTYBOT_WECOM_API_BASE": url})
        with Session(engine) as session:
            make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), platform="wecom",
                        external_id="wangfang")
            session.commit()
        with logs.installed(settings):
            app = App(settings, clock=clock, adapter=WeComAdapter(settings.wecom, clock=clock, http=http),
                      engine=engine)
            queue_for(engine, clock, "wecom", "wangfang", "wc:1")
            fake.fail_next("/cgi-bin/message/send", status=500)
            await app.drain()
    issued = list(fake._tokens)
    assert issued, "the adapter fetched an access token"
    json_log.assert_clean("wecom-app-s3cret", *issued)
    [request] = [r for r in json_log.having("/cgi-bin/message/send?") if r["logger"] == "httpx"]
    assert "access_token=***" in request["message"] and "500" in request["message"]
    assert not re.search(r"access_token=(?!\*\*\*)", json_log.text)
    assert json_log.having("failed (attempt 1 of")
    assert row(engine, "wc:1").status == OutboxStatus.pending


# ---------------------------------------------------------------- DingTalk

async def test_a_dingtalk_error_quoting_the_app_secret_is_masked(json_log: JsonLines,
                                                                engine: Engine,
                                                                clock: FakeClock) -> None:
    secret = "dingAppSecret-0ZyX9wvu"
    fake = FakeDingTalk(client_id="dingclient001", client_secret=secret, robot_code="dingrobot001",
                        time_source=clock.now)
    async with serve_asgi(fake.app) as url:
        fake.base_url = url
        settings = load_settings(None, env={
            "DUTYBOT_DINGTALK_MODE": "stream", "DUTYBOT_DINGTALK_CLIENT_ID": "dingclient001",
            "DUTYBOT_DINGTALK_CLIENT_SECRET": secret, "DUTYBOT_DINGTALK_ROBOT_CODE": "dingrobot001",
            "DUTYBOT_DINGTALK_API_BASE": url})
        with Session(engine) as session:
            make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), platform="dingtalk",
                        external_id="staff001")
            session.commit()
        with logs.installed(settings):
            adapter = DingTalkAdapter(settings.dingtalk, clock=clock)
            app = App(settings, clock=clock, adapter=adapter, engine=engine)
            queue_for(engine, clock, "dingtalk", "staff001", "dt:1")
            fake.fail_next("/v1.0/oauth2/accessToken", status=400, code="invalidClientSecret",
                           message=f"clientSecret {secret} is invalid, contact {PHONE}")
            try:
                await app.drain()
            finally:
                await adapter.stop()
    json_log.assert_clean(secret)
    [dead] = json_log.having("is dead after 1 attempt(s)")
    assert "credentials refused" in dead["message"] and "clientSecret ***" in dead["message"]
    assert PHONE_MASKED in dead["message"]
    assert row(engine, "dt:1").status == OutboxStatus.dead


# ---------------------------------------------------------------- every field

def test_tracebacks_stacks_and_extra_fields_are_masked_too(json_log: JsonLines) -> None:
    """python-json-logger formats the traceback itself and writes extra fields the
    filter never sees: the JSON line is masked field by field."""
    with logs.installed(load_settings(None, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN})):
        try:
            raise RuntimeError(f"connect to https://api.telegram.org/bot{TOKEN}/getMe, {PHONE}")
        except RuntimeError as exc:
            logging.getLogger("bot.adapters.telegram").exception(
                "start failed", extra={"url": f"https://h/bot{TOKEN}/x", "caller": {"phone": PHONE},
                                       "error": exc, "secret_half": [TOKEN.split(":")[1]]})
        logging.getLogger("bot").warning("stack", stack_info=True)
    json_log.assert_clean(TOKEN, TOKEN.split(":")[1])
    [failed] = json_log.having("start failed")
    assert "Traceback" in failed["exc_info"] and "RuntimeError" in failed["exc_info"]
    assert failed["url"] == "https://h/bot***/x" and failed["caller"] == {"phone": PHONE_MASKED}
    assert failed["secret_half"] == ["***"] and "***" in failed["error"]
    assert json_log.having("stack")[0]["stack_info"]


async def test_an_http_request_carries_its_request_id(json_log: JsonLines, engine: Engine,
                                                      clock: FakeClock) -> None:
    """The id a monitor sends (or a new one) comes back in the answer and is on the log
    line written while the request was handled."""
    app = App(load_settings(None, env={}), clock=clock, adapter=MemoryAdapter(), engine=engine)
    with logs.installed(None):
        await app.start_http()
        assert app.http is not None
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                mine = await client.get(f"http://127.0.0.1:{app.http.port}/readyz",
                                        headers={"X-Request-ID": "probe-42"})
                other = await client.get(f"http://127.0.0.1:{app.http.port}/healthz")
        finally:
            await app.stop_http()
    assert mine.status_code == 503 and mine.json()["failing"] == ["scheduler"]   # never ticked
    assert mine.headers["x-request-id"] == "probe-42"
    assert re.fullmatch(r"[0-9a-f]{16}", other.headers["x-request-id"])
    [line] = json_log.having("not ready: scheduler")
    assert line["request_id"] == "probe-42" and line["update_id"] is None


# ---------------------------------------------------------------- the command line

@contextlib.contextmanager
def bare_root() -> Iterator[None]:
    """The root logger as in a fresh ``dutybot`` process (no handler yet: the test
    runner's are set aside meanwhile)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = []
    try:
        yield
    finally:
        root.handlers = saved
        root.setLevel(level)


def broken_command(args: object) -> int:
    logging.getLogger("bot.adapters.telegram").warning("polling https://api.telegram.org/bot%s/",
                                                       TOKEN)
    raise RuntimeError(f"unexpected, phone {PHONE}")


@pytest.mark.parametrize("how", ["flag", "config"])
def test_dutybot_writes_json_lines_when_asked(how: str, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_main, "cmd_due", broken_command)
    argv = ["--debug", "due", "2026-11-02", "--workdays", "1"]
    if how == "flag":
        argv = ["--log-format", "json", *argv]
    else:
        monkeypatch.setenv("DUTYBOT_LOGGING_FORMAT", "json")
    with bare_root():
        assert cli_main.main(argv) == 1
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines()]
    assert [r["level"] for r in records] == ["WARNING", "ERROR"]
    assert records[0]["logger"] == "bot.adapters.telegram" and "/bot***/" in records[0]["message"]
    assert "unexpected error" in records[1]["message"] and PHONE_MASKED in records[1]["exc_info"]
    assert TOKEN.split(":")[1] not in err and PHONE not in err
    assert FILTER.secrets == frozenset()


def test_text_stays_the_default(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_main, "cmd_due", broken_command)
    with bare_root():
        assert cli_main.main(["--debug", "due", "2026-11-02", "--workdays", "1"]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING bot.adapters.telegram: "
                    r"polling https://api.telegram.org/bot\*\*\*/$", first), first
