"""Due items run in chunks (one transaction each, a savepoint per item): an error undoes
only its item; a crash undoes only the chunk it hit, whose items then run once more —
nothing is lost, and no message is queued twice. Kinds registered ``at_once`` run a
chunk without the savepoints; when one of its items fails, the chunk is undone and run
again one savepoint per item, with the same outcome."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from bot.scheduler import Scheduler, backoff
from core.clock import SHANGHAI, FakeClock
from core.db import session_scope
from core.messages import Outbound
from core.outbox import OutboxMessage, enqueue, enqueue_each
from core.schedule import DueItem, DueStatus, cancel, cancel_for, schedule

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)   # the clock fixture's start
KEYS = [f"item-{n}" for n in range(1, 6)]


class Crash(BaseException):
    """The process dies mid-tick (nothing in the scheduler may catch it)."""


class Pinger:
    """Queues one message per item, as the escalation processor does (``bulk``: with
    ``enqueue_all``, as it does now); fails on demand."""

    def __init__(self, *, fail: str | None = None, crash: str | None = None, bulk: bool = False) -> None:
        self.fail, self.crash, self.bulk = fail, crash, bulk
        self.runs: Counter[str] = Counter()

    def __call__(self, session: Session, due: DueItem, now: datetime) -> None:
        self.runs[due.key] += 1
        message, key = Outbound(f"提醒 {due.key}", chat_id="duty-group"), f"{due.key}@{due.due_at.isoformat()}"
        if self.bulk:
            enqueue_each(session=session, items=[(message, key, "memory")], now=now)
        else:
            enqueue(session=session, message=message, now=now, event_key=key, platform="memory")
        if due.key == self.fail:
            raise RuntimeError("template missing")
        if due.key == self.crash:
            raise Crash


def add_items(engine: Engine) -> None:
    with session_scope(engine) as session:
        for n, key in enumerate(KEYS):   # due in this order, a second apart
            schedule(session=session, key=key, kind="ping", ref="INC-20261123-001",
                     due_at=T0 - timedelta(seconds=len(KEYS) - n), now=T0)


def states(engine: Engine) -> dict[str, tuple[str, int]]:
    with Session(engine) as session:
        return {i.key: (i.status, i.attempts) for i in session.exec(select(DueItem))}


def queued(engine: Engine) -> Counter[str]:
    """Outbox rows per item key."""
    with Session(engine) as session:
        keys = session.exec(select(OutboxMessage.event_key).order_by(col(OutboxMessage.id))).all()
    return Counter(key.partition("@")[0] for key in keys)


MODES = pytest.mark.parametrize("at_once", [False, True], ids=["savepoints", "at-once"])


@MODES
def test_an_error_in_item_k_undoes_only_that_item(engine: Engine, clock: FakeClock, at_once: bool) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=10)
    pinger = Pinger(fail="item-3", bulk=at_once)
    sched.register("ping", pinger, at_once=at_once)
    add_items(engine)

    report = sched.tick()
    assert report.processed == 4 and report.failed == 1
    done = {key: (DueStatus.done, 0) for key in KEYS if key != "item-3"}
    assert states(engine) == done | {"item-3": (DueStatus.pending, 1)}
    assert queued(engine) == Counter({key: 1 for key in done})   # item 3's message rolled back

    pinger.fail = None
    clock.advance(backoff(1))
    assert sched.tick().processed == 1
    assert states(engine) == {key: (DueStatus.done, 0) for key in KEYS} | {"item-3": (DueStatus.done, 1)}
    assert queued(engine) == Counter({key: 1 for key in KEYS})
    # At once, items 1-3 ran first in the attempt that item 3 undid.
    again = {"item-1": 1, "item-2": 1, "item-3": 1} if at_once else {}
    assert pinger.runs == Counter({key: 1 for key in KEYS} | {"item-3": 2}) + Counter(again)


@MODES
@pytest.mark.parametrize("chunk_size", [1, 2, 50])
def test_a_crash_in_item_k_loses_nothing_and_doubles_nothing(engine: Engine, clock: FakeClock,
                                                             chunk_size: int, at_once: bool) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=chunk_size)
    pinger = Pinger(crash="item-4", bulk=at_once)
    sched.register("ping", pinger, at_once=at_once)
    add_items(engine)

    with pytest.raises(Crash):
        sched.tick()
    # Chunks committed before the crash are done; the crashed chunk is wholly undone.
    committed = KEYS[:3 // chunk_size * chunk_size]
    assert states(engine) == ({key: (DueStatus.pending, 0) for key in KEYS}
                              | {key: (DueStatus.done, 0) for key in committed})
    assert queued(engine) == Counter({key: 1 for key in committed})

    restarted = Scheduler(engine=engine, clock=clock, chunk_size=chunk_size)
    again = Pinger(bulk=at_once)
    restarted.register("ping", again, at_once=at_once)
    assert restarted.tick().processed == len(KEYS) - len(committed)
    assert states(engine) == {key: (DueStatus.done, 0) for key in KEYS}
    assert queued(engine) == Counter({key: 1 for key in KEYS})      # one message each
    # Every item ran to completion exactly once; those of the crashed chunk ran once more.
    assert again.runs == Counter({key: 1 for key in KEYS if key not in committed})
    assert pinger.runs == Counter({key: 1 for key in KEYS[:4]})


@MODES
def test_a_chunk_commits_after_chunk_seconds(engine: Engine, clock: FakeClock, at_once: bool) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50, chunk_seconds=0)
    pinger = Pinger(crash="item-2", bulk=at_once)
    sched.register("ping", pinger, at_once=at_once)
    add_items(engine)
    with pytest.raises(Crash):
        sched.tick()
    # chunk_seconds=0: each item was its own transaction, so item 1 stayed done.
    assert states(engine)["item-1"] == (DueStatus.done, 0)
    assert states(engine)["item-2"] == (DueStatus.pending, 0)


@MODES
@pytest.mark.parametrize("chunk_size", [1, 50])
def test_later_batches_start_after_the_previous_one_and_miss_nothing(engine: Engine, clock: FakeClock,
                                                                     at_once: bool, chunk_size: int) -> None:
    """Each batch reads on from the last item of the one before; what a processor schedules
    for now, or re-arms for now, still runs in the same tick."""
    sched = Scheduler(engine=engine, clock=clock, batch_size=2, chunk_size=chunk_size)
    pinger = Pinger(bulk=at_once)

    def first(session: Session, due: DueItem, now: datetime) -> None:
        pinger(session, due, now)
        if due.key == "item-1":   # a follow-up, due now
            schedule(session=session, key="follow-up", kind="ping", ref=due.ref, due_at=now, now=now)
        if due.key == "item-2" and pinger.runs[due.key] == 1:   # runs once more, now
            schedule(session=session, key=due.key, kind="ping", ref=due.ref, due_at=now, now=now)

    sched.register("ping", first, at_once=at_once)
    add_items(engine)
    assert sched.tick().processed == len(KEYS) + 2
    assert pinger.runs == Counter({key: 1 for key in KEYS} | {"follow-up": 1, "item-2": 2})
    assert set(states(engine).values()) == {(DueStatus.done, 0)}


# -- one chunk: items claimed together, marked done together (issue 21) -----------------


def processed(engine: Engine) -> dict[str, datetime | None]:
    with Session(engine) as session:
        return {i.key: i.processed_at for i in session.exec(select(DueItem))}


@MODES
def test_what_an_item_does_to_later_items_of_its_chunk_is_seen(engine: Engine, clock: FakeClock,
                                                                at_once: bool) -> None:
    """The chunk's items are claimed at once; an earlier item's processor that cancels or
    moves a later one, or reads and re-arms an earlier one, sees and leaves what it would
    if every item were claimed and marked done on its own."""
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50)
    pinger = Pinger(bulk=at_once)
    seen: dict[str, object] = {}

    def meddler(session: Session, due: DueItem, now: datetime) -> None:
        pinger(session, due, now)
        if due.key == "item-2":
            seen["item-1 cancelled"] = cancel(session=session, key="item-1")   # done already
            seen["item-4 cancelled"] = cancel(session=session, key="item-4")
            schedule(session=session, key="item-5", kind="ping", ref=due.ref, due_at=now + timedelta(hours=1),
                     now=now)
        if due.key == "item-3":
            seen["statuses"] = {i.key: i.status for i in session.exec(select(DueItem))}
            schedule(session=session, key="item-1", kind="ping", ref=due.ref, due_at=now + timedelta(hours=2),
                     now=now)

    sched.register("ping", meddler, at_once=at_once)
    add_items(engine)
    report = sched.tick()
    assert report.processed == 3 and not report.failed
    assert pinger.runs == Counter({"item-1": 1, "item-2": 1, "item-3": 1})
    assert seen["item-1 cancelled"] is False and seen["item-4 cancelled"] is True
    assert seen["statuses"] == {"item-1": DueStatus.done, "item-2": DueStatus.done, "item-3": DueStatus.pending,
                                "item-4": DueStatus.cancelled, "item-5": DueStatus.pending}
    assert states(engine) == {"item-1": (DueStatus.pending, 0), "item-2": (DueStatus.done, 0),
                              "item-3": (DueStatus.done, 0), "item-4": (DueStatus.cancelled, 0),
                              "item-5": (DueStatus.pending, 0)}
    assert processed(engine) == {"item-1": T0, "item-2": T0, "item-3": T0, "item-4": None, "item-5": None}


@MODES
@pytest.mark.parametrize("inner", [False, True])
def test_done_marks_undone_by_a_rolled_back_savepoint_are_written_again(engine: Engine, clock: FakeClock,
                                                                        inner: bool, at_once: bool) -> None:
    """Item 3's processor reads due items (which writes the marks of items 1-2 first), then
    fails — or rolls back a savepoint of its own and goes on: items 1-2 stay done, and
    the messages queued before the savepoint stay queued."""
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50)
    pinger = Pinger(bulk=at_once)

    def reader(session: Session, due: DueItem, now: datetime) -> None:
        pinger(session, due, now)
        if due.key != "item-3":
            return
        if inner:
            with contextlib.suppress(RuntimeError), session.begin_nested():
                assert cancel_for(session=session, ref="nothing") == 0
                raise RuntimeError("undone here")
            return
        assert cancel_for(session=session, ref="nothing") == 0
        raise RuntimeError("template missing")

    sched.register("ping", reader, at_once=at_once)
    add_items(engine)
    report = sched.tick()
    assert (report.processed, report.failed) == ((5, 0) if inner else (4, 1))
    expected = {key: (DueStatus.done, 0) for key in KEYS}
    if not inner:
        expected["item-3"] = (DueStatus.pending, 1)
    assert states(engine) == expected
    assert processed(engine) == {key: None if expected[key][0] == DueStatus.pending else T0 for key in KEYS}
    assert queued(engine) == Counter({key: 1 for key in KEYS if expected[key][0] == DueStatus.done})


def tick_statements(sched: Scheduler, engine: Engine) -> list[str]:
    """The SQL of one tick that runs every item."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert sched.tick().processed == len(KEYS)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return statements


