"""``POST /alerts/{source}`` through the real Starlette app (bot.alerts_http): Alertmanager,
Uptime Kuma and the generic shape open and resolve incidents; a refused request stores
nothing; a storage failure answers 500 and the retry stores once. The clock is a
FakeClock; nothing sleeps."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter
from bot.alerts_http import alert_routes, authorized, instant
from bot.app import App
from bot.config import load_settings
from bot.http import MAX_BODY_BYTES, HttpService
from core import audit
from core.clock import FakeClock
from core.errors import ConfigError
from core.outbox import OutboxMessage
from incidents.alert_models import AlertState, IncidentAlert
from incidents.models import Incident
from people.models import Role
from tests.factories import make_person

URL = "https://www.example.gov.cn/"
TOKENS = {"prom": "prom-7f3c9a1e5b2d4c68", "kuma": "kuma-0d9e8f7a6b5c4d3e", "plain": "plain-a1b2c3d4e5f60718"}
CONFIG = f"""
[alerts.sources.prom]
token = "{TOKENS['prom']}"
kind = "alertmanager"
incident_type = "无法访问"
unit = "区政府办"

[alerts.sources.kuma]
token = "{TOKENS['kuma']}"
kind = "uptime_kuma"
incident_type = "site_down"
unit = "区政府办"
grade = "重大"

[alerts.sources.plain]
token = "{TOKENS['plain']}"
kind = "generic"
incident_type = "篡改"
unit = "区政府办"
site = "区政府门户网站"
"""


@dataclass
class Rig:
    app: App
    adapter: MemoryAdapter
    client: httpx.AsyncClient
    engine: Engine
    clock: FakeClock

    async def post(self, source: str, body: object, *, token: str | None = None,
                   raw: bytes | None = None) -> httpx.Response:
        given = TOKENS.get(source, "x" * 20) if token is None else token
        headers = {"Authorization": f"Bearer {given}"} if given else {}
        content = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
        return await self.client.post(f"/alerts/{source}", content=content,
                                      headers={**headers, "Content-Type": "application/json"})

    def told(self, name: str) -> list[str]:
        return [d.text for d in self.adapter.delivered if d.chat_id == f"u-{name}"]


def settings_at(tmp_path: Path, extra: str = "") -> Any:
    path = tmp_path / "dutybot.toml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return load_settings(path, env={})


@pytest.fixture
async def rig(engine: Engine, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Rig]:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        make_person(session, "李强", roles=(Role.leader,), now=clock.now())
        make_person(session, "张伟", roles=(Role.admin,), now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    app = App(settings_at(tmp_path), clock=clock, adapter=adapter, engine=engine)
    service = HttpService(host="127.0.0.1", port=0, routes=alert_routes(app), health=app.health)
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dutybot.test") as client:
        yield Rig(app, adapter, client, engine, clock)


def am_alert(status: str, *, fingerprint: str = "5ef6c8a1d2b3c4e5", ends: str = "0001-01-01T00:00:00Z",
             name: str = "SiteDown") -> dict[str, Any]:
    """One alert as Alertmanager's webhook_config posts it."""
    return {"status": status,
            "labels": {"alertname": name, "instance": URL, "job": "blackbox", "severity": "critical"},
            "annotations": {"summary": "区政府门户网站无法访问", "description": "探测失败已持续 5 分钟"},
            "startsAt": "2026-11-23T00:55:00.123456789Z", "endsAt": ends,
            "generatorURL": "http://prometheus:9090/graph?g0.expr=probe_success+%3D%3D+0", "fingerprint": fingerprint}


def alertmanager(*alerts: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager webhook notification (payload version 4)."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {"version": "4", "groupKey": '{}:{alertname="SiteDown"}', "truncatedAlerts": 0,
            "status": "firing" if firing else "resolved", "receiver": "dutybot",
            "groupLabels": {"alertname": "SiteDown"}, "commonLabels": {"alertname": "SiteDown"},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}


