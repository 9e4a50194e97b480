"""Which of several workers leads: ``dutybot run --worker`` (issue 21 item 4).

Any number of ``dutybot run --worker`` processes may run on one database (PostgreSQL in
production; a SQLite file works the same way on one machine). All of them share the work
that the database hands out row by row: outbox sending, due items (deadlines, reminders,
escalations) and the site-watch checks, which each worker claims site by site. Two kinds
of work must happen in exactly one process, and the *leader* does them:

* the cron jobs (daily briefing, shift changes, planners, the nightly purge …) — they are
  already taken fire by fire with an optimistic update, so two leaders for a moment
  would still run each fire once; the leader keeps them in one place and one log;
* the platform connection that must be single: Telegram long polling and a DingTalk
  Stream socket (webhook and callback modes need no leader: every worker serves them).

The leader is whoever holds the named lock ``leader`` (:mod:`bot.instance_lock`): a
PostgreSQL session advisory lock on a connection of its own, or ``flock`` on a file beside
a SQLite database. The lock ends with its process however the process ends, so a
follower that asks every ``[bot] leader_check_seconds`` (5 s) takes over within that time
of the leader's death. When the leader's *machine* dies rather than its process, the
server only learns it through TCP keepalives: the lock's session sets
``tcp_keepalives_idle/interval/count`` to 5 s / 5 s / 3, so PostgreSQL drops the dead
session, and with it the lock, after about 20 s — a takeover within 30 s either way.

A leader that finds its lock gone while it still runs (its lock connection broke, e.g.
the database restarted) no longer knows it is alone: it stops at once with exit status 1
(:class:`LeadershipLost`), and its service manager starts it again as a follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sqlalchemy.engine import Engine

from bot import instance_lock
from bot.adapters.base import Adapter, InboundHandler, RateWindow
from core.errors import DutybotError

log = logging.getLogger("dutybot.leader")

LOCK_NAME = "leader"
#: Server-side keepalives of the leader's lock session (seconds, count): a leader whose
#: machine vanished loses the lock after about idle + interval × count = 20 s.
KEEPALIVE = (5, 5, 3)


class LeadershipLost(DutybotError):
    """The leader's lock went away while it ran; the process must stop (exit 1)."""

    def __init__(self) -> None:
        super().__init__("本进程失去了主进程（leader）锁（与数据库的连接中断），为避免两个进程同时执行定时任务，"
                         "已停止；服务管理器（systemd）会将其作为普通工作进程重新启动。")


class Leadership:
    """Whether this process leads, asked of the database every ``check_seconds``.

    Args:
        engine: the database every worker shares.
        check_seconds: how often a follower tries to take the lead, and a leader checks
            that it still holds it.
    """

    def __init__(self, engine: Engine, *, check_seconds: float = 5.0) -> None:
        self.engine, self.check_seconds = engine, check_seconds
        self._lock: instance_lock.InstanceLock | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this process held the lead at its last check."""
        return self._lock is not None

    def try_lead(self) -> bool:
        """Take the lead if it is free; True when this process leads now.

        Raises:
            LeadershipLost: this process led and its lock is gone.
        """
        if self._lock is not None:
            if self._lock.held():
                return True
            self._lock.release()
            self._lock = None
            raise LeadershipLost()
        lock = instance_lock.try_acquire(self.engine, LOCK_NAME)
        if lock is None:
            return False
        self._lock = lock
        lock.set_keepalives(*KEEPALIVE)
        log.info("this worker now leads: cron jobs and the platform's receiving connection run here")
        return True

    def release(self) -> None:
        """Give the lead up (at a clean stop: a follower takes over at its next check)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def run(self, stop: asyncio.Event, *, on_lead: Callable[[], Awaitable[None]],
                  on_lost: Callable[[LeadershipLost], None]) -> None:
        """Check every ``check_seconds`` until ``stop``: ``on_lead`` once the lead is taken,
        ``on_lost`` (then return) when a held lead is gone. Releases the lead at the end."""
        try:
            while not stop.is_set():
                was = self.is_leader
                try:
                    leads = await asyncio.to_thread(self.try_lead)
                except LeadershipLost as lost:
                    log.error("leader lock lost while running; stopping this worker")
                    on_lost(lost)
                    return
                except Exception:
                    log.exception("could not ask the database who leads; asking again in %.0fs",
                                  self.check_seconds)
                    leads = False
                if leads and not was:
                    await on_lead()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.check_seconds)
        finally:
            self.release()



