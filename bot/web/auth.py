"""Signing in to the web board without passwords, and the iCal feed tokens.

* ``/web`` in chat calls :func:`issue_link`: a random token (256 bits) whose SHA-256 is
  stored, valid ``[web] link_minutes``. Opening the link shows one button; pressing it
  (a POST, so a chat platform's link preview cannot spend the link) calls
  :func:`redeem_link`, which marks the link used and opens a session.
* A session is another random token: the cookie holds it, the table its hash; it ends at
  ``expires_at`` or when revoked (``dutybot web revoke``, or 退出 on the board).
* Every form carries :func:`csrf_token`, an HMAC of the session token, checked in
  constant time on every POST (with the ``Origin`` header, see ``bot.web.board``).
* An iCal feed token is a third kind: long-lived, one per person (a new one revokes the
  old), revocable (``dutybot web ical``).

Every function works in the caller's transaction; times come from the caller (the App's
clock).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.web.models import IcalFeed, WebLoginLink, WebSession
from core import audit
from core.clock import ensure_utc
from core.errors import DutybotError
from people.models import Person

LINK_REFUSED = "登录链接无效或已过期（每个链接只能使用一次）。请在聊天中重新发送 /web 获取新链接。"


class LinkRefused(DutybotError):
    """The sign-in link is unknown, used or expired."""

    def __init__(self) -> None:
        super().__init__(LINK_REFUSED)


def new_token() -> str:
    """A fresh random token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored of ``token``: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session (derived, so nothing more is stored)."""
    return hmac.new(session_token.encode(), b"dutybot-web-csrf", hashlib.sha256).hexdigest()[:40]


def csrf_ok(session_token: str, given: str) -> bool:
    return hmac.compare_digest(csrf_token(session_token).encode(), given.encode("utf-8", "replace"))


def issue_link(*, session: Session, person: Person, now: datetime, minutes: int) -> str:
    """A one-time sign-in token for ``person`` (only its hash is stored)."""
    assert person.id is not None
    token = new_token()
    session.add(WebLoginLink(token_hash=digest(token), person_id=person.id, created_at=now,
                             expires_at=now + timedelta(minutes=minutes)))
    audit.record(session=session, at=now, entity_type="web", entity_id=person.id, action="web_link_issued",
                 actor=person.name, actor_id=person.id, zh="申请值班看板登录链接")
    return token


def link_valid(*, session: Session, token: str, now: datetime) -> bool:
    """Whether ``token`` would still sign in (the page with the button says so first)."""
    link = session.exec(select(WebLoginLink).where(WebLoginLink.token_hash == digest(token))).first()
    return link is not None and link.used_at is None and ensure_utc(link.expires_at) > now


@dataclass(frozen=True)
class Opened:
    token: str
    row: WebSession
    person: Person


def redeem_link(*, session: Session, token: str, now: datetime, hours: int, user_agent: str = "") -> Opened:
    """Spend the link ``token`` and open a session.

    Raises:
        LinkRefused: unknown, already used or expired link, or its person left.
    """
    link = session.exec(select(WebLoginLink).where(WebLoginLink.token_hash == digest(token))
                        .with_for_update()).first()
    if link is None or link.used_at is not None or ensure_utc(link.expires_at) <= now:
        raise LinkRefused()
    link.used_at = now
    session.add(link)
    person = session.get(Person, link.person_id)
    if person is None or not person.active:
        raise LinkRefused()
    secret = new_token()
    row = WebSession(token_hash=digest(secret), person_id=link.person_id, created_at=now,
                     expires_at=now + timedelta(hours=hours), last_seen_at=now, user_agent=user_agent[:200])
    session.add(row)
    session.flush()
    audit.record(session=session, at=now, entity_type="web", entity_id=link.person_id, action="web_signed_in",
                 actor=person.name, actor_id=person.id, zh=f"登录值班看板（会话 {row.id}）")
    return Opened(secret, row, person)


def session_for(*, session: Session, token: str, now: datetime) -> tuple[WebSession, Person] | None:
    """The live session of cookie ``token`` and its (active) person; None otherwise."""
    if not token or len(token) > 200:
        return None
    row = session.exec(select(WebSession).where(WebSession.token_hash == digest(token))).first()
    if row is None or row.revoked_at is not None or ensure_utc(row.expires_at) <= now:
        return None
    person = session.get(Person, row.person_id)
    if person is None or not person.active:
        return None
    return row, person


def live_sessions(*, session: Session, now: datetime) -> list[tuple[WebSession, Person]]:
    """Sessions not revoked nor expired, newest first."""
    rows = session.exec(select(WebSession, Person).join(Person, col(Person.id) == WebSession.person_id)
                        .where(col(WebSession.revoked_at).is_(None), col(WebSession.expires_at) > now)
                        .order_by(col(WebSession.created_at).desc())).all()
    return [(s, p) for s, p in rows]


def revoke(*, session: Session, now: datetime, actor: str, session_id: int | None = None,
           person: Person | None = None) -> int:
    """Revoke one session (by id) or every live session of ``person``; how many."""
    stmt = select(WebSession).where(col(WebSession.revoked_at).is_(None), col(WebSession.expires_at) > now)
    if session_id is not None:
        stmt = stmt.where(WebSession.id == session_id)
    elif person is not None:
        stmt = stmt.where(WebSession.person_id == person.id)
    rows = list(session.exec(stmt))
    for row in rows:
        row.revoked_at = now
        session.add(row)
        audit.record(session=session, at=now, entity_type="web", entity_id=row.person_id,
                     action="web_session_revoked", actor=actor, zh=f"值班看板会话 {row.id} 已撤销")
    return len(rows)


# -- iCal feeds ------------------------------------------------------------------------


def issue_feed(*, session: Session, person: Person, now: datetime, actor: str) -> str:
    """A new iCal subscription token for ``person``; the previous one stops working."""
    assert person.id is not None
    revoke_feeds(session=session, person=person, now=now, actor=actor)
    token = new_token()
    session.add(IcalFeed(token_hash=digest(token), person_id=person.id, created_at=now))
    audit.record(session=session, at=now, entity_type="web", entity_id=person.id, action="ical_issued",
                 actor=actor, zh=f"生成 {person.name} 的值班日历订阅地址")
    return token


def revoke_feeds(*, session: Session, person: Person, now: datetime, actor: str) -> int:
    rows = list(session.exec(select(IcalFeed).where(IcalFeed.person_id == person.id,
                                                    col(IcalFeed.revoked_at).is_(None))))
    for row in rows:
        row.revoked_at = now
        session.add(row)
        audit.record(session=session, at=now, entity_type="web", entity_id=row.person_id, action="ical_revoked",
                     actor=actor, zh=f"{person.name} 的值班日历订阅地址已停用")
    return len(rows)


def feed_person(*, session: Session, token: str, now: datetime) -> Person | None:
    """The active person whose live feed ``token`` is (None: unknown or revoked)."""
    if not token or len(token) > 200:
        return None
    feed = session.exec(select(IcalFeed).where(IcalFeed.token_hash == digest(token),
                                               col(IcalFeed.revoked_at).is_(None))).first()
    if feed is None:
        return None
    person = session.get(Person, feed.person_id)
    if person is None or not person.active:
        return None
    feed.last_used_at = now
    session.add(feed)
    return person
