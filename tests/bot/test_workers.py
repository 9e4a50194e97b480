"""Several workers on one database (issue 21 item 4): one leads — the cron jobs and the
single receiving connection are its — and when it dies a follower takes over; the work the
database hands out row by row is shared, and no ping is lost or doubled.

The drill at the end runs two real ``dutybot run --worker --adapter telegram`` processes
against the fake Bot API and kills the leader with SIGKILL half-way. It counts messages;
the waits are for real processes and I/O (:func:`tests.io_wait.eventually`), never for
time logic, which the unit tests above it move with a fake clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from bot.leader import Leadership, LeadershipLost
from bot.scheduler import Scheduler
from core.clock import SHANGHAI, FakeClock, SystemClock
from core.outbox import OutboxMessage, OutboxStatus
from core.schedule import DueItem, DueStatus
from incidents import escalation
from incidents.actions import open_incident
from incidents.models import IncidentType, Source
from people.models import ChatIdentity, Role
from roster.sites import add_site, validate
from tests.factories import make_person
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.serve import serve_asgi
from tests.io_wait import eventually
from watch import schedule as watch_schedule

ROOT = Path(__file__).resolve().parents[2]

# -- the lead ------------------------------------------------------------------------


def test_one_worker_leads_and_another_takes_over_once_it_is_gone(engine: Engine) -> None:
    first, second = Leadership(engine), Leadership(engine)
    assert first.try_lead() is True
    assert second.try_lead() is False and not second.is_leader
    assert first.try_lead() is True            # still holds it
    first.release()                            # the leader's process ends
    assert second.try_lead() is True and second.is_leader
    second.release()


def test_a_leader_whose_lock_connection_broke_stops(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a lock file cannot be lost while its process runs")
    leader = Leadership(engine)
    assert leader.try_lead()
    with engine.connect() as admin:   # the database ends the lock's session (a restart, a network cut)
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                           "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"))
    with pytest.raises(LeadershipLost) as lost:
        leader.try_lead()
    assert "失去了主进程" in lost.value.message and not leader.is_leader
    assert Leadership(engine).try_lead()       # free for a follower


def _two_schedulers(engine: Engine, clock: FakeClock) -> tuple[list[Scheduler], list[bool], list[str]]:
    ran: list[str] = []
    leads = [True, False]
    workers = []
    for n in (0, 1):
        sched = Scheduler(engine=engine, clock=clock, is_leader=lambda n=n: leads[n])  # type: ignore[misc]
        sched.register_cron("briefing", lambda s, fire, now, n=n: ran.append(f"briefing@{n}"), hour=8, minute=30)
        sched.register_cron("probe", lambda s, fire, now, n=n: ran.append(f"probe@{n}"), shared=True, minute="*/5")
        workers.append(sched)
    return workers, leads, ran


def test_only_the_leader_runs_the_cron_jobs_and_a_new_leader_runs_the_next_fire(engine: Engine) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI))
    (a, b), leads, ran = _two_schedulers(engine, clock)
    a.tick(), b.tick()                          # both jobs start counting
    clock.set(datetime(2026, 11, 23, 8, 31, tzinfo=SHANGHAI))
    b.tick(), a.tick()                          # the follower ticks first: it leaves the briefing
    assert ran.count("briefing@0") == 1 and "briefing@1" not in ran
    leads[:] = [False, True]                    # the leader died; the other took over
    clock.set(datetime(2026, 11, 24, 8, 31, tzinfo=SHANGHAI))
    a.tick(), b.tick()
    assert ran.count("briefing@1") == 1 and ran.count("briefing@0") == 1


def test_a_shared_job_runs_each_fire_on_every_worker_once(engine: Engine) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI))
    (a, b), _, ran = _two_schedulers(engine, clock)
    a.tick(), b.tick()
    clock.set(datetime(2026, 11, 23, 8, 6, tzinfo=SHANGHAI))
    a.tick(), b.tick(), a.tick(), b.tick()
    assert Counter(r for r in ran if r.startswith("probe")) == {"probe@0": 1, "probe@1": 1}


def test_each_site_is_checked_once_per_fire_however_many_workers_run(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with Session(engine) as session:
        for n in range(25):
            add_site(session=session, new=validate(f"网站{n}", "网站", f"https://s{n}.example.gov.cn", "区政府办"),
                     now=datetime(2026, 11, 1, tzinfo=SHANGHAI), actor="test")
        session.commit()
    checked: list[str] = []

    async def fake_run_checks(engine: Engine, *, sites: list[object], **kwargs: object) -> list[object]:
        checked.extend(s.name for s in sites)  # type: ignore[attr-defined]
        return []

    monkeypatch.setattr(watch_schedule, "run_checks", fake_run_checks)
    app = App(load_settings(None, env={}), clock=FakeClock(datetime(2026, 11, 23, 9, tzinfo=SHANGHAI)),
              adapter=MemoryAdapter(), engine=engine, worker=True)
    fire = datetime(2026, 11, 23, 9, 5, tzinfo=SHANGHAI)
    for _worker in range(3):   # three workers join the same fire
        with Session(engine) as session:
            watch_schedule.watch_job(session, fire, fire, check="availability", policy=None,  # type: ignore[arg-type]
                                     profile=None, fetcher=None, workflow=None, lexicon=None,  # type: ignore[arg-type]
                                     claim=app._claim_site)
    assert sorted(checked) == sorted(f"网站{n}" for n in range(25))
    with Session(engine) as session:   # the next fire is checked again
        watch_schedule.watch_job(session, fire + timedelta(minutes=5), fire, check="availability",
                                 policy=None, profile=None, fetcher=None, workflow=None,  # type: ignore[arg-type]
                                 lexicon=None, claim=app._claim_site)
    assert len(checked) == 50


def test_run_worker_refuses_the_console_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    assert main(["run", "--worker", "--adapter", "console"]) == 2
    assert "--worker" in capsys.readouterr().err


# -- the drill: kill the leader ----------------------------------------------------------

PEOPLE = (("王芳", Role.officer, 1001), ("李强", Role.leader, 1002), ("赵敏", Role.principal, 1003),
          ("张伟", Role.admin, 1004), ("刘洋", Role.officer, 1005))


def _url_for_child(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    base = os.environ["DUTYBOT_TEST_DATABASE_URL"]
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def _seed(engine: Engine, now: datetime, incidents: int) -> None:
    """People bound on Telegram and incidents reported an hour ago, never acknowledged:
    their first cards are queued and their ladders' rungs are pending due items."""
    env = {"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋"}
    app = App(load_settings(None, env=env), clock=SystemClock(), adapter=MemoryAdapter(), engine=engine)
    reported = now - timedelta(hours=1)
    with Session(engine) as session:
        people = {name: make_person(session, name, roles=(role,), now=reported, platform="telegram",
                                    external_id=str(chat)) for name, role, chat in PEOPLE}
        for n in range(incidents):
            incident = open_incident(
                session=session, calendar=app.calendar, profile=app.profile, policy=app.incident_policy,
                type_=IncidentType.site_down, target=f"https://site{n}.example.gov.cn", description=f"第{n}号网站首页无法访问",
                reporter=people["王芳"], unit="区政府办", source=Source.self_found, now=reported, actor="王芳")
            escalation.announce_new(session, incident, profile=app.profile, policy=app.incident_policy, now=reported)
        session.commit()


