"""Several workers on one PostgreSQL: outbox sending and escalation throughput with 1, 2
and 4 worker processes (issue 21 item 4; not a test).

Run ``DUTYBOT_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python
bench/bench_workers.py`` (options: ``--workers 1,2,4``, ``--messages``, ``--escalations``).

For each worker count, on a fresh schema: the incidents of ``bench_incidents`` are seeded
(their acknowledgement ladders are pending due items), then that many worker processes
start, each a whole :class:`~bot.app.App` with ``worker=True`` (leader election, shared
due items, shared outbox) on the memory adapter, which has no rate limit — what is
measured is the bot's own work, not a platform's allowance. When all are running:

1. ``--messages`` outbox rows (to the seeded people) are committed at once; the figure is
   the time until the last is marked sent;
2. ``--escalations`` ladder rungs are made due at once; the figure is the time until every
   one is processed and every message they queued is sent.

Then the takeover: two workers, the leader killed with SIGKILL, and the seconds until the
other one says it leads (``--leader-check``: ``[bot] leader_check_seconds``, 5 as shipped).

The domain clock of every worker is the same fixed instant (``bench_incidents.START``);
the tick and the outbox's passes run on real time. The last line is ``BENCH_JSON {...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_incidents import DISTRICT, START, add_people, candidates, fill, make_due, templates
from benchlib import pg_schema
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock
from core.db import make_engine, upgrade
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from core.schedule import DueItem, DueStatus
from people.models import Person

GENERAL_SHARE = 0.9   # bench_incidents seeds 90 % 一般 incidents, whose ack rung 1 is fired here
POLL = 0.02           # how often the parent counts (seconds)
RNG = random.Random(21)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- a worker process

def child(url: str, leader_check: float) -> None:
    """One worker: an App on the memory adapter until stdin closes; prints ``READY`` once
    it runs and ``LEADS`` when it takes the lead."""
    # A tick longer than the 0.2 s interval is skipped by APScheduler with a warning: expected here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)

    class Leads(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "now leads" in record.getMessage():
                print("LEADS", flush=True)

    logging.getLogger("dutybot.leader").addHandler(Leads(logging.INFO))
    logging.getLogger("dutybot.leader").setLevel(logging.INFO)
    engine = make_engine(url)
    settings = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": DISTRICT, "DUTYBOT_HTTP_ENABLED": "false",
                                        "DUTYBOT_BOT_TICK_SECONDS": "0.2",
                                        "DUTYBOT_BOT_LEADER_CHECK_SECONDS": str(leader_check)})
    app = App(settings, clock=FakeClock(START), adapter=MemoryAdapter(), engine=engine, worker=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wait_for_eof() -> None:
            sys.stdin.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()
        await app.run(stop, on_started=lambda: print("READY", flush=True))

    asyncio.run(main())


# ---------------------------------------------------------------- the parent

def child_url(engine: Engine) -> str:
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    base = os.environ["DUTYBOT_TEST_DATABASE_URL"]
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def count(engine: Engine, stmt: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(stmt).one())


def wait(check: Any, timeout: float) -> float:
    began = time.perf_counter()
    while not check():
        if time.perf_counter() - began > timeout:
            raise SystemExit(f"not done within {timeout:.0f} s")
        time.sleep(POLL)
    return time.perf_counter() - began


def unsent(engine: Engine) -> int:
    return count(engine, select(func.count()).select_from(OutboxMessage)
                 .where(OutboxMessage.status != OutboxStatus.sent))


def spawn(url: str, leader_check: float = 1.0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--child", url, "--leader-check", str(leader_check)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def until_ready(procs: list[subprocess.Popen[str]]) -> list[bool]:
    """Read each worker's first lines up to ``READY``; whether it took the lead meanwhile."""
    leads = []
    for proc in procs:
        assert proc.stdout is not None
        seen = []
        while (line := proc.stdout.readline()) and "READY" not in line:
            seen.append(line)
        if not line:
            raise SystemExit(f"a worker did not start: {seen!r}")
        leads.append(any("LEADS" in x for x in seen))
    return leads