def test_a_chunk_marks_its_items_done_with_one_statement(engine: Engine, clock: FakeClock) -> None:
    """The scheduler's own statements for a chunk: one claim, a savepoint per item, one
    UPDATE for the done marks."""
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50)
    sched.register("ping", Pinger())
    add_items(engine)
    statements = tick_statements(sched, engine)
    due_item = [s for s in statements if "due_item" in s]
    updates = [s for s in due_item if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1 and " IN " in updates[0]
    assert len([s for s in due_item if "FOR UPDATE" in s or "due_item.id IN" in s]) == 2   # claim + marks
    assert states(engine) == {key: (DueStatus.done, 0) for key in KEYS}
    assert processed(engine) == {key: T0 for key in KEYS}


@MODES
def test_a_processor_that_empties_the_session_does_not_lose_later_items(engine: Engine, clock: FakeClock,
                                                                        at_once: bool) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50)
    pinger = Pinger(bulk=at_once)

    def tidy(session: Session, due: DueItem, now: datetime) -> None:
        pinger(session, due, now)
        session.flush()
        session.expunge_all()

    sched.register("ping", tidy, at_once=at_once)
    add_items(engine)
    assert sched.tick().processed == len(KEYS)
    assert pinger.runs == Counter({key: 1 for key in KEYS})
    assert states(engine) == {key: (DueStatus.done, 0) for key in KEYS}
    assert queued(engine) == Counter({key: 1 for key in KEYS})


