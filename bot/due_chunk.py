"""How the scheduler runs one chunk of due items (see :mod:`bot.scheduler`): claimed
with one statement, each item in a savepoint and marked done with one more statement
(:class:`DoneMarks`), or — for kinds registered ``at_once`` — all in one go, falling
back to the savepoints when an item fails (:meth:`ChunkRuns._run_at_once`)."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event, inspect, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.crons import backoff
from core.clock import local
from core.db import no_flush_wait, session_scope
from core.outbox import Deferred
from core.schedule import DueItem, DueStatus

log = logging.getLogger("bot.scheduler")   # the scheduler's log, as before the split

Processor = Callable[[Session, DueItem, datetime], None]   # (session, item, now); no commit

_DUE_TABLE = DueItem.__table__   # type: ignore[attr-defined]


class DoneMarks:
    """The chunk's items that ran and that their processors left alone, marked done (and
    processed now) with one ``UPDATE … WHERE id IN (…)`` instead of one UPDATE each.

    The marks are written at the chunk's end, or as soon as anything in the chunk's
    transaction is about to run another statement naming ``due_item``: a processor that
    reads or writes due items (``schedule``, ``cancel_for``) sees the items before it
    done, as if each had been marked in its own savepoint. Marks written inside a
    savepoint that is then rolled back (say, by the failing item whose processor's query
    wrote them) are written again. Watches the connection's statements (the SQL text,
    which costs next to nothing) rather than the session's, so nothing on this connection
    can read around it.
    """

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn, self.now = conn, now
        self.ids: list[int] = []                       # to write
        self.written: list[int] = []                   # written, in order
        self.savepoints: list[tuple[str, int]] = []    # open: name, len(written) when begun
        self._writing = False
        event.listen(conn, "before_cursor_execute", self._before)

    def add(self, item_id: int) -> None:
        self.ids.append(item_id)

    def write(self) -> None:
        if not self.ids:
            return
        ids, self.ids, self._writing = self.ids, [], True
        try:
            self.conn.execute(update(_DUE_TABLE).where(_DUE_TABLE.c.id.in_(ids))
                              .values(status=DueStatus.done, processed_at=self.now))
        finally:
            self._writing = False
        self.written += ids

    def close(self) -> None:
        event.remove(self.conn, "before_cursor_execute", self._before)

    def _before(self, conn: Connection, cursor: object, statement: str, *_args: object) -> None:
        if self._writing:
            return
        if statement.startswith("SAVEPOINT "):
            self.savepoints.append((statement.split()[-1], len(self.written)))
        elif statement.startswith(("RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")):
            name = statement.split()[-1]
            at = next((i for i in range(len(self.savepoints) - 1, -1, -1) if self.savepoints[i][0] == name), None)
            if at is None:
                return
            if statement.startswith("ROLLBACK"):   # what was written since is undone: again
                since = self.savepoints[at][1]
                self.ids[:0] = self.written[since:]
                del self.written[since:]
            del self.savepoints[at:]
        elif self.ids and "due_item" in statement:
            self.write()


def expunge_except(session: Session, keep: dict[int, DueItem]) -> None:
    """Empty the session but for the due items in ``keep`` (a chunk's items yet to run)."""
    if not keep:
        session.expunge_all()
        return
    kept = {id(item) for item in keep.values()}
    for obj in list(session.identity_map.values()):
        if id(obj) not in kept:
            session.expunge(obj)
    for obj in list(session.new):
        session.expunge(obj)


class _NotAtOnce(Exception):
    """A chunk meant to run at once holds an item of another kind (its kind changed)."""


@dataclass
class TickReport:
    """What one tick did; ``log`` lines read ``2026-11-24T08:30+08:00 cron daily_brief``."""

    now: datetime
    processed: int = 0                               # due items run and committed
    failed: int = 0                                  # due items whose processor failed
    crons: list[str] = field(default_factory=list)   # cron jobs run
    log: list[str] = field(default_factory=list)

    @property
    def did_work(self) -> bool:
        """Whether anything ran or failed."""
        return bool(self.processed or self.failed or self.crons)

    def note(self, at: datetime, what: str, *names: str) -> None:
        """Count and log one thing that ran: ``due``, ``due-failed`` or ``cron``."""
        self.log.append(" ".join((local(at).isoformat(timespec="minutes"), what, *names)))
        if what == "cron":
            self.crons.append(names[0])
        elif what == "due":
            self.processed += 1
        else:
            self.failed += 1


class ChunkRuns:
    """How :class:`bot.scheduler.Scheduler` runs one chunk of due items: one savepoint
    per item (:meth:`_run_chunk`), or all at once for kinds registered so
    (:meth:`_run_at_once`). A part of the scheduler, kept apart for its size; it uses the
    scheduler's settings and processors."""

    engine: Engine
    chunk_size: int
    chunk_seconds: float
    max_attempts: int
    _processors: dict[str, Processor]
    _at_once: set[str]
    _no_disk_wait: set[str]
    _notify: Callable[[], None]   # wakes the sender after a chunk ran something (the scheduler's)

    def _run_next(self, ids: list[int], at_once: set[int], report: TickReport) -> int:
        """Run the next chunk of ``ids``: the leading ones of ``at_once`` kinds together
        (falling back to one savepoint each if that fails), else the leading others one
        by one; returns how many it took."""
        lead = ids[:self.chunk_size]
        together = list(itertools.takewhile(at_once.__contains__, lead))
        if together:
            try:
                return self._run_at_once(together, report)
            except _NotAtOnce:
                pass
            except Exception:   # undone; the items run again, each on its own
                log.warning("a chunk of %d due items failed together; running them one by one",
                            len(together), exc_info=True)
            return self._run_chunk(together, report)
        return self._run_chunk(list(itertools.takewhile(lambda i: i not in at_once, lead)), report)

    def _run_chunk(self, ids: list[int], report: TickReport) -> int:
        """Run the first of ``ids`` in one transaction, each item in a savepoint, until
        ``chunk_size`` items ran or ``chunk_seconds`` passed; returns how many it took.

        One commit per chunk rather than per item (issue 21): a crash or a failed commit
        rolls the whole chunk back, so its items stay pending and run again — nothing is
        lost, and nothing is doubled, since the messages they queued are rolled back with
        them. A processor error rolls back only its own item's savepoint.

        The chunk's items are claimed (read and, on PostgreSQL, locked) with one
        statement, and stay in the session while the chunk runs, so that what an earlier
        item's processor did to a later one through the session (cancelled, moved) is seen
        when its turn comes; every other object is expunged after each item, so the next
        item reads afresh, as in a session of its own.
        """
        now, notes, taken = report.now, list[tuple[str, str, str]](), 0
        began = time.monotonic()   # bounds how long the chunk holds its locks; not domain time
        with session_scope(self.engine) as session:
            claimed = self._claim(session, ids[:self.chunk_size], now)
            marks = DoneMarks(session.connection(), now)
            try:
                for item_id in ids[:self.chunk_size]:
                    taken += 1
                    note = self._run_item(session, item_id, claimed.pop(item_id, None), now, marks)
                    session.flush()
                    expunge_except(session, claimed)
                    if note is not None:
                        notes.append(note)
                    if time.monotonic() - began >= self.chunk_seconds:
                        break
                marks.write()
            finally:
                marks.close()
        for what, kind, key in notes:
            report.note(now, what, kind, key)
        if any(what == "due" for what, _, _ in notes):
            self._notify()
        return taken

    def _run_at_once(self, ids: list[int], report: TickReport) -> int:
        """Run the first of ``ids`` (all of kinds registered ``at_once``) in one
        transaction with no savepoint per item; returns how many it took.

        The fast shape of :meth:`_run_chunk` (issue 21: a thousand escalations due at
        once). The items are claimed as there; each kind's ``prepare`` reads what its
        items need; each item runs in turn in the one session, nothing flushed or emptied
        between them (the processors' queries autoflush, and the session is the only
        writer in this transaction, so each sees what the items before it did); the
        messages they queue are held (:class:`core.outbox.Deferred`) and inserted with
        one statement; the done marks and every other change are written by one flush at
        the end. If any item fails — or the final flush does — the whole transaction is
        rolled back and the exception raised: the caller runs the same items again, one
        savepoint each, where a failure is recorded against its own item. Nothing is
        lost or doubled: what the failed attempt did is undone with it.

        Raises:
            _NotAtOnce: a claimed item's kind is no longer one that runs at once.
            Exception: any item's processor, or the writing, failed (all undone).
        """
        now, notes, taken = report.now, list[tuple[str, str, str]](), 0
        began = time.monotonic()   # bounds how long the chunk holds its locks; not domain time
        with session_scope(self.engine) as session:
            claimed = self._claim(session, ids, now)
            by_kind: dict[str, list[DueItem]] = {}
            for item in claimed.values():
                by_kind.setdefault(item.kind, []).append(item)
            if not by_kind.keys() <= self._at_once:
                raise _NotAtOnce
            if by_kind and by_kind.keys() <= self._no_disk_wait:
                no_flush_wait(session.connection())   # see Scheduler.register
            for kind, items in by_kind.items():
                prepare = getattr(self._processors[kind], "prepare", None)
                if prepare is not None:
                    prepare(session, items, now)
            marks = DoneMarks(session.connection(), now)
            try:
                with Deferred(session) as held:
                    for item_id in ids:
                        taken += 1
                        item = self._still_ours(session, item_id, claimed.get(item_id), now)
                        if item is not None:
                            key, kind, due_at = item.key, item.kind, item.due_at
                            self._processors[kind](session, item, now)
                            self._done(session, item, due_at, now, marks)
                            notes.append(("due", kind, key))
                        if time.monotonic() - began >= self.chunk_seconds:
                            break
                    held.write()
                marks.write()
            finally:
                marks.close()
        for what, kind, key in notes:
            report.note(now, what, kind, key)
        if notes:
            self._notify()
        return taken

    @staticmethod
    def _done(session: Session, item: DueItem, due_at: datetime, now: datetime, marks: DoneMarks) -> None:
        """After an at-once item ran: one its processor left alone (see :meth:`_run_item`)
        is done. Its mark goes with the chunk's others in one UPDATE (:class:`DoneMarks`,
        written before anything else in the transaction touches ``due_item``); the object
        is told so as already written, which keeps it out of the session's pending
        changes (each look-up of the escalations scans those)."""
        if item.status != DueStatus.pending or item.due_at != due_at:
            item.processed_at = now   # re-armed or cancelled by its processor: it stays so
            session.add(item)
        elif inspect(item).modified:
            item.status, item.processed_at = DueStatus.done, now
            session.add(item)
        else:
            set_committed_value(item, "status", DueStatus.done)
            set_committed_value(item, "processed_at", now)
            marks.add(item.id)   # type: ignore[arg-type]

    def _still_ours(self, session: Session, item_id: int, item: DueItem | None, now: datetime) -> DueItem | None:
        """The claimed item if it is still this chunk's to run: None when it was not claimed
        (done, moved or taken meanwhile), or when an earlier item of the chunk cancelled,
        moved to later or deleted it. One a processor expunged is read again."""
        state = inspect(item) if item is not None else None
        if state is not None and item not in session and not state.was_deleted:
            item = self._claim(session, [item_id], now).get(item_id)   # a processor expunged it: read again
        if item is None or item not in session or item.status != DueStatus.pending or item.due_at > now:
            return None
        return item

    @staticmethod
    def _claim(session: Session, ids: list[int], now: datetime) -> dict[int, DueItem]:
        """The items of ``ids`` still pending and due, by id, locked for this transaction.

        PostgreSQL skips a row another worker holds; SQLite has no FOR UPDATE but core.db
        begins every transaction IMMEDIATE, i.e. write-locked. An item the chunk stops
        before (``chunk_seconds``) stays pending, and is claimed again by the next chunk.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the claim itself failed (the database is in
                trouble): the chunk is rolled back.
        """
        rows = session.exec(select(DueItem).where(
            col(DueItem.id).in_(ids), DueItem.status == DueStatus.pending,
            DueItem.due_at <= now).with_for_update(skip_locked=True))
        return {item.id: item for item in rows if item.id is not None}

    def _run_item(self, session: Session, item_id: int, item: DueItem | None, now: datetime,
                  marks: DoneMarks) -> tuple[str, str, str] | None:
        """Run one claimed item in the chunk's transaction; the note for the report
        (``due`` or ``due-failed``, kind, key), or None when it was not ours to run: not
        claimed (done, moved or taken meanwhile), or cancelled, moved to later or deleted
        by an earlier item of this chunk.
        """
        item = self._still_ours(session, item_id, item, now)
        if item is None:
            return None
        key, kind, due_at = item.key, item.kind, item.due_at
        fn = self._processors.get(kind)
        if fn is None:
            item.status, item.last_error = DueStatus.failed, f"no processor for kind {kind!r}"
            item.processed_at = now
            session.add(item)
            log.error("due item %s failed: %s", key, item.last_error)
            return "due-failed", kind, key
        try:
            # The claim's lock is taken outside the savepoint: rolling the savepoint back
            # keeps the item locked while its failure is recorded.
            with session.begin_nested():
                fn(session, item, now)
                # A processor may re-arm its own key (schedule() moves this very row)
                # or cancel it; only an item it left alone is done.
                left_alone = item.status == DueStatus.pending and item.due_at == due_at
                if not left_alone:
                    item.processed_at = now
                    session.add(item)
        except Exception as exc:
            self._record_failure(session, item_id, key, kind, exc, now)
            return "due-failed", kind, key
        if left_alone:
            marks.add(item_id)
        return "due", kind, key

    def _record_failure(self, session: Session, item_id: int, key: str, kind: str,
                        exc: Exception, now: datetime) -> None:
        """After the item's savepoint was rolled back: count the attempt, retry or give up."""
        item = session.get(DueItem, item_id)
        if item is None or item.status != DueStatus.pending:
            return
        item.attempts += 1
        item.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if item.attempts >= self.max_attempts:
            item.status, item.processed_at = DueStatus.failed, now
            log.error("due item %s (%s) failed for good after %d attempts",
                      key, kind, item.attempts, exc_info=exc)
        else:
            item.due_at = now + backoff(item.attempts)
            log.warning("due item %s (%s) failed (attempt %d), retry at %s", key, kind,
                        item.attempts, local(item.due_at), exc_info=exc)
        session.add(item)