def kuma(status: int | None, *, time: str = "2026-11-23 01:00:00.527") -> dict[str, Any]:
    """An Uptime Kuma webhook notification (JSON); ``None``: its 测试 message."""
    if status is None:
        return {"heartbeat": None, "monitor": None, "msg": "Uptime Kuma Webhook Testing"}
    word = {0: "Down", 1: "Up", 2: "Pending"}[status]
    return {"heartbeat": {"monitorID": 7, "status": status, "time": time, "msg": "timeout of 48000ms exceeded",
                          "important": True, "duration": 60, "timezone": "Asia/Shanghai",
                          "timezoneOffset": "+08:00", "localDateTime": "2026-11-23 09:00:00"},
            "monitor": {"id": 7, "name": "区政府门户网站", "url": URL, "type": "http", "hostname": None},
            "msg": f"[区政府门户网站] [{'🔴' if status == 0 else '✅'} {word}] timeout of 48000ms exceeded"}


def stored(engine: Engine) -> tuple[list[Incident], list[IncidentAlert], int]:
    with Session(engine) as session:
        return (list(session.exec(select(Incident).order_by(col(Incident.id)))),
                list(session.exec(select(IncidentAlert).order_by(col(IncidentAlert.id)))), len(session.exec(select(OutboxMessage)).all()))


def timeline(engine: Engine, number: str) -> list[str]:
    with Session(engine) as session:
        return [str(e.details().get("zh")) for e in audit.history(session=session, entity_type="incident",
                                                                  entity_id=number)]


async def test_an_alertmanager_firing_and_resolved_pair_opens_one_incident_and_records_the_resolution(
        rig: Rig) -> None:
    answer = await rig.post("prom", alertmanager(am_alert("firing")))
    assert answer.status_code == 200
    [result] = answer.json()["alerts"]
    assert result["outcome"] == "opened"
    number = result["incident"]
    await rig.app.drain()
    # The people on duty are told as for any new incident.
    [new] = [m for m in rig.told("王芳") if m.startswith("【新事件】")]
    assert number in new and "区政府门户网站无法访问" in new

    rig.clock.advance(timedelta(minutes=25))
    answer = await rig.post("prom", alertmanager(am_alert("resolved", ends="2026-11-23T01:20:00.5Z")))
    assert answer.status_code == 200 and answer.json()["alerts"][0]["outcome"] == "resolved"
    incidents, alerts, _ = stored(rig.engine)
    assert [i.number for i in incidents] == [number] and incidents[0].is_open
    assert alerts[0].state == AlertState.resolved
    assert "告警已恢复（11月23日 09:20，来源：prom）：区政府门户网站无法访问" in timeline(rig.engine, number)
    await rig.app.drain()
    assert rig.told("王芳")[-1].startswith(f"【告警恢复】{number}")


async def test_a_repeated_firing_opens_no_second_incident(rig: Rig) -> None:
    first = await rig.post("prom", alertmanager(am_alert("firing")))
    await rig.app.drain()
    before = len(rig.adapter.delivered)
    rig.clock.advance(timedelta(hours=4))
    # The group changed: the same alert again, beside another alert about the same address.
    again = await rig.post("prom", alertmanager(am_alert("firing"), am_alert("firing", fingerprint="9a8b7c6d",
                                                                             name="SlowSite")))
    assert [a["outcome"] for a in again.json()["alerts"]] == ["repeated", "joined"]
    number = first.json()["alerts"][0]["incident"]
    assert [a["incident"] for a in again.json()["alerts"]] == [number, number]
    incidents, alerts, _ = stored(rig.engine)
    assert [i.number for i in incidents] == [number] and len(alerts) == 2
    assert alerts[0].last_seen == rig.clock.now()
    await rig.app.drain()
    assert not any(d.text.startswith("【新事件】") for d in rig.adapter.delivered[before:])


async def test_uptime_kuma_down_and_up(rig: Rig) -> None:
    test = await rig.post("kuma", kuma(None))
    assert test.status_code == 200 and test.json() == {"received": 0, "alerts": []}
    down = await rig.post("kuma", kuma(0))
    assert down.json()["alerts"][0]["outcome"] == "opened"
    pending = await rig.post("kuma", kuma(2))
    assert pending.json()["received"] == 0
    [incident], [alert], _ = stored(rig.engine)
    assert (incident.grade, incident.url, alert.fingerprint) == ("major", URL, "monitor:7")
    assert incident.description.startswith("告警（kuma）：区政府门户网站：监测报告无法访问｜timeout of 48000ms")
    rig.clock.advance(timedelta(minutes=30))
    up = await rig.post("kuma", kuma(1, time="2026-11-23 01:20:00.100"))   # Uptime Kuma's time is UTC
    assert up.json()["alerts"][0]["outcome"] == "resolved"
    assert any(t.startswith("告警已恢复（11月23日 09:20，来源：kuma）") for t in timeline(rig.engine, incident.number))
    await rig.app.drain()
    told = rig.told("王芳")
    assert told[0].startswith("【新事件】") and told[-1].startswith(f"【告警恢复】{incident.number}")
    assert any(m.startswith("【事件报告·带班领导】") for m in rig.told("李强"))   # 重大: the leader at once


