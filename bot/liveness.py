"""Which outbox workers are alive: a claim by a process that is gone is taken at once.

A claim holds a row for its lease (``claimed_until``, 120 s) so that no other worker
sends it meanwhile; when the claiming process was killed, the row would wait out the
lease. So each outbox sender is a *worker* with an id, holding a liveness lock of its own
(``worker-<id>``, :mod:`bot.instance_lock`: a lock file beside a SQLite database, an
advisory lock on a connection of its own on PostgreSQL) for as long as it runs, and
writing its id on the rows it claims (``outbox_message.claimed_by``). The lock ends with
the process however it ends, so a claim whose worker's lock is free belongs to a process
that is gone: :meth:`WorkerLiveness.gone` names those workers (looked up every
:data:`SCAN_SECONDS`), and the sender's claim query takes their rows at once.

Safe because a worker id is never reused: a worker found gone stays gone. A worker that
loses its PostgreSQL lock connection while running (others now take its claims) goes on
under a new id with a new lock. A claim made without a liveness lock (an in-memory
database, a sender used outside its ``run`` loop) records no worker and waits for its
lease, as before.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot import instance_lock
from core.outbox import OutboxMessage, OutboxStatus

log = logging.getLogger("dutybot.outbox")

_M = OutboxMessage
#: How often a sender looks for live claims whose worker is gone (monotonic seconds).
SCAN_SECONDS = 5.0


def lock_name(worker_id: str) -> str:
    """The liveness lock of outbox worker ``worker_id``."""
    return f"worker-{worker_id}"


class WorkerLiveness:
    """One sender's worker id and liveness lock, and the gone workers it has found.

    Args:
        engine: the database whose locks are used.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.worker_id = uuid.uuid4().hex[:16]
        self.lock: instance_lock.InstanceLock | None = None
        self._gone: frozenset[str] = frozenset()
        self._next_scan = float("-inf")

    @property
    def claimer(self) -> str | None:
        """What to write in ``claimed_by``: the worker id while its lock is held."""
        return self.worker_id if self.lock is not None else None

    def hold(self) -> bool:
        """Take the liveness lock (once); True when it is held."""
        if self.lock is None:
            try:
                self.lock = instance_lock.try_acquire(self.engine, lock_name(self.worker_id),
                                                      remove_on_release=True)
            except Exception:
                log.warning("outbox worker %s could not take its liveness lock; its claims "
                            "wait for their lease", self.worker_id, exc_info=True)
        return self.lock is not None

    def release(self) -> None:
        """Give the lock up (what this worker still claims is free for others at once)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def gone(self, now: datetime, mono: float) -> frozenset[str]:
        """The workers of live claims (``claimed_until`` after ``now``) whose liveness lock
        is free, as of the last lookup (one every :data:`SCAN_SECONDS` of ``mono``)."""
        if mono < self._next_scan:
            return self._gone
        self._next_scan = mono + SCAN_SECONDS
        if self.lock is not None and not self.lock.held():
            log.warning("outbox worker %s lost its liveness lock (its database connection); "
                        "going on as a new worker", self.worker_id)
            self.release()
            self.worker_id = uuid.uuid4().hex[:16]
            self.hold()
        with Session(self.engine) as session:
            # Claimed rows were due when claimed: the (status, next_attempt_at) index.
            claimers = session.exec(
                select(_M.claimed_by).where(
                    _M.status == OutboxStatus.pending, _M.next_attempt_at <= now,
                    col(_M.claimed_until) > now, col(_M.claimed_by).is_not(None),
                    _M.claimed_by != self.worker_id).distinct().limit(100)).all()
        gone: set[str] = set()
        for worker in claimers:
            if worker is None:
                continue
            try:
                free = worker in self._gone or instance_lock.is_free(
                    self.engine, lock_name(worker), remove=True) is True
            except Exception:   # cannot tell: the claim waits for its lease
                log.warning("could not tell whether outbox worker %s is alive", worker, exc_info=True)
                continue
            if free:
                gone.add(worker)
        if gone - self._gone:
            log.info("outbox: the claims of gone worker(s) %s are taken now, before their lease ends",
                     ", ".join(sorted(gone - self._gone)))
        self._gone = frozenset(gone)
        return self._gone
