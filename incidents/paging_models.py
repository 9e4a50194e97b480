"""Phone paging (电话/短信提醒, issue 19 item 6): the ``page`` table and the paging policy.

A page is one SMS or one text-to-speech voice call to one person about one ladder ping of
one incident. It is written as a ``queued`` row in the transaction that escalates (like an
``outbox_message``), and a worker in the chat layer (``bot/paging/sender.py``) sends it
through the cloud provider: ``queued`` → ``sent`` (the provider accepted it; its message
or call id kept) or, after the retries, ``failed``; ``acked`` once the person answered it
(an SMS reply, a key pressed in the call); ``cancelled`` when the incident was
acknowledged or ended before the page went out (nobody is woken for nothing).

``dedupe_key`` is the ladder ping's event key plus the person and the channel, unique: a
rung never pages the same person twice on the same channel, however often the
escalation that caused it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime
from incidents.models import Grade


class PageChannel(StrEnum):
    sms = "sms"        # 短信
    voice = "voice"    # 语音电话 (text to speech)


CHANNEL_ZH = {PageChannel.sms: "短信", PageChannel.voice: "语音电话"}


class PageStatus(StrEnum):
    queued = "queued"        # waiting for the worker (or a retry)
    sent = "sent"            # the provider accepted it
    failed = "failed"        # gave up after the retries, or refused for good
    acked = "acked"          # the person answered it (SMS reply, key pressed)
    cancelled = "cancelled"  # the incident was acknowledged or ended before it went out


STATUS_ZH = {PageStatus.queued: "待发送", PageStatus.sent: "已发送", PageStatus.failed: "发送失败",
             PageStatus.acked: "已回复确认", PageStatus.cancelled: "已取消"}
#: Grades in rising order (a quiet rule's ``min_grade`` lets this grade and higher through).
GRADE_RANK = {Grade.general: 0, Grade.major: 1, Grade.special: 2}


class Page(SQLModel, table=True):
    """One SMS or voice call to one person about one ladder ping of one incident."""

    __tablename__ = "page"
    __table_args__ = (
        Index("ix_page_due", "status", "next_attempt_at"),
        Index("ix_page_phone", "phone", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=300, unique=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    # The mainland mobile number (11 digits) as it was when the page was queued.
    phone: str = Field(max_length=20)
    channel: str = Field(max_length=10)                # PageChannel
    run: str = Field(max_length=10)                    # ack / step / manual / graded
    level: int = Field(default=0)                      # the ladder rung
    status: str = Field(default=PageStatus.queued, max_length=10)
    provider: str = Field(default="", max_length=20)   # aliyun / tencent, once sent
    provider_ref: str | None = Field(default=None, max_length=100)  # BizId / SerialNo / CallId
    attempts: int = Field(default=0)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    acked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    @property
    def out_id(self) -> str:
        """What the provider hands back in its reports (Alibaba ``OutId``, Tencent ``SessionContext``)."""
        return f"page-{self.id}"


@dataclass(frozen=True)
class QuietRule:
    """A person's quiet hours: inside ``start``–``end`` (office time, may cross midnight)
    only incidents of ``min_grade`` or higher page them (None: every paging grade), and
    with ``sms_only`` by SMS only (no voice call)."""

    start: time
    end: time
    sms_only: bool = False
    min_grade: Grade | None = None


@dataclass(frozen=True)
class PagingPolicy:
    """Which ladder pings also page by phone (``[paging]`` in the config).

    A ping pages when the incident's grade is one of ``grades`` and its rung is at least
    ``min_rung`` — or, at night (``night_start``–``night_end``, office time),
    ``night_min_rung``. ``channels`` says how per grade (default: SMS); ``repeats`` whether
    the repeats after the top rung page too; ``steps`` whether the ladder of an overdue step
    pages (by default only the acknowledgement ladder and manual escalations do: once
    someone acknowledged, the people concerned are awake). ``quiet`` holds the quiet rules
    by person name.
    """

    grades: frozenset[Grade] = frozenset({Grade.major, Grade.special})
    min_rung: int = 1
    night_start: time = time(22, 0)
    night_end: time = time(7, 0)
    night_min_rung: int = 0
    channels: Mapping[Grade, tuple[PageChannel, ...]] = field(default_factory=dict)
    repeats: bool = True
    steps: bool = False
    quiet: Mapping[str, QuietRule] = field(default_factory=dict)
