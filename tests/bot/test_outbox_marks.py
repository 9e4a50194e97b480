"""Sent marks: a pass writes its sends together, and still never loses one."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, literal, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from bot import outbox_claim
from bot.waiting import Reach
from core.clock import FakeClock
from core.db import flush_wait_off
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus
from tests.bot.test_outbox import EditingAdapter, FakeAdapter, people, put, row, sender_for

__all__ = ["people"]  # the fixture, used by name


def statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {r.event_key: r.status for r in s.exec(select(OutboxMessage))}


async def test_a_card_sent_and_updated_in_one_pass_is_edited_not_sent_twice(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    card = "incident:INC-20261207-004"
    first = put(engine, clock, "状态：待确认", "c:1", person=people["王芳"], card=card)
    second = put(engine, clock, "状态：已确认", "c:2", person=people["王芳"], card=card)
    adapter = EditingAdapter()
    report = await sender_for(engine, adapter, clock).deliver_due()
    assert report.sent == 2 and report.edited == 1
    assert adapter.sent == [("u-王芳", "状态：待确认", False)]
    assert adapter.edits == [("u-王芳", "m1", "状态：已确认")]
    assert row(engine, first).platform_message_id == row(engine, second).platform_message_id == "m1"


async def test_a_card_updated_after_its_mark_was_written_in_the_same_pass_is_still_edited(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """Marks written after every send (``max_rows`` 1): the card's second row finds the
    first one's message among the claim's known sends, not only among unwritten marks."""
    card = "incident:INC-20261207-005"
    put(engine, clock, "状态：待确认", "c:1", person=people["王芳"], card=card)
    put(engine, clock, "状态：已确认", "c:2", person=people["王芳"], card=card)
    put(engine, clock, "状态：处置中", "c:3", person=people["王芳"], card=card)
    adapter = EditingAdapter()
    sender = sender_for(engine, adapter, clock)
    sender.marks.max_rows = 1
    report = await sender.deliver_due()
    assert report.sent == 3 and report.edited == 2
    assert adapter.sent == [("u-王芳", "状态：待确认", False)]
    assert adapter.edits == [("u-王芳", "m1", "状态：已确认"), ("u-王芳", "m1", "状态：处置中")]


async def test_a_later_pass_edits_the_card_with_its_sends_read_in_the_claim(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """The earlier send of each card in a batch is read with the claim, in its transaction:
    one query for the batch, no transaction of its own per card row."""
    cards = [f"incident:INC-20261207-1{n:02d}" for n in range(5)]
    for n, card in enumerate(cards):
        put(engine, clock, f"卡片{n}：待确认", f"c:{n}:1", person=people["王芳"], card=card)
    adapter = EditingAdapter()
    assert (await sender_for(engine, adapter, clock).deliver_due()).sent == 5
    for n, card in enumerate(cards):
        put(engine, clock, f"卡片{n}：已确认", f"c:{n}:2", person=people["王芳"], card=card)
    lookups: list[str] = []   # a card's earlier send looked up on its own

    def on_execute(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "outbox_message.card_key =" in statement:
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        report = await sender_for(engine, adapter, clock).deliver_due()
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert report.sent == 5 and report.edited == 5
    assert [text for _, _, text in adapter.edits] == [f"卡片{n}：已确认" for n in range(5)]
    assert len({ref for _, ref, _ in adapter.edits}) == 5   # each its own card's message
    assert lookups == []


async def test_a_pass_commits_its_sends_together_however_many_there_are(
        engine: Engine, clock: FakeClock) -> None:
    async def pass_commits(n: int, tag: str) -> int:
        for i in range(n):
            put(engine, clock, f"通知 {i}", f"{tag}:{i}", chat=f"g-{tag}-{i}")
        count = 0

        def on_commit(_conn: Any) -> None:
            nonlocal count
            count += 1

        event.listen(engine, "commit", on_commit)
        try:
            report = await sender_for(engine, FakeAdapter(), clock, batch_size=100).deliver_due()
        finally:
            event.remove(engine, "commit", on_commit)
        assert report.sent == n
        return count

    few, many = await pass_commits(3, "few"), await pass_commits(40, "many")
    assert many == few   # 40 sends cost the pass no more commits than 3
    assert set(statuses(engine).values()) == {OutboxStatus.sent}


async def test_sends_are_written_soon_during_a_long_pass(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """A slow platform: each send takes 0.15 s. Marks wait at most 0.2 s for their write
    (looked at on each send here; a timer in a running bot), so when the fourth message
    goes out the first three are written: a crash then resends only the latest."""
    seen: list[dict[str, str]] = []

    class Slow(FakeAdapter):
        async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
            seen.append(statuses(engine))
            clock.advance(timedelta(seconds=0.15))
            return await super().send(chat_id, message, is_group=is_group)

    for i in range(4):
        put(engine, clock, f"第{i}条", f"slow:{i}", person=people["王芳"])
    sender = sender_for(engine, Slow(), clock)
    sender.concurrency = 1
    await sender.deliver_due()
    assert seen[0]["slow:0"] == OutboxStatus.pending
    assert [seen[3][f"slow:{i}"] for i in range(4)] == ["sent", "sent", "sent", "pending"]
    assert set(statuses(engine).values()) == {OutboxStatus.sent}


class _Broken:
    """The database, as a locked (or unreachable) one answers a write."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect

    def begin(self) -> Any:
        raise OperationalError("UPDATE outbox_message", {}, Exception("database is locked"))

    connect = begin


