"""Sliding-window rate limiter for an adapter's declared ``limits``.

Each :class:`~bot.adapters.base.RateWindow` keeps, per key (the whole bot, one chat, one
group), the times of the sends still inside its window. A send at ``now`` is allowed only
when every window that applies has fewer than ``count`` sends at times ``t`` with
``t + seconds > now``; so no half-open interval ``[t, t + seconds)`` ever holds more than
``count`` sends — exact, with no bursts at window edges as fixed buckets would allow.

Time is a float the caller passes in (monotonic seconds); the limiter never reads a clock,
so tests move time freely. It is not thread-safe; the outbox sender calls it from one
event loop, and it keeps no state across processes (each worker limits itself).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from bot.adapters.base import RateWindow

# Forget idle per-chat history every this many acquisitions, so memory stays bounded by
# the chats active within the longest window.
_SWEEP_EVERY = 1000


class RateLimiter:
    """Enforces a set of rate windows, with per-chat blocks for a platform's ``retry_after``.

    Args:
        windows: the adapter's ``limits``.
        margin: seconds added to every window's length. A platform measures time on its
            own side, after network jitter; a small margin keeps our sends inside its limits.
    """

    def __init__(self, windows: Iterable[RateWindow], *, margin: float = 0.0) -> None:
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.windows: tuple[RateWindow, ...] = tuple(windows)
        for window in self.windows:
            if window.count < 1 or window.seconds <= 0:
                raise ValueError(f"invalid rate window {window!r}")
        self.margin = margin
        self._spans = tuple(w.seconds + margin for w in self.windows)
        self._sends: dict[tuple[int, str], deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self._calls = 0

    def acquire_delay(self, chat_id: str, is_group: bool, now: float) -> float:
        """Ask to send one message to ``chat_id`` at ``now``.

        Args:
            chat_id: the platform chat the message goes to.
            is_group: whether it is a group chat (``group`` windows apply only then).
            now: the current monotonic time in seconds.

        Returns:
            0.0 when the send may happen now — the send is then recorded; otherwise the
            seconds to wait before asking again, and nothing is recorded. Waiting exactly
            that long is enough when no other send happens meanwhile.
        """
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        wait = 0.0
        until = self._blocked.get(chat_id)
        if until is not None:
            if until > now:
                wait = _wait_until(until, now)
            else:
                del self._blocked[chat_id]
        logs: list[deque[float]] = []
        for index, key in self._keys(chat_id, is_group):
            span = self._spans[index]
            log = self._sends.setdefault((index, key), deque())
            while log and log[0] + span <= now:
                log.popleft()
            if len(log) >= self.windows[index].count:
                wait = max(wait, _wait_until(log[0] + span, now))
            logs.append(log)
        if wait > 0:
            return wait
        for log in logs:
            log.append(now)
        return 0.0

    def settle(self, chat_id: str, is_group: bool, acquired: float, done: float) -> None:
        """Count the send granted at ``acquired`` as made at ``done`` (when the platform
        answered).

        The platform counts a send when it processes it, somewhere between our request and
        its answer. Counting from the answer keeps every later send at least a window
        after the platform's own count however the network and the platform's queue
        delay single requests; it costs one round trip per window.
        """
        if done <= acquired:
            return
        for index, key in self._keys(chat_id, is_group):
            log = self._sends.get((index, key))
            if log is None:
                continue
            try:
                log.remove(acquired)
            except ValueError:
                continue  # swept meanwhile
            at = len(log)
            while at > 0 and log[at - 1] > done:
                at -= 1
            log.insert(at, done)

    def block(self, chat_id: str, until: float) -> None:
        """Let nothing go to ``chat_id`` before ``until`` (a platform's ``retry_after``).

        Other chats are not affected. A later ``until`` extends a block, never shortens it.
        """
        self._blocked[chat_id] = max(until, self._blocked.get(chat_id, until))

    def blocked_until(self, chat_id: str) -> float | None:
        """When a block on ``chat_id`` ends, if one was set and not yet cleared."""
        return self._blocked.get(chat_id)

    def spare(self, now: float) -> int | None:
        """How many more sends the ``global`` windows allow at ``now`` (None: no such window)."""
        spare: int | None = None
        for index, window in enumerate(self.windows):
            if window.scope == "global":
                log = self._sends.get((index, ""), deque())
                inside = sum(1 for t in log if t + self._spans[index] > now)
                spare = min(window.count - inside, spare if spare is not None else window.count)
        return spare

    def per_chat_cap(self) -> int | None:
        """The most messages one chat may get within any window (None: no per-chat limit)."""
        counts = [w.count for w in self.windows if w.scope in ("chat", "group")]
        return min(counts) if counts else None

    def _keys(self, chat_id: str, is_group: bool) -> Iterable[tuple[int, str]]:
        for index, window in enumerate(self.windows):
            if window.scope == "global":
                yield index, ""
            elif window.scope == "chat" or is_group:
                yield index, chat_id

    def _sweep(self, now: float) -> None:
        for (index, key), log in list(self._sends.items()):
            if not log or log[-1] + self._spans[index] <= now:
                del self._sends[(index, key)]
        for chat_id, until in list(self._blocked.items()):
            if until <= now:
                del self._blocked[chat_id]


def _wait_until(target: float, now: float) -> float:
    """``target - now``, rounded up so that ``now + wait >= target`` holds in floats."""
    wait = target - now
    while now + wait < target:
        wait = math.nextafter(wait, math.inf)
    return wait
