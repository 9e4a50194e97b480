"""The rate limiter: exact sliding windows, per-chat blocks, time passed in."""

from __future__ import annotations

import random
from bisect import bisect_left
from collections import defaultdict

import pytest

from bot.adapters.base import RateWindow
from bot.ratelimit import RateLimiter

TELEGRAM = (RateWindow("global", 30, 1.0), RateWindow("chat", 1, 1.0),
            RateWindow("group", 20, 60.0))


def test_global_30_per_second() -> None:
    limiter = RateLimiter([RateWindow("global", 30, 1.0)])
    delays = [limiter.acquire_delay(f"c{i}", False, 100.0) for i in range(40)]
    assert delays[:30] == [0.0] * 30
    assert all(d == pytest.approx(1.0) for d in delays[30:])
    assert limiter.acquire_delay("c99", False, 100.999) > 0
    assert limiter.acquire_delay("c99", False, 101.0) == 0.0  # the window is [t, t + 1)


def test_per_chat_one_per_second_leaves_other_chats_alone() -> None:
    limiter = RateLimiter(TELEGRAM)
    assert limiter.acquire_delay("a", False, 0.0) == 0.0
    assert limiter.acquire_delay("a", False, 0.25) == pytest.approx(0.75)
    assert limiter.acquire_delay("b", False, 0.25) == 0.0
    assert limiter.acquire_delay("a", False, 1.0) == 0.0


def test_group_20_per_minute_applies_to_groups_only() -> None:
    limiter = RateLimiter(TELEGRAM)
    for second in range(20):
        assert limiter.acquire_delay("g", True, float(second)) == 0.0
        assert limiter.acquire_delay("p", False, float(second)) == 0.0
    assert limiter.acquire_delay("g", True, 20.0) == pytest.approx(40.0)   # until 0 + 60
    assert limiter.acquire_delay("p", False, 20.0) == 0.0                  # private: 1/s only
    assert limiter.acquire_delay("g", True, 60.0) == 0.0


def test_a_refused_request_records_nothing() -> None:
    limiter = RateLimiter([RateWindow("chat", 2, 10.0)])
    assert limiter.acquire_delay("a", False, 0.0) == 0.0
    assert limiter.acquire_delay("a", False, 1.0) == 0.0
    assert limiter.acquire_delay("a", False, 2.0) == pytest.approx(8.0)
    assert limiter.acquire_delay("a", False, 3.0) == pytest.approx(7.0)
    # The refused asks at 2 and 3 left no trace: at 10 only the send at 1 is inside.
    assert limiter.acquire_delay("a", False, 10.0) == 0.0
    assert limiter.acquire_delay("a", False, 10.5) == pytest.approx(0.5)


def test_block_holds_one_chat_only_and_never_shortens() -> None:
    limiter = RateLimiter(TELEGRAM)
    limiter.block("a", until=30.0)
    limiter.block("a", until=10.0)
    assert limiter.acquire_delay("a", False, 5.0) == pytest.approx(25.0)
    assert limiter.acquire_delay("b", False, 5.0) == 0.0
    assert limiter.acquire_delay("a", False, 30.0) == 0.0
    assert limiter.blocked_until("a") is None


def test_margin_widens_every_window() -> None:
    limiter = RateLimiter([RateWindow("chat", 1, 1.0)], margin=0.1)
    assert limiter.acquire_delay("a", False, 0.0) == 0.0
    assert limiter.acquire_delay("a", False, 1.05) == pytest.approx(0.05)
    assert limiter.acquire_delay("a", False, 1.1) == 0.0


def test_invalid_windows_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter([RateWindow("chat", 0, 1.0)])
    with pytest.raises(ValueError):
        RateLimiter([RateWindow("chat", 1, 1.0)], margin=-1)


@pytest.mark.parametrize("seed", range(5))
def test_never_more_than_a_window_allows(seed: int) -> None:
    """Property: over many sends at random times, no interval [t, t + seconds) holds more
    than ``count`` sends of its scope; and waiting the returned delay is always enough."""
    rng = random.Random(seed)
    limiter = RateLimiter(TELEGRAM)
    chats = [(f"p{i}", False) for i in range(40)] + [(f"g{i}", True) for i in range(5)]
    sent: list[tuple[float, str, bool]] = []
    now = 0.0
    for _ in range(6000):
        now += rng.choice((0.0, 0.0, rng.uniform(0, 0.05), rng.uniform(0, 2.0)))
        chat, is_group = rng.choice(chats)
        delay = limiter.acquire_delay(chat, is_group, now)
        if delay > 0:
            if rng.random() < 0.5:
                continue
            now += delay
            delay = limiter.acquire_delay(chat, is_group, now)
            assert delay == 0.0, "waiting the returned delay must be enough"
        sent.append((now, chat, is_group))
    assert len(sent) > 2000
    for window in TELEGRAM:
        series: dict[str, list[float]] = defaultdict(list)
        for t, chat, is_group in sent:
            if window.scope == "global":
                series[""].append(t)
            elif window.scope == "chat" or is_group:
                series[chat].append(t)
        for times in series.values():
            for i, start in enumerate(times):
                inside = bisect_left(times, start + window.seconds) - i
                assert inside <= window.count, (window, start, inside)


def test_global_rate_is_reached_when_busy() -> None:
    """Exactness cuts both ways: a saturated limiter allows the full rate, not less."""
    limiter = RateLimiter([RateWindow("global", 30, 1.0), RateWindow("chat", 1, 1.0)])
    now, sent, chat = 0.0, 0, 0
    while now < 10.0:
        delay = limiter.acquire_delay(f"c{chat % 100}", False, now)
        if delay:
            now += delay
        else:
            sent, chat = sent + 1, chat + 1
    assert sent == 300  # 30 at each of t = 0, 1, … 9


def test_a_send_counts_from_the_platforms_answer_once_settled() -> None:
    limiter = RateLimiter([RateWindow("chat", 1, 1.0), RateWindow("global", 2, 1.0)])
    assert limiter.acquire_delay("a", False, 0.0) == 0.0
    assert limiter.acquire_delay("b", False, 0.1) == 0.0
    limiter.settle("a", False, acquired=0.0, done=0.4)   # the platform answered late
    # The platform may have counted it as late as 0.4: chat a waits until 1.4, and the
    # global window frees its first slot when b's send (0.1) leaves it, at 1.1.
    assert limiter.acquire_delay("a", False, 1.05) == pytest.approx(0.35)
    assert limiter.acquire_delay("c", False, 1.05) == pytest.approx(0.05)
    assert limiter.acquire_delay("c", False, 1.1) == 0.0
    assert limiter.acquire_delay("a", False, 1.4) == 0.0
    limiter.settle("zzz", False, acquired=5.0, done=6.0)  # unknown grants are ignored
