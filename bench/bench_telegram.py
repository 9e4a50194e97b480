"""Briefing fan-out over Telegram against a fake Bot API that enforces the limits (not a test).

Run ``python bench/bench_telegram.py`` (options: ``--private``, ``--groups``,
``--group-messages``, ``--latency`` (comma-separated seconds, default ``0.02,0.1``)). The
real :class:`~bot.adapters.telegram.TelegramAdapter` (python-telegram-bot's own HTTP
networking) talks to ``tests/fakes/fake_telegram.FakeBotApi`` served by uvicorn on
127.0.0.1 in its own process, which waits the simulated latency before it counts and
answers a request. The fake answers 429 whenever Telegram's limits would be exceeded: 30
messages in any second overall, 1 per second per chat, 20 per minute per group (the
adapter's ``limits``; https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
The real :class:`~bot.outbox.OutboxSender` delivers a daily briefing queued for
``--private`` bound people and ``--groups`` duty groups (``--group-messages`` each) from a
temporary SQLite file, with the real clock; each latency gets a fresh fake and database.

Rate: under a strict sliding window the n-th message (from 0) can go at the earliest
floor(n / 30) s after the first, so the shortest possible time from the first message to
the last (as the fake saw them) is floor((N - 1) / 30) s; the share of the allowed rate is
that over the measured time, and the achieved rate is the allowed 30/s times that share.
Goal: ≥ 97 % and zero 429s. Prints one ``BENCH_JSON`` line (``runs`` by latency, e.g.
``runs.20ms.percent``), with the load average before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fanoutlib import (
    add_latency_option,
    latency_runs,
    rate_share,
    run_label,
    run_sender,
    serve_fake,
    sqlite_engine,
)

from bot.adapters.telegram import TelegramAdapter
from bot.config import load_settings
from core.clock import SystemClock
from core.db import session_scope
from core.messages import Outbound
from core.outbox import enqueue
from people.models import ChatIdentity, Person
from tests.fakes.fake_telegram import FakeBotApi

TOKEN = "123:BENCH"
GLOBAL_PER_SECOND = 30


def _fill(engine: object, private: int, groups: int, group_messages: int) -> int:
    now = SystemClock().now()
    text = ("【每日简报】11月25日 值班情况\n今日值班：王芳（白班）、刘洋（夜班）；带班领导：李强\n"
            "未结事件 2 件，今日到期留言 3 条。详见 /brief")
    with session_scope(engine) as session:  # type: ignore[arg-type]
        for g in range(groups):
            for k in range(group_messages):
                enqueue(session=session, now=now, event_key=f"brief:2026-11-25:{k}",
                        message=Outbound(f"{text}（第 {k + 1} 部分）", chat_id=str(-1_000_000 - g)))
        for n in range(private):
            person = Person(name=f"值班员{n:03d}", roles="officer", created_at=now)
            session.add(person)
            session.flush()
            assert person.id is not None
            session.add(ChatIdentity(person_id=person.id, platform="telegram",
                                     external_id=str(10_000 + n), chat_id=str(10_000 + n),
                                     bound_at=now))
            enqueue(session=session, now=now, event_key="brief:2026-11-25",
                    message=Outbound(text, person_id=person.id))
    return private + groups * group_messages


def _serve_fake(port: int, latency: float, groups: int) -> None:
    """The fake Bot API in its own process (as the real one is remote: its timing is not
    distorted by the bot's event loop), with ``GET /stats`` for the results."""
    import uvicorn
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    fake = FakeBotApi(TOKEN, enforce_limits=True, delay_seconds=latency)
    for g in range(groups):
        fake.add_chat(-1_000_000 - g, "supergroup", title=f"值班群{g + 1}")

    async def stats(request: object) -> JSONResponse:
        return JSONResponse({"at": [r.at for r in fake.sent], "too_many": fake.too_many,
                             "chats": [str(r.chat_id) for r in fake.sent]})

    fake.app.router.routes.insert(0, Route("/stats", stats))
    uvicorn.run(fake.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _run(args: argparse.Namespace, latency: float) -> dict[str, Any]:
    load = os.getloadavg()[0]
    async with serve_fake(_serve_fake, latency, args.groups) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            engine = sqlite_engine(tmp)
            total = _fill(engine, args.private, args.groups, args.group_messages)
            settings = load_settings(None, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN,
                                                "DUTYBOT_TELEGRAM_BASE_URL": fake.url})
            adapter = TelegramAdapter(settings.telegram)
            await adapter.bot.initialize()
            started, _ = await run_sender(engine, adapter, settings.outbox, fake.seen(total),
                                          timeout=args.timeout)
            await adapter.bot.shutdown()
            engine.dispose()
        result = await fake.stats()
    done = sorted(result["at"])
    elapsed = done[-1] - started if done else float("nan")
    pace = rate_share(done, GLOBAL_PER_SECOND)
    if args.histogram:
        buckets = [0] * (int(pace.span) + 1)
        for at in done:
            buckets[int(at - done[0])] += 1
        print("  per second:", buckets)
    per_group = [result["chats"].count(str(-1_000_000 - g)) for g in range(args.groups)]
    print(f"{run_label(latency, load)} {len(done)}/{total} delivered "
          f"({args.private} private chats, {args.groups} groups × {args.group_messages}) "
          f"in {elapsed:.2f} s")
    print(f"  {pace.describe('msg/s')}; 429 answers: {result['too_many']}; "
          f"per group: {per_group}")
    return pace.figures(latency=latency, load=load, too_many=result["too_many"], queued=total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--private", type=int, default=300)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--group-messages", type=int, default=3)
    add_latency_option(parser)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--histogram", action="store_true", help="messages per second")
    args = parser.parse_args()
    runs = {}
    for key, latency in latency_runs(args.latency):
        runs[key] = asyncio.run(_run(args, latency))
    print("BENCH_JSON " + json.dumps({"platform": "telegram", "goal_percent": 97, "runs": runs}))


if __name__ == "__main__":
    main()
