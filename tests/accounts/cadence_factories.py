"""Builders for the posting-cadence tests: an account beside its site row, posts on days."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlmodel import Session, col, select

from accounts.models import Account, AccountState
from accounts.posts import PostIn, record_posts
from core.clock import SHANGHAI
from core.outbox import OutboxMessage
from people.models import Person
from roster.models import Site


def make_account(session: Session, name: str, *, registered: date, unit: str = "区政府办",
                 operator: Person | None = None, feed_url: str = "",
                 state: AccountState = AccountState.active) -> Account:
    """An account registered (and active) since ``registered``."""
    at = datetime.combine(registered, time(9, 0), tzinfo=SHANGHAI)
    site = Site(name=name, kind="wechat", url=f"id-{name}", unit=unit, created_at=at)
    session.add(site)
    session.flush()
    assert site.id is not None
    account = Account(site_id=site.id, owner_unit=unit, operator=operator.name if operator else "",
                      operator_id=operator.id if operator else None, state=state, state_since=registered,
                      feed_url=feed_url, created_at=at, updated_at=at)
    session.add(account)
    session.flush()
    return account


def post_on(session: Session, account: Account, *days: str, original: bool = False, at: str = "10:00") -> None:
    """One post on each day (``2026-11-16``) at ``at`` Beijing time, titled by its day."""
    posts = [PostIn(datetime.fromisoformat(f"{d}T{at}").replace(tzinfo=SHANGHAI), f"{d} 动态", original)
             for d in days]
    now = max(p.posted_at for p in posts)
    record_posts(session=session, account=account, posts=posts, source="import", now=now, actor="test")


def texts_to(session: Session, person: Person) -> list[str]:
    """Every message queued for ``person``, oldest first."""
    return [m.text for m in session.exec(select(OutboxMessage).where(OutboxMessage.person_id == person.id)
                                         .order_by(col(OutboxMessage.id)))]
