"""Tables of the chat core itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class ProcessedUpdate(SQLModel, table=True):
    """The ledger of platform updates already handled (a redelivery is ignored)."""

    __tablename__ = "processed_update"
    __table_args__ = (UniqueConstraint("platform", "update_id", name="uq_processed_update"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    update_id: str = Field(max_length=100)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class PendingPrompt(SQLModel, table=True):
    """A question the bot asked one person in one chat: their next plain-text message is
    appended to ``prefix`` (a command) instead of being read on its own. Guided dialogs
    (``/incident new`` with arguments missing) are built from these."""

    __tablename__ = "pending_prompt"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "sender_id", name="uq_pending_prompt"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    chat_id: str = Field(max_length=100)
    sender_id: str = Field(max_length=100)
    prefix: str = Field(max_length=500)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ChatAlias(SQLModel, table=True):
    """A chat the platform moved to a new id (a Telegram group upgraded to a supergroup).

    Messages still addressed to ``old_chat_id`` (say, from the configuration) go to
    ``new_chat_id``; the admins are told once to update the configuration.
    """

    __tablename__ = "chat_alias"
    __table_args__ = (UniqueConstraint("platform", "old_chat_id", name="uq_chat_alias_old"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    old_chat_id: str = Field(max_length=100)
    new_chat_id: str = Field(max_length=100)
    migrated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
