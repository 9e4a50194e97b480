"""Tables of site watch (issue 17).

- :class:`SiteColumn`: a column (栏目) of a registered website, with its kind (news,
  notices, other) that maps to the profile's FRESH-1 limits.
- :class:`Probe`: one availability probe of a homepage or column (status, time, error):
  the monthly availability is computed from these.
- :class:`Finding`: something wrong found on a site, stored once while it persists
  (``key``) and closed when a later check no longer sees it.
- :class:`Baseline`: the last accepted state of a homepage (normalised text hash, link
  set, external scripts, iframes, meta refresh, the HTML itself), compared on every run.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class ColumnKind(StrEnum):
    news = "news"          # 动态要闻类
    notices = "notices"    # 通知公告、政策文件类
    other = "other"        # 其他


COLUMN_KIND_ZH = {ColumnKind.news: "动态要闻", ColumnKind.notices: "通知公告·政策文件", ColumnKind.other: "其他"}


class FindingKind(StrEnum):
    unreachable = "unreachable"
    slow = "slow"
    cert_expiry = "cert_expiry"
    stale_column = "stale_column"
    empty_column = "empty_column"
    broken_link = "broken_link"
    wrong_term = "wrong_term"
    sensitive_term = "sensitive_term"
    hidden_link = "hidden_link"
    tampered = "tampered"
    availability = "availability"      # the month's failure share passed a threshold


FINDING_ZH = {
    FindingKind.unreachable: "网站无法访问", FindingKind.slow: "访问缓慢", FindingKind.cert_expiry: "证书即将过期",
    FindingKind.stale_column: "栏目更新不及时", FindingKind.empty_column: "空白栏目",
    FindingKind.broken_link: "链接不可用", FindingKind.wrong_term: "错误表述", FindingKind.sensitive_term: "敏感词",
    FindingKind.hidden_link: "隐藏链接", FindingKind.tampered: "页面被篡改", FindingKind.availability: "月度可用率不达标",
}


class FindingStatus(StrEnum):
    open = "open"
    closed = "closed"


class SiteColumn(SQLModel, table=True):
    """A column of a website, read for freshness (FRESH-1) and emptiness."""

    __tablename__ = "site_column"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_site_column_name"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    name: str = Field(max_length=100)
    url: str = Field(max_length=1000)
    kind: str = Field(default=ColumnKind.news, max_length=10)
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Probe(SQLModel, table=True):
    """One availability probe of a URL of a site."""

    __tablename__ = "watch_probe"
    # Every probe query names the site and whether it is the homepage (column_id NULL) and
    # reads only ``at`` and ``ok``: the index answers it alone (a month of 5-minute probes
    # of 500 sites is counted without reading the table). ``at`` alone: the last hour
    # (/metrics) and the purge of old probes.
    __table_args__ = (Index("ix_watch_probe_site_column_at", "site_id", "column_id", "at", "ok"),
                      Index("ix_watch_probe_at", "at"))

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    column_id: int | None = Field(default=None, foreign_key="site_column.id")   # None: the homepage
    url: str = Field(max_length=1000)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ok: bool
    status: int | None = None
    elapsed_ms: int | None = None
    error: str = Field(default="", max_length=200)


class Finding(SQLModel, table=True):
    """A problem found on a site; one row while it persists."""

    __tablename__ = "watch_finding"
    __table_args__ = (Index("ix_watch_finding_open", "status", "site_id"),
                      Index("ix_watch_finding_key", "site_id", "kind", "key"))

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    kind: str = Field(max_length=20)                        # FindingKind
    key: str = Field(max_length=64)                         # stable identity within site and kind
    url: str = Field(default="", max_length=1000)
    detail: str = Field(default="", max_length=500)         # Chinese, shown to people
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    status: str = Field(default=FindingStatus.open, max_length=10)
    first_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    incident_number: str = Field(default="", max_length=40)  # the incident it opened, if any


class Baseline(SQLModel, table=True):
    """The accepted state of a page (a homepage), compared on every run."""

    __tablename__ = "watch_baseline"
    __table_args__ = (UniqueConstraint("site_id", "url", name="uq_watch_baseline_url"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    url: str = Field(max_length=1000)
    taken_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    text_sha256: str = Field(max_length=64)
    # JSON lists: sorted link targets, external script sources, iframe sources; meta refresh.
    links: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    scripts: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    iframes: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    meta_refresh: str = Field(default="", max_length=1000)
    html: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
