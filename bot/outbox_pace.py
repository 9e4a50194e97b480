"""Rate slots for the outbox sender's platform calls (part of :class:`bot.outbox.OutboxSender`).

Each call takes a slot from the :class:`~bot.ratelimit.RateLimiter` before it goes out and
settles it when the platform has answered (the limiter then counts it from the answer
less a credit for the round trip: :meth:`~bot.ratelimit.RateLimiter.settle`).

Where the rate was lost before (docs/performance.md, "Fan-out: where the rate went"): a
row that only the ``global`` windows held back was set aside like a busy chat, and the
sender polled in passes, so each freed slot waited for the next pass. Now a row whose
only obstacle is a global slot that frees within ``SLOT_WAIT_SECONDS`` waits for it in
the pass, and goes the moment it frees; rows wait one at a time, in the order they ask
(chains start in row order). A chat over its own limit is still set aside (``Deferred``),
so that other chats go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.delivery import NEAR_READY_SECONDS, SLOT_WAIT_SECONDS, Deferred, Target
from bot.ratelimit import RateLimiter


class Pacer:
    """Takes and settles rate slots for one sender.

    Args:
        limiter: the adapter's limits.
        time_source: monotonic seconds.
        sleep: how a pass waits for a global slot (tests pass one that moves their clock).
    """

    def __init__(self, limiter: RateLimiter, time_source: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]]) -> None:
        self.limiter, self.time_source, self.sleep = limiter, time_source, sleep
        self.near_ready: list[float] = []  # this pass: when nearly-ready chats are free
        self._turn = asyncio.Lock()

    def new_pass(self) -> None:
        """Forget the last pass's nearly-ready chats."""
        self.near_ready = []
        self._turn = asyncio.Lock()

    async def acquire(self, target: Target) -> float:
        """Take a slot for one platform call to ``target``; returns when it was granted
        (for :meth:`settle`).

        Raises:
            Deferred: the chat (or, for longer than ``SLOT_WAIT_SECONDS``, the whole bot)
                must wait; or a chat free again within ``NEAR_READY_SECONDS`` keeps its
                turn for the last global slots, and younger rows leave them to it.
        """
        async with self._turn:
            while True:
                now = self.time_source()
                ready = [until for until in self.near_ready if until > now]
                if ready:
                    spare = self.limiter.spare(now)
                    if spare is not None and spare <= len(ready):
                        raise Deferred(min(ready) - now)  # leave the slots to the older rows
                wait = self.limiter.acquire_delay(target.chat_id, target.is_group, now)
                if wait <= 0:
                    return now
                if (wait > SLOT_WAIT_SECONDS
                        or self.limiter.chat_delay(target.chat_id, target.is_group, now) > 0):
                    if wait <= NEAR_READY_SECONDS:
                        self.near_ready.append(now + wait)
                    raise Deferred(wait)
                await self.sleep(wait)
                if self.time_source() <= now:  # a time source that the sleep does not move
                    raise Deferred(wait)

    def settle(self, target: Target, granted: float) -> None:
        """The call granted at ``granted`` is answered (see :meth:`RateLimiter.settle`)."""
        self.limiter.settle(target.chat_id, target.is_group, granted, self.time_source())
