"""Tables of the new-media account register (issue 18).

- :class:`Account`: one row per registered 政务新媒体 account, beside its ``site`` row (the
  reading register keeps name, kind, platform id and unit; this table keeps what the
  lifecycle rules need: owner, operator, approver, 备案, state and since when).
- :class:`AccountRequest` and :class:`AccountApproval`: an opening, change, closure (关停)
  or cancellation (注销) request and the approvals it passed, in the order the profile names.
- :class:`AccountDuty`: a tracked obligation with its rule, citation and deadline (备案,
  公告, 说明理由, 补办备案 …); open until someone marks it done.
- :class:`AccountPost`: one post of an account (from a platform export, a feed or ``/post``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class AccountState(StrEnum):
    opening = "opening"        # 开设申请中（未开通）
    active = "active"          # 在用
    closing = "closing"        # 关停（注销）申请已批准，公告期中
    closed = "closed"          # 已关停
    cancelled = "cancelled"    # 已注销


STATE_ZH = {AccountState.opening: "开设申请中", AccountState.active: "在用",
            AccountState.closing: "关停公告期", AccountState.closed: "已关停",
            AccountState.cancelled: "已注销"}


class FilingStatus(StrEnum):
    unfiled = "unfiled"        # 未备案
    filed = "filed"            # 已备案


FILING_ZH = {FilingStatus.unfiled: "未备案", FilingStatus.filed: "已备案"}


class RequestAction(StrEnum):
    open = "open"              # 开设
    change = "change"          # 变更
    close = "close"            # 关停
    cancel = "cancel"          # 注销


ACTION_ZH = {RequestAction.open: "开设", RequestAction.change: "变更", RequestAction.close: "关停",
             RequestAction.cancel: "注销"}


class RequestStatus(StrEnum):
    pending = "pending"        # 审批中
    approved = "approved"      # 已批准，办理中（备案、公告）
    rejected = "rejected"      # 未批准
    withdrawn = "withdrawn"    # 已撤回
    done = "done"              # 已办结


REQUEST_STATUS_ZH = {RequestStatus.pending: "审批中", RequestStatus.approved: "已批准、办理中",
                     RequestStatus.rejected: "未批准", RequestStatus.withdrawn: "已撤回",
                     RequestStatus.done: "已办结"}


class DutyStatus(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


class Account(SQLModel, table=True):
    """A registered new-media account (its ``site`` row has the name, kind, id and unit)."""

    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", unique=True)
    owner_unit: str = Field(default="", max_length=100)      # 主办单位
    operator: str = Field(default="", max_length=100)        # 运维人员（姓名）
    operator_id: int | None = Field(default=None, foreign_key="person.id")
    approver: str = Field(default="", max_length=100)        # 主管领导 / 审批人
    # A 市县政府 (government, not department) account: 宝鸡办法第十条 原则上不得关停.
    government: bool = Field(default=False)
    state: str = Field(default=AccountState.active, max_length=12)
    state_since: date                                        # the day the current state began
    opened_on: date | None = None                            # 开通日期
    filing_status: str = Field(default=FilingStatus.unfiled, max_length=10)
    filing_number: str = Field(default="", max_length=100)   # 备案编号
    filed_on: date | None = None
    feed_url: str = Field(default="", max_length=1000)       # RSS/Atom/JSON feed, if any
    comments_open: bool = Field(default=True)                # 私信、评论、留言 open (宝鸡第二十一条)
    note: str = Field(default="", max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AccountRequest(SQLModel, table=True):
    """An opening, change, closure or cancellation request."""

    __tablename__ = "account_request"
    __table_args__ = (Index("ix_account_request_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    action: str = Field(max_length=10)                        # RequestAction
    detail: str = Field(default="", max_length=500)           # what changes, or why it closes
    status: str = Field(default=RequestStatus.pending, max_length=10)
    # The approvers the profile named when the request was made (JSON list of labels, in
    # order) and the citation; a later profile change does not alter a running request.
    approvals_needed: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    citation: str = Field(default="", max_length=200)
    requested_by: str = Field(default="", max_length=100)
    requested_by_id: int | None = Field(default=None, foreign_key="person.id")
    requested_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    notice_started_on: date | None = None                     # 公告 published (change/close/cancel)
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    finished_by: str = Field(default="", max_length=100)


class AccountApproval(SQLModel, table=True):
    """One approver's decision on a request (``step`` counts from 0 in the profile's order)."""

    __tablename__ = "account_approval"
    __table_args__ = (UniqueConstraint("request_id", "step", name="uq_account_approval_step"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="account_request.id", index=True)
    step: int
    label: str = Field(max_length=100)                        # the approver as the article names it
    approved: bool
    by_name: str = Field(default="", max_length=100)
    by_id: int | None = Field(default=None, foreign_key="person.id")
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    note: str = Field(default="", max_length=300)             # e.g. 批准文号, or why not


class AccountDuty(SQLModel, table=True):
    """Something an account's unit must do, with the rule that says so and, where the
    article sets one, a deadline (``due_at`` None: the article names no time limit)."""

    __tablename__ = "account_duty"
    __table_args__ = (Index("ix_account_duty_open", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    request_id: int | None = Field(default=None, foreign_key="account_request.id")
    kind: str = Field(max_length=20)                          # filing / notice / explain / backfill / …
    rule_id: str = Field(max_length=20)                       # LIFE-1, FRESH-4 …
    citation: str = Field(default="", max_length=200)         # 云南办法第十七条 / 参照《…》第十七条
    title: str = Field(max_length=200)                        # what to do, in Chinese
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    due_last_day: date | None = None
    provisional: bool = Field(default=False)                  # the deadline's year has no holiday data
    # How the deadline was counted (start, amount, "workdays"/"days"/"months"), so that a
    # provisional one is counted again when the year's holiday data arrives.
    basis_start: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    basis_amount: int | None = None
    basis_unit: str = Field(default="", max_length=10)
    # The earliest moment the duty may be done (a closure's notice period): None: any time.
    not_before: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    status: str = Field(default=DutyStatus.open, max_length=10)
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    done_by: str = Field(default="", max_length=100)
    reference: str = Field(default="", max_length=200)        # 备案编号, 说明 …


class AccountPost(SQLModel, table=True):
    """One post of an account; ``key`` keeps a re-imported post from counting twice."""

    __tablename__ = "account_post"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_account_post_key"),
                      Index("ix_account_post_time", "account_id", "posted_at"))

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    posted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    title: str = Field(default="", max_length=300)
    original: bool = Field(default=False)                     # 原创
    source: str = Field(default="chat", max_length=10)        # import / feed / chat
    key: str = Field(max_length=64)                           # sha256 of the post's identity
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
