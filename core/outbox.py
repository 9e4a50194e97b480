"""The outbox table: every message the bot sends is first a row here.

A state change and the messages it causes are written in the same transaction
(:func:`enqueue` takes the caller's session and never commits). The sender loop in
``bot/outbox.py`` delivers rows through the adapter. The unique ``dedupe_key`` — the
event that caused the message plus its recipient — makes a second enqueue of the same
event for the same person a no-op.

A row to a person bound on no chat platform *waits* (``waiting``, with ``expires_at``)
instead of failing: :func:`release_waiting` puts it back in the queue, in the transaction
that binds the person, and the sender gives it up once it expires.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Table, Text, TextClause, bindparam, event, func, or_, text
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Field, Session, SQLModel, col, select

from core.db import UTCDateTime
from core.messages import Button, Outbound


class OutboxStatus(StrEnum):
    pending = "pending"     # waiting for delivery (or a retry)
    sent = "sent"           # the platform accepted it
    dead = "dead"           # gave up; admins were told
    waiting = "waiting"     # the person is bound on no platform; next_attempt_at = expires_at


class OutboxMessage(SQLModel, table=True):
    """One message to one recipient."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_card", "card_key", "chat_id"),
        # The sender's claim reads pending rows in id order up to its batch size.
        Index("ix_outbox_pending_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=300, unique=True)
    event_key: str = Field(max_length=200)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    platform: str | None = Field(default=None, max_length=20)  # None: the active platform
    chat_id: str | None = Field(default=None, max_length=100)  # resolved at delivery for persons
    text: str = Field(sa_column=Column(Text, nullable=False))
    buttons: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    card_key: str | None = Field(default=None, max_length=120)
    status: str = Field(default=OutboxStatus.pending, max_length=10)
    attempts: int = Field(default=0)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # The sender (worker id) of the latest claim; meaningful while claimed_until is ahead.
    # A claim whose worker is gone is taken again before its lease ends (bot/outbox.py).
    claimed_by: str | None = Field(default=None, max_length=40)
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    platform_message_id: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Set while the row waits for its person to bind (and kept once it expired): when it
    # gives up. Cleared when the row goes back to the queue.
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    def button_list(self) -> tuple[Button, ...]:
        """The stored buttons."""
        return tuple(Button(label=b["label"], command=b["command"]) for b in json.loads(self.buttons))

    def to_outbound(self) -> Outbound:
        """Back to the neutral message (for adapters)."""
        return Outbound(text=self.text, person_id=self.person_id, chat_id=self.chat_id,
                        buttons=self.button_list(), card_key=self.card_key,
                        event_key=self.event_key)


def recipient_key(message: Outbound, platform: str | None) -> str:
    """``p:12`` for a person, ``c:telegram:-100123`` for a chat."""
    if message.person_id is not None:
        return f"p:{message.person_id}"
    if message.chat_id is not None:
        return f"c:{platform or '*'}:{message.chat_id}"
    raise ValueError("an outbound message needs a person or a chat")


def enqueue(
    *,
    session: Session,
    message: Outbound,
    now: datetime,
    event_key: str | None = None,
    platform: str | None = None,
) -> OutboxMessage | None:
    """Add ``message`` to the outbox in the caller's transaction.

    Args:
        session: the caller's session; not committed here.
        message: with ``person_id`` or ``chat_id`` set.
        now: when it becomes deliverable.
        event_key: the cause; defaults to ``message.event_key``. Required one way or the other.
        platform: for ``chat_id`` recipients, the platform the chat id belongs to.

    Returns:
        The new row, or None when the same event was already queued for this recipient.
    """
    key = event_key or message.event_key
    if not key:
        raise ValueError("an outbox message needs an event key")
    dedupe = f"{key}|{recipient_key(message, platform)}"[:300]
    # Pending rows of this transaction are visible to the query (autoflush).
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe)).first():
        return None
    row = OutboxMessage(
        dedupe_key=dedupe, event_key=key[:200], person_id=message.person_id, platform=platform,
        chat_id=message.chat_id, text=message.text,
        buttons=_buttons_json(message),
        card_key=message.card_key, created_at=now, next_attempt_at=now,
    )
    session.add(row)
    return row


def _buttons_json(message: Outbound) -> str:
    return json.dumps([{"label": b.label, "command": b.command} for b in message.buttons], ensure_ascii=False)


def enqueue_all(*, session: Session, messages: Iterable[Outbound], now: datetime, event_key: str) -> None:
    """:func:`enqueue` for several recipients of one event, in one statement where the
    database can skip duplicates itself (see :func:`enqueue_each`)."""
    enqueue_each(session=session, items=((m, event_key, None) for m in messages), now=now)


def enqueue_each(*, session: Session, items: Iterable[tuple[Outbound, str, str | None]],
                 now: datetime) -> None:
    """:func:`enqueue` for several ``(message, event key, platform)``, in one statement
    where the database can skip duplicates itself (``INSERT … ON CONFLICT (dedupe_key) DO
    NOTHING`` on SQLite and PostgreSQL): no lookup before the insert, and the unique
    ``dedupe_key`` still makes a second enqueue of an event for the same recipient a
    no-op. In the caller's transaction (pending changes are flushed first); rows go in the
    given order. Other databases take :func:`enqueue` per message.
    """
    items = list(items)
    rows: dict[str, dict[str, object]] = {}
    for message, event_key, platform in items:
        if not event_key:
            raise ValueError("an outbox message needs an event key")
        dedupe = f"{event_key}|{recipient_key(message, platform)}"[:300]
        rows.setdefault(dedupe, {
            "dedupe_key": dedupe, "event_key": event_key[:200], "person_id": message.person_id,
            "platform": platform, "chat_id": message.chat_id, "text": message.text,
            "buttons": _buttons_json(message), "card_key": message.card_key,
            "status": OutboxStatus.pending.value, "attempts": 0, "created_at": now, "next_attempt_at": now})
    if not rows:
        return
    if session.get_bind().dialect.name not in ("sqlite", "postgresql"):
        for message, event_key, platform in items:
            enqueue(session=session, message=message, now=now, event_key=event_key, platform=platform)
        return
    held: Deferred | None = session.info.get(_DEFERRED)
    if held is not None and held.active:
        if any(isinstance(obj, OutboxMessage) for obj in session.new):
            session.flush()   # an earlier enqueue()'s row keeps its place before these
        held.hold(rows.values())
        return
    session.flush()   # rows added before these (and what they refer to) go first
    session.connection().execute(_insert_once(), list(rows.values()))


