"""Health and metrics in every run mode (issue 19 item 1): ``/healthz``, ``/readyz`` and
``/metrics`` served by a running bot over real HTTP on loopback — with no callback route at
all (Telegram polling, the memory adapter), a database that goes away and comes back, a
clock moved past the readiness limits, and counters that move when messages go out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import re
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import Settings, load_settings
from bot.console_live import ConsoleMode
from bot.console_run import run_console
from bot.runner import run_adapter
from core.clock import FakeClock, parse_local
from core.db import make_engine, session_scope, upgrade
from core.errors import AdapterError, ConfigError
from core.messages import Outbound
from core.outbox import enqueue
from people.models import Role
from tests.conftest import PG_URL, WORKER
from tests.factories import make_person
from tests.fakes.fake_dingtalk import FakeDingTalk
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.serve import serve_asgi
from tests.io_wait import eventually

TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
Labels = tuple[tuple[str, str], ...]



def samples(exposition: str) -> dict[tuple[str, Labels], float]:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def memory_settings(**env: str) -> Settings:
    return load_settings(None, env={f"DUTYBOT_{k.upper()}": v for k, v in env.items()})


@dataclass
class Running:
    app: App
    adapter: MemoryAdapter
    base: str
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def running(engine: Engine, clock: FakeClock, settings: Settings | None = None
                  ) -> AsyncIterator[Running]:
    """The whole bot running for real (``App.run``) on the memory adapter, which has no
    HTTP route of its own."""
    adapter = MemoryAdapter()
    app = App(settings or memory_settings(), clock=clock, adapter=adapter, engine=engine)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    await eventually(lambda: app.running or task.done())
    assert app.http is not None
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            yield Running(app, adapter, f"http://127.0.0.1:{app.http.port}", client)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


# ---------------------------------------------------------------- the database goes away

class Relay:
    """A TCP relay on 127.0.0.1 in front of PostgreSQL that can be cut like a network
    outage. Threads, not the event loop: the bot's database calls block their thread,
    the event loop's included."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return   # closed
            if not self.up.is_set():
                client.close()   # the server is unreachable: the connection ends at once
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self.up.clear()
        with self._lock:
            dropped, self._open = self._open, []
        for end in dropped:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@dataclass
class Outage:
    engine: Engine          # what the bot uses
    cut: Callable[[], None]
    restore: Callable[[], None]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="DUTYBOT_TEST_DATABASE_URL not set"))])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    """A migrated database the test can take away and give back.

    SQLite: the database file is moved away (opened with ``mode=rw``, so nothing recreates
    it) and the pool's open handles are dropped with it; then moved back. PostgreSQL: the
    bot reaches the server through a relay that is cut (every connection dropped, new ones
    refused) and then let through again — nothing is done to the bot's engine.
    """
    if request.param == "sqlite":
        path, away = tmp_path / "live.db", tmp_path / "moved-away.db"
        direct = make_engine(f"sqlite:///{path}")
        upgrade(direct)
        direct.dispose()
        engine = make_engine(f"sqlite:///file:{path}?mode=rw&uri=true")

        def cut() -> None:
            path.rename(away)
            engine.dispose()

        yield Outage(engine, cut, lambda: away.rename(path))
        engine.dispose()
        return
    assert PG_URL
    url = make_url(PG_URL)
    admin = make_engine(PG_URL)
    schema = f"t_{WORKER}_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    direct = make_engine(PG_URL, search_path=schema)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(url.set(host="127.0.0.1", port=relay.port).render_as_string(
        hide_password=False), search_path=schema)
    try:
        upgrade(direct)
        yield Outage(engine, relay.cut, relay.up.set)
    finally:
        engine.dispose()
        relay.close()
        direct.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


