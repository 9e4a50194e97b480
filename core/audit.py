"""The append-only event log every entity writes to (DESIGN property 8, CHECK-2).

Rows are only ever inserted: who did what, when, to which entity, from which state to
which. Reports and timelines are built from it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, Session, SQLModel, col, select

from core.db import UTCDateTime


class AuditEvent(SQLModel, table=True):
    """One recorded fact about one entity."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity", "entity_type", "entity_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    entity_type: str = Field(max_length=40)
    entity_id: str = Field(max_length=64)
    action: str = Field(max_length=60)
    actor_id: int | None = Field(default=None)
    actor: str = Field(default="system", max_length=100)
    from_state: str | None = Field(default=None, max_length=40)
    to_state: str | None = Field(default=None, max_length=40)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))

    def details(self) -> dict[str, Any]:
        """The detail JSON as a dict."""
        data: dict[str, Any] = json.loads(self.detail or "{}")
        return data

    def actor_zh(self) -> str:
        """Who acted, as a chat user reads it: the person's name then, or a Chinese label
        for the machine actors (``system``, ``calendar``, ``cli``, ...)."""
        return actor_zh(self.actor)


# Machine actors written by the scheduler, the CLI and the demo; people are recorded by name.
ACTOR_ZH = {"system": "系统", "calendar": "系统（节假日安排更新）", "cli": "管理员（命令行）",
            "console": "控制台", "demo": "演示"}


def actor_zh(actor: str) -> str:
    """``系统`` for ``system`` and the like; a person's name unchanged."""
    return ACTOR_ZH.get(actor, actor)


def record(
    *,
    session: Session,
    at: datetime,
    entity_type: str,
    entity_id: str | int,
    action: str,
    actor: str = "system",
    actor_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one event (in the caller's transaction)."""
    event = AuditEvent(
        at=at, entity_type=entity_type, entity_id=str(entity_id), action=action,
        actor=actor, actor_id=actor_id, from_state=from_state, to_state=to_state,
        detail=json.dumps(detail, ensure_ascii=False, default=str),
    )
    session.add(event)
    return event


def history(*, session: Session, entity_type: str, entity_id: str | int) -> list[AuditEvent]:
    """An entity's events, oldest first."""
    stmt = (select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == str(entity_id))
            .order_by(col(AuditEvent.id)))
    return list(session.exec(stmt))
