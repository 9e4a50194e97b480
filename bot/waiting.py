"""Messages that wait for their person to bind a chat account.

A row to a person bound on no chat platform (no ``ChatIdentity`` at all) does not fail:
the sender makes it ``waiting`` (:func:`park`), with ``expires_at`` = now +
``outbox.unbound_wait_hours`` and ``next_attempt_at`` the same, so that the due index
``(status, next_attempt_at)`` finds the expired ones. ``people.service.bind`` puts the
person's waiting rows back in the queue in the transaction that binds them; each pass of
the sender also does it (:func:`sweep`) for a person who got an account any other way
(the console's ``ensure_identity``, a binding that raced a pass), and gives up the rows
whose wait ran out. The database is the only state: a restart loses nothing.

The admins hear once per person and wait, not once per message: when a person's first
message starts waiting, every admin gets 【人员未绑定】 (event
``unbound:<person id>:<that row's id>``); when waiting rows expire, one 【消息已过期】
per person and pass (``unbound-expired:<person id>:<first expired row id>``), and no
per-row dead-letter notice. The notices are outbox rows too; a notice never causes
another (:func:`bot.dead_letters.is_notice`).

A sender leaves alone a row (with no platform of its own) to a person who is bound,
unblocked, on another platform but not on the sender's (:func:`claimable`): that
platform's sender delivers it. A person whose account blocked the bot is not waited for.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.dead_letters import (
    EXPIRED_EVENT_PREFIX,
    NOTICE_PREFIXES,
    REASON_BLOCKED,
    REASON_NOT_BOUND,
    UNBOUND_EVENT_PREFIX,
    is_notice,
)
from core.db import session_scope
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue, release_waiting
from people.models import ChatIdentity, Person, Role
from people.service import people_with_role

log = logging.getLogger("dutybot.outbox")

_M = OutboxMessage
WAIT_REASON = "收件人未绑定聊天账号，等待绑定"
EXPIRED_REASON = f"{REASON_NOT_BOUND}，等待绑定超时"
WAIT, LEAVE = "wait", "leave"


@functools.cache
def claimable(platform: str) -> ColumnElement[bool]:
    """The claim filter of ``platform``'s sender: rows with no platform or its own, but
    not one (without a platform) to a person it cannot reach who is reachable on another
    platform. Built once per platform (an expression is immutable; every pass reuses it)."""
    ident = ChatIdentity
    here = select(ident.id).where(ident.person_id == _M.person_id, ident.platform == platform)
    elsewhere = select(ident.id).where(ident.person_id == _M.person_id, ident.platform != platform,
                                       col(ident.blocked_at).is_(None))
    return and_(or_(col(_M.platform).is_(None), _M.platform == platform),
                or_(col(_M.person_id).is_(None), col(_M.platform).is_not(None), here.exists(),
                    ~elsewhere.exists()))


@dataclass
class Reach:
    """How the people of one claim can be reached, seen from ``platform``."""

    platform: str
    here: dict[int, ChatIdentity] = field(default_factory=dict)  # unblocked, the latest binding
    blocked_here: set[int] = field(default_factory=set)
    elsewhere: dict[int, dict[str, bool]] = field(default_factory=dict)  # platform -> blocked

    def verdict(self, row: OutboxMessage) -> str:
        """For a row to a person not reachable here: :data:`WAIT` (bound nowhere),
        :data:`LEAVE` (another platform's sender delivers it), or why it is dead."""
        if row.person_id is None:  # neither person nor chat: enqueue() refuses those
            return REASON_NOT_BOUND
        if row.person_id in self.blocked_here:
            return f"{REASON_BLOCKED}（平台 {self.platform}）"
        others = self.elsewhere.get(row.person_id, {})
        if not others:
            return WAIT
        if row.platform is None:
            open_ = [p for p, blocked in others.items() if not blocked]
            if open_:
                return LEAVE  # bound there since the claim
            return f"{REASON_BLOCKED}（平台 {'、'.join(sorted(others))}）"
        return f"{REASON_NOT_BOUND}（平台 {self.platform}）"


# Built once: building the statement and its cache key cost more than running it.
_IDENTITIES_OF = (select(ChatIdentity)
                  .where(col(ChatIdentity.person_id).in_(bindparam("persons", expanding=True)))
                  .order_by(col(ChatIdentity.bound_at), col(ChatIdentity.id)))


def reach(engine: Engine, rows: Iterable[OutboxMessage], platform: str) -> Reach:
    """Where the people ``rows`` go to can be reached from ``platform``."""
    with Session(engine) as session:
        return reach_in(session, rows, platform)


def reach_in(session: Session, rows: Iterable[OutboxMessage], platform: str) -> Reach:
    """:func:`reach`, read in the caller's session (the sender's claim: one transaction
    fewer per pass)."""
    found = Reach(platform)
    persons = {r.person_id for r in rows if r.person_id is not None}
    if not persons:
        return found
    for ident in session.exec(_IDENTITIES_OF, params={"persons": sorted(persons)}):
        if ident.platform != platform:
            found.elsewhere.setdefault(ident.person_id, {})[ident.platform] = ident.blocked_at is not None
        elif ident.blocked_at is None:
            found.here[ident.person_id] = ident
        else:
            found.blocked_here.add(ident.person_id)
    for pid in found.here:
        found.blocked_here.discard(pid)
    return found


def _not_notice() -> ColumnElement[bool]:
    return ~or_(*(col(_M.event_key).startswith(prefix) for prefix in NOTICE_PREFIXES))


def _admins_but(session: Session, person_id: int) -> list[Person]:
    return [a for a in people_with_role(session=session, role=Role.admin) if a.id != person_id]


def _name(session: Session, person_id: int) -> str:
    person = session.get(Person, person_id)
    return person.name if person else f"人员#{person_id}"


def _invite_hint(name: str) -> str:
    return f"dutybot people invite {name} 或在聊天中发送 /people invite {name}"


def park(engine: Engine, rows: Iterable[OutboxMessage], *, now: datetime, hours: int) -> int:
    """Make claimed ``rows`` (to people bound nowhere) wait ``hours``; tell the admins
    about each person whose wait starts now. Returns how many rows wait."""
    until = now + timedelta(hours=hours)
    parked = 0
    started: dict[int, list[int]] = {}
    with session_scope(engine) as session:
        for row in rows:
            stored = session.get(_M, row.id)
            if stored is None or stored.status != OutboxStatus.pending or stored.person_id is None:
                continue
            stored.status, stored.expires_at, stored.next_attempt_at = OutboxStatus.waiting, until, until
            stored.claimed_until, stored.last_error = None, WAIT_REASON
            parked += 1
            if stored.id is not None and not is_notice(stored.event_key):
                started.setdefault(stored.person_id, []).append(stored.id)
        session.flush()
        for person_id, ids in started.items():
            earlier = session.exec(select(_M.id).where(
                _M.person_id == person_id, _M.status == OutboxStatus.waiting,
                col(_M.id).not_in(ids), _not_notice()).limit(1)).first()
            if earlier is None:  # a new wait: the admins hear of it once
                _tell_unbound(session, person_id, min(ids), hours, now)
    if parked:
        log.info("outbox: %d row(s) wait for their recipient to bind, until %s", parked, until)
    return parked


def _tell_unbound(session: Session, person_id: int, first_id: int, hours: int, now: datetime) -> None:
    name = _name(session, person_id)
    admins = _admins_but(session, person_id)
    if not admins:
        log.error("person %s is bound on no chat platform and there is no admin to tell", person_id)
        return
    text = (f"【人员未绑定】{name}尚未绑定聊天账号，发给其的消息将保留{hours}小时，绑定后自动送达。"
            f"请运行 {_invite_hint(name)} 生成绑定码。")
    for admin in admins:
        enqueue(session=session, message=Outbound(text=text, person_id=admin.id), now=now,
                event_key=f"{UNBOUND_EVENT_PREFIX}{person_id}:{first_id}")


def sweep(engine: Engine, *, platform: str, now: datetime, hours: int,
          limit: int) -> list[OutboxMessage]:
    """Put back in the queue the waiting rows of people who now have an account; give up
    at most ``limit`` rows whose wait ran out (one summary per person to the admins).

    Returns:
        The rows given up (now dead).
    """
    mine = or_(col(_M.platform).is_(None), _M.platform == platform)
    bound = select(ChatIdentity.id).where(ChatIdentity.person_id == _M.person_id).exists()
    with session_scope(engine) as session:
        persons = session.exec(select(_M.person_id).where(
            _M.status == OutboxStatus.waiting, mine, bound).distinct()).all()
        for person_id in persons:
            if person_id is not None:
                release_waiting(session=session, person_id=person_id, now=now)
        query = (select(_M).where(_M.status == OutboxStatus.waiting, _M.next_attempt_at <= now, mine)
                 .order_by(col(_M.id)).limit(limit))
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        expired = list(session.exec(query).all())
        gone: dict[int, list[int]] = {}
        for row in expired:
            row.status, row.last_error, row.claimed_until = OutboxStatus.dead, EXPIRED_REASON, None
            if row.person_id is not None and row.id is not None and not is_notice(row.event_key):
                gone.setdefault(row.person_id, []).append(row.id)
        for person_id, ids in gone.items():
            _tell_expired(session, person_id, ids, hours, now)
    if expired:
        log.warning("outbox: %d waiting row(s) expired, their recipients never bound: %s",
                    len(expired), ", ".join(str(r.id) for r in expired))
    return expired


def _tell_expired(session: Session, person_id: int, ids: list[int], hours: int, now: datetime) -> None:
    name = _name(session, person_id)
    admins = _admins_but(session, person_id)
    if not admins:
        log.error("%d message(s) to person %s expired and there is no admin to tell", len(ids), person_id)
        return
    text = (f"【消息已过期】{len(ids)} 条发给{name}的消息已过期未送达：{name}尚未绑定聊天账号，"
            f"保留期（{hours}小时）已满。如仍需送达，请运行 {_invite_hint(name)} 生成绑定码，"
            f"绑定后运行 dutybot outbox --failed 查看编号，再用 dutybot outbox retry 编号 重新投递。")
    for admin in admins:
        enqueue(session=session, message=Outbound(text=text, person_id=admin.id), now=now,
                event_key=f"{EXPIRED_EVENT_PREFIX}{person_id}:{min(ids)}")