def _pending_escalations(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return list(session.exec(select(DueItem.id).where(DueItem.kind == escalation.KIND,
                                                          DueItem.status == DueStatus.pending)
                                 .order_by(col(DueItem.due_at), col(DueItem.id))))


def _set_due(engine: Engine, ids: list[int], at: datetime) -> None:
    with Session(engine) as session:
        session.exec(update(DueItem).where(col(DueItem.id).in_(ids)).values(due_at=at))  # type: ignore[call-overload]
        session.commit()


def _status(engine: Engine, ids: list[int]) -> Counter[str]:
    with Session(engine) as session:
        return Counter(str(s) for s in session.exec(select(DueItem.status).where(col(DueItem.id).in_(ids))))


def _unsent(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(OutboxMessage.id).where(OutboxMessage.status != OutboxStatus.sent)).all())


def _expected(engine: Engine) -> Counter[tuple[str, str]]:
    """What the outbox says was sent: (chat, text) for every row to a person bound on Telegram."""
    with Session(engine) as session:
        chats = {i.person_id: i.chat_id for i in session.exec(select(ChatIdentity))}
        return Counter((chats[m.person_id], m.text) for m in session.exec(select(OutboxMessage))
                       if m.person_id in chats and m.status == OutboxStatus.sent)


def _spawn(url: str, api: str, token: str, log: Path, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DUTYBOT_DATABASE_URL": url, "DUTYBOT_TELEGRAM_TOKEN": token,
           "DUTYBOT_TELEGRAM_BASE_URL": api, "DUTYBOT_TELEGRAM_POLL_TIMEOUT": "1",
           "DUTYBOT_HTTP_ENABLED": "false", "DUTYBOT_BOT_TICK_SECONDS": "0.3",
           "DUTYBOT_BOT_LEADER_CHECK_SECONDS": "0.5", "DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋",
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--worker", "--adapter", "telegram"],
                            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def _said(log: Path, what: str) -> bool:
    return what in log.read_text("utf-8", errors="replace")


async def test_killing_the_leader_mid_drill_loses_and_doubles_no_ping(engine: Engine, tmp_path: Path) -> None:
    fake = FakeBotApi(token="424242:DRILL")
    _seed(engine, SystemClock().now(), incidents=6)
    rungs = _pending_escalations(engine)
    assert len(rungs) >= 6
    before, after = rungs[: len(rungs) // 2], rungs[len(rungs) // 2:]
    now = SystemClock().now()
    _set_due(engine, before, now)                        # due as the drill starts
    _set_due(engine, after, now + timedelta(days=30))    # held back until the leader is dead
    url = _url_for_child(engine)
    async with serve_asgi(fake.app) as api:
        logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
        a = _spawn(url, api, fake.token, logs[0], tmp_path)
        procs = [a]
        try:
            await eventually(lambda: _said(logs[0], "this worker now leads"), timeout=60)
            b = _spawn(url, api, fake.token, logs[1], tmp_path)
            procs.append(b)
            await eventually(lambda: _said(logs[1], "dutybot running on telegram"), timeout=60)
            assert not _said(logs[1], "this worker now leads")

            # Half the drill: the first rungs fire, cards go out; the leader answers a command.
            fake.push_message(1001, 1001, "/whoami")
            await eventually(lambda: _status(engine, before)[DueStatus.pending] == 0 and _unsent(engine) == 0
                             and any(r.chat_id == 1001 and "王芳" in (r.text or "") and r.method == "sendMessage"
                                     and "角色" in (r.text or "") for r in fake.sent), timeout=60)

            a.send_signal(signal.SIGKILL)                # the leader dies, mid-drill
            a.wait(timeout=30)
            _set_due(engine, after, SystemClock().now())  # the second half falls due
            await eventually(lambda: _said(logs[1], "this worker now leads"), timeout=30)
            fake.push_message(1001, 1001, "/whoami")     # received by the new leader's polling
            await eventually(lambda: _status(engine, after)[DueStatus.pending] == 0 and _unsent(engine) == 0
                             and sum(1 for r in fake.sent if r.chat_id == 1001 and "角色" in (r.text or "")) >= 2,
                             timeout=60)
            b.send_signal(signal.SIGTERM)
            assert b.wait(timeout=60) == 0
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    assert _status(engine, rungs)[DueStatus.failed] == 0
    sent = Counter((str(r.chat_id), r.text or "") for r in fake.sent if r.method == "sendMessage")
    expected = _expected(engine)
    assert sum(expected.values()) > len(rungs)       # cards and rungs went out
    doubled = {key: n for key, n in sent.items() if n > expected.get(key, 1)}
    assert doubled == {}, doubled                    # nothing delivered twice
    missing = {key: n for key, n in expected.items() if sent.get(key, 0) < n}
    assert missing == {}, missing                    # nothing lost
    whoami = [r for r in fake.sent if r.chat_id == 1001 and "角色" in (r.text or "")]
    assert len(whoami) == 2                          # each command answered once, before and after


def test_the_service_unit_of_a_worker_runs_run_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.bot.test_service_unit import config_in, run, settings_of
    config = config_in(tmp_path / "srv", "[database]", 'url = "postgresql://dutybot@db1,db2/dutybot"')
    code, out, _ = run(capsys, "--config", str(config), "service", "show", "--worker")
    assert code == 0
    assert settings_of(out)["ExecStart"][0].endswith(f"--config {config.resolve()} run --worker")
    assert settings_of(out)["Restart"] == ["on-failure"]   # a worker that lost the lead (exit 1) comes back


def test_each_worker_sends_its_share_of_the_platforms_overall_rate() -> None:
    from bot.adapters.base import RateWindow
    from bot.leader import share_limits
    telegram = (RateWindow("global", 30, 1.0), RateWindow("chat", 1, 1.0), RateWindow("group", 20, 60.0))
    assert share_limits(telegram, 1) == telegram
    assert share_limits(telegram, 4) == (RateWindow("global", 7, 1.0), RateWindow("chat", 1, 1.0),
                                         RateWindow("group", 20, 60.0))
    assert share_limits((RateWindow("global", 3, 1.0),), 8) == (RateWindow("global", 1, 1.0),)


def test_metrics_say_which_worker_leads(engine: Engine) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def leader_gauge(app: App) -> float:
        families = {f.name: f for f in text_string_to_metric_families(app.metrics.exposition().decode())}
        return families["dutybot_worker_leader"].samples[0].value

    clock = FakeClock(datetime(2026, 11, 23, 9, tzinfo=SHANGHAI))
    first, second = (App(load_settings(None, env={}), clock=clock, adapter=MemoryAdapter(), engine=engine, worker=True)
                     for _ in range(2))
    assert first.role is not None and second.role is not None
    assert first.role.leadership.try_lead() and not second.role.leadership.try_lead()
    assert (leader_gauge(first), leader_gauge(second)) == (1, 0)
    first.role.close()
    second.role.close()
    alone = App(load_settings(None, env={}), clock=clock, adapter=MemoryAdapter(), engine=engine)
    assert "dutybot_worker_leader" not in alone.metrics.exposition().decode()   # one process: no such gauge


class Recording(MemoryAdapter):
    """A memory adapter that records whether it was started to receive or only to send."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def start(self, handler: object) -> None:  # type: ignore[override]
        self.calls.append("receive")

    async def open_for_sending(self) -> None:
        self.calls.append("send-only")


async def test_only_the_leader_opens_a_single_receiving_connection_and_a_follower_opens_it_on_takeover(
        engine: Engine) -> None:
    from bot.leader import WorkerRole

    async def handler(inbound: object) -> None:
        return None

    adapters = [Recording(), Recording()]
    roles = [WorkerRole(engine, a, check_seconds=1, receiver="receive-telegram-424242") for a in adapters]
    assert roles[0].leadership.try_lead() and not roles[1].leadership.try_lead()
    for role in roles:
        await role.start(handler)
    assert [a.calls for a in adapters] == [["send-only", "receive"], ["send-only"]]
    roles[0].close()                                   # the leader's process ends
    assert roles[1].leadership.try_lead()
    await roles[1]._receive()                          # what its next check does on taking the lead
    assert adapters[1].calls == ["send-only", "receive"]
    roles[1].close()


async def test_in_webhook_mode_every_worker_receives(engine: Engine) -> None:
    from bot.leader import WorkerRole

    async def handler(inbound: object) -> None:
        return None

    adapters = [Recording(), Recording()]
    roles = [WorkerRole(engine, a, check_seconds=1, receiver=None) for a in adapters]
    roles[0].leadership.try_lead()
    for role in roles:
        await role.start(handler)
    assert [a.calls for a in adapters] == [["receive"], ["receive"]]
    for role in roles:
        role.close()
