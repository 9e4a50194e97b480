"""Outbox throughput against a sink that enforces Telegram-like limits (not a test).

Run ``python bench/bench_outbox.py`` (options: ``--messages``, ``--chats``, ``--latency``,
``--order grouped|interleaved|both``). A fake platform accepts at most 30 messages in any
second overall and 1 per second per chat, measured on its own side after a simulated
network latency; a send that would exceed is rejected with ``retry_after`` and counted.
The real :class:`~bot.outbox.OutboxSender` runs on a temporary SQLite file with the real
clock until every message is accepted (at most ``--timeout`` seconds).

Rates: a sliding window lets the first 30 go at once, so "messages / elapsed" flatters;
the steady rate is the messages after that first burst over the time from the first
accepted message to the last, compared with the allowed 30/s. The share, as in
``bench_telegram``: message n (from 0) can be accepted floor(n / 30) s after the first at
the earliest, so floor((N - 1) / 30) s over the measured time. Goal: ≥ 97 %, 0 rejected.
``--latency`` takes comma-separated seconds (default 20 ms and 100 ms); prints one
``BENCH_JSON`` line (``runs.grouped-20ms.percent`` …).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import defaultdict, deque
from typing import Any, ClassVar

from fanoutlib import (
    add_latency_option,
    latency_runs,
    rate_share,
    run_label,
    run_sender,
    sqlite_engine,
)
from sqlmodel import Session, func, select

from bot.adapters.base import Adapter, RateWindow
from bot.config import OutboxSettings
from core.clock import SystemClock
from core.db import session_scope
from core.errors import AdapterError
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from people.models import ChatIdentity, Person

GLOBAL_PER_SECOND, CHAT_PER_SECOND = 30, 1


class SinkAdapter(Adapter):
    """A platform that enforces its limits and counts every send it must refuse."""

    platform: ClassVar[str] = "bench"
    limits: ClassVar[tuple[RateWindow, ...]] = (
        RateWindow("global", GLOBAL_PER_SECOND, 1.0), RateWindow("chat", CHAT_PER_SECOND, 1.0))

    def __init__(self, latency: float, jitter: float = 0.0) -> None:
        self.latency, self.jitter = latency, jitter
        self._rng = random.Random(1)
        self.accepted: list[float] = []
        self.rejected = 0
        self._all: deque[float] = deque()
        self._chats: dict[str, deque[float]] = defaultdict(deque)

    async def start(self, handler: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        if self.latency or self.jitter:  # the request travels; the platform's clock counts
            await asyncio.sleep(self.latency + self._rng.uniform(0, self.jitter))
        now = time.monotonic()
        wait = max(_over(self._all, GLOBAL_PER_SECOND, now),
                   _over(self._chats[chat_id], CHAT_PER_SECOND, now))
        if wait > 0:
            self.rejected += 1
            raise AdapterError("429 Too Many Requests", retry_after=wait)
        self._all.append(now)
        self._chats[chat_id].append(now)
        self.accepted.append(now)
        return str(len(self.accepted))


def _over(log: deque[float], count: int, now: float) -> float:
    """Seconds until one more send fits in the last second (0: it fits now)."""
    while log and log[0] + 1.0 <= now:
        log.popleft()
    return log[0] + 1.0 - now if len(log) >= count else 0.0


def _fill(engine: Any, messages: int, chats: int, order: str) -> None:
    now = SystemClock().now()
    with session_scope(engine) as session:
        ids = []
        for n in range(chats):
            person = Person(name=f"值班员{n:03d}", roles="officer", created_at=now)
            session.add(person)
            session.flush()
            session.add(ChatIdentity(person_id=person.id, platform="bench", external_id=f"u{n}",
                                     chat_id=f"c{n}", bound_at=now))
            ids.append(person.id)
        per_chat = messages // chats
        plan = ([(c, k) for c in range(chats) for k in range(per_chat)] if order == "grouped"
                else [(c, k) for k in range(per_chat) for c in range(chats)])
        for c, k in plan:
            enqueue(session=session, now=now, event_key=f"bench:{k}",
                    message=Outbound(text=f"第 {k} 条提醒", person_id=ids[c]))


async def _run(messages: int, chats: int, order: str, latency: float, jitter: float,
               timeout: float) -> dict[str, Any]:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        engine = sqlite_engine(tmp)
        _fill(engine, messages, chats, order)
        adapter = SinkAdapter(latency, jitter)

        async def all_accepted() -> bool:
            return len(adapter.accepted) >= messages

        started, _ = await run_sender(engine, adapter, OutboxSettings(), all_accepted,
                                      timeout=timeout, interval=0.05)
        with Session(engine) as session:
            sent_rows = session.exec(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.status == OutboxStatus.sent)).one()
        engine.dispose()
    done = adapter.accepted
    elapsed = (done[-1] - started) if done else float("nan")
    pace = rate_share(done, GLOBAL_PER_SECOND)
    steady = (len(done) - GLOBAL_PER_SECOND) / pace.span if pace.span else float("nan")
    extra = f" + up to {jitter * 1000:.0f} ms" if jitter else ""
    print(f"{run_label(latency, load, order, extra)} {len(done)}/"
          f"{messages} accepted ({sent_rows} rows sent) to {chats} chats in {elapsed:.2f} s")
    print(f"  overall {len(done) / elapsed:.2f} msg/s; steady {steady:.2f} msg/s = "
          f"{100 * steady / GLOBAL_PER_SECOND:.1f}% of the allowed {GLOBAL_PER_SECOND} msg/s; "
          f"shortest possible {pace.shortest} s of {pace.span:.2f} s = {100 * pace.share:.1f}%; "
          f"rejected sends: {adapter.rejected}")
    return pace.figures(latency=latency, load=load, too_many=adapter.rejected,
                        steady_percent=round(100 * steady / GLOBAL_PER_SECOND, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--chats", type=int, default=60)
    add_latency_option(parser)
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="extra random seconds per request (0 to this)")
    parser.add_argument("--order", choices=("grouped", "interleaved", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    runs = {}
    for key, latency in latency_runs(args.latency):
        for order in ("grouped", "interleaved") if args.order == "both" else (args.order,):
            runs[f"{order}-{key}"] = asyncio.run(
                _run(args.messages, args.chats, order, latency, args.jitter, args.timeout))
    print("BENCH_JSON " + json.dumps({"platform": "bench sink", "goal_percent": 97, "runs": runs}))


if __name__ == "__main__":
    main()
