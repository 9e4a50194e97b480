"""The outbox sender's queries: which rows a pass claims, and letting claims go.

Part of :class:`bot.outbox.OutboxSender` (whose docstring states the guarantees these keep):
:func:`claim` takes due rows in id order, at most the per-chat cap per recipient, skipping
recipients set aside for their rate limit, and drops rows that an older pending row of
the same recipient holds back (order per recipient); on PostgreSQL ``FOR UPDATE SKIP
LOCKED`` lets several workers share the queue, and each claim is signed with the worker's
liveness id so that a claim of a worker that is gone is taken at once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from bot import waiting
from bot.delivery import recipient_key
from bot.liveness import WorkerLiveness
from core.db import session_scope
from core.outbox import OutboxMessage, OutboxStatus

_M = OutboxMessage


def claim(engine: Engine, *, platform: str, now: datetime, lease: timedelta, batch_size: int,
          liveness: WorkerLiveness, gone: Collection[str], skip: Collection[tuple[str, str]],
          per_chat_cap: int | None) -> list[OutboxMessage]:
    """Claim due rows for ``platform`` (``claimed_until`` = now + lease) and return them.

    Args:
        gone: worker ids whose claims may be taken at once (their process is gone).
        skip: recipients (:func:`~bot.delivery.recipient_key`) not to claim now.
        per_chat_cap: at most this many rows per recipient (None: no cap).
    """
    free: list[ColumnElement[bool]] = [col(_M.claimed_until).is_(None),
                                       col(_M.claimed_until) <= now]
    if gone:
        free.append(col(_M.claimed_by).in_(sorted(gone)))
    due: list[ColumnElement[bool]] = [col(_M.status) == OutboxStatus.pending,
                                      col(_M.next_attempt_at) <= now, or_(*free),
                                      waiting.claimable(platform)]
    persons = [int(k) for kind, k in skip if kind == "p"]
    chats = [k for kind, k in skip if kind == "c"]
    if persons:
        due.append(or_(col(_M.person_id).is_(None), col(_M.person_id).not_in(persons)))
    if chats:
        due.append(or_(col(_M.person_id).is_not(None), col(_M.chat_id).not_in(chats)))
    if per_chat_cap is None:
        query = select(_M).where(*due).order_by(col(_M.id)).limit(batch_size)
    else:
        # At most `cap` rows per recipient, so one busy chat cannot fill the batch.
        rank = func.row_number().over(
            partition_by=(col(_M.person_id), case((col(_M.person_id).is_(None), _M.chat_id))),
            order_by=col(_M.id)).label("pos")
        ranked = select(col(_M.id).label("id"), rank).where(*due).subquery()
        ids = (select(ranked.c.id).where(ranked.c.pos <= per_chat_cap).order_by(ranked.c.id)
               .limit(batch_size))
        query = select(_M).where(col(_M.id).in_(ids), *due).order_by(col(_M.id))
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    with session_scope(engine) as session:
        rows = in_order(session, list(session.exec(query).all()), platform)
        claimer = liveness.claimer
        for row in rows:
            row.claimed_until, row.claimed_by = now + lease, claimer
    return rows


def in_order(session: Session, rows: list[OutboxMessage], platform: str) -> list[OutboxMessage]:
    """Drop rows that have an earlier pending row to the same recipient outside this
    claim (waiting for a retry, claimed or locked elsewhere)."""
    if not rows:
        return rows
    persons = {r.person_id for r in rows if r.person_id is not None}
    chats = {r.chat_id for r in rows if r.person_id is None}
    who = [col(_M.person_id).in_(persons),
           and_(col(_M.person_id).is_(None), col(_M.chat_id).in_(chats))]
    # Only a row below the claim's highest id can hold one back: the bound keeps this
    # query from reading every pending row of these recipients on each pass.
    ids = [r.id for r in rows if r.id is not None]
    query = (select(_M.person_id, _M.chat_id, func.min(_M.id))
             .where(_M.status == OutboxStatus.pending, col(_M.id) < max(ids),
                    col(_M.id).not_in(ids), or_(*who), waiting.claimable(platform))
             .group_by(col(_M.person_id), col(_M.chat_id)))
    first: dict[tuple[str, str], int] = {}
    for person_id, chat_id, min_id in session.exec(query):
        if min_id is None:
            continue
        key = recipient_key(person_id, chat_id)
        first[key] = min(min_id, first.get(key, min_id))
    return [r for r in rows
            if r.id is not None and r.id < first.get(recipient_key(r.person_id, r.chat_id), r.id + 1)]


def release(engine: Engine, ids: list[int]) -> None:
    """Let the claims on ``ids`` go (rows still pending become claimable at once)."""
    if not ids:
        return
    with session_scope(engine) as session:
        for row in session.exec(select(_M).where(col(_M.id).in_(ids))):
            if row.status == OutboxStatus.pending:
                row.claimed_until = None


def next_due(engine: Engine, platform: str, now: datetime) -> datetime | None:
    """When the next pending row for ``platform`` (or for any) falls due after ``now``."""
    with Session(engine) as session:
        return session.exec(select(func.min(_M.next_attempt_at)).where(
            _M.status == OutboxStatus.pending, _M.next_attempt_at > now,
            or_(col(_M.platform).is_(None), col(_M.platform) == platform))).first()