async def test_the_generic_shape(rig: Rig) -> None:
    alert = {"fingerprint": "homepage-hash", "status": "firing", "title": "首页内容与基线不一致",
             "detail": "哈希变化，新增外部脚本 1 个", "url": URL, "at": "2026-11-23T08:58:00+08:00"}
    opened = await rig.post("plain", alert)
    assert opened.status_code == 200 and opened.json()["alerts"][0]["outcome"] == "opened"
    [incident], _, _ = stored(rig.engine)
    assert (incident.type, incident.unit) == ("tamper", "区政府办")
    resolved = await rig.post("plain", {"fingerprint": "homepage-hash", "status": "resolved", "title": "首页已恢复"})
    assert resolved.json()["alerts"][0] == {"fingerprint": "homepage-hash", "outcome": "resolved",
                                           "incident": incident.number}
    for bad in ({"fingerprint": "x", "status": "firing"},                       # no title
                {"fingerprint": "", "status": "firing", "title": "t"},          # empty fingerprint
                {"fingerprint": "x", "status": "down", "title": "t"},           # unknown status
                {"fingerprint": "x", "status": "firing", "title": "t", "url": "ftp://a"},
                {"fingerprint": "x", "status": "firing", "title": "t", "at": "2026-11-23 09:00"},   # no offset
                ["not", "an", "object"]):
        answer = await rig.post("plain", bad)
        assert answer.status_code == 400, bad
    assert len(stored(rig.engine)[0]) == 1


async def test_refused_requests_store_nothing(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    firing = alertmanager(am_alert("firing"))
    for token in ("", "wrong-token-0123456789", TOKENS["kuma"], TOKENS["prom"] + "x", TOKENS["prom"][:-1]):
        answer = await rig.post("prom", firing, token=token)
        assert (answer.status_code, answer.content) == (401, b""), token
    basic = await rig.client.post("/alerts/prom", json=firing, headers={"Authorization": f"Basic {TOKENS['prom']}"})
    assert basic.status_code == 401
    assert (await rig.post("grafana", firing)).status_code == 404
    assert (await rig.post("prom", None, raw=b'{"version": "4", "alerts": [')).status_code == 400
    assert (await rig.post("prom", None, raw=b"\xff\xfe\x00garbage")).status_code == 400
    assert (await rig.post("prom", None, raw=b"[" * 100_000)).status_code == 400
    assert (await rig.post("prom", {**firing, "version": "3"})).status_code == 400
    assert (await rig.post("prom", alertmanager({**am_alert("firing"), "status": "pending"}))).status_code == 400
    assert (await rig.post("kuma", {"heartbeat": {"status": "down"}, "monitor": {"id": 7}})).status_code == 400
    many = alertmanager(*(am_alert("firing", fingerprint=f"fp{n}") for n in range(501)))
    assert (await rig.post("prom", many)).status_code == 400
    huge = await rig.post("prom", None, raw=b" " * (MAX_BODY_BYTES + 1))
    assert huge.status_code == 413
    assert stored(rig.engine) == ([], [], 0)
    assert "refused alerts for source prom: missing or wrong token" in caplog.text
    assert not any(token in caplog.text for token in TOKENS.values())
    assert "wrong-token-0123456789" not in caplog.text


async def test_a_storage_failure_answers_500_and_the_retry_stores_once(rig: Rig) -> None:
    refuse = {
        "sqlite": ["CREATE TRIGGER refuse_alert BEFORE INSERT ON incident_alert "
                   "BEGIN SELECT RAISE(ABORT, 'disk full'); END"],
        "postgresql": ["CREATE FUNCTION refuse_alert() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; "
                       "END $$ LANGUAGE plpgsql",
                       "CREATE TRIGGER refuse_alert BEFORE INSERT ON incident_alert "
                       "FOR EACH ROW EXECUTE FUNCTION refuse_alert()"],
    }[rig.engine.dialect.name]
    with rig.engine.begin() as conn:
        for statement in refuse:
            conn.execute(text(statement))
    failed = await rig.post("prom", alertmanager(am_alert("firing")))
    assert failed.status_code == 500 and "error_id" in failed.json()
    # The incident, its steps and its messages were written before the alert row: all rolled back.
    assert stored(rig.engine) == ([], [], 0)
    with rig.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_alert" + (" ON incident_alert" if
                                                          rig.engine.dialect.name == "postgresql" else "")))
    retried = await rig.post("prom", alertmanager(am_alert("firing")))
    assert retried.status_code == 200 and retried.json()["alerts"][0]["outcome"] == "opened"
    assert len(stored(rig.engine)[0]) == 1
    await rig.app.drain()
    assert len([m for m in rig.told("王芳") if m.startswith("【新事件】")]) == 1