def test_a_chunk_at_once_runs_no_savepoint_and_queues_its_messages_with_one_insert(engine: Engine,
                                                                                   clock: FakeClock) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50)
    sched.register("ping", Pinger(bulk=True), at_once=True)
    add_items(engine)
    statements = tick_statements(sched, engine)
    assert not [s for s in statements if "SAVEPOINT" in s]
    assert len([s for s in statements if s.startswith("INSERT INTO outbox_message")]) == 1
    assert states(engine) == {key: (DueStatus.done, 0) for key in KEYS}
    assert processed(engine) == {key: T0 for key in KEYS}
    assert queued(engine) == Counter({key: 1 for key in KEYS})


def test_a_chunk_at_once_stops_before_an_item_of_another_kind(engine: Engine, clock: FakeClock) -> None:
    """Items of kinds that run at once and of kinds that do not, due in turn: each runs
    once, in due order, each kind the way it was registered."""
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50)
    order: list[str] = []
    savepoint_of: dict[str, bool] = {}

    def make(at_once: bool) -> Callable[[Session, DueItem, datetime], None]:
        def run(session: Session, due: DueItem, now: datetime) -> None:
            order.append(due.key)
            savepoint_of[due.key] = session.in_nested_transaction()
        return run

    sched.register("fast", make(True), at_once=True)
    sched.register("slow", make(False))
    with session_scope(engine) as session:
        for n, kind in enumerate(["fast", "fast", "slow", "fast", "slow", "slow", "fast"]):
            schedule(session=session, key=f"{kind}-{n}", kind=kind, ref="x", due_at=T0 - timedelta(seconds=10 - n),
                     now=T0)
    assert sched.tick().processed == 7
    assert order == ["fast-0", "fast-1", "slow-2", "fast-3", "slow-4", "slow-5", "fast-6"]
    assert savepoint_of == {key: key.startswith("slow") for key in order}
    assert set(states(engine).values()) == {(DueStatus.done, 0)}


@pytest.mark.parametrize("rerun_if_lost", [False, True])
def test_only_chunks_that_can_run_again_commit_without_the_wal_wait(engine: Engine, clock: FakeClock,
                                                                     rerun_if_lost: bool) -> None:
    """On PostgreSQL a chunk of a kind whose writes are re-derived if lost (escalations)
    commits without waiting for the disk; every other chunk waits, as before."""
    if engine.dialect.name != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50)
    sched.register("ping", Pinger(bulk=True), at_once=True, rerun_if_lost=rerun_if_lost)
    add_items(engine)
    seen: list[str] = []

    def on_commit(conn: Connection) -> None:
        seen.append(str(conn.exec_driver_sql("SHOW synchronous_commit").scalar()))

    event.listen(engine, "commit", on_commit)
    try:
        assert sched.tick().processed == len(KEYS)
    finally:
        event.remove(engine, "commit", on_commit)
    assert seen == ["off" if rerun_if_lost else "on"]
    assert queued(engine) == Counter({key: 1 for key in KEYS})
