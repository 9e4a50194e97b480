"""Rows claimed by a process that is gone are taken again before their lease ends
(issue 16 item 9): a claim records its sender's worker id, the sender holds a liveness
lock, and a claim whose worker's lock is free is taken at once; a live worker's claim
waits for its lease. SQLite (lock files) and PostgreSQL (advisory locks) alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.instance_lock import is_free
from bot.liveness import SCAN_SECONDS, lock_name
from core.clock import FakeClock
from core.db import session_scope
from core.outbox import OutboxStatus
from tests.bot.test_outbox import FakeAdapter, put, row, sender_for
from tests.factories import make_person


@pytest.fixture
def wang(engine: Engine, clock: FakeClock) -> int:
    with session_scope(engine) as s:
        person_id = make_person(s, "王芳", now=clock.now()).id
    assert person_id is not None
    return person_id


async def test_a_row_claimed_by_a_dead_worker_is_taken_at_once(
        engine: Engine, clock: FakeClock, wang: int) -> None:
    rid = put(engine, clock, "请确认 INC-20261123-001", "inc:1", person=wang)
    dying = sender_for(engine, FakeAdapter(), clock)
    assert dying.hold_liveness()
    claimed = dying._claim(clock.now(), clock.now().timestamp()).rows   # claimed, then killed
    assert [r.id for r in claimed] == [rid]
    assert row(engine, rid).claimed_by == dying.worker_id
    dying.close()                       # the process is gone: its lock with it
    adapter = FakeAdapter()
    other = sender_for(engine, adapter, clock)
    assert other.hold_liveness()
    report = await other.deliver_due()  # no clock moved: the 120 s lease is far off
    assert report.sent == 1
    assert adapter.texts("u-王芳") == ["请确认 INC-20261123-001"]
    assert row(engine, rid).status == OutboxStatus.sent
    other.close()


async def test_a_row_claimed_by_a_live_worker_waits_for_the_lease(
        engine: Engine, clock: FakeClock, wang: int) -> None:
    rid = put(engine, clock, "今晚值班提醒", "shift:1", person=wang)
    busy = sender_for(engine, FakeAdapter(), clock)
    assert busy.hold_liveness()
    busy._claim(clock.now(), clock.now().timestamp())   # alive, sending slowly
    adapter = FakeAdapter()
    other = sender_for(engine, adapter, clock)
    assert other.hold_liveness()
    assert (await other.deliver_due()).claimed == 0
    clock.advance(timedelta(seconds=SCAN_SECONDS * 2))   # scanned again: still alive
    assert (await other.deliver_due()).claimed == 0
    clock.advance(timedelta(seconds=121))                       # the lease ran out
    assert (await other.deliver_due()).sent == 1
    assert row(engine, rid).claimed_by == other.worker_id
    busy.close()
    other.close()


async def test_a_worker_dying_after_the_last_scan_is_found_at_the_next(
        engine: Engine, clock: FakeClock, wang: int) -> None:
    rid = put(engine, clock, "请处置", "inc:2", person=wang)
    dying = sender_for(engine, FakeAdapter(), clock)
    dying.hold_liveness()
    dying._claim(clock.now(), clock.now().timestamp())
    adapter = FakeAdapter()
    other = sender_for(engine, adapter, clock)
    other.hold_liveness()
    assert (await other.deliver_due()).claimed == 0     # alive at this scan
    dying.close()
    clock.advance(timedelta(seconds=1))
    assert (await other.deliver_due()).claimed == 0     # not looked up again yet
    clock.advance(timedelta(seconds=SCAN_SECONDS))
    assert (await other.deliver_due()).sent == 1        # seconds, not the 120 s lease
    assert row(engine, rid).status == OutboxStatus.sent
    other.close()


async def test_a_claim_without_a_liveness_lock_waits_for_the_lease(
        engine: Engine, clock: FakeClock, wang: int) -> None:
    """deliver_due outside run() (tests, tools) takes no lock and marks no claimer."""
    rid = put(engine, clock, "提醒", "r:1", person=wang)
    plain = sender_for(engine, FakeAdapter(), clock)
    plain._claim(clock.now(), clock.now().timestamp())
    assert row(engine, rid).claimed_by is None
    other = sender_for(engine, FakeAdapter(), clock)
    other.hold_liveness()
    assert (await other.deliver_due()).claimed == 0
    other.close()


async def test_run_holds_the_liveness_lock_and_gives_it_up(
        engine: Engine, clock: FakeClock, wang: int) -> None:
    put(engine, clock, "提醒", "r:2", person=wang)
    adapter = FakeAdapter()
    sender = sender_for(engine, adapter, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    for _ in range(500):
        if adapter.sent:
            break
        await asyncio.sleep(0.01)
    assert adapter.texts("u-王芳") == ["提醒"]
    assert is_free(engine, lock_name(sender.worker_id)) is False
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert is_free(engine, lock_name(sender.worker_id)) is True


async def test_a_worker_that_lost_its_lock_goes_on_as_a_new_worker(
        engine: Engine, clock: FakeClock, wang: int) -> None:
    """A PostgreSQL lock lives on its own connection; when that connection is lost, the
    sender stops signing claims with the old id (others now take those at once)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only a PostgreSQL liveness lock can be lost while its process lives")
    sender = sender_for(engine, FakeAdapter(), clock)
    assert sender.hold_liveness()
    old = sender.worker_id
    lock = sender.liveness.lock
    assert lock is not None and lock._conn is not None
    pid = lock._conn.execute(text("SELECT pg_backend_pid()")).scalar()
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        conn.commit()
    rid = put(engine, clock, "提醒", "r:3", person=wang)
    assert (await sender.deliver_due()).sent == 1
    assert sender.worker_id != old and row(engine, rid).claimed_by == sender.worker_id
    assert is_free(engine, lock_name(sender.worker_id)) is False
    sender.close()
