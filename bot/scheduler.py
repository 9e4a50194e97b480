"""The scheduler: every few seconds, run what the database says is due.

Every deadline, reminder and escalation is a :class:`~core.schedule.DueItem` row; each
cron job (briefings, shift changes) keeps its last fire time in a
:class:`~core.schedule.JobState` row. :meth:`Scheduler.tick` reads both, so a restart
loses nothing and downtime is caught up once at start-up. APScheduler only drives the
tick and holds no timer of ours. Several workers may tick one database: a due item is
locked in the transaction that processes it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)
and a cron fire is taken with an optimistic ``UPDATE … WHERE last_fire_at = <old>``
(the cron table is :mod:`bot.crons`). Due items run in chunks: one transaction per chunk
(at most ``chunk_size`` items or ``chunk_seconds``), each item in a savepoint of its own,
so that a processor's error undoes only its item's work and a crash undoes only the
chunk, whose items run again. A chunk's items are claimed with one statement and marked
done with one more (:mod:`bot.due_chunk`). Kinds registered ``at_once`` (the
escalations) run a chunk without the savepoints, with one flush and one INSERT of their
messages at its end; if an item fails, the chunk is undone and run again the careful way
(:meth:`Scheduler._run_at_once`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import and_, inspect, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.crons import Cron, CronJob, Crons, backoff
from bot.due_chunk import DoneMarks, expunge_except
from core.clock import SHANGHAI, Clock, FakeClock, ensure_utc, local
from core.db import session_scope
from core.outbox import Deferred
from core.schedule import DueItem, DueStatus

log = logging.getLogger(__name__)

Processor = Callable[[Session, DueItem, datetime], None]   # (session, item, now); no commit

TICK_JOB_ID = "dutybot-tick"
MAX_BATCHES_PER_TICK = 50        # bounds one tick; what is left runs on the next one
CHUNK_SIZE = 50                  # due items per transaction (each in a savepoint)
CHUNK_SECONDS = 0.2              # ... or fewer: how long a transaction may hold its locks


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


class Scheduler:
    """Runs due items and cron jobs from the database; see the module docstring.

    Args:
        engine: the database holding ``due_item`` and ``job_state``.
        clock: gives "now"; a :class:`FakeClock` enables :meth:`advance_to`.
        batch_size: due items fetched per query.
        chunk_size: due items run per transaction, each in a savepoint of its own.
        chunk_seconds: a transaction commits once it ran this long (real time), however
            few items it ran, so that it does not hold the (SQLite) write lock for long.
        max_attempts: processor failures before an item is marked ``failed``.
        on_work: called after each transaction that ran something (wakes the outbox
            sender); once :meth:`start` ran, on the event loop's thread.
        tick_seconds: the tick interval used by :meth:`start`.
        is_leader: with several workers (``dutybot run --worker``): whether this one leads
            now (:mod:`bot.leader`). Only the leader runs cron jobs, except shared ones;
            None (the default): this process runs them all.
    """

    def __init__(self, *, engine: Engine, clock: Clock, batch_size: int = 200,
                 max_attempts: int = 5, on_work: Callable[[], None] | None = None,
                 tick_seconds: float = 5, chunk_size: int = CHUNK_SIZE,
                 chunk_seconds: float = CHUNK_SECONDS, is_leader: Callable[[], bool] | None = None) -> None:
        self.engine, self.clock, self.on_work, self.is_leader = engine, clock, on_work, is_leader
        self.chunk_size, self.chunk_seconds = max(1, chunk_size), chunk_seconds
        self.batch_size, self.max_attempts, self.tick_seconds = batch_size, max_attempts, tick_seconds
        self._processors: dict[str, Processor] = {}
        self._at_once: set[str] = set()   # kinds whose items may run a chunk at once
        self.crons = Crons(engine, on_fired=self._notify)   # the cron table (bot/crons.py)
        self._lock = threading.Lock()   # ticks never overlap within one process
        self._aps: AsyncIOScheduler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: asyncio.Future[TickReport] | None = None
        self._caught_up = False
        #: When the last tick finished (its "now"); None before the first. /readyz reads it.
        self.last_tick_at: datetime | None = None

    def register(self, kind: str, fn: Processor, *, at_once: bool = False) -> None:
        """Run due items of ``kind`` with ``fn``, which works in the given session.

        ``at_once``: ``fn`` reads and writes only through the session (its queries
        autoflush; no SQL of its own), so a chunk of such items may run without a
        savepoint and a flush each (see :meth:`_run_at_once`). ``fn`` may then have a
        ``prepare(session, items, now)`` attribute, called once per chunk with its
        claimed items before any runs (to read what they need with one query).

        Raises:
            ValueError: ``kind`` already has a processor.
        """
        if kind in self._processors:
            raise ValueError(f"a processor for {kind!r} is already registered")
        self._processors[kind] = fn
        if at_once:
            self._at_once.add(kind)

    def register_cron(self, name: str, fn: CronJob, *, run_at_start: bool = False,
                      shared: bool = False, **cron_fields: object) -> None:
        """Run ``fn`` on APScheduler CronTrigger fields in Asia/Shanghai; see
        :meth:`bot.crons.Crons.register`.

        Raises:
            ValueError: ``name`` is taken, or the fields are not a valid CronTrigger.
        """
        self.crons.register(name, fn, run_at_start=run_at_start, shared=shared, **cron_fields)

    @property
    def _crons(self) -> dict[str, Cron]:
        """The cron jobs by name (what tests and benchmarks look at)."""
        return self.crons.jobs

    @property
    def apscheduler(self) -> AsyncIOScheduler | None:
        """The APScheduler driving the tick (None unless started)."""
        return self._aps

    def tick(self) -> TickReport:
        """Run every due item, then each cron job whose fire time has come, once.

        Returns:
            What ran. Processor and cron job errors are recorded and logged, not raised.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database itself failed.
        """
        with self._lock:
            report = TickReport(now=self.clock.now())
            self._run_due(report)
            self.crons.run(report.now, report.note, self.is_leader)
            if report.crons:          # a cron job may have scheduled items due now
                self._run_due(report)
            self.last_tick_at = report.now
            return report

    def catch_up(self) -> TickReport:
        """What start-up calls: a tick, which runs each missed cron job once."""
        report = self.tick()
        if report.did_work:
            log.info("catch-up: %d due items run, %d failed, cron jobs %s",
                     report.processed, report.failed, report.crons)
        return report

    def _run_due(self, report: TickReport) -> None:
        seen: set[tuple[int, datetime]] = set()   # by (id, due_at): a re-armed item runs again
        after: tuple[datetime, int] | None = None
        for _ in range(MAX_BATCHES_PER_TICK):
            rows = self._due_batch(report.now, after)
            batch = [row for row in rows if row[:2] not in seen]
            if not batch:
                return
            seen.update(row[:2] for row in batch)
            after = (rows[-1][1], rows[-1][0])
            ids = [row[0] for row in batch]
            at_once = {row[0] for row in batch if row[2] in self._at_once}
            while ids:
                ids = ids[self._run_next(ids, at_once, report):]
        if any(row[:2] not in seen for row in self._due_batch(report.now, after)):
            log.warning("tick stopped after %d batches; the rest runs next tick", MAX_BATCHES_PER_TICK)

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

    def _due_batch(self, now: datetime, after: tuple[datetime, int] | None = None) -> list[tuple[int, datetime, str]]:
        """The one indexed query (ix_due_item_pending): pending items due by ``now``,
        after ``(due_at, id)`` ``after`` (the last of the tick's previous batch).

        A plain read: a lock taken here would end with this short transaction, so each
        item is locked when claimed, in the transaction that processes it. Each batch
        starts where the previous one ended rather than at the oldest due time: on
        PostgreSQL the index keeps the entries of the items just run until vacuum, and
        reading past them again in every batch made a large tick quadratic (issue 21).
        An item that a processor schedules (or re-arms) for ``now`` is due at or after
        every item run before it, so it still runs in this tick.
        """
        stmt = (select(DueItem.id, DueItem.due_at, DueItem.kind)
                .where(DueItem.status == DueStatus.pending, DueItem.due_at <= now)
                .order_by(DueItem.due_at, DueItem.id).limit(self.batch_size))  # type: ignore[arg-type]
        if after is not None:
            stmt = stmt.where(or_(col(DueItem.due_at) > after[0],
                                  and_(col(DueItem.due_at) == after[0], col(DueItem.id) > after[1])))
        with self.engine.connect() as conn:
            return [(row[0], row[1], row[2]) for row in conn.execute(stmt)]

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
            for kind, items in by_kind.items():
                prepare = getattr(self._processors[kind], "prepare", None)
                if prepare is not None:
                    prepare(session, items, now)
            with Deferred(session) as held:
                for item_id in ids:
                    taken += 1
                    item = self._still_ours(session, item_id, claimed.get(item_id), now)
                    if item is not None:
                        key, kind, due_at = item.key, item.kind, item.due_at
                        self._processors[kind](session, item, now)
                        if item.status == DueStatus.pending and item.due_at == due_at:   # see _run_item
                            item.status = DueStatus.done
                        item.processed_at = now
                        session.add(item)
                        notes.append(("due", kind, key))
                    if time.monotonic() - began >= self.chunk_seconds:
                        break
                held.write()
        for what, kind, key in notes:
            report.note(now, what, kind, key)
        if notes:
            self._notify()
        return taken

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

    def next_event_at(self) -> datetime | None:
        """The earliest pending due time or cron fire time (in the past if overdue)."""
        now, times = self.clock.now(), list[datetime]()
        with Session(self.engine) as session:
            due = session.exec(select(DueItem.due_at).where(DueItem.status == DueStatus.pending)
                               .order_by(DueItem.due_at).limit(1)).first()  # type: ignore[arg-type]
            times += [due] if due is not None else []
        times += self.crons.next_fires(now)
        return min(times, default=None)

    def advance_to(self, target: datetime) -> list[str]:
        """Drill mode: move the fake clock to ``target``, running each event at its time.

        Returns:
            Log lines of what ran, in chronological order.

        Raises:
            TypeError: the clock is not a FakeClock.
        """
        clock = self.clock
        if not isinstance(clock, FakeClock):
            raise TypeError("advance_to needs a FakeClock (console drill mode)")
        target = max(ensure_utc(target), clock.now())   # an event already due runs now
        lines = self.tick().log   # also gives new cron jobs their starting point
        while (event := self.next_event_at()) is not None and event <= target:
            clock.set(max(event, clock.now()))
            report = self.tick()
            lines += report.log
            if not report.did_work:   # e.g. an item another worker holds: do not spin
                log.warning("advance_to: nothing ran at %s; going on to the target", local(event))
                break
        clock.set(target)
        return lines + self.tick().log

    def start(self, tick_seconds: float | None = None) -> None:
        """Tick every ``tick_seconds`` (default: the constructor's) on an AsyncIOScheduler.

        The first run, at once, is :meth:`catch_up`. Call inside the running event loop.

        Raises:
            RuntimeError: already started, or no running event loop.
        """
        if self._aps is not None:
            raise RuntimeError("the scheduler is already running")
        self._loop = asyncio.get_running_loop()
        aps = AsyncIOScheduler(timezone=SHANGHAI, event_loop=self._loop)
        # APScheduler's own timer runs on real time; the domain never sees this value.
        aps.add_job(self._tick_job, "interval", seconds=tick_seconds or self.tick_seconds,
                    id=TICK_JOB_ID, name="dutybot tick", coalesce=True, max_instances=1,
                    misfire_grace_time=None, next_run_time=datetime.now(SHANGHAI))
        aps.start()
        self._aps = aps

    async def shutdown(self) -> None:
        """Stop ticking, and wait for a tick in progress to finish."""
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
            await asyncio.sleep(0)   # AsyncIOScheduler stops in a loop callback
        if self._inflight is not None and not self._inflight.done():
            with contextlib.suppress(Exception):
                await self._inflight
        self._loop = None

    async def tick_in_thread(self) -> TickReport:
        """One :meth:`tick` on a worker thread, as the running bot ticks: the event loop
        stays free, and each chunk's ``on_work`` reaches it (the sender delivers what a
        chunk queued while the next one runs)."""
        self._loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self.tick)

    async def _tick_job(self) -> None:
        run, self._caught_up = (self.tick if self._caught_up else self.catch_up), True
        # In a thread, so the event loop stays responsive; shielded, because shutdown
        # cancels job tasks but a tick half-way through must finish.
        self._inflight = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            await asyncio.shield(self._inflight)
        except asyncio.CancelledError:
            # Only at shutdown (APScheduler cancels its job tasks): the tick goes on to its
            # end on its thread and shutdown() waits for it; nothing to report as an error.
            return

    def _notify(self) -> None:
        if self.on_work is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        try:
            if self._loop is not None and running is not self._loop:
                self._loop.call_soon_threadsafe(self.on_work)   # from the tick thread
            else:
                self.on_work()
        except Exception:
            log.exception("on_work callback failed")