async def test_sends_whose_mark_cannot_be_written_stay_claimed_and_are_written_later(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    rid = put(engine, clock, "今晚 20:00 轮到您值班", "shift:9", person=people["王芳"])
    adapter = FakeAdapter()
    sender = sender_for(engine, adapter, clock)
    sender.marks.engine = _Broken(engine)  # type: ignore[assignment]
    report = await sender.deliver_due()
    assert report.sent == 1 and len(adapter.sent) == 1
    held = row(engine, rid)
    assert held.status == OutboxStatus.pending and held.claimed_until is not None  # not lost
    assert (await sender_for(engine, FakeAdapter(), clock).deliver_due()).claimed == 0
    sender.marks.engine = engine
    assert sender.marks.flush() == 1
    assert row(engine, rid).status == OutboxStatus.sent and row(engine, rid).platform_message_id == "m1"
    clock.advance(timedelta(hours=1))
    assert (await sender.deliver_due()).claimed == 0 and len(adapter.sent) == 1


async def test_only_the_senders_bookkeeping_skips_the_wal_wait_on_postgresql(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """The claim and the sent mark commit without waiting for the disk — each write turns
    the wait off within its own statement (no ``SET LOCAL`` round trip), the lone sent mark
    in autocommit — and the connection goes back to the pool as it was, so a report
    written next still waits for it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    writes: list[tuple[str, bool, str | None]] = []   # (statement, in a transaction, setting after it)

    def on_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE outbox_message"):
            autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
            after = None if autocommit else conn.exec_driver_sql("SHOW synchronous_commit").scalar()
            writes.append((statement, not autocommit, after))

    put(engine, clock, "今晚 20:00 轮到您值班", "shift:10", person=people["王芳"])
    event.listen(engine, "after_cursor_execute", on_execute)
    try:
        assert (await sender_for(engine, FakeAdapter(), clock).deliver_due()).sent == 1
    finally:
        event.remove(engine, "after_cursor_execute", on_execute)
    assert [(in_tx, after) for _, in_tx, after in writes] == [(True, "off"), (False, None)]   # claim, mark
    assert all("set_config(" in statement for statement, _, _ in writes)
    with ExitStack() as stack:   # every pooled connection, the ones the pass used among them
        conns = [stack.enter_context(engine.connect()) for _ in range(engine.pool.size())]
        assert {c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in conns} == {"on"}


def test_a_statement_that_turns_the_wal_wait_off_does_so_for_its_own_commit(engine: Engine) -> None:
    """``flush_wait_off()`` sets ``synchronous_commit`` off before the statement's rows
    are written — also when the statement runs alone (autocommit) and also when it
    matches no row — and only for that transaction."""
    if engine.dialect.name != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for row_id in (-1, -2):   # no such rows: the condition is the plan's one-time filter
            seen = conn.execute(select(func.current_setting("synchronous_commit"))
                                .where(flush_wait_off(), literal(row_id) < 0)).scalar()
            assert seen == "off"
        setting_in = conn.execute(update(table).where(table.c.id == -1, flush_wait_off())
                                  .values(attempts=1).returning(table.c.id)).all()
        assert setting_in == []
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"   # its transaction ended
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == -1, flush_wait_off()).values(attempts=1))
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"   # until this commit


def test_a_cards_earlier_message_is_sought_by_the_card_not_through_the_sent_history(
        engine: Engine) -> None:
    """SQLite chose to walk (status, id) back through every sent row for this look-up, so
    each pass took longer as the outbox's history grew; the query keeps it to the card."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the plan checked is SQLite's")
    from bot.outbox_claim import CARD_REF
    compiled = CARD_REF.compile(dialect=engine.dialect)
    params = compiled.construct_params({"card": "incident:INC-1", "chat": "u-1", "on": "memory",
                                        "before": 10})
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                    tuple(params[name] for name in compiled.positiontup or ())).all()
    assert "ix_outbox_card" in " ".join(str(row[-1]) for row in plan)


def test_a_claims_card_sends_answer_what_they_know_and_ask_for_the_rest(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """No earlier send of the card to that chat: a new message, without asking. The latest
    send below the row: edited. A latest send *above* the row (a row sent again after
    newer ones): the database is asked for the latest below the row, as before."""
    asked: list[tuple[str, str, int]] = []

    def card_ref(_engine: Engine, _platform: str, card: str, chat: str, before: int) -> str | None:
        asked.append((card, chat, before))
        return "m-older"

    monkeypatch.setattr(outbox_claim, "card_ref", card_ref)
    claimed = outbox_claim.Claimed([], False, Reach("memory"), card_sends={("k", "c"): (50, "m9")})
    assert claimed.card_ref(engine, "memory", "k", "other-chat", 60) is None and asked == []
    assert claimed.card_ref(engine, "memory", "k", "c", 60) == "m9" and asked == []
    assert claimed.card_ref(engine, "memory", "k", "c", 40) == "m-older" and asked == [("k", "c", 40)]
    claimed.sent("k", "c", 70, "m10")
    assert claimed.card_ref(engine, "memory", "k", "c", 80) == "m10"
    unread = outbox_claim.Claimed([], False, Reach("memory"))   # card sends not read: always ask
    assert unread.card_ref(engine, "memory", "k", "c", 60) == "m-older"
