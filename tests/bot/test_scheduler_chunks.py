"""Due items run in chunks (one transaction each, a savepoint per item): an error undoes
only its item; a crash undoes only the chunk it hit, whose items then run once more —
nothing is lost, and no message is queued twice."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.scheduler import Scheduler, backoff
from core.clock import SHANGHAI, FakeClock
from core.db import session_scope
from core.messages import Outbound
from core.outbox import OutboxMessage, enqueue
from core.schedule import DueItem, DueStatus, schedule

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)   # the clock fixture's start
KEYS = [f"item-{n}" for n in range(1, 6)]


class Crash(BaseException):
    """The process dies mid-tick (nothing in the scheduler may catch it)."""


class Pinger:
    """Queues one message per item, as the escalation processor does; fails on demand."""

    def __init__(self, *, fail: str | None = None, crash: str | None = None) -> None:
        self.fail, self.crash = fail, crash
        self.runs: Counter[str] = Counter()

    def __call__(self, session: Session, due: DueItem, now: datetime) -> None:
        self.runs[due.key] += 1
        enqueue(session=session, message=Outbound(f"提醒 {due.key}", chat_id="duty-group"),
                now=now, event_key=f"{due.key}@{due.due_at.isoformat()}", platform="memory")
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


def test_an_error_in_item_k_undoes_only_that_item(engine: Engine, clock: FakeClock) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=10)
    pinger = Pinger(fail="item-3")
    sched.register("ping", pinger)
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
    assert pinger.runs == Counter({key: 1 for key in KEYS} | {"item-3": 2})


@pytest.mark.parametrize("chunk_size", [1, 2, 50])
def test_a_crash_in_item_k_loses_nothing_and_doubles_nothing(engine: Engine, clock: FakeClock,
                                                             chunk_size: int) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=chunk_size)
    pinger = Pinger(crash="item-4")
    sched.register("ping", pinger)
    add_items(engine)

    with pytest.raises(Crash):
        sched.tick()
    # Chunks committed before the crash are done; the crashed chunk is wholly undone.
    committed = KEYS[:3 // chunk_size * chunk_size]
    assert states(engine) == ({key: (DueStatus.pending, 0) for key in KEYS}
                              | {key: (DueStatus.done, 0) for key in committed})
    assert queued(engine) == Counter({key: 1 for key in committed})

    restarted = Scheduler(engine=engine, clock=clock, chunk_size=chunk_size)
    again = Pinger()
    restarted.register("ping", again)
    assert restarted.tick().processed == len(KEYS) - len(committed)
    assert states(engine) == {key: (DueStatus.done, 0) for key in KEYS}
    assert queued(engine) == Counter({key: 1 for key in KEYS})      # one message each
    # Every item ran to completion exactly once; those of the crashed chunk ran once more.
    assert again.runs == Counter({key: 1 for key in KEYS if key not in committed})
    assert pinger.runs == Counter({key: 1 for key in KEYS[:4]})


def test_a_chunk_commits_after_chunk_seconds(engine: Engine, clock: FakeClock) -> None:
    sched = Scheduler(engine=engine, clock=clock, chunk_size=50, chunk_seconds=0)
    pinger = Pinger(crash="item-2")
    sched.register("ping", pinger)
    add_items(engine)
    with pytest.raises(Crash):
        sched.tick()
    # chunk_seconds=0: each item was its own transaction, so item 1 stayed done.
    assert states(engine)["item-1"] == (DueStatus.done, 0)
    assert states(engine)["item-2"] == (DueStatus.pending, 0)


def test_later_batches_start_after_the_previous_one_and_miss_nothing(engine: Engine, clock: FakeClock) -> None:
    """Each batch reads on from the last item of the one before; what a processor schedules
    for now, or re-arms for now, still runs in the same tick."""
    sched = Scheduler(engine=engine, clock=clock, batch_size=2, chunk_size=1)
    pinger = Pinger()

    def first(session: Session, due: DueItem, now: datetime) -> None:
        pinger(session, due, now)
        if due.key == "item-1":   # a follow-up, due now
            schedule(session=session, key="follow-up", kind="ping", ref=due.ref, due_at=now, now=now)
        if due.key == "item-2" and pinger.runs[due.key] == 1:   # runs once more, now
            schedule(session=session, key=due.key, kind="ping", ref=due.ref, due_at=now, now=now)

    sched.register("ping", first)
    add_items(engine)
    assert sched.tick().processed == len(KEYS) + 2
    assert pinger.runs == Counter({key: 1 for key in KEYS} | {"follow-up": 1, "item-2": 2})
    assert set(states(engine).values()) == {(DueStatus.done, 0)}