def takeover(url: str, leader_check: float) -> float:
    """Two workers; SIGKILL the leader; seconds until the other says it leads."""
    with pg_schema(url) as engine:
        upgrade(engine)
        first = spawn(child_url(engine), leader_check)
        until_ready([first])
        second = spawn(child_url(engine), leader_check)
        assert until_ready([second]) == [False]
        try:
            # The follower asks every leader_check seconds from its start: kill at a random
            # moment of that cycle, not just as it asks for the first time.
            time.sleep(1.0 + RNG.uniform(0, leader_check))
            began = time.perf_counter()
            first.kill()
            first.wait()
            assert second.stdout is not None
            while (line := second.stdout.readline()) and "LEADS" not in line:
                pass
            if not line:
                raise SystemExit("the follower ended without taking the lead")
            return time.perf_counter() - began
        finally:
            if second.stdin:
                second.stdin.close()
            second.wait(timeout=60)


def one(workers: int, url: str, messages: int, escalations: int) -> dict[str, Any]:
    with pg_schema(url) as engine:
        upgrade(engine)
        add_people(engine)
        tpl = templates(engine)
        fill(engine, tpl, 0, int(escalations / GENERAL_SHARE) + 100)
        keys = candidates(0, int(escalations / GENERAL_SHARE) + 100)[:escalations]
        procs = [spawn(child_url(engine)) for _ in range(workers)]
        try:
            until_ready(procs)
            wait(lambda: unsent(engine) == 0, 120)   # what the start-up jobs queued
            with Session(engine) as session:
                people = [p.id for p in session.exec(select(Person))]
                for n in range(messages):
                    enqueue(session=session, now=START, event_key=f"bench:{n}",
                            message=Outbound(f"压测消息 {n}", person_id=people[n % len(people)]))
                session.commit()
            sending = wait(lambda: unsent(engine) == 0, 600)
            make_due(engine, keys)
            pending = (select(func.count()).select_from(DueItem)
                       .where(col(DueItem.key).in_(keys), DueItem.status == DueStatus.pending))
            escalating = wait(lambda: count(engine, pending) == 0 and unsent(engine) == 0, 600)
        finally:
            for proc in procs:
                if proc.stdin:
                    proc.stdin.close()
            for proc in procs:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return {"workers": workers, "messages": messages, "send_s": sending, "send_per_s": messages / sending,
            "escalations": escalations, "escalate_s": escalating, "escalate_per_s": escalations / escalating,
            "load": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--escalations", type=int, default=1000)
    parser.add_argument("--leader-check", type=float, default=5.0,
                        help="[bot] leader_check_seconds for the takeover measurement (default 5, as shipped)")
    parser.add_argument("--takeovers", type=int, default=3, help="how many times the leader is killed (default 3)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.leader_check)
        return
    url = os.environ.get("DUTYBOT_TEST_DATABASE_URL")
    if not url:
        print("bench_workers needs PostgreSQL: set DUTYBOT_TEST_DATABASE_URL")
        print("BENCH_JSON " + json.dumps({"skipped": "no PostgreSQL"}))
        return
    counts = [int(x) for x in args.workers.split(",")]
    print(f"workers benchmark: {args.messages:,} outbox messages, {args.escalations:,} escalations, "
          f"workers {counts}, {os.cpu_count()} CPUs, load average {loadavg()} before", flush=True)
    rows = []
    for workers in counts:
        row = one(workers, url, args.messages, args.escalations)
        rows.append(row)
        print(f"   {workers} worker(s): outbox {row['send_per_s']:8.1f} messages/s ({row['send_s']:.2f} s); "
              f"escalations {row['escalate_per_s']:8.1f}/s ({row['escalate_s']:.2f} s); load {row['load']}",
              flush=True)
    out: dict[str, Any] = {str(r["workers"]): r for r in rows}
    takeovers = [takeover(url, args.leader_check) for _ in range(args.takeovers)]
    out["takeover_s"] = takeovers
    out["takeover_max_s"] = max(takeovers)
    print(f"   takeover: the follower leads {', '.join(f'{t:.2f}' for t in takeovers)} s after the leader was "
          f"killed (leader_check_seconds {args.leader_check:g}: at most that plus a check); load {loadavg()}",
          flush=True)
    print("BENCH_JSON " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
