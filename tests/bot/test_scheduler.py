"""The scheduler runs what the database says is due: once, in order, after downtime too."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.scheduler import TICK_JOB_ID, Scheduler, backoff
from core.clock import SHANGHAI, FakeClock, SystemClock
from core.db import session_scope
from core.schedule import DueItem, DueStatus, JobState, cancel, schedule

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)   # the clock fixture's start


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in November 2026, Beijing time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def add_item(engine: Engine, key: str, due_at: datetime, kind: str = "remind",
             now: datetime = T0) -> None:
    with session_scope(engine) as session:
        schedule(session=session, key=key, kind=kind, ref="INC-20261123-001",
                 due_at=due_at, now=now)


def item(engine: Engine, key: str) -> DueItem:
    with Session(engine) as session:
        found = session.exec(select(DueItem).where(DueItem.key == key)).one()
        session.expunge(found)
        return found


class Recorder:
    """A processor that notes (key, now) of every item it runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []

    def __call__(self, session: Session, due: DueItem, now: datetime) -> None:
        self.calls.append((due.key, now))

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.calls]


@pytest.fixture
def sched(engine: Engine, clock: FakeClock) -> Scheduler:
    return Scheduler(engine=engine, clock=clock)


# -- due items -----------------------------------------------------------------------

def test_due_item_runs_once_and_is_marked_done(engine: Engine, clock: FakeClock,
                                               sched: Scheduler) -> None:
    woken: list[int] = []
    sched.on_work = lambda: woken.append(1)
    rec = Recorder()
    sched.register("remind", rec)
    add_item(engine, "a", T0 - timedelta(minutes=1))

    report = sched.tick()
    assert rec.keys == ["a"] and report.processed == 1 and woken == [1]
    done = item(engine, "a")
    assert done.status == DueStatus.done and done.processed_at == clock.now()

    clock.advance(timedelta(hours=1))
    assert sched.tick().processed == 0 and rec.keys == ["a"] and woken == [1]


def test_not_run_before_its_due_time(engine: Engine, clock: FakeClock, sched: Scheduler) -> None:
    rec = Recorder()
    sched.register("remind", rec)
    add_item(engine, "later", T0 + timedelta(minutes=30))

    sched.tick()
    clock.advance(timedelta(minutes=29, seconds=59))
    sched.tick()
    assert rec.keys == []
    clock.advance(timedelta(seconds=1))
    sched.tick()
    assert rec.calls == [("later", T0 + timedelta(minutes=30))]


def test_runs_in_due_order(engine: Engine, clock: FakeClock) -> None:
    rec = Recorder()
    sched = Scheduler(engine=engine, clock=clock, batch_size=2)   # order holds across batches
    sched.register("remind", rec)
    for key, minutes in [("c", 30), ("a", 10), ("e", 50), ("b", 20), ("d", 40)]:
        add_item(engine, key, T0 - timedelta(minutes=60 - minutes))
    sched.tick()
    assert rec.keys == ["a", "b", "c", "d", "e"]


def test_item_scheduled_for_now_runs_in_the_same_tick(engine: Engine, sched: Scheduler) -> None:
    rec = Recorder()

    def escalate(session: Session, due: DueItem, now: datetime) -> None:
        rec(session, due, now)
        schedule(session=session, key="notify-leader", kind="remind", ref=due.ref,
                 due_at=now, now=now)

    sched.register("escalate", escalate)
    sched.register("remind", rec)
    add_item(engine, "escalate-1", T0, kind="escalate")
    report = sched.tick()
    assert rec.keys == ["escalate-1", "notify-leader"] and report.processed == 2


def test_processor_may_rearm_or_cancel_its_own_item(engine: Engine, clock: FakeClock,
                                                    sched: Scheduler) -> None:
    def nag(session: Session, due: DueItem, now: datetime) -> None:
        schedule(session=session, key=due.key, kind=due.kind, ref=due.ref,
                 due_at=now + timedelta(minutes=30), now=now)

    def once(session: Session, due: DueItem, now: datetime) -> None:
        cancel(session=session, key=due.key)

    sched.register("nag", nag)
    sched.register("once", once)
    add_item(engine, "nag", T0, kind="nag")
    add_item(engine, "once", T0, kind="once")
    assert sched.tick().processed == 2
    assert item(engine, "nag").status == DueStatus.pending
    assert item(engine, "nag").due_at == clock.now() + timedelta(minutes=30)
    assert item(engine, "once").status == DueStatus.cancelled


