"""Sliding-window rate limiter for an adapter's declared ``limits``.

Each :class:`~bot.adapters.base.RateWindow` keeps, per key (the whole bot, one chat, one
group), the times of the sends still inside its window. A send at ``now`` is allowed only
when every window that applies has fewer than ``count`` sends at times ``t`` with
``t + seconds > now``; so no half-open interval ``[t, t + seconds)`` ever holds more than
``count`` sends — exact, with no bursts at window edges as fixed buckets would allow.

A send is recorded when it is granted; once the platform has answered,
:meth:`RateLimiter.settle` moves it to the answer less a credit taken from the recent round
trips (see there), so that later sends keep a full window after the platform's own count.

Time is a float the caller passes in (monotonic seconds); the limiter never reads a clock,
so tests move time freely. It is not thread-safe; the outbox sender calls it from one
event loop, and it keeps no state across processes (each worker limits itself).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable

from bot.adapters.base import RateWindow

# Forget idle per-chat history every this many acquisitions, so memory stays bounded by
# the chats active within the longest window.
_SWEEP_EVERY = 1000
# The last this many round trips give the credit a settled send gets (RateLimiter.settle) ...
_ROUND_TRIPS = 512
# ... once at least this many were seen (before that, a send counts from its answer).
_ROUND_TRIPS_BEFORE_CREDIT = 16


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
        self._round_trips = _RoundTrips(_ROUND_TRIPS)
        self._uncredited: list[tuple[str, bool, float, float]] = []  # settled before credit

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

    def chat_delay(self, chat_id: str, is_group: bool, now: float) -> float:
        """The seconds ``chat_id`` itself must wait at ``now``: its ``chat`` and ``group``
        windows and any block, not the ``global`` windows (0.0: it need not). Records
        nothing."""
        wait = 0.0
        until = self._blocked.get(chat_id)
        if until is not None and until > now:
            wait = _wait_until(until, now)
        for index, key in self._keys(chat_id, is_group):
            if self.windows[index].scope == "global":
                continue
            span = self._spans[index]
            log = self._sends.get((index, key))
            if not log:
                continue
            inside = [t for t in log if t + span > now]
            count = self.windows[index].count
            if len(inside) >= count:
                wait = max(wait, _wait_until(inside[len(inside) - count] + span, now))
        return wait

    def settle(self, chat_id: str, is_group: bool, acquired: float, done: float) -> None:
        """Count the send granted at ``acquired`` and answered at ``done`` as made at
        ``done`` less a credit taken from the recent round trips.

        The platform counts a send somewhere between our request and its answer: a forward
        delay ``f`` after the grant, a return delay ``b`` before the answer. Counting every
        send from its answer keeps the next ones a full window after the platform's count
        whatever ``f`` and ``b`` are, but costs a round trip per window (9 % of the rate at
        100 ms and a 1 s window). A later send ``j`` is counted at its grant + ``f_j`` at
        the earliest, this one at ``done`` - ``b`` at the latest; so counting this one from
        ``done`` - credit is safe while ``f_j + b >= credit - margin``. The credit is the
        shortest of the last round trips (each is an ``f + b``) less the spread of the
        short ones (the lower quartile less the shortest): a busy process slows some
        requests before they leave and others after they come back, so the fastest round
        trip alone overstates how fast both halves can be. It is 0 until
        ``_ROUND_TRIPS_BEFORE_CREDIT`` round trips are known; then the sends settled
        before get it too. A send never counts from before its grant.
        """
        if done <= acquired:
            return
        self._round_trips.add(done - acquired)
        if self._round_trips.count < _ROUND_TRIPS_BEFORE_CREDIT:
            self._uncredited.append((chat_id, is_group, acquired, done))
            self._move(chat_id, is_group, acquired, done)
            return
        credit = self._round_trips.credit()
        for early in self._uncredited:  # the first sends: credited now that it is known
            self._move(early[0], early[1], early[3], max(early[2], early[3] - credit))
        self._uncredited.clear()
        self._move(chat_id, is_group, acquired, max(acquired, done - credit))

    def _move(self, chat_id: str, is_group: bool, old: float, new: float) -> None:
        """Move a send recorded at ``old`` to ``new`` in each window it counts in."""
        if new == old:
            return
        for index, key in self._keys(chat_id, is_group):
            log = self._sends.get((index, key))
            if log is None:
                continue
            try:
                log.remove(old)
            except ValueError:
                continue  # swept meanwhile
            at = len(log)
            while at > 0 and log[at - 1] > new:
                at -= 1
            log.insert(at, new)

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


class _RoundTrips:
    """The last ``size`` round trips, sorted as well, for the credit of :meth:`RateLimiter.settle`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._order: deque[float] = deque()
        self._sorted: list[float] = []

    @property
    def count(self) -> int:
        return len(self._order)

    def add(self, value: float) -> None:
        self._order.append(value)
        insort(self._sorted, value)
        if len(self._order) > self.size:
            del self._sorted[bisect_left(self._sorted, self._order.popleft())]

    def credit(self) -> float:
        """The shortest round trip less the spread of the short ones (the lower quartile
        less the shortest): a busy process that slows some requests before they leave
        and others after they return makes the shortest round trip a poor guide."""
        shortest = self._sorted[0]
        quartile = self._sorted[len(self._sorted) // 4]
        return max(0.0, shortest - (quartile - shortest))


def _wait_until(target: float, now: float) -> float:
    """``target - now``, rounded up so that ``now + wait >= target`` holds in floats."""
    wait = target - now
    while now + wait < target:
        wait = math.nextafter(wait, math.inf)
    return wait
