"""Reply items: a message from the public that must be answered within a legal period."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, Index, Text
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class ReplyCategory(StrEnum):
    """What kind of message it is; each has its rule (REPLY-1/2/3/5)."""

    error_report = "error_report"    # 我为政府网站找错: 3 working days (REPLY-1)
    consultation = "consultation"    # 咨询、建议: 7 working days (REPLY-2)
    verification = "verification"    # 需查证办理: 15 working days (REPLY-3)
    objection = "objection"          # 对已发布信息的异议: 7, extendable to 30 (REPLY-5)


CATEGORY_ZH = {
    ReplyCategory.error_report: "找错", ReplyCategory.consultation: "咨询建议",
    ReplyCategory.verification: "需查证办理", ReplyCategory.objection: "异议",
}
CATEGORY_ALIASES = {
    "找错": ReplyCategory.error_report, "纠错": ReplyCategory.error_report,
    "咨询": ReplyCategory.consultation, "建议": ReplyCategory.consultation,
    "咨询建议": ReplyCategory.consultation, "查证": ReplyCategory.verification,
    "办理": ReplyCategory.verification, "需查证办理": ReplyCategory.verification,
    "查证办理": ReplyCategory.verification, "异议": ReplyCategory.objection,
} | {c.value: c for c in ReplyCategory}
# (rule id, value key) that sets each category's period.
CATEGORY_RULE = {
    ReplyCategory.error_report: ("REPLY-1", "reply"),
    ReplyCategory.consultation: ("REPLY-2", "reply"),
    ReplyCategory.verification: ("REPLY-3", "reply"),
    ReplyCategory.objection: ("REPLY-5", "decide"),
}


class ReplyChannel(StrEnum):
    """Where the message came in."""

    website = "website"          # 网站留言
    error_portal = "error_portal"  # 我为政府网站找错
    new_media = "new_media"      # 新媒体评论/私信
    other = "other"


CHANNEL_ZH = {ReplyChannel.website: "网站留言", ReplyChannel.error_portal: "我为政府网站找错",
              ReplyChannel.new_media: "新媒体评论/私信", ReplyChannel.other: "其他"}
CHANNEL_ALIASES = {v: k for k, v in CHANNEL_ZH.items()} | {
    "留言": ReplyChannel.website, "找错": ReplyChannel.error_portal,
    "新媒体": ReplyChannel.new_media, "评论": ReplyChannel.new_media,
    "私信": ReplyChannel.new_media,
} | {c.value: c for c in ReplyChannel}


class ReplyStatus(StrEnum):
    open = "open"            # waiting for a reply
    answered = "answered"    # replied (答复)
    explained = "explained"  # cannot be handled; an explanation was given (REPLY-3)


STATUS_ZH = {ReplyStatus.open: "待答复", ReplyStatus.answered: "已答复",
             ReplyStatus.explained: "已说明"}


class ReplyItem(SQLModel, table=True):
    """One message from the public and the deadline for answering it.

    ``due_at`` is the effective deadline: the category's period (plus approved
    extensions, for objections) and never later than ``ceiling_at`` (REPLY-4).
    """

    __tablename__ = "reply_item"
    __table_args__ = (Index("ix_reply_item_open_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)          # MSG-20261123-001
    external_ref: str | None = Field(default=None, max_length=100, unique=True)
    channel: str = Field(max_length=20)
    category: str = Field(max_length=20)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    unit: str = Field(default="", max_length=100)
    assignee_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_last_day: date = Field(sa_column=Column(Date(), nullable=False))
    ceiling_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    provisional: bool = Field(default=False)
    rule_id: str = Field(max_length=20)
    citation: str = Field(max_length=200)
    extended_workdays: int = Field(default=0)
    extension_requested: int | None = Field(default=None)
    extension_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    extension_requested_by_id: int | None = Field(default=None, foreign_key="person.id")
    status: str = Field(default=ReplyStatus.open, max_length=12)
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    closed_by_id: int | None = Field(default=None, foreign_key="person.id")
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    escalation_level: int = Field(default=0)   # 0 none, 1 assignee, 2 leaders, 3 principals
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    @property
    def is_open(self) -> bool:
        """Still waiting for a reply."""
        return self.status == ReplyStatus.open

    def on_time(self) -> bool | None:
        """Whether it was closed by its deadline (None while open)."""
        if self.closed_at is None:
            return None
        return self.closed_at <= self.due_at
