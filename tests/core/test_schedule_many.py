"""Registering due items: ``schedule()`` finds its key without flushing the session, and
``schedule_many()`` looks all its keys up at once — with the very outcome of calling
``schedule()`` for each in turn (issue 21)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.clock import SHANGHAI
from core.db import session_scope
from core.schedule import Due, DueItem, DueStatus, cancel, cancel_for, schedule, schedule_many

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


def rows(engine: Engine) -> dict[str, tuple[str, datetime, str, int]]:
    with Session(engine) as session:
        return {i.key: (i.status, i.due_at, i.payload, i.attempts)
                for i in session.exec(select(DueItem).order_by(col(DueItem.id)))}


def test_scheduling_a_key_twice_before_a_flush_moves_it(engine: Engine) -> None:
    with session_scope(engine) as session:
        first = schedule(session=session, key="k", kind="ping", ref="r", due_at=T0, now=T0, payload={"n": 1})
        again = schedule(session=session, key="k", kind="ping", ref="r", due_at=T0 + timedelta(hours=1), now=T0,
                         payload={"n": 2})
        assert first is again
    assert rows(engine) == {"k": (DueStatus.pending, T0 + timedelta(hours=1), '{"n": 2}', 0)}


def test_schedule_many_moves_existing_keys_and_adds_new_ones(engine: Engine) -> None:
    with session_scope(engine) as session:
        schedule(session=session, key="old", kind="ping", ref="r", due_at=T0, now=T0)
    with session_scope(engine) as session:
        old = session.exec(select(DueItem).where(DueItem.key == "old")).one()
        old.status, old.attempts = DueStatus.failed, 3
        session.add(old)
        session.flush()
        old_id = old.id
    later = T0 + timedelta(minutes=5)
    with session_scope(engine) as session:
        schedule(session=session, key="unflushed", kind="ping", ref="r", due_at=T0, now=T0)
        schedule_many(session=session, now=T0, items=[
            Due("old", "ping", "r", later, {"n": 1}),
            Due("new", "ping", "r", later),
            Due("unflushed", "ping", "r", later),                 # added to the session, not flushed: moved
            Due("new", "ping", "r", later + timedelta(minutes=1), {"n": 2}),   # given twice: the last wins
        ])
        # The new row is there for a query in the same transaction.
        assert session.exec(select(DueItem.due_at).where(DueItem.key == "new")).one() == later + timedelta(minutes=1)
    assert rows(engine) == {"old": (DueStatus.pending, later, '{"n": 1}', 0),
                            "unflushed": (DueStatus.pending, later, "{}", 0),
                            "new": (DueStatus.pending, later + timedelta(minutes=1), '{"n": 2}', 0)}
    with Session(engine) as session:
        assert session.exec(select(DueItem.id).where(DueItem.key == "old")).one() == old_id


def test_schedule_many_reads_its_keys_once_and_inserts_the_new_ones_at_once(engine: Engine) -> None:
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    with session_scope(engine) as session:
        schedule(session=session, key="k0", kind="ping", ref="r", due_at=T0, now=T0)   # not flushed yet
        event.listen(engine, "before_cursor_execute", seen)
        try:
            schedule_many(session=session, now=T0,
                          items=[Due(f"k{n}", "ping", "r", T0 + timedelta(minutes=n)) for n in range(12)])
            assert statements == ["SELECT", "INSERT"]   # k1..k11 in one statement; k0 is the session's
            session.flush()
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert len(rows(engine)) == 12
    assert rows(engine)["k0"][1] == T0
    assert rows(engine)["k11"] == (DueStatus.pending, T0 + timedelta(minutes=11), "{}", 0)


def test_a_rolled_back_savepoint_takes_the_new_items_with_it(engine: Engine) -> None:
    with session_scope(engine) as session:
        schedule(session=session, key="kept", kind="ping", ref="r", due_at=T0, now=T0)
        with session.begin_nested() as nested:
            schedule_many(session=session, now=T0, items=[Due("a", "ping", "r", T0), Due("b", "ping", "r", T0)])
            nested.rollback()
    assert set(rows(engine)) == {"kept"}


def test_a_key_deleted_in_the_session_is_scheduled_afresh(engine: Engine) -> None:
    with session_scope(engine) as session:
        schedule(session=session, key="k", kind="ping", ref="r", due_at=T0, now=T0)
    with session_scope(engine) as session:
        session.delete(session.exec(select(DueItem).where(DueItem.key == "k")).one())
        item = schedule(session=session, key="k", kind="ping", ref="r2", due_at=T0, now=T0)
        assert item.ref == "r2"
    assert rows(engine) == {"k": (DueStatus.pending, T0, "{}", 0)}


def test_cancel_finds_items_scheduled_and_not_flushed(engine: Engine) -> None:
    with session_scope(engine) as session:
        schedule_many(session=session, now=T0, items=[Due("a", "ping", "r", T0), Due("b", "ping", "r", T0)])
        assert cancel(session=session, key="a") is True
        assert cancel_for(session=session, ref="r") == 1
        schedule(session=session, key="a", kind="ping", ref="r", due_at=T0, now=T0)   # moved back to pending
    assert {key: row[0] for key, row in rows(engine).items()} == {"a": DueStatus.pending, "b": DueStatus.cancelled}
