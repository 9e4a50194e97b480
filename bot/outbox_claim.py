"""The outbox sender's queries: which rows a pass claims, letting claims go, and the
message a card's earlier send made (:func:`card_ref`, for editing it in place).

Part of :class:`bot.outbox.OutboxSender` (whose docstring states the guarantees these keep):
:func:`claim` takes due rows in id order, at most the per-chat cap per recipient, skipping
recipients set aside for their rate limit, and drops rows that an older pending row of
the same recipient holds back (order per recipient); on PostgreSQL ``FOR UPDATE SKIP
LOCKED`` lets several workers share the queue, and each claim is signed with the worker's
liveness id so that a claim of a worker that is gone is taken at once.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, Update, and_, bindparam, case, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from bot import waiting
from bot.chat_alias import current_ids
from bot.delivery import recipient_key
from bot.liveness import WorkerLiveness
from core.db import flush_wait_off, no_flush_wait, session_scope
from core.outbox import OutboxMessage, OutboxStatus

_M = OutboxMessage
_T = OutboxMessage.__table__  # type: ignore[attr-defined]


@dataclass
class Claimed:
    """What a claim took, and where it goes, read in the claim's transaction."""

    rows: list[OutboxMessage]
    full: bool                                   # a whole batch: more may be due behind it
    reach: waiting.Reach                         # where the rows' people can be reached
    moved: dict[str, str] = field(default_factory=dict)   # group chats that moved: old -> new id
    #: The latest written send of each of the rows' cards, per chat: (card, chat) -> (row id,
    #: message id), below the claim's highest card row (None: not read; the sender asks).
    card_sends: dict[tuple[str, str], tuple[int, str]] | None = None

    def card_ref(self, engine: Engine, platform: str, card_key: str, chat_id: str, before_id: int) -> str | None:
        """:func:`card_ref` for a claimed row, from :attr:`card_sends` where they answer it:
        no earlier send of the card to the chat, or the latest one below ``before_id``.
        A later send than the row (a row sent again after newer ones, rare) asks the database."""
        if self.card_sends is None:
            return card_ref(engine, platform, card_key, chat_id, before_id)
        found = self.card_sends.get((card_key, chat_id))
        if found is None:
            return None
        return found[1] if found[0] < before_id else card_ref(engine, platform, card_key, chat_id, before_id)

    def sent(self, card_key: str, chat_id: str, row_id: int, ref: str) -> None:
        """A row of this claim was sent: its card's latest send to the chat is now it (its
        mark may be written before the card's next row goes)."""
        if self.card_sends is not None:
            self.card_sends[(card_key, chat_id)] = (row_id, ref)


def claim(engine: Engine, *, platform: str, now: datetime, lease: timedelta, batch_size: int,
          liveness: WorkerLiveness, gone: Collection[str], skip: Collection[tuple[str, str]],
          per_chat_cap: int | None, cards: bool = False) -> Claimed:
    """Claim due rows for ``platform`` (``claimed_until`` = now + lease) and return them,
    whether the query found a whole batch (more may be due behind it), and where they go
    (:func:`bot.waiting.reach_in`, and the group chats that moved), all in one transaction.

    Args:
        gone: worker ids whose claims may be taken at once (their process is gone).
        skip: recipients (:func:`~bot.delivery.recipient_key`) not to claim now.
        per_chat_cap: at most this many rows per recipient (None: no cap).
        cards: also read the latest send of the rows' cards (:attr:`Claimed.card_sends`;
            for a platform that edits cards): one query for the batch instead of one
            transaction per card row when it is sent.
    """
    pg = engine.dialect.name == "postgresql"
    query = _claim_query(platform, batch_size, per_chat_cap, pg)
    params = {"now": now, "gone": sorted(gone),
              "skip_persons": [int(k) for kind, k in skip if kind == "p"],
              "skip_chats": [k for kind, k in skip if kind == "c"]}
    until, claimer = now + lease, liveness.claimer
    with session_scope(engine) as session:
        found = list(session.exec(query, params=params).all())
        rows = in_order(session, found, platform)
        if rows:   # on PostgreSQL the UPDATE turns the WAL wait off itself (flush_wait_off)
            session.connection().execute(
                _mark_claimed(pg), {"ids": [r.id for r in rows], "until": until, "by": claimer})
        elif found:
            no_flush_wait(session.connection())   # rows locked (FOR UPDATE), none kept
        reach = waiting.reach_in(session, rows, platform)
        chats = {r.chat_id for r in rows if r.person_id is None and r.chat_id}
        moved = current_ids(session, platform, chats) if chats else {}
        sends = card_sends(session, rows, platform) if cards else None
    for row in rows:   # the objects say what the rows now say (they are not tracked)
        row.claimed_until, row.claimed_by = until, claimer
    return Claimed(rows, len(found) >= batch_size, reach, moved, sends)