def share_limits(limits: tuple[RateWindow, ...], workers: int) -> tuple[RateWindow, ...]:
    """Each of ``workers`` workers' part of the platform's limits: a ``global`` window
    (the bot's overall rate) divided among them, at least 1 each; per-chat windows as they
    are (a chat's rows go out in order, so one worker at a time sends to it)."""
    if workers <= 1:
        return limits
    return tuple(replace(w, count=max(1, w.count // workers)) if w.scope == "global" else w for w in limits)


class WorkerRole:
    """What ``dutybot run --worker`` adds to the app: the lead and, for a platform whose
    receiving connection must be single (``receiver``: its lock name, else None), receiving
    only while leading; every worker sends.

    Args:
        engine: the database every worker shares.
        adapter: the chat platform.
        check_seconds: ``[bot] leader_check_seconds``.
        receiver: the receiver lock (:func:`bot.instance_lock.receiver_name`) of a polling
            or Stream connection; None for webhook and callback modes (every worker
            receives what the platform posts to it).
    """

    def __init__(self, engine: Engine, adapter: Adapter, *, check_seconds: float,
                 receiver: str | None) -> None:
        self.engine, self.adapter, self.receiver = engine, adapter, receiver
        self.leadership = Leadership(engine, check_seconds=check_seconds)
        self._receiver_lock: instance_lock.InstanceLock | None = None
        self._handler: InboundHandler | None = None
        #: 1 once the lead was lost while running (the process must stop: LeadershipLost).
        self.exit_code = 0

    def is_leader(self) -> bool:
        """Whether this worker leads now (the scheduler asks before each cron job)."""
        return self.leadership.is_leader

    async def try_lead(self) -> bool:
        """Ask for the lead once, off the event loop (the app does before its catch-up, so
        that a sole worker runs the cron jobs it missed); True when this worker leads."""
        return await asyncio.to_thread(self.leadership.try_lead)

    async def start(self, handler: InboundHandler) -> None:
        """Start the adapter (after the app's first :meth:`try_lead`):
        receiving when every worker receives or this one leads, else only the sending side."""
        self._handler = handler
        if self.receiver is None:
            await self.adapter.start(handler)
            return
        await self.adapter.open_for_sending()
        if self.leadership.is_leader:
            await self._receive()

    async def _receive(self) -> None:
        """The lead was taken: open the single receiving connection here."""
        if self.receiver is None or self._receiver_lock is not None or self._handler is None:
            return
        lock = await asyncio.to_thread(instance_lock.try_acquire, self.engine, self.receiver)
        if lock is None:
            log.error("this worker leads but another process (a dutybot run without --worker?) holds the "
                      "receiving connection %s; this worker sends and runs the cron jobs only", self.receiver)
            return
        self._receiver_lock = lock
        await self.adapter.start(self._handler)
        log.info("receiving on %s (this worker leads)", self.receiver)

    def run(self, stop: asyncio.Event) -> asyncio.Task[None]:
        """Keep asking for (or checking) the lead until ``stop``; a lost lead sets
        :attr:`exit_code` 1 and ``stop``."""
        def lost(error: LeadershipLost) -> None:
            log.error("%s", error.message)
            self.exit_code = 1
            stop.set()
        return asyncio.create_task(self.leadership.run(stop, on_lead=self._receive, on_lost=lost),
                                   name="leader-check")

    def close(self) -> None:
        """Give up the receiving connection's lock and the lead (after the adapter stopped)."""
        if self._receiver_lock is not None:
            self._receiver_lock.release()
            self._receiver_lock = None
        self.leadership.release()
