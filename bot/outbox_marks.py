"""Sent marks: the rows a pass delivered, written ``sent`` together in one transaction
(on PostgreSQL a single mark is one statement in autocommit: one round trip).

Part of :class:`bot.outbox.OutboxSender`. Marking each delivered row in a transaction of
its own cost a commit per message (on PostgreSQL a disk flush each) and was most of the
time a busy pass spent after its sends. A pass now collects what the platform accepted
and writes it in one ``UPDATE`` run over all of them when :attr:`SentMarks.max_rows` are
collected, when the oldest has waited :attr:`SentMarks.max_age` seconds (a timer on the
event loop, and a look before each send), before the pass sleeps for a rate slot, and when
the pass ends (whatever ended it).

The never-lose guarantee is untouched: a row is marked only after the platform accepted
it, and until the mark is written it stays claimed (``pending``), so a crash before the
write sends it again after its lease, as a crash between a send and its own commit did.
What grows is that duplicate window: from one commit to about ``max_age`` seconds. A write that fails keeps
its marks and tries again at the next flush.

A card edited twice in one pass must find the message its first send made before that
send's mark is written: :meth:`SentMarks.ref_for` answers from the marks not yet written.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Update, bindparam, update
from sqlalchemy.engine import Engine

from core.db import flush_wait_off
from core.outbox import OutboxMessage, OutboxStatus

log = logging.getLogger("dutybot.outbox")

_T = OutboxMessage.__table__  # type: ignore[attr-defined]

@functools.cache
def _mark_sent(pg: bool) -> Update:
    """The sent mark. On PostgreSQL it commits without waiting for the WAL flush
    (:func:`core.db.flush_wait_off`, in the statement itself: a single mark runs on its own,
    in autocommit, one round trip in all)."""
    stmt = (update(_T)
            .where(_T.c.id == bindparam("row_id", type_=_T.c.id.type))
            .values(status=OutboxStatus.sent.value, sent_at=bindparam("at", type_=_T.c.sent_at.type),
                    platform_message_id=bindparam("ref", type_=_T.c.platform_message_id.type),
                    chat_id=bindparam("chat", type_=_T.c.chat_id.type),
                    platform=bindparam("on", type_=_T.c.platform.type), claimed_until=None))
    return stmt.where(flush_wait_off()) if pg else stmt


@dataclass(frozen=True)
class Mark:
    """One delivered row, not yet written ``sent``."""

    row_id: int
    chat_id: str
    ref: str | None
    sent_at: datetime
    card_key: str | None


class SentMarks:
    """The delivered rows of one sender waiting for their common commit.

    Args:
        engine: the database.
        platform: written on each row (the platform that delivered it).
        time_source: monotonic seconds (for the age of the oldest mark).
        max_rows: write when this many are collected.
        max_age: write when the oldest has waited this long (seconds).
    """

    def __init__(self, engine: Engine, platform: str, time_source: Callable[[], float], *,
                 max_rows: int = 50, max_age: float = 0.2) -> None:
        self.engine, self.platform, self.time_source = engine, platform, time_source
        self.max_rows, self.max_age = max_rows, max_age
        self._marks: list[Mark] = []
        self._since: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._marks)

    def add(self, mark: Mark) -> None:
        """Remember a delivered row; writes the marks when enough are collected or the
        oldest has waited long enough."""
        if not self._marks:
            self._since = self.time_source()
            try:
                self._timer = asyncio.get_running_loop().call_later(self.max_age, self.flush)
            except RuntimeError:   # no event loop: the age is looked at on the next add
                self._timer = None
        self._marks.append(mark)
        if len(self._marks) >= self.max_rows:
            self.flush()
        else:
            self.flush_if_old()

    def flush_if_old(self) -> None:
        """Write the marks if the oldest has waited ``max_age`` seconds."""
        if self._since is not None and self.time_source() - self._since >= self.max_age:
            self.flush()

    def ref_for(self, card_key: str, chat_id: str, before_id: int) -> str | None:
        """The message id of ``card_key``'s latest unwritten send to ``chat_id`` below
        row ``before_id`` (None: look in the database)."""
        for mark in reversed(self._marks):
            if (mark.card_key == card_key and mark.chat_id == chat_id and mark.row_id < before_id
                    and mark.ref is not None):
                return mark.ref
        return None

    def flush(self) -> int:
        """Write every collected mark in one transaction; returns how many. On a database
        error the marks are kept for the next flush (their rows stay claimed meanwhile)
        and the error is logged."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._marks:
            return 0
        marks = self._marks
        params = [{"row_id": m.row_id, "at": m.sent_at, "ref": m.ref, "chat": m.chat_id,
                   "on": self.platform} for m in marks]
        pg = self.engine.dialect.name == "postgresql"
        try:
            if pg and len(params) == 1:   # one statement on its own: no BEGIN, no COMMIT round trip
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(_mark_sent(pg), params)
            else:
                with self.engine.begin() as conn:
                    conn.execute(_mark_sent(pg), params)
        except Exception:
            log.exception("could not mark %d delivered outbox row(s) sent; trying again at "
                          "the next write (until then they stay claimed)", len(marks))
            return 0
        self._marks, self._since = [], None
        return len(marks)