async def test_readyz_turns_503_when_the_database_goes_away_and_200_when_it_returns(
        outage: Outage, clock: FakeClock) -> None:
    async with running(outage.engine, clock) as bot:
        ready = await bot.http.get(bot.base + "/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ok" and ready.json()["failing"] == []

        outage.cut()
        down = await bot.http.get(bot.base + "/readyz")
        assert down.status_code == 503
        assert down.json()["status"] == "fail" and down.json()["failing"] == ["database"]
        assert down.json()["checks"]["database"]["ok"] is False
        alive = await bot.http.get(bot.base + "/healthz")     # liveness: the process answers
        assert alive.status_code == 200 and alive.json()["status"] == "ok"
        scraped = samples((await bot.http.get(bot.base + "/metrics")).text)
        assert scraped[("dutybot_database_up", ())] == 0
        assert ("process_cpu_seconds_total", ()) in scraped   # the rest is still there

        outage.restore()
        back = await bot.http.get(bot.base + "/readyz")
        assert back.status_code == 200, back.text
        assert back.json()["checks"]["database"] == {"ok": True}
        scraped = samples((await bot.http.get(bot.base + "/metrics")).text)
        assert scraped[("dutybot_database_up", ())] == 1


# ---------------------------------------------------------------- metrics

async def test_metrics_parse_and_the_sent_and_failed_counters_move(engine: Engine,
                                                                   clock: FakeClock) -> None:
    async with running(engine, clock) as bot:
        first = await bot.http.get(bot.base + "/metrics")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = samples(first.text)
        sent = ("dutybot_messages_sent_total", (("platform", "memory"),))
        failed = ("dutybot_messages_failed_total", (("platform", "memory"),))
        assert before.get(sent, 0) == 0 and before.get(failed, 0) == 0

        bot.adapter.fail_with.append(AdapterError("网络中断", retryable=True))
        with session_scope(engine) as session:
            for n in range(3):
                enqueue(session=session, message=Outbound(f"第{n + 1}条", chat_id=f"g-{n}"),
                        now=clock.now(), event_key=f"test:{n}", platform="memory")
        bot.app.sender.wake()
        await eventually(lambda: len(bot.adapter.delivered) == 2)
        after = samples((await bot.http.get(bot.base + "/metrics")).text)
        assert after[sent] == 2 and after[failed] == 1
        # The one that failed waits for its retry: a pending row in the outbox gauges.
        assert after[("dutybot_outbox_messages", (("platform", "memory"), ("status", "pending")))] == 1
        assert after[("dutybot_outbox_oldest_age_seconds",
                      (("platform", "memory"), ("status", "pending")))] == 0
        assert after[("dutybot_due_items_lag_seconds", ())] == 0
        assert after[("dutybot_reply_items_overdue", ())] == 0
        assert after[("dutybot_watch_probes_last_hour", (("result", "failed"),))] == 0
        assert after[("process_resident_memory_bytes", ())] > 0


async def test_escalations_and_open_incidents_are_counted(engine: Engine) -> None:
    clock = FakeClock(parse_local("2026-11-23T09:00"))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), unit="区政府办")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), unit="区政府办")
        make_person(session, "赵敏", roles=(Role.principal,), now=clock.now(), unit="区政府办")
        session.commit()
    adapter = MemoryAdapter()
    chat = MemoryChat(App(memory_settings(), clock=clock, adapter=adapter, engine=engine), adapter)
    await chat.send("/incident new 无法访问 https://a.example.gov.cn 打不开", as_="王芳")
    rung = ("dutybot_escalations_total", (("run", "ack"), ("rung", "1")))
    scraped = samples(chat.app.metrics.exposition().decode())
    assert scraped.get(rung, 0) == 0
    assert scraped[("dutybot_incidents_open", (("grade", "general"), ("type", "site_down")))] == 1
    # 15 minutes without an acknowledgement: the ladder tells the leader on duty.
    await chat.app.advance_to(parse_local("2026-11-23T09:16"))
    assert any("无人确认" in m for m in chat.messages("李强"))
    assert samples(chat.app.metrics.exposition().decode())[rung] == 1
    another = App(memory_settings(), clock=clock, adapter=MemoryAdapter(), engine=engine)
    assert samples(another.metrics.exposition().decode()).get(rung, 0) == 0   # per App


# ---------------------------------------------------------------- readiness, step by step