def test_failing_processor_retries_with_backoff_then_fails(
        engine: Engine, clock: FakeClock, sched: Scheduler,
        caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()

    def broken(session: Session, due: DueItem, now: datetime) -> None:
        # Work done before the error must be rolled back with it.
        schedule(session=session, key="side-effect", kind="remind", ref=due.ref,
                 due_at=now, now=now)
        raise RuntimeError("template missing")

    sched.register("broken", broken)
    sched.register("remind", rec)
    add_item(engine, "bad", T0, kind="broken")
    add_item(engine, "good", T0 + timedelta(seconds=1))
    clock.advance(timedelta(seconds=1))

    report = sched.tick()
    assert rec.keys == ["good"] and report.failed == 1 and report.processed == 1
    bad = item(engine, "bad")
    assert bad.status == DueStatus.pending and bad.attempts == 1
    assert bad.last_error == "RuntimeError: template missing"
    assert bad.due_at == clock.now() + timedelta(minutes=1)
    with Session(engine) as session:
        assert session.exec(select(DueItem).where(DueItem.key == "side-effect")).first() is None

    assert sched.tick().failed == 0        # not before its backoff
    for attempt in range(2, 6):            # 1, 2, 4, 8 minutes apart
        clock.advance(backoff(attempt - 1))
        with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
            assert sched.tick().failed == 1
        assert item(engine, "bad").attempts == attempt
    bad = item(engine, "bad")
    assert bad.status == DueStatus.failed and bad.processed_at == clock.now()
    assert any(r.levelno == logging.ERROR and "bad" in r.getMessage() for r in caplog.records)
    clock.advance(timedelta(hours=2))
    assert sched.tick().failed == 0
    assert [backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4)] == [1, 2, 4, 8]


def test_unknown_kind_is_marked_failed(engine: Engine, sched: Scheduler,
                                       caplog: pytest.LogCaptureFixture) -> None:
    add_item(engine, "mystery", T0, kind="nobody-handles-this")
    with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
        report = sched.tick()
    assert report.failed == 1
    lost = item(engine, "mystery")
    assert lost.status == DueStatus.failed and "nobody-handles-this" in (lost.last_error or "")
    assert "mystery" in caplog.text


def test_idle_tick_is_a_fixed_number_of_statements(engine: Engine, sched: Scheduler) -> None:
    sched.register("remind", Recorder())
    sched.register_cron("daily_brief", lambda s, f, n: None, hour=8, minute=30)
    sched.tick()   # creates the cron's state; connections are warm

    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        sched.tick()
        empty = len(statements)
        rows = [{"key": f"future-{n}", "kind": "remind", "ref": "x", "status": "pending",
                 "payload": "{}", "attempts": 0, "created_at": T0,
                 "due_at": T0 + timedelta(minutes=1 + n)} for n in range(1000)]
        with engine.begin() as conn:
            conn.execute(insert(DueItem), rows)
        statements.clear()
        sched.tick()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == empty <= 4       # SQLite adds a BEGIN per transaction
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2                    # the due items, and all cron job states
    assert sum("due_item" in s for s in selects) == 1
    if engine.dialect.name == "sqlite":         # ... and the due-item query is indexed
        due_query = next(s for s in selects if "due_item" in s)
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {due_query}",
                                        ("pending", "2026-11-23 01:00:00.000000", 200, 0)).all()
        assert "ix_due_item_pending" in str(plan) and "TEMP B-TREE" not in str(plan)


# -- cron jobs -----------------------------------------------------------------------

def test_missed_cron_runs_once_at_start_up_with_the_latest_fire(
        engine: Engine, clock: FakeClock) -> None:
    with session_scope(engine) as session:   # the bot was down since Friday's briefing
        session.add(JobState(name="daily_brief", last_fire_at=at(20, 8, 30),
                             last_run_at=at(20, 8, 30)))
    fires: list[tuple[datetime, datetime]] = []
    sched = Scheduler(engine=engine, clock=clock)
    sched.register_cron("daily_brief", lambda s, fire, now: fires.append((fire, now)),
                        hour=8, minute=30)

    report = sched.catch_up()
    assert report.crons == ["daily_brief"] and report.log == ["2026-11-23T08:30+08:00 cron daily_brief"]
    assert fires == [(at(23, 8, 30), clock.now())]
    with Session(engine) as session:
        assert session.get(JobState, "daily_brief").last_fire_at == at(23, 8, 30)

    clock.set(at(23, 23, 59))
    assert sched.tick().crons == [] and len(fires) == 1
    clock.set(at(24, 8, 30))
    assert sched.tick().crons == ["daily_brief"] and fires[-1][0] == at(24, 8, 30)