def card_sends(session: Session, rows: list[OutboxMessage], platform: str) -> dict[tuple[str, str], tuple[int, str]]:
    """The latest written send of each card of ``rows``, per chat, below the highest of
    those rows: (card, chat) -> (row id, message id). Rows to one recipient go out in id
    order, so no send of a claimed row's card to its chat is written between the claim and
    the row's own send but by this pass (:meth:`bot.outbox_marks.SentMarks.ref_for`)."""
    carded = [r for r in rows if r.card_key and r.id is not None]
    if not carded:
        return {}
    params = {"cards": sorted({str(r.card_key) for r in carded}), "on": platform,
              "top": max(int(r.id) for r in carded if r.id is not None)}
    return {(str(card), str(chat)): (int(row_id), str(ref))
            for card, chat, row_id, ref in session.exec(_CARD_SENDS, params=params)}


# The rows behind card_sends (built once). As in CARD_REF below, status and id are compared
# as expressions so that the planner seeks the cards' rows in ix_outbox_card.
_LATEST_SENDS = (select(func.max(_M.id))
                 .where(col(_M.card_key).in_(bindparam("cards", expanding=True)),
                        _M.platform == bindparam("on"),
                        col(_M.status) + "" == OutboxStatus.sent.value,
                        col(_M.platform_message_id).is_not(None),
                        col(_M.id) + 0 < bindparam("top"))
                 .group_by(col(_M.card_key), col(_M.chat_id)))
_CARD_SENDS = select(_M.card_key, _M.chat_id, _M.id, _M.platform_message_id).where(col(_M.id).in_(_LATEST_SENDS))


@functools.cache
def _claim_query(platform: str, batch_size: int, per_chat_cap: int | None,
                 lock: bool) -> Select[tuple[OutboxMessage]]:
    """The claim, built once per shape: a statement object reused keeps SQLAlchemy from
    building it and its cache key again on every pass (that was most of a claim's time).
    An empty ``gone`` or skip list binds as an empty ``IN``."""
    now = bindparam("now", type_=_T.c.next_attempt_at.type)
    free = or_(col(_M.claimed_until).is_(None), col(_M.claimed_until) <= now,
               col(_M.claimed_by).in_(bindparam("gone", expanding=True)))
    due: list[ColumnElement[bool]] = [
        col(_M.status) == OutboxStatus.pending, col(_M.next_attempt_at) <= now, free,
        waiting.claimable(platform),
        or_(col(_M.person_id).is_(None),
            col(_M.person_id).not_in(bindparam("skip_persons", expanding=True))),
        or_(col(_M.person_id).is_not(None),
            col(_M.chat_id).not_in(bindparam("skip_chats", expanding=True)))]
    if per_chat_cap is None and lock:
        # The batch's ids are chosen and locked by a narrow subquery; the whole rows
        # (text and all, ~2 KB each) are read for those alone. In one query, right after
        # a burst PostgreSQL took every pending row and sorted them whole by id for each
        # claim of 50 (8 ms at 1,000 pending: a burst's drain grew with its square).
        ids = (select(col(_M.id)).where(*due).order_by(col(_M.id)).limit(batch_size)
               .with_for_update(skip_locked=True))
        return select(_M).where(col(_M.id).in_(ids)).order_by(col(_M.id))
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
    if lock:
        query = query.with_for_update(skip_locked=True)
    return query