async def test_readiness_names_the_scheduler_the_outbox_and_the_platform(engine: Engine,
                                                                         clock: FakeClock) -> None:
    adapter = MemoryAdapter()
    app = App(memory_settings(), clock=clock, adapter=adapter, engine=engine)

    def failing() -> list[str]:
        ok, body = app.readiness()
        assert ok == (not body["failing"])
        return list(body["failing"])

    assert failing() == ["scheduler"]        # never ticked yet
    app.scheduler.tick()
    assert failing() == []
    clock.advance(timedelta(seconds=5 + 60 + 1))   # [bot] tick_seconds + the grace
    assert failing() == ["scheduler"]
    app.scheduler.tick()
    assert failing() == []

    with session_scope(engine) as session:
        enqueue(session=session, message=Outbound("值班提醒", chat_id="g-1"), now=clock.now(),
                event_key="test:old", platform="memory")
    clock.advance(timedelta(minutes=15, seconds=1))
    app.scheduler.tick()
    assert failing() == ["outbox"]
    assert app.readiness()[1]["checks"]["outbox"]["oldest_age_seconds"] == 901
    await app.drain()
    assert failing() == []

    adapter.fail_with.append(AdapterError("连接超时", retryable=True))
    with session_scope(engine) as session:
        enqueue(session=session, message=Outbound("又一条", chat_id="g-1"), now=clock.now(),
                event_key="test:unreached", platform="memory")
    await app.drain()
    assert failing() == []                   # unreachable for less than the grace
    clock.advance(timedelta(seconds=301))
    app.scheduler.tick()
    assert failing() == ["platform"]
    assert app.readiness()[1]["checks"]["platform"]["unreachable_for_seconds"] == 301
    await app.drain()                        # the retry is due by now, and goes through
    assert failing() == []
    assert app.readiness()[1]["checks"]["platform"]["last_reached_age_seconds"] == 0


# ---------------------------------------------------------------- every run mode