def test_new_cron_does_not_fire_for_the_past(engine: Engine, clock: FakeClock,
                                             sched: Scheduler) -> None:
    fires: list[datetime] = []
    sched.register_cron("daily_brief", lambda s, fire, now: fires.append(fire), hour=8, minute=30)
    sched.tick()       # 09:00: today's 08:30 is before the job existed
    assert fires == []
    with Session(engine) as session:
        assert session.get(JobState, "daily_brief").last_fire_at == clock.now()
    clock.set(at(24, 8, 30))
    sched.tick()
    assert fires == [at(24, 8, 30)]


def test_failing_cron_is_retried_with_its_work_rolled_back(engine: Engine, clock: FakeClock,
                                                           sched: Scheduler) -> None:
    calls: list[datetime] = []

    def flaky(session: Session, fire: datetime, now: datetime) -> None:
        calls.append(now)
        schedule(session=session, key=f"brief:{fire:%Y%m%d}", kind="remind", ref="brief",
                 due_at=now + timedelta(hours=1), now=now)
        if len(calls) == 1:
            raise RuntimeError("roster not loaded")

    sched.register_cron("daily_brief", flaky, hour=8, minute=30)
    sched.tick()
    clock.set(at(24, 8, 30))
    assert sched.tick().crons == []
    assert sched.next_event_at() == at(24, 8, 31)          # retried after the backoff
    with Session(engine) as session:
        assert session.exec(select(DueItem)).first() is None
    clock.set(at(24, 8, 31))
    assert sched.tick().crons == ["daily_brief"]
    assert item(engine, "brief:20261124").status == DueStatus.pending


def test_two_workers_run_a_cron_fire_once(engine: Engine, clock: FakeClock) -> None:
    fires: list[str] = []
    a = Scheduler(engine=engine, clock=clock)
    b = Scheduler(engine=engine, clock=clock)
    a.register_cron("shift_change", lambda s, f, n: fires.append("a"), hour=8, minute=30)
    b.register_cron("shift_change", lambda s, f, n: fires.append("b"), hour=8, minute=30)
    a.tick()
    b.tick()

    # Sequential: whoever comes second finds the fire taken.
    clock.set(at(24, 8, 30))
    a.tick()
    b.tick()
    assert fires == ["a"]

    # Racing: B runs the whole fire after A has read the old state, before A writes.
    real = a.crons.due_fire

    def b_sneaks_in(*args: object) -> datetime | None:
        b.tick()
        return real(*args)  # type: ignore[arg-type]

    a.crons.due_fire = b_sneaks_in  # type: ignore[method-assign]
    clock.set(at(25, 8, 30))
    assert a.tick().crons == []
    assert fires == ["a", "b"]