@functools.cache
def _mark_claimed(pg: bool) -> Update:
    """The claim's UPDATE; on PostgreSQL it also lets the claim's commit skip the WAL wait
    (:func:`core.db.flush_wait_off`: one round trip less than ``SET LOCAL`` first)."""
    stmt = (update(_T).where(_T.c.id.in_(bindparam("ids", expanding=True)))
            .values(claimed_until=bindparam("until", type_=_T.c.claimed_until.type),
                    claimed_by=bindparam("by", type_=_T.c.claimed_by.type)))
    return stmt.where(flush_wait_off()) if pg else stmt


def in_order(session: Session, rows: list[OutboxMessage], platform: str) -> list[OutboxMessage]:
    """Drop rows that have an earlier pending row to the same recipient outside this
    claim (waiting for a retry, claimed or locked elsewhere)."""
    if not rows:
        return rows
    ids = [r.id for r in rows if r.id is not None]
    # Only a row below the claim's highest id can hold one back: the bound keeps this
    # query from reading every pending row of these recipients on each pass.
    params = {"persons": sorted({r.person_id for r in rows if r.person_id is not None}),
              "chats": sorted({r.chat_id for r in rows if r.person_id is None and r.chat_id}),
              "top": max(ids), "ids": ids}
    first: dict[tuple[str, str], int] = {}
    for person_id, chat_id, min_id in session.exec(_held_back_query(platform), params=params):
        if min_id is None:
            continue
        key = recipient_key(person_id, chat_id)
        first[key] = min(min_id, first.get(key, min_id))
    return [r for r in rows
            if r.id is not None and r.id < first.get(recipient_key(r.person_id, r.chat_id), r.id + 1)]


@functools.cache
def _held_back_query(platform: str) -> Select[tuple[int | None, str | None, int | None]]:
    who = or_(col(_M.person_id).in_(bindparam("persons", expanding=True)),
              and_(col(_M.person_id).is_(None), col(_M.chat_id).in_(bindparam("chats", expanding=True))))
    return (select(_M.person_id, _M.chat_id, func.min(_M.id))
            .where(_M.status == OutboxStatus.pending, col(_M.id) < bindparam("top"),
                   col(_M.id).not_in(bindparam("ids", expanding=True)), who,
                   waiting.claimable(platform))
            .group_by(col(_M.person_id), col(_M.chat_id)))


# The message a card's latest send made (built once; bound per call). Status and id are
# compared as expressions (`status || ''`, `id + 0`) so that no planner walks
# ix_outbox_pending_id (status, id) back through every sent row — SQLite did, and a pass
# grew with the outbox's history — instead of seeking the card's few rows in ix_outbox_card.
CARD_REF = (select(_M.platform_message_id)
             .where(_M.card_key == bindparam("card"), _M.chat_id == bindparam("chat"),
                    _M.platform == bindparam("on"),
                    col(_M.status) + "" == OutboxStatus.sent.value,
                    col(_M.platform_message_id).is_not(None),
                    col(_M.id) + 0 < bindparam("before"))
             .order_by(col(_M.id).desc()).limit(1))

def card_ref(engine: Engine, platform: str, card_key: str, chat_id: str, before_id: int) -> str | None:
    """The message id of ``card_key``'s latest written send to ``chat_id`` below row
    ``before_id`` (None: no earlier send, so the card is sent anew)."""
    with Session(engine) as session:
        return session.exec(CARD_REF, params={"card": card_key, "chat": chat_id,
                                              "on": platform, "before": before_id}).first()


def release(engine: Engine, ids: list[int]) -> None:
    """Let the claims on ``ids`` go (rows still pending become claimable at once)."""
    if not ids:
        return
    with session_scope(engine) as session:
        no_flush_wait(session.connection())
        for row in session.exec(select(_M).where(col(_M.id).in_(ids))):
            if row.status == OutboxStatus.pending:
                row.claimed_until = None


def next_due(engine: Engine, platform: str, now: datetime) -> datetime | None:
    """When the next pending row for ``platform`` (or for any) falls due after ``now``."""
    with Session(engine) as session:
        return session.exec(select(func.min(_M.next_attempt_at)).where(
            _M.status == OutboxStatus.pending, _M.next_attempt_at > now,
            or_(col(_M.platform).is_(None), col(_M.platform) == platform))).first()
