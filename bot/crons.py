"""Cron jobs: briefings, shift changes, planners — each fired on its CronTrigger, once.

Each job keeps its last fire time in a :class:`~core.schedule.JobState` row, so downtime
is caught up once (all missed fires coalesce into the latest). :class:`bot.scheduler.Scheduler`
runs :meth:`Crons.run` in every tick, after the due items. With several workers a fire is
taken with an optimistic ``UPDATE … WHERE last_fire_at = <old>``: only the worker whose
update hit runs it — except a shared job, which every worker joins (the job divides its
work). Only the leader runs jobs that are not shared.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.clock import SHANGHAI, ensure_utc, local
from core.db import session_scope
from core.schedule import JobState

log = logging.getLogger(__name__)

CronJob = Callable[[Session, datetime, datetime], None]    # (session, fire time, now)
Note = Callable[[datetime, str, str], None]                # (at, "cron", name): TickReport.note

MAX_BACKOFF = timedelta(hours=1)
JOIN_WITHIN = timedelta(days=1)  # a worker joins a shared job's fire at most this old


@dataclass
class Cron:
    """A registered cron job, and what this process remembers of its runs."""

    fn: CronJob
    trigger: CronTrigger
    run_at_start: bool = False
    shared: bool = False               # every worker runs each fire (the job divides its work)
    joined: datetime | None = None     # shared: the last fire this worker ran
    failures: int = 0
    retry_at: datetime | None = None   # in memory only: losing it just retries sooner


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 1, 2, 4, 8 … minutes, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


@functools.lru_cache(maxsize=4096)
def _after(trigger: CronTrigger, instant: datetime) -> datetime | None:
    """The trigger's first fire time strictly after ``instant``, in UTC.

    Cached: a trigger is never changed once registered, and the drill mode asks the same
    question for every event it steps through (a pure function of its arguments).
    """
    fire = trigger.get_next_fire_time(instant, instant)
    return None if fire is None else ensure_utc(fire)


class Crons:
    """The cron table: jobs by name, and running those whose time has come.

    Args:
        engine: the database holding ``job_state``.
        on_fired: called after a job's fire ran and committed (wakes the outbox sender).
    """

    def __init__(self, engine: Engine, *, on_fired: Callable[[], None]) -> None:
        self.engine, self.on_fired = engine, on_fired
        self.jobs: dict[str, Cron] = {}

    def register(self, name: str, fn: CronJob, *, run_at_start: bool = False,
                 shared: bool = False, **cron_fields: object) -> None:
        """Run ``fn`` on APScheduler CronTrigger fields in Asia/Shanghai (``hour=8``…).

        ``run_at_start``: a job never run before (a fresh database) runs at the first tick
        instead of waiting for its first fire time — for planners that look ahead.
        ``shared``: with several workers, each one runs every fire of the job — once the
        fire is taken by one of them, the others join it at their next tick — and the job
        itself shares the work out (the site watch claims site by site). Not leader-only.

        Raises:
            ValueError: ``name`` is taken, or the fields are not a valid CronTrigger.
        """
        if name in self.jobs:
            raise ValueError(f"a cron job named {name!r} is already registered")
        self.jobs[name] = Cron(fn, CronTrigger(timezone=SHANGHAI, **cron_fields), run_at_start, shared)

    def run(self, now: datetime, note: Note, is_leader: Callable[[], bool] | None) -> None:
        """Run each job whose fire time has come (once, however many fires were missed);
        ``note(at, "cron", name)`` for each that ran. ``is_leader``: see
        :class:`bot.scheduler.Scheduler` (None: this process runs every job)."""
        if not self.jobs:
            return
        with Session(self.engine) as session:   # one read for all jobs
            last_fires = {s.name: s.last_fire_at for s in session.exec(select(JobState))}
        leads = is_leader is None or is_leader()
        for name, cron in self.jobs.items():
            if not (leads or cron.shared):
                continue             # a follower: the leader runs it
            last = last_fires.get(name)
            if last is None:
                # A new job starts counting now: it does not fire for the past (a planner
                # with run_at_start runs once now). If another worker created the row
                # first (IntegrityError), theirs is as good.
                with contextlib.suppress(IntegrityError), session_scope(self.engine) as s:
                    s.add(JobState(name=name, last_fire_at=now, last_run_at=now))
                    s.flush()
                    if cron.run_at_start:
                        cron.fn(s, now, now)
                        note(now, "cron", name)
                continue
            fire = self.due_fire(cron.trigger, last, now)
            if fire is None and self._join(name, cron, last, now, is_leader is not None):
                note(last, "cron", name)
                continue
            if fire is None or (cron.retry_at is not None and now < cron.retry_at):
                continue
            try:
                ran = self._fire_cron(name, cron, last, fire, now)
            except Exception as exc:
                # Retried with backoff until it works; a newer fire time replaces this one.
                cron.failures += 1
                cron.retry_at = now + backoff(cron.failures)
                log.error("cron %s failed for its %s fire (attempt %d), retry at %s", name,
                          local(fire), cron.failures, local(cron.retry_at), exc_info=exc)
                continue
            cron.failures, cron.retry_at = 0, None
            if ran:
                cron.joined = fire
                note(fire, "cron", name)
                self.on_fired()

    def _fire_cron(self, name: str, cron: Cron, old: datetime, fire: datetime,
                   now: datetime) -> bool:
        """Move the job's last fire from ``old`` to ``fire`` and run it, in one transaction.

        False: another worker moved it first, and runs it.
        """
        with session_scope(self.engine) as session:
            take = (update(JobState).where(JobState.name == name, JobState.last_fire_at == old)
                    .values(last_fire_at=fire, last_run_at=now))
            if session.exec(take.execution_options(synchronize_session=False)).rowcount != 1:
                return False
            cron.fn(session, fire, now)
            return True

    def _join(self, name: str, cron: Cron, last: datetime, now: datetime, several: bool) -> bool:
        """A shared job whose latest fire another worker took: run that fire here too
        (once). Several workers only; a failure is logged and not retried (the taker runs
        the fire, and the next fire comes). A worker joins only fires taken after it
        first looked (what it saw then may be a start marker, not a fire)."""
        if not cron.shared or not several or cron.joined == last:
            return False
        first_look, cron.joined = cron.joined is None, last
        if first_look or now - last > JOIN_WITHIN:
            return False
        try:
            with session_scope(self.engine) as session:
                cron.fn(session, last, now)
        except Exception:
            log.exception("cron %s: joining its %s fire failed", name, local(last))
            return False
        return True

    def due_fire(self, trigger: CronTrigger, last: datetime, now: datetime) -> datetime | None:
        """The latest fire time in (last, now]: all missed fires coalesce into it."""
        fire = _after(trigger, last)
        if fire is None or fire > now:
            return None
        # One step per missed fire (~25 µs): a year of a daily or hourly job is cheap.
        while (following := _after(trigger, fire)) is not None and following <= now:
            fire = following
        return fire

    def next_fires(self, now: datetime) -> list[datetime]:
        """Each job's next fire time (after a failure: its retry time, if later)."""
        if not self.jobs:
            return []
        times = []
        with Session(self.engine) as session:
            last_fires = {s.name: s.last_fire_at for s in session.exec(select(JobState))}
        for name, cron in self.jobs.items():
            fire = _after(cron.trigger, last_fires.get(name, now))
            if fire is not None:
                times.append(max(fire, cron.retry_at or fire))
        return times