@pytest.mark.parametrize("chunk_size", [1, 50])
def test_two_workers_share_due_items(engine: Engine, clock: FakeClock, chunk_size: int) -> None:
    """A chunk's items are claimed (locked) together: B skips all of A's chunk without
    waiting, and runs what A has not claimed."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks (SKIP LOCKED) need PostgreSQL; SQLite runs one worker")
    runs: list[tuple[str, str]] = []
    a = Scheduler(engine=engine, clock=clock, chunk_size=chunk_size)
    b = Scheduler(engine=engine, clock=clock)

    def on_a(session: Session, due: DueItem, now: datetime) -> None:
        runs.append(("a", due.key))
        if due.key == "1":
            b.tick()   # B ticks while A holds item 1: it must skip it, not wait

    a.register("remind", on_a)
    b.register("remind", lambda s, due, n: runs.append(("b", due.key)))
    for key in ("1", "2", "3"):
        add_item(engine, key, T0)
    a.tick()
    assert sorted(key for _, key in runs) == ["1", "2", "3"]
    if chunk_size == 1:   # A's chunk holds item 1 only
        assert runs[0] == ("a", "1") and ("b", "2") in runs
    else:                 # A's chunk holds all three
        assert runs == [("a", "1"), ("a", "2"), ("a", "3")]


def test_catch_up_after_a_long_outage_runs_each_job_once(engine: Engine, clock: FakeClock) -> None:
    with session_scope(engine) as session:   # an hourly job, down for 200 days
        session.add(JobState(name="poll", last_fire_at=T0 - timedelta(days=200),
                             last_run_at=T0 - timedelta(days=200)))
    fires: list[datetime] = []
    sched = Scheduler(engine=engine, clock=clock)
    sched.register_cron("poll", lambda s, fire, now: fires.append(fire), minute=0)
    sched.register_cron("weekly", lambda s, fire, now: fires.append(fire),
                        day_of_week="fri", hour=17)
    with session_scope(engine) as session:
        session.add(JobState(name="weekly", last_fire_at=T0 - timedelta(days=200),
                             last_run_at=T0 - timedelta(days=200)))
    sched.tick()
    assert fires == [T0, at(20, 17)]


# -- drill mode ----------------------------------------------------------------------

def test_advance_to_runs_everything_in_time_order(engine: Engine, clock: FakeClock,
                                                  sched: Scheduler) -> None:
    ran: list[tuple[str, datetime]] = []

    def remind(session: Session, due: DueItem, now: datetime) -> None:
        ran.append((due.key, now))
        if due.key == "reply-due-soon":   # schedules an event between two others
            schedule(session=session, key="reply-overdue", kind="remind", ref=due.ref,
                     due_at=at(24, 8, 0), now=now)

    sched.register("remind", remind)
    sched.register_cron("daily_brief", lambda s, fire, now: ran.append(("brief", now)),
                        hour=8, minute=30)
    add_item(engine, "reply-due-soon", at(23, 12))
    add_item(engine, "escalate", at(24, 10))
    add_item(engine, "past-target", at(26, 9))

    lines = sched.advance_to(at(25, 9))
    assert lines == [
        "2026-11-23T12:00+08:00 due remind reply-due-soon",
        "2026-11-24T08:00+08:00 due remind reply-overdue",
        "2026-11-24T08:30+08:00 cron daily_brief",
        "2026-11-24T10:00+08:00 due remind escalate",
        "2026-11-25T08:30+08:00 cron daily_brief",
    ]
    assert ran == [("reply-due-soon", at(23, 12)), ("reply-overdue", at(24, 8)),
                   ("brief", at(24, 8, 30)), ("escalate", at(24, 10)),
                   ("brief", at(25, 8, 30))]
    assert clock.now() == at(25, 9)
    assert item(engine, "past-target").status == DueStatus.pending
    assert sched.next_event_at() == at(26, 8, 30)


def test_advance_to_needs_a_fake_clock(engine: Engine) -> None:
    with pytest.raises(TypeError):
        Scheduler(engine=engine, clock=SystemClock()).advance_to(T0)


# -- running on APScheduler ------------------------------------------------------------

async def test_start_adds_the_tick_job_and_shutdown_stops_it(engine: Engine,
                                                              clock: FakeClock) -> None:
    sched = Scheduler(engine=engine, clock=clock, tick_seconds=7)
    sched.start()
    aps = sched.apscheduler
    assert aps is not None and aps.running
    job = aps.get_job(TICK_JOB_ID)
    assert job is not None and job.trigger.interval == timedelta(seconds=7)
    assert job.coalesce is True and job.max_instances == 1
    with pytest.raises(RuntimeError):
        sched.start()
    await sched.shutdown()
    assert not aps.running and sched.apscheduler is None


async def test_on_work_runs_on_the_event_loop_thread(engine: Engine, clock: FakeClock) -> None:
    """Once started, ticks run in a worker thread; the outbox wake-up must not."""
    threads: list[int] = []
    sched = Scheduler(engine=engine, clock=clock,
                      on_work=lambda: threads.append(threading.get_ident()))
    sched.register("remind", Recorder())
    add_item(engine, "a", T0)
    sched.start()
    try:
        await asyncio.to_thread(sched.tick)
    finally:
        await sched.shutdown()
    assert threads == [threading.get_ident()]
