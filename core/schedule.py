"""Due items: every deadline, reminder and escalation is a row with a due time.

Domains call :func:`schedule` in their own transaction; the scheduler's tick (in
``bot/scheduler.py``) finds due rows with one indexed query and hands each to the
processor registered for its ``kind``. Nothing is kept in memory, so a restart loses
nothing. ``JobState`` remembers when each cron job last fired, for catch-up after
downtime.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, Session, SQLModel, select

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
    """Create (or move) the pending due item ``key`` in the caller's transaction."""
    existing = session.exec(select(DueItem).where(DueItem.key == key)).first()
    body = json.dumps(payload or {}, ensure_ascii=False, default=str)
    if existing is not None:
        existing.due_at, existing.payload, existing.kind, existing.ref = due_at, body, kind, ref
        existing.status, existing.attempts, existing.last_error = DueStatus.pending, 0, None
        session.add(existing)
        return existing
    item = DueItem(key=key, kind=kind, ref=ref, due_at=due_at, payload=body, created_at=now)
    session.add(item)
    return item


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