async def test_telegram_polling_serves_health_and_metrics_without_callback_routes() -> None:
    """``dutybot run --adapter telegram`` in polling mode: no webhook route, yet the HTTP
    service answers on the address it announces."""
    fake = FakeBotApi(TOKEN)
    async with serve_asgi(fake.app) as url:
        settings = load_settings(None, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN,
                                            "DUTYBOT_TELEGRAM_BASE_URL": url,
                                            "DUTYBOT_TELEGRAM_POLL_TIMEOUT": "1"})
        out, stop = io.StringIO(), asyncio.Event()
        task = asyncio.create_task(run_adapter(settings, "telegram", out=out, stop=stop))
        try:
            await eventually(lambda: "健康检查" in out.getvalue() or task.done())
            found = re.search(r"健康检查：(http://127\.0\.0\.1:\d+)/healthz", out.getvalue())
            assert found, out.getvalue()
            base = found.group(1)
            fake.push_message(555, 555, "/help", first_name="新同事")
            await eventually(lambda: fake.sent_to(555))
            async with httpx.AsyncClient(timeout=10) as client:
                live = await client.get(base + "/healthz")
                ready = await client.get(base + "/readyz")
                metrics = await client.get(base + "/metrics")
                webhook = await client.post(base + "/telegram/webhook", json={})
        finally:
            stop.set()
            fake.close()
            assert await asyncio.wait_for(task, timeout=10) == 0
    assert live.status_code == 200 and live.json() == {"status": "ok", "platform": "telegram"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["platform"]["name"] == "telegram"
    assert ready.json()["checks"]["platform"]["last_reached_age_seconds"] is not None
    assert samples(metrics.text)[("dutybot_messages_sent_total", (("platform", "telegram"),))] >= 1
    assert webhook.status_code == 404      # polling: no callback route
    assert "监控指标：" in out.getvalue()


async def test_dingtalk_stream_serves_health_and_metrics_without_callback_routes() -> None:
    """``dutybot run --adapter dingtalk`` in Stream mode: connected to the (fake) gateway
    over a WebSocket, no callback route, and the HTTP service answers."""
    fake = FakeDingTalk(client_id="dingclient001", client_secret="app-secret-7f3c",
                        robot_code="dingrobot001")
    async with serve_asgi(fake.app) as url:
        fake.base_url = url
        settings = load_settings(None, env={
            "DUTYBOT_DINGTALK_MODE": "stream", "DUTYBOT_DINGTALK_CLIENT_ID": "dingclient001",
            "DUTYBOT_DINGTALK_CLIENT_SECRET": "app-secret-7f3c",
            "DUTYBOT_DINGTALK_ROBOT_CODE": "dingrobot001", "DUTYBOT_DINGTALK_API_BASE": url})
        out, stop = io.StringIO(), asyncio.Event()
        task = asyncio.create_task(run_adapter(settings, "dingtalk", out=out, stop=stop))
        try:
            await eventually(lambda: "健康检查" in out.getvalue() or task.done())
            await eventually(lambda: fake.live_connections)
            found = re.search(r"健康检查：(http://127\.0\.0\.1:\d+)/healthz", out.getvalue())
            assert found, out.getvalue()
            async with httpx.AsyncClient(timeout=10) as client:
                ready = await client.get(found.group(1) + "/readyz")
                metrics = await client.get(found.group(1) + "/metrics")
                callback = await client.post(found.group(1) + "/dingtalk/callback", json={})
        finally:
            stop.set()
            assert await asyncio.wait_for(task, timeout=10) == 0
    assert "Stream 模式" in out.getvalue()
    assert ready.status_code == 200 and ready.json()["checks"]["platform"]["name"] == "dingtalk"
    assert samples(metrics.text)[("dutybot_database_up", ())] == 1
    assert callback.status_code == 404     # Stream: no callback route


async def test_the_console_service_serves_health_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dutybot run --adapter console`` at a terminal: while the prompt waits for a line,
    the HTTP service answers."""
    typed = threading.Event()

    def prompt(_: str = "") -> str:
        typed.wait(timeout=10)   # the operator types nothing, then Ctrl+D
        raise EOFError

    monkeypatch.setattr("builtins.input", prompt)
    out = io.StringIO()
    task = asyncio.create_task(run_console(memory_settings(), as_name=None, now_text=None,
                                           script=None, transcript=None, out=out,
                                           interactive=True, mode=ConsoleMode.service))
    try:
        await eventually(lambda: "值班机器人控制台" in out.getvalue() or task.done())
        found = re.search(r"健康检查：(http://127\.0\.0\.1:\d+)/healthz", out.getvalue())
        assert found, out.getvalue()
        async with httpx.AsyncClient(timeout=10) as client:
            live = await client.get(found.group(1) + "/healthz")
            metrics = await client.get(found.group(1) + "/metrics")
    finally:
        typed.set()
        assert await asyncio.wait_for(task, timeout=10) == 0
    assert live.status_code == 200 and live.json()["platform"] == "console"
    assert samples(metrics.text)[("dutybot_database_up", ())] == 1


async def test_http_can_be_turned_off_where_nothing_calls_back(engine: Engine,
                                                               clock: FakeClock) -> None:
    app = App(memory_settings(http_enabled="false"), clock=clock, adapter=MemoryAdapter(),
              engine=engine)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    await eventually(lambda: app.running)
    assert app.http is None
    # Started: what lives as long as the process is out of the collector's view (issue 21),
    # and back in it once the bot stops.
    assert gc.get_freeze_count() > 10_000
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert gc.get_freeze_count() == 0


@pytest.mark.configured_http_port
async def test_an_address_in_use_stops_the_start_with_a_chinese_line(engine: Engine,
                                                                      clock: FakeClock) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        app = App(memory_settings(http_port=str(port)), clock=clock, adapter=MemoryAdapter(),
                  engine=engine)
        with pytest.raises(ConfigError) as refused:
            await app.run(asyncio.Event())
    assert f"HTTP 服务无法在 127.0.0.1:{port} 上监听（地址已被占用）" in refused.value.message
    assert "[http] enabled = false" in refused.value.message
    assert app.http is None and not app.running
