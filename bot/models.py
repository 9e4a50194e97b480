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
