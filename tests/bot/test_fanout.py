"""Fan-out at the allowed rate: the limiter's credit for the round trip, and a pass that
waits for global slots, never let more through than the platform allows."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import ClassVar

from sqlalchemy.engine import Engine

from bot.adapters.base import RateWindow
from bot.outbox import OutboxSender
from bot.ratelimit import RateLimiter
from core.clock import FakeClock
from core.messages import Outbound
from tests.bot.test_outbox import TELEGRAM_LIMITS, FakeAdapter, put, sender_for


def _most_in_window(times: list[float], span: float) -> int:
    """The most of ``times`` inside any half-open interval ``[t, t + span)``."""
    ordered, best, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] + span <= at:
            first += 1
        best = max(best, last - first + 1)
    return best


def test_with_the_credit_the_platform_never_counts_more_than_30_in_a_second() -> None:
    """A simulated platform counts each send after a forward delay and answers after a
    return delay, both with jitter on top of fixed parts; the limiter grants sends as
    early as it allows and settles each at its answer."""
    rng = random.Random(21)
    limiter = RateLimiter([RateWindow("global", 30, 1.0)], margin=0.01)
    now, counted = 0.0, []
    in_flight: list[tuple[float, float, str]] = []   # (answer, grant, chat)
    for n in range(3000):
        while True:
            for answer, grant, chat in [f for f in in_flight if f[0] <= now]:
                limiter.settle(chat, False, grant, answer)
                in_flight.remove((answer, grant, chat))
            wait = limiter.acquire_delay(f"c{n}", False, now)
            if wait == 0:
                break
            now += min([wait] + [f[0] - now for f in in_flight if f[0] > now])
        forward = 0.05 + rng.expovariate(1 / 0.004)   # 50 ms there, a few ms of jitter
        back = 0.05 + rng.expovariate(1 / 0.004)
        counted.append(now + forward)
        in_flight.append((now + forward + back, now, f"c{n}"))
    assert _most_in_window(counted, 1.0) <= 30
    # and the round trip is not paid in full each window (it was: 30 / 1.1 s)
    assert (len(counted) - 1) / (max(counted) - min(counted)) > 30 / 1.05


def test_until_round_trips_are_known_a_send_counts_from_its_answer() -> None:
    limiter = RateLimiter([RateWindow("global", 1, 1.0)])
    assert limiter.acquire_delay("a", False, 0.0) == 0.0
    limiter.settle("a", False, acquired=0.0, done=0.1)
    assert limiter.acquire_delay("b", False, 1.05) > 0          # counted from 0.1
    assert limiter.acquire_delay("b", False, 1.1) == 0.0


def test_the_first_sends_get_the_credit_once_it_is_known() -> None:
    limiter = RateLimiter([RateWindow("global", 100, 1.0)])
    for n in range(16):
        assert limiter.acquire_delay(f"c{n}", False, n * 0.001) == 0.0
    for n in range(16):   # every round trip 0.1 s: the credit is 0.1 s (no spread)
        limiter.settle(f"c{n}", False, acquired=n * 0.001, done=n * 0.001 + 0.1)
    assert limiter.spare(1.0005) == 100 - 15     # the first send left the window at 1.0


def test_chat_delay_ignores_the_global_windows() -> None:
    limiter = RateLimiter(TELEGRAM_LIMITS)
    for n in range(30):
        limiter.acquire_delay(f"c{n}", False, 0.0)
    assert limiter.acquire_delay("fresh", False, 0.5) > 0       # the bot is full
    assert limiter.chat_delay("fresh", False, 0.5) == 0.0       # the chat is not
    assert limiter.chat_delay("c1", False, 0.5) == 0.5          # c1 sent at 0.0
    limiter.block("fresh", 3.0)
    assert limiter.chat_delay("fresh", False, 0.5) == 2.5


class TimedAdapter(FakeAdapter):
    """Records the (fake) time of each send."""

    limits: ClassVar[tuple[RateWindow, ...]] = TELEGRAM_LIMITS

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[float] = []

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        self.at.append(self.clock.now().timestamp())
        return await super().send(chat_id, message, is_group=is_group)


async def test_a_fan_out_waits_for_slots_in_order_and_never_exceeds_the_limits(
        engine: Engine, clock: FakeClock) -> None:
    for n in range(100):
        put(engine, clock, f"简报{n}", f"f:{n}", chat=f"g{n % 40}")   # 40 groups, 2-3 each
    adapter = TimedAdapter(clock)
    sender = sender_for(engine, adapter, clock, batch_size=200)
    for _ in range(20):
        report = await sender.deliver_due()
        if report.retry_in:
            clock.advance(timedelta(seconds=report.retry_in))
        if len(adapter.sent) == 100:
            break
    assert len(adapter.sent) == 100
    assert _most_in_window(adapter.at, 1.0) <= 30
    for g in range(40):
        chat = [at for (c, _, _), at in zip(adapter.sent, adapter.at, strict=True) if c == f"g{g}"]
        assert _most_in_window(chat, 1.0) <= 1
        assert adapter.texts(f"g{g}") == [f"简报{n}" for n in range(g, 100, 40)]   # in order


async def test_a_pass_whose_sleep_does_not_move_time_defers_instead_of_spinning(
        engine: Engine, clock: FakeClock) -> None:
    for n in range(31):
        put(engine, clock, f"群消息{n}", f"s:{n}", chat=f"s{n}")
    adapter = TimedAdapter(clock)

    async def still(seconds: float) -> None:
        return None

    sender = OutboxSender(engine=engine, adapter=adapter, clock=clock,
                          settings=sender_for(engine, adapter, clock).settings,
                          time_source=lambda: clock.now().timestamp(), sleep=still)
    report = await sender.deliver_due()
    assert (report.sent, report.deferred) == (30, 1)
