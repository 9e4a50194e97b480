"""The outbox sender: delivers queued messages through the adapter.

``dutybot outbox`` lives in :mod:`bot.cli.outbox`; dead letters and the admins' notice in
:mod:`bot.dead_letters`; rows waiting for their person to bind in :mod:`bot.waiting`; the
values of a pass in :mod:`bot.delivery`.

A row travels ``pending`` → claimed (``claimed_until`` = now + lease, set in a short
transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several workers share the
queue) → handed to the adapter → ``sent`` (written with the pass's other sends in one
transaction, :mod:`bot.outbox_marks`). A failure puts it
back to ``pending`` with exponential backoff and full jitter, or makes it ``dead``, and
then every admin is told in chat (their message is itself an outbox row). A row to a
person bound nowhere is ``waiting`` until they bind, or expires (see :mod:`bot.waiting`).

Guarantees:

* **Never lost.** A row becomes ``sent`` only after the platform accepted it. A process
  that dies holding a claim leaves the row ``pending``; once the lease expires, any
  worker claims it again — at once where the claimer is known to be gone: a running
  sender holds a liveness lock and signs its claims (``claimed_by``); a claim whose
  worker's lock is free is taken within seconds (:mod:`bot.liveness`).
* **One row per (event, recipient).** The unique ``dedupe_key`` (:mod:`core.outbox`)
  makes a second enqueue of the same event for the same recipient a no-op.
* **Duplicate windows.** A crash (or a lost database connection) between the platform
  accepting a message and the commit that marks it sent (at most
  ``SentMarks.max_age``, 0.2 s, later; :mod:`bot.outbox_marks`): the row is delivered
  again after its lease. On PostgreSQL the sender's own bookkeeping (claim, release, sent
  mark) commits without waiting for the WAL flush (:func:`core.db.no_flush_wait`,
  :func:`core.db.flush_wait_off`): a database crash may undo its last ~0.2 s, which
  again means a resend, not a loss. And an attempt whose answer was lost (a read timeout
  after the request went out, :class:`~bot.delivery.UncertainDelivery`): the row is retried. Where the platform
  drops repeats (the adapter's ``resend_is_safe``: WeCom's duplicate check) that retry is
  safe; elsewhere (Telegram, DingTalk) it is at-least-once on purpose — never-lose wins
  over never-twice — and each such row, once sent, is counted as a possible duplicate
  (``DeliveryReport.possible_duplicates``, a warning in the log, ``last_error`` starting
  with ``[possible duplicate]``, counted by ``dutybot outbox``). Send timeouts are longer
  than the platforms' slow moments (60 s) so that this stays rare.
* **Order per recipient.** Rows to one recipient go out in id order: a row waiting for
  its retry holds back later rows to the same recipient, so an old card never lands
  after a newer one.
* **Rate limits** are the adapter's ``limits``, enforced by :class:`RateLimiter` in this
  process (with several workers, each limits itself). A chat over its limit keeps its
  rows pending and is skipped until it may send again; other chats go on. When only the
  bot's overall limit holds a row back for less than ``SLOT_WAIT_SECONDS``, the pass
  waits for the slot, rows in order (:mod:`bot.outbox_pace`). The claim queries are in
  :mod:`bot.outbox_claim`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from bot import dead_letters, outbox_claim, waiting
from bot.adapters.base import Adapter
from bot.chat_alias import record_move
from bot.config import OutboxSettings
from bot.delivery import (
    NEAR_READY_SECONDS,
    POSSIBLE_DUPLICATE,
    RATE_MARGIN_SECONDS,
    Deferred,
    DeliveryReport,
    Target,
    UncertainDelivery,
    recipient_key,
)
from bot.liveness import WorkerLiveness
from bot.metrics import DeliveryCounters
from bot.outbox_marks import Mark, SentMarks
from bot.outbox_pace import Pacer
from bot.ratelimit import RateLimiter
from core.clock import Clock
from core.db import session_scope
from core.errors import AdapterError
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus
from people.models import ChatIdentity

log = logging.getLogger("dutybot.outbox")

_M = OutboxMessage
# Waiting rows (bot.waiting) are looked at every this long, not on every pass: a binding
# releases its person's rows itself; this finds the rest, and the waits that ran out.
SWEEP_EVERY = timedelta(seconds=10)


class OutboxSender:
    """Delivers due outbox rows through one adapter.

    Args:
        engine: the database.
        adapter: the chat platform; its ``limits`` are enforced here.
        clock: gives ``now()`` for due times (a FakeClock in tests).
        settings: attempts and backoff.
        rng: jitter source (seeded in tests).
        time_source: monotonic seconds for the rate limiter (default ``time.monotonic``).
        on_dead: called with each row after it was made dead (metrics, tests).
        limiter: a ready limiter (default: the adapter's limits with a small margin).
        lease_seconds: how long a claim holds before another worker may take the row.
        idle_seconds: the longest :meth:`run` waits between passes.
        concurrency: how many chats are sent to at the same time.
        counters: messages sent and failed, by platform (``/metrics``; default: its own).
        sleep: how a pass waits for a global rate slot (default ``asyncio.sleep``; tests
            pass one that moves their clock).
    """

    def __init__(self, *, engine: Engine, adapter: Adapter, clock: Clock,
                 settings: OutboxSettings, rng: random.Random | None = None,
                 time_source: Callable[[], float] | None = None,
                 on_dead: Callable[[OutboxMessage], None] | None = None,
                 limiter: RateLimiter | None = None, lease_seconds: float = 120.0,
                 idle_seconds: float = 1.0, concurrency: int = 16,
                 counters: DeliveryCounters | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.engine, self.adapter, self.clock, self.settings = engine, adapter, clock, settings
        self.platform = adapter.platform
        self.rng = rng or random.Random()
        self.time_source = time_source or time.monotonic
        self.on_dead = on_dead
        self.limiter = limiter or RateLimiter(adapter.limits, margin=RATE_MARGIN_SECONDS)
        self.lease = timedelta(seconds=lease_seconds)
        self.idle_seconds = idle_seconds
        self.concurrency = max(1, concurrency)
        self._wake = asyncio.Event()
        self._deferred: dict[tuple[str, str], float] = {}  # recipient -> monotonic until
        self._swept_at: datetime | None = None  # waiting rows last looked at (bot.waiting)
        self.marks = SentMarks(engine, self.platform, self.time_source)
        self._claimed: outbox_claim.Claimed | None = None   # the pass's claim (its cards' sends)
        self._sleep = sleep or asyncio.sleep
        self.pacer = Pacer(self.limiter, self.time_source, self._pace_sleep)
        self.liveness = WorkerLiveness(engine)   # signs claims; finds claims of gone workers
        self.counters = counters or DeliveryCounters()
        #: When the platform last accepted a call (a send or an edit); None before the first.
        self.last_reached_at: datetime | None = None
        #: Since when its calls fail as unreachable (network, timeouts, 5xx) with no success
        #: in between; None while it answers. /readyz reads both.
        self.unreached_since: datetime | None = None

    @property
    def worker_id(self) -> str:
        """This sender's worker id, written on the rows it claims while it is alive."""
        return self.liveness.worker_id

    def hold_liveness(self) -> bool:
        """Take this sender's liveness lock (:meth:`run` does): from then on its claims
        are signed, and taken by others at once if it dies. True when held."""
        return self.liveness.hold()

    def close(self) -> None:
        """Give the liveness lock up (what this sender still claims is free for others)."""
        self.liveness.release()

    async def _pace_sleep(self, seconds: float) -> None:
        # What was sent is written before the pass waits for a slot, within the wait.
        until = self.time_source() + seconds
        self.marks.flush()
        await self._sleep(max(0.0, until - self.time_source()))

    def wake(self) -> None:
        """Start the next pass now (call after committing new outbox rows)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; between passes wait for a wake-up, the next
        retry or rate-limit release, or ``idle_seconds``, whichever comes first."""
        self.hold_liveness()
        try:
            await self._loop(stop)
        finally:
            self.close()

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            report: DeliveryReport | None = None
            try:
                report = await self.deliver_due()
            except Exception:
                log.exception("outbox pass failed; trying again in %.0fs", self.idle_seconds)
            if report is not None and report.more_now:
                await asyncio.sleep(0)  # more may be due; let the loop breathe first
                continue
            waiters = [asyncio.ensure_future(self._wake.wait()),
                       asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=self._idle_wait(report),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def deliver_due(self) -> DeliveryReport:
        """One pass: claim due rows and deliver them, chat by chat.

        Not to be overlapped with itself on one sender (:meth:`run` calls it in turn;
        others call :meth:`wake`). Several senders, in one process or many, may overlap.

        Returns:
            What happened. Rows of a chat over its rate limit stay pending.
        """
        report = DeliveryReport()
        now, mono = self.clock.now(), self.time_source()
        self._deferred = {k: until for k, until in self._deferred.items() if until > mono}
        self.pacer.new_pass()
        if self._swept_at is None or not timedelta(0) <= now - self._swept_at < SWEEP_EVERY:
            for gone in waiting.sweep(self.engine, platform=self.platform, now=now,
                                      limit=self.settings.batch_size, hours=self.settings.unbound_wait_hours):
                report.expired += 1
                self._dead_hook(gone)
            self._swept_at = now
        claimed = self._claimed = self._claim(now, mono)
        rows, report.full = claimed.rows, claimed.full
        report.claimed = len(rows)
        targets = self._resolve(claimed, report)
        chains: dict[str, list[OutboxMessage]] = {}
        for row in rows:
            if row.id in targets:
                chains.setdefault(targets[row.id].chat_id, []).append(row)
        release: list[int] = []
        gate = asyncio.Semaphore(self.concurrency)

        async def chain_task(chain: list[OutboxMessage]) -> None:
            async with gate:
                await self._deliver_chain(chain, targets, report, release)

        try:
            results = await asyncio.gather(*(chain_task(c) for c in chains.values()),
                                           return_exceptions=True)
        finally:
            self.marks.flush()
        self._release(release)
        for result in results:
            if isinstance(result, BaseException):
                raise result  # its rows stay claimed and come back when the lease ends
        if self._deferred:
            report.retry_in = max(0.0, min(self._deferred.values()) - self.time_source())
        return report

    def _claim(self, now: datetime, mono: float) -> outbox_claim.Claimed:
        # Skip chats that cannot send for a while; nearly-ready ones come along, so that
        # they keep their turn (see NEAR_READY_SECONDS).
        later = [key for key, until in self._deferred.items() if until > mono + NEAR_READY_SECONDS]
        return outbox_claim.claim(
            self.engine, platform=self.platform, now=now, lease=self.lease,
            batch_size=self.settings.batch_size, liveness=self.liveness,
            gone=self.liveness.gone(now, mono), skip=later,
            per_chat_cap=self.limiter.per_chat_cap(), cards=self.adapter.capabilities.edit)

    def _release(self, ids: list[int]) -> None:
        outbox_claim.release(self.engine, ids)

    def _resolve(self, claimed: outbox_claim.Claimed, report: DeliveryReport) -> dict[int, Target]:
        """Where each claimed row goes. A row to a person bound nowhere waits, one for
        another platform's sender is let go; others without a usable recipient die here."""
        rows, reach, moved = claimed.rows, claimed.reach, claimed.moved
        targets: dict[int, Target] = {}
        parked: list[OutboxMessage] = []
        left: list[int] = []
        for row in rows:
            assert row.id is not None
            if row.person_id is None and row.chat_id:
                targets[row.id] = Target(moved.get(row.chat_id, row.chat_id), is_group=True)
            elif row.person_id in reach.here:
                ident = reach.here[row.person_id]
                targets[row.id] = Target(ident.chat_id, is_group=False, identity_id=ident.id)
            elif (verdict := reach.verdict(row)) == waiting.WAIT:
                parked.append(row)
            elif verdict == waiting.LEAVE:
                left.append(row.id)
            else:
                self._kill(row, verdict, row.attempts, report)
        report.waiting += waiting.park(self.engine, parked, now=self.clock.now(),
                                       hours=self.settings.unbound_wait_hours)
        self._release(left)
        return targets

    async def _deliver_chain(self, chain: list[OutboxMessage], targets: dict[int, Target],
                             report: DeliveryReport, release: list[int]) -> None:
        """Send one chat's rows in order; stop at the first that must wait."""
        for index, row in enumerate(chain):
            assert row.id is not None
            try:
                done = await self._attempt(row, targets[row.id], report)
            except Deferred as deferred:
                rest = chain[index:]
                release.extend(r.id for r in rest if r.id is not None)
                report.deferred += len(rest)
                now = self.time_source()
                until = now + deferred.wait
                for r in rest:
                    key = recipient_key(r.person_id, r.chat_id)
                    if deferred.wait > NEAR_READY_SECONDS and key not in self._deferred:
                        report.set_aside += 1
                    self._deferred[key] = max(until, self._deferred.get(key, until))
                return
            if not done:  # waiting for a retry; the rest of the chat waits behind it
                release.extend(r.id for r in chain[index + 1:] if r.id is not None)
                return

    async def _attempt(self, row: OutboxMessage, target: Target, report: DeliveryReport) -> bool:
        """Deliver one row; True when it left the queue (sent or dead)."""
        self.marks.flush_if_old()
        granted = await self.pacer.acquire(target)
        outbound = row.to_outbound()
        try:
            ref, edited = await self._send_or_edit(row, target, outbound, granted)
        except Deferred:
            raise
        except AdapterError as exc:
            return self._failed(row, target, exc, report)
        except Exception as exc:
            log.exception("outbox row %s to chat %s: unexpected error from the %s adapter",
                          row.id, target.chat_id, self.platform)
            return self._failed(row, target, AdapterError(f"{type(exc).__name__}: {exc}"), report)
        if (row.last_error or "").startswith(POSSIBLE_DUPLICATE):
            report.possible_duplicates += 1
            log.warning("outbox row %s to chat %s sent after an attempt with an unknown "
                        "outcome: possibly delivered twice", row.id, target.chat_id)
        assert row.id is not None
        mark = Mark(row_id=row.id, chat_id=target.chat_id, ref=None if ref is None else str(ref)[:100],
                    sent_at=self.clock.now(), card_key=row.card_key)
        if mark.card_key and mark.ref is not None and self._claimed is not None:
            self._claimed.sent(mark.card_key, mark.chat_id, mark.row_id, mark.ref)
        self.marks.add(mark)
        report.sent += 1
        report.edited += edited
        self.counters.sent.labels(platform=self.platform).inc()
        self.last_reached_at, self.unreached_since = self.clock.now(), None
        return True

    async def _send_or_edit(self, row: OutboxMessage, target: Target, outbound: Outbound,
                            granted: float) -> tuple[str | None, bool]:
        try:
            return await self._call_platform(row, target, outbound)
        finally:
            self.pacer.settle(target, granted)

    async def _call_platform(self, row: OutboxMessage, target: Target,
                             outbound: Outbound) -> tuple[str | None, bool]:
        if row.card_key and self.adapter.capabilities.edit:
            assert row.id is not None
            ref = self.marks.ref_for(row.card_key, target.chat_id, row.id)
            if ref is None:   # the claim read the cards' sends; without a claim, ask
                lookup = outbox_claim.card_ref if self._claimed is None else self._claimed.card_ref
                ref = lookup(self.engine, self.platform, row.card_key, target.chat_id, row.id)
            if ref is not None:
                try:
                    await self.adapter.edit(target.chat_id, ref, outbound)
                    return ref, True
                except AdapterError as exc:
                    if exc.retryable:
                        raise  # busy or unreachable: try the edit again later
                    log.warning("outbox row %s: editing card %s (message %s) failed, sending "
                                "a new message instead: %s", row.id, row.card_key, ref, exc)
                again = await self.pacer.acquire(target)  # the new send is one more platform call
                try:
                    return await self.adapter.send(target.chat_id, outbound,
                                                   is_group=target.is_group), False
                finally:
                    self.pacer.settle(target, again)
        return await self.adapter.send(target.chat_id, outbound, is_group=target.is_group), False

    def _failed(self, row: OutboxMessage, target: Target, exc: AdapterError,
                report: DeliveryReport) -> bool:
        attempts = row.attempts + 1
        if not exc.migrated_to:   # a moved group is no failed attempt (sent to the new id next)
            self.counters.failed.labels(platform=self.platform).inc()
        if exc.retryable and exc.retry_after is None and not exc.migrated_to:
            # Network, timeout, 5xx: the platform did not answer (a 429 is an answer).
            self.unreached_since = self.unreached_since or self.clock.now()
        else:
            self.last_reached_at, self.unreached_since = self.clock.now(), None
        reason = (exc.message or type(exc).__name__)[:480]
        uncertain = (isinstance(exc, UncertainDelivery)
                     and not getattr(self.adapter, "resend_is_safe", False))
        if uncertain or (row.last_error or "").startswith(POSSIBLE_DUPLICATE):
            reason = POSSIBLE_DUPLICATE + reason.removeprefix(POSSIBLE_DUPLICATE)
        if exc.migrated_to and target.is_group:
            with session_scope(self.engine) as session:
                record_move(session, platform=self.platform, old=target.chat_id,
                            new=exc.migrated_to, now=self.clock.now())
                stored = session.get(_M, row.id)
                assert stored is not None
                stored.claimed_until, stored.next_attempt_at = None, self.clock.now()
            report.retried += 1  # not a failed attempt: the next pass sends to the new id
            return False
        if exc.permanent_reason == "blocked":
            why = dead_letters.REASON_GROUP_BLOCKED if target.is_group else dead_letters.REASON_BLOCKED
            self._kill(row, f"{why}（{reason}）", attempts, report,
                       blocked_identity=target.identity_id)
            return True
        if not exc.retryable or attempts >= self.settings.max_attempts:
            self._kill(row, reason, attempts, report)
            return True
        ceiling = min(self.settings.backoff_max_seconds,
                      self.settings.backoff_base_seconds * 2 ** (attempts - 1))
        delay = self.rng.uniform(0, ceiling)  # full jitter: retries of many rows spread out
        if exc.retry_after is not None:
            self.limiter.block(target.chat_id, self.time_source() + exc.retry_after)
            delay = max(delay, exc.retry_after)
        with session_scope(self.engine) as session:
            stored = session.get(_M, row.id)
            assert stored is not None
            stored.attempts, stored.last_error, stored.claimed_until = attempts, reason, None
            stored.next_attempt_at = self.clock.now() + timedelta(seconds=delay)
        log.warning("outbox row %s to chat %s failed (attempt %d of %d), retry in %.1fs: %s",
                    row.id, target.chat_id, attempts, self.settings.max_attempts, delay, reason)
        report.retried += 1
        return False

    def _kill(self, row: OutboxMessage, reason: str, attempts: int, report: DeliveryReport,
              *, blocked_identity: int | None = None) -> None:
        """Make ``row`` dead and, unless it is itself such a notice, tell every admin."""
        now = self.clock.now()
        with session_scope(self.engine) as session:
            stored = session.get(_M, row.id)
            assert stored is not None
            stored.status, stored.attempts, stored.last_error = OutboxStatus.dead, attempts, reason
            stored.claimed_until = None
            if blocked_identity is not None:
                ident = session.get(ChatIdentity, blocked_identity)
                if ident is not None:
                    ident.blocked_at = now
            if not dead_letters.is_notice(stored.event_key):  # no notice about notices
                dead_letters.tell_admins(session, stored, now)
        log.warning("outbox row %s is dead after %d attempt(s): %s", row.id, attempts, reason)
        report.dead += 1
        self._dead_hook(stored)

    def _dead_hook(self, row: OutboxMessage) -> None:
        if self.on_dead is not None:
            try:
                self.on_dead(row)
            except Exception:
                log.exception("on_dead hook failed for outbox row %s", row.id)

    def _idle_wait(self, report: DeliveryReport | None) -> float:
        wait = self.idle_seconds
        if report is not None and report.retry_in is not None:
            wait = min(wait, report.retry_in)
        now = self.clock.now()
        try:
            nxt = outbox_claim.next_due(self.engine, self.platform, now)
        except Exception:  # the failed pass has logged it already
            log.debug("could not read the next outbox due time", exc_info=True)
            nxt = None
        if nxt is not None:
            wait = min(wait, max(0.0, (nxt - now).total_seconds()))
        return wait