async def test_the_running_app_serves_alerts_beside_everything_else(engine: Engine, clock: FakeClock,
                                                                     tmp_path: Path) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        session.commit()
    settings = settings_at(tmp_path, "\n[http]\nport = 0\n")
    adapter = MemoryAdapter()
    app = App(settings, clock=clock, adapter=adapter, engine=engine)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        async with asyncio.timeout(10):
            while not app.running:
                await asyncio.sleep(0.01)   # a bounded wait for the start, on real I/O
        assert app.http is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http.port}") as client:
            answer = await client.post("/alerts/plain", json={"fingerprint": "f", "status": "firing", "title": "首页被篡改"},
                                       headers={"Authorization": f"Bearer {TOKENS['plain']}"})
        assert answer.status_code == 200 and answer.json()["alerts"][0]["outcome"] == "opened"
        async with asyncio.timeout(10):
            while not any(d.chat_id == "u-王芳" for d in adapter.delivered):
                await asyncio.sleep(0.01)   # the sender was woken by the commit
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


# ---- configuration and helpers ---------------------------------------------------------

@pytest.mark.parametrize(("extra", "problem"), [
    ('[alerts.sources.Prom2]\ntoken = "abcdefghijklmnop1"\n', "告警来源名称 Prom2 无效"),
    ('[alerts.sources.x]\ntoken = "short"\n', "令牌应为 16–256 个字符"),
    ('[alerts.sources.x]\ntoken = "abcdefghijklmnop1"\nincident_type = "停电"\n', "未知的事件类型"),
    ('[alerts.sources.x]\ntoken = "abcdefghijklmnop1"\ngrade = "紧急"\n', "未知的等级"),
    (f'[alerts.sources.x]\ntoken = "{TOKENS["prom"]}"\n', "每个告警来源应使用不同的令牌"),
    ('[alerts.sources.x]\nkind = "generic"\n', "alerts.sources.x.token：缺少必填项"),
])
def test_bad_alert_sources_are_config_errors(tmp_path: Path, extra: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        settings_at(tmp_path, "\n" + extra)


def test_a_grade_the_rule_profile_lacks_is_refused_at_start(engine: Engine, clock: FakeClock,
                                                              tmp_path: Path) -> None:
    settings = settings_at(tmp_path, '\n[rules]\nprofile = "guzhang"\n')
    settings.alerts.sources["kuma"].grade = "special"     # 古丈办法第十条 has no 特级
    app = App(settings, clock=clock, adapter=MemoryAdapter(), engine=engine)
    with pytest.raises(ConfigError, match=r"alerts\.sources\.kuma\.grade"):
        alert_routes(app)


def test_bearer_tokens_and_times() -> None:
    token = SecretStr("prom-7f3c9a1e5b2d4c68")
    assert authorized({"authorization": "Bearer prom-7f3c9a1e5b2d4c68"}, token)
    assert authorized({"authorization": "bearer  prom-7f3c9a1e5b2d4c68 "}, token)
    assert not authorized({"authorization": "prom-7f3c9a1e5b2d4c68"}, token)
    assert not authorized({}, token)
    assert instant("2026-11-23T01:20:00.123456789Z") == instant("2026-11-23T09:20:00.123456+08:00")
    assert instant("2026-11-23 01:20:00") is None
    assert instant("2026-11-23 01:20:00", naive_is_utc=True) == instant("2026-11-23T01:20:00Z")
    assert instant("yesterday") is None and instant(None) is None
