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
(:meth:`bot.due_chunk.ChunkRuns._run_at_once`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.crons import Cron, CronJob, Crons, backoff  # noqa: F401  (re-exported: the retry delays)
from bot.due_chunk import ChunkRuns, Processor, TickReport
from core.clock import SHANGHAI, Clock, FakeClock, ensure_utc, local
from core.schedule import DueItem, DueStatus

log = logging.getLogger(__name__)


TICK_JOB_ID = "dutybot-tick"
MAX_BATCHES_PER_TICK = 50        # bounds one tick; what is left runs on the next one
CHUNK_SIZE = 50                  # due items per transaction (each in a savepoint)
CHUNK_SECONDS = 0.2              # ... or fewer: how long a transaction may hold its locks


class Scheduler(ChunkRuns):
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
        self._no_disk_wait: set[str] = set()   # ... and whose chunks commit without the WAL wait
        self.crons = Crons(engine, on_fired=self._notify)   # the cron table (bot/crons.py)
        self._lock = threading.Lock()   # ticks never overlap within one process
        self._aps: AsyncIOScheduler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: asyncio.Future[TickReport] | None = None
        self._caught_up = False
        #: When the last tick finished (its "now"); None before the first. /readyz reads it.
        self.last_tick_at: datetime | None = None

    def register(self, kind: str, fn: Processor, *, at_once: bool = False,
                 rerun_if_lost: bool = False) -> None:
        """Run due items of ``kind`` with ``fn``, which works in the given session.

        ``at_once``: ``fn`` reads and writes only through the session (its queries
        autoflush; no SQL of its own), so a chunk of such items may run without a
        savepoint and a flush each (:meth:`bot.due_chunk.ChunkRuns._run_at_once`).
        ``fn`` may then have a ``prepare(session, items, now)`` attribute, called once
        per chunk with its claimed items before any runs (to read what they need with
        one query).

        ``rerun_if_lost`` (with ``at_once``): everything ``fn`` writes is derived from
        what the database already holds, so that a chunk lost in a PostgreSQL crash
        (within its WAL writer delay, ~0.2 s, of the commit) is simply run again once
        the database is back: its items are pending again, and what they queue goes out
        again — a ping twice, never one lost. Such chunks commit without waiting for the
        WAL flush (4 ms each on the test machine). Never for what people report.

        Raises:
            ValueError: ``kind`` already has a processor.
        """
        if kind in self._processors:
            raise ValueError(f"a processor for {kind!r} is already registered")
        self._processors[kind] = fn
        if at_once:
            self._at_once.add(kind)
            if rerun_if_lost:
                self._no_disk_wait.add(kind)

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