_DEFERRED = "core.outbox.deferred"   # session.info: the Deferred holding enqueue_each's rows


class Deferred:
    """Holds what :func:`enqueue_each` queues in ``session`` and writes it all with one
    statement at :meth:`write` — a chunk of due items (issue 21) queues its pings with one
    INSERT instead of one per item. Used as ``with Deferred(session) as held: …;
    held.write()`` (leaving the block without ``write`` drops what is held: the caller's
    transaction is being rolled back).

    Held rows are never missed or misplaced. Before any statement on the session's
    connection that names ``outbox_message`` (a read of the queue, an ORM insert), they
    are written, so they are seen where they would be had they been inserted at once.
    When the session begins a nested transaction (a savepoint), they are written first,
    so that what is held inside it is its own: rolling it back drops those (its
    statements are undone by the database as usual). Duplicates (the same event to the
    same recipient) are skipped in the database as before; among held rows the first wins.
    """

    def __init__(self, session: Session) -> None:
        self.session, self.active = session, False
        self.rows: dict[str, dict[str, object]] = {}
        self._writing = False

    def __enter__(self) -> Deferred:
        if _DEFERRED in self.session.info:
            raise RuntimeError("outbox rows are already held for this session")
        self.conn = self.session.connection()
        event.listen(self.conn, "before_cursor_execute", self._before)
        event.listen(self.session, "after_transaction_create", self._nested_begins)
        event.listen(self.session, "after_soft_rollback", self._rolled_back)
        self.session.info[_DEFERRED], self.active = self, True
        return self

    def __exit__(self, *_exc: object) -> None:
        self.active = False
        self.session.info.pop(_DEFERRED, None)
        event.remove(self.conn, "before_cursor_execute", self._before)
        event.remove(self.session, "after_transaction_create", self._nested_begins)
        event.remove(self.session, "after_soft_rollback", self._rolled_back)
        self.rows.clear()

    def hold(self, rows: Iterable[dict[str, object]]) -> None:
        for row in rows:
            self.rows.setdefault(str(row["dedupe_key"]), row)

    def write(self) -> None:
        """Flush the session, then insert what is held (in the order it was queued)."""
        self.session.flush()
        self._insert()

    def _insert(self) -> None:
        if self._writing or not self.rows:
            return
        rows, self.rows, self._writing = list(self.rows.values()), {}, True
        try:
            self.conn.execute(_insert_once(), rows)
        finally:
            self._writing = False

    def _before(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "outbox_message" in statement:
            self._insert()

    def _nested_begins(self, _session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:   # its SAVEPOINT is not emitted yet: this goes before it
            self._insert()

    def _rolled_back(self, _session: Session, transaction: SessionTransaction) -> None:
        # Everything held now was queued inside the transaction just rolled back: a
        # nested one (held rows were written when it began) or the chunk's own.
        self.rows.clear()


_ONCE_COLUMNS = ("dedupe_key", "event_key", "person_id", "platform", "chat_id", "text", "buttons", "card_key",
                 "status", "attempts", "created_at", "next_attempt_at")


@functools.cache
def _insert_once() -> TextClause:
    """``INSERT … ON CONFLICT (dedupe_key) DO NOTHING`` (SQLite and PostgreSQL spell it
    alike). Written out because SQLAlchemy does not cache the compiled form of its
    ``on_conflict_do_nothing()``: it would be compiled again for every call."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return text(f"INSERT INTO outbox_message ({', '.join(_ONCE_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in _ONCE_COLUMNS)}) ON CONFLICT (dedupe_key) DO NOTHING"
                ).bindparams(*(bindparam(c, type_=table.c[c].type) for c in _ONCE_COLUMNS))


def release_waiting(*, session: Session, person_id: int, now: datetime) -> int:
    """Put the rows waiting for ``person_id`` back in the queue, due ``now`` (in the
    caller's transaction, e.g. the one binding the person); returns how many.

    They keep their ids, so they go out in their original order, before anything queued
    after them.
    """
    rows = session.exec(select(OutboxMessage).where(OutboxMessage.person_id == person_id,
                                                    OutboxMessage.status == OutboxStatus.waiting))
    released = 0
    for row in rows:
        row.status, row.next_attempt_at, row.expires_at = OutboxStatus.pending, now, None
        row.claimed_until, row.last_error = None, None
        session.add(row)
        released += 1
    return released


def queued_for(*, session: Session, person_id: int, platform: str) -> int:
    """How many rows to ``person_id`` are still to be delivered on ``platform``."""
    query = select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.person_id == person_id, OutboxMessage.status == OutboxStatus.pending,
        or_(col(OutboxMessage.platform).is_(None), col(OutboxMessage.platform) == platform))
    return int(session.exec(query).one())
