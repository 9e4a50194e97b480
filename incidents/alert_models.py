"""The table of alert intake (issue 19): one row per alert a monitoring system sent.

An alert is known by its sender (``source``, the name of its ``[alerts.sources.<name>]``
section) and the sender's ``fingerprint`` (Alertmanager's, an Uptime Kuma monitor's id,
the generic shape's own): that pair is unique, which is what keeps a repeat from opening
a second incident, even when two workers receive the same alert at once (the second
insert fails, its sender gets a 500 and retries, and then finds the row).

The row follows the alert's latest incident (``incident_number``); an earlier incident
keeps its own timeline. ``state`` is whether the sender says the alert is firing now.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime

#: The longest fingerprint kept as sent; longer ones are kept as their SHA-256.
MAX_FINGERPRINT = 200
MAX_TITLE = 200
MAX_SUMMARY = 1000


class AlertState(StrEnum):
    active = "active"        # the sender says it is firing
    resolved = "resolved"    # the sender said it is resolved


class IncidentAlert(SQLModel, table=True):
    """One alert of one sender, the incident it opened, and where it stands."""

    __tablename__ = "incident_alert"
    __table_args__ = (UniqueConstraint("source", "fingerprint", name="uq_incident_alert_fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)
    fingerprint: str = Field(max_length=MAX_FINGERPRINT)
    incident_number: str = Field(max_length=20, index=True)
    state: str = Field(default=AlertState.active, max_length=10)
    # How many times it started firing (1 + each firing after a resolution).
    fire_count: int = Field(default=1)
    title: str = Field(default="", max_length=MAX_TITLE)
    # The last notification about it, in short (never the whole payload).
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    first_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    @property
    def is_active(self) -> bool:
        return self.state == AlertState.active
