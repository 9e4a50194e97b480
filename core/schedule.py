"""Due items: every deadline, reminder and escalation is a row with a due time.

Domains call :func:`schedule` in their own transaction; the scheduler's tick (in
``bot/scheduler.py``) finds due rows with one indexed query and hands each to the
processor registered for its ``kind``. Nothing is kept in memory, so a restart loses
nothing. ``JobState`` remembers when each cron job last fired, for catch-up after
downtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Column, Index, Text, bindparam, insert, inspect
from sqlmodel import Field, Session, SQLModel, col, select

from core.db import UTCDateTime


class CronRegistry(Protocol):
    """What a domain needs of the scheduler to hand it processors and cron jobs."""

    def register(self, kind: str, fn: Any) -> None: ...
    def register_cron(self, name: str, fn: Any, *, run_at_start: bool = False, shared: bool = False,
                      **cron_fields: object) -> None: ...


class DueStatus(StrEnum):
    pending = "pending"
    done = "done"
    cancelled = "cancelled"
    failed = "failed"


class DueItem(SQLModel, table=True):
    """Something to do at ``due_at``."""

    __tablename__ = "due_item"
    __table_args__ = (Index("ix_due_item_pending", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)   # e.g. incident:INC-…:escalate:1
    kind: str = Field(max_length=60)                # the processor name
    ref: str = Field(max_length=100, index=True)    # the entity it is about
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default=DueStatus.pending, max_length=10)
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    attempts: int = Field(default=0)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    processed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    def data(self) -> dict[str, Any]:
        """The payload as a dict."""
        data: dict[str, Any] = json.loads(self.payload or "{}")
        return data


class JobState(SQLModel, table=True):
    """When a cron job last fired (the scheduled fire time, not the run time)."""

    __tablename__ = "job_state"

    name: str = Field(primary_key=True, max_length=100)
    last_fire_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_run_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Due(NamedTuple):
    """One due item to create or move with :func:`schedule_many`."""

    key: str
    kind: str
    ref: str
    due_at: datetime
    payload: dict[str, Any] | None = None


_NEW_KEYS = "core.schedule.new"   # session.info: key -> DueItem added and not flushed yet
_KEYS_PER_QUERY = 500             # keys per ``WHERE key IN (…)`` (SQLite's parameter limit)


def _unflushed(session: Session, key: str) -> DueItem | None:
    """The due item ``key`` that this session added and has not flushed yet, if any."""
    pending: dict[str, DueItem] = session.info.get(_NEW_KEYS, {})
    item = pending.get(key)
    if item is None:
        return None
    state = inspect(item, raiseerr=False)
    if state is not None and state.pending and state.session is session:
        return item
    del pending[key]   # flushed (a query finds it now), expunged or rolled back
    return None


def _existing(session: Session, keys: list[str]) -> dict[str, DueItem]:
    """The due items of ``keys`` this transaction sees, by key, without flushing.

    Equivalent to an autoflushed ``SELECT … WHERE key IN (…)``: an item added and not
    flushed yet is found in the session instead, and a flush only happens if a due item
    is to be deleted (rare; a query must not find it then). Pending changes of items in
    the database need no flush: the query returns the session's own (changed) objects.
    """
    found: dict[str, DueItem] = {}
    rest = []
    for key in keys:
        item = _unflushed(session, key)
        if item is not None:
            found[key] = item
        else:
            rest.append(key)
    if not rest:
        return found
    if any(isinstance(obj, DueItem) for obj in session.deleted):
        session.flush()
    with session.no_autoflush:
        for start in range(0, len(rest), _KEYS_PER_QUERY):
            part = rest[start:start + _KEYS_PER_QUERY]
            found.update((item.key, item) for item in session.exec(_BY_KEYS, params={"keys": part}))
    return found


_BY_KEYS = select(DueItem).where(col(DueItem.key).in_(bindparam("keys", expanding=True)))   # built once


def _body(due: Due) -> str:
    return json.dumps(due.payload or {}, ensure_ascii=False, default=str)


def _put(session: Session, existing: DueItem | None, due: Due, now: datetime) -> DueItem:
    body = _body(due)
    if existing is not None:
        existing.due_at, existing.payload, existing.kind, existing.ref = due.due_at, body, due.kind, due.ref
        existing.status, existing.attempts, existing.last_error = DueStatus.pending, 0, None
        session.add(existing)
        return existing
    item = DueItem(key=due.key, kind=due.kind, ref=due.ref, due_at=due.due_at, payload=body, created_at=now)
    session.add(item)
    session.info.setdefault(_NEW_KEYS, {})[due.key] = item
    return item


def schedule(
    *,
    session: Session,
    key: str,
    kind: str,
    ref: str,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> DueItem:
    """Create (or move) the pending due item ``key`` in the caller's transaction.

    The lookup does not flush the session (issue 21: registering a dozen items cost a
    dozen flushes); an item this session added earlier is found all the same.
    """
    return _put(session, _existing(session, [key]).get(key), Due(key, kind, ref, due_at, payload), now)


def schedule_many(*, session: Session, items: Iterable[Due], now: datetime) -> None:
    """:func:`schedule` for each of ``items``, in order, with one query for all their keys
    and one INSERT for the new ones (issue 21: a new incident registers a dozen).

    The same outcome as calling :func:`schedule` for each in turn: a key already there
    (in the database or added to this session) is moved, and a key given twice ends
    with its last values. The new rows are written at once, on the session's connection
    (nothing else is flushed); a query in this transaction finds them.
    """
    dues = list(items)
    existing = _existing(session, list(dict.fromkeys(due.key for due in dues)))
    new: dict[str, Due] = {}
    for due in dues:
        item = existing.get(due.key)
        if item is not None:
            _put(session, item, due, now)
        else:
            new[due.key] = due   # a key given twice: the last wins, in its first place
    if new:
        session.connection().execute(_INSERT, [
            {"key": due.key, "kind": due.kind, "ref": due.ref, "due_at": due.due_at, "status": DueStatus.pending.value,
             "payload": _body(due), "attempts": 0, "created_at": now} for due in new.values()])


_INSERT = insert(DueItem.__table__)  # type: ignore[attr-defined]   # built once


def cancel(*, session: Session, key: str) -> bool:
    """Cancel the pending due item ``key``; True if there was one."""
    item = session.exec(select(DueItem).where(DueItem.key == key,
                                              DueItem.status == DueStatus.pending)).first()
    if item is None:
        return False
    item.status = DueStatus.cancelled
    session.add(item)
    return True


def cancel_for(*, session: Session, ref: str) -> int:
    """Cancel every pending due item about ``ref`` (e.g. a closed incident)."""
    items = session.exec(select(DueItem).where(DueItem.ref == ref,
                                               DueItem.status == DueStatus.pending)).all()
    for item in items:
        item.status = DueStatus.cancelled
        session.add(item)
    return len(items)
