"""Where each registered account stands: its state and 备案, when it last posted (and
last posted an original), and the duties still open for it with their deadlines.

:func:`account_statuses` reads it in a few queries (one for the last posts, one for the
open duties, whatever the number of accounts); :func:`status_dicts` gives plain dicts for
JSON (dates as ISO strings, deadlines in Asia/Shanghai) and :func:`status_text` a Chinese
block per account, short enough for a phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from accounts.models import Account, AccountDuty, AccountPost, DutyStatus
from accounts.register import filing_status_zh, filing_zh, list_accounts, platform_zh, state_zh
from core.clock import from_db, local
from core.words_zh import by_when_zh, day_word
from roster.models import Site


@dataclass(frozen=True)
class OpenDuty:
    """One open duty of an account."""

    id: int
    kind: str
    rule_id: str
    citation: str
    title: str
    due_at: datetime | None
    provisional: bool

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "rule_id": self.rule_id, "citation": self.citation,
                "title": self.title, "due": local(self.due_at).isoformat() if self.due_at else None,
                "provisional": self.provisional, "overdue": self.due_at is not None and self.due_at <= now}

    def zh(self, now: datetime) -> str:
        """``补办备案（LIFE-3，云南办法第十七条）：11月26日 24:00 前（还剩3天）``."""
        basis = "，".join(p for p in (self.rule_id, self.citation) if p)
        when = by_when_zh(self.due_at, now) if self.due_at is not None else "规定未设期限"
        mark = "（暂定：当年节假日安排未发布）" if self.provisional and self.due_at is not None else ""
        return f"{self.title}（{basis}）：{when}{mark}"


@dataclass(frozen=True)
class AccountStatus:
    """Where one account stands."""

    account: Account
    site: Site
    last_post: date | None
    last_original_post: date | None
    duties: tuple[OpenDuty, ...]

    def as_dict(self, now: datetime) -> dict[str, Any]:
        a, s = self.account, self.site
        return {"id": a.id, "name": s.name, "platform": s.kind, "platform_zh": platform_zh(s),
                "platform_id": s.url, "unit": s.unit or a.owner_unit, "government": a.government,
                "state": a.state, "state_zh": state_zh(a),
                "state_since": a.state_since.isoformat(),
                "filing": a.filing_status, "filing_zh": filing_status_zh(a),
                "filing_number": a.filing_number, "filed_on": a.filed_on.isoformat() if a.filed_on else None,
                "last_post": self.last_post.isoformat() if self.last_post else None,
                "last_original_post": self.last_original_post.isoformat() if self.last_original_post else None,
                "duties": [d.as_dict(now) for d in self.duties]}

    def zh(self, now: datetime) -> str:
        """The account's block: name and unit, state and 备案, last posts, open duties."""
        a, s = self.account, self.site
        today = local(now).date()
        since = a.state_since
        lines = [f"{s.name}（{platform_zh(s)}）｜{s.unit or a.owner_unit}",
                 f"状态：{state_zh(a)}，自{since.year}年{since.month}月{since.day}日起；{filing_zh(a)}"]
        if self.last_post is None:
            lines.append("最近发布：无记录")
        else:
            original = day_word(self.last_original_post, today) if self.last_original_post else "无记录"
            lines.append(f"最近发布：{day_word(self.last_post, today)}；最近原创：{original}")
        lines.extend(f"待办：{d.zh(now)}" for d in self.duties)
        return "\n".join(lines)


def _last_posts(session: Session, ids: list[int], *, original: bool) -> dict[int, date]:
    stmt = select(AccountPost.account_id, func.max(AccountPost.posted_at)).where(col(AccountPost.account_id).in_(ids))
    if original:
        stmt = stmt.where(AccountPost.original == True)  # noqa: E712
    found: dict[int, date] = {}
    for account_id, posted_at in session.exec(stmt.group_by(col(AccountPost.account_id))):
        instant = from_db(posted_at)
        if instant is not None:
            found[account_id] = local(instant).date()
    return found


def _open_duties(session: Session, ids: list[int]) -> dict[int, list[OpenDuty]]:
    stmt = (select(AccountDuty).where(col(AccountDuty.account_id).in_(ids), AccountDuty.status == DutyStatus.open)
            .order_by(col(AccountDuty.due_at).is_(None), col(AccountDuty.due_at), col(AccountDuty.id)))
    found: dict[int, list[OpenDuty]] = {}
    for duty in session.exec(stmt):
        found.setdefault(duty.account_id, []).append(OpenDuty(
            id=duty.id or 0, kind=duty.kind, rule_id=duty.rule_id, citation=duty.citation, title=duty.title,
            due_at=from_db(duty.due_at), provisional=duty.provisional))
    return found


def account_statuses(*, session: Session, unit: str | None = None) -> list[AccountStatus]:
    """Every registered account (of 主办单位 ``unit`` when given), by unit and name."""
    pairs = list_accounts(session=session, unit=unit)
    ids = [a.id for a, _ in pairs if a.id is not None]
    if not ids:
        return []
    posts, originals = _last_posts(session, ids, original=False), _last_posts(session, ids, original=True)
    duties = _open_duties(session, ids)
    return [AccountStatus(account=a, site=s, last_post=posts.get(a.id or 0),
                          last_original_post=originals.get(a.id or 0), duties=tuple(duties.get(a.id or 0, ())))
            for a, s in pairs]


def status_dicts(*, session: Session, now: datetime, unit: str | None = None) -> list[dict[str, Any]]:
    """:func:`account_statuses` as plain dicts for JSON: ``name``, ``platform`` (code) and
    ``platform_zh``, ``unit``, ``state``/``state_zh``/``state_since``, ``filing``/
    ``filing_zh``/``filing_number``/``filed_on``, ``last_post``, ``last_original_post``
    (ISO dates in Asia/Shanghai, or None) and ``duties`` (``kind``, ``rule_id``,
    ``citation``, ``title``, ``due`` as an ISO instant in Asia/Shanghai or None,
    ``provisional``, ``overdue``)."""
    return [s.as_dict(now) for s in account_statuses(session=session, unit=unit)]


def status_text(*, session: Session, now: datetime, unit: str | None = None) -> str:
    """The Chinese rendering: a count line, then one block per account."""
    statuses = account_statuses(session=session, unit=unit)
    if not statuses:
        return "还没有登记政务新媒体账号。"
    open_count = sum(len(s.duties) for s in statuses)
    head = f"政务新媒体账号 {len(statuses)} 个" + (f"，待办 {open_count} 项" if open_count else "，无待办")
    return "\n\n".join([head, *(s.zh(now) for s in statuses)])
