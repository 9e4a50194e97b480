"""What one escalation costs when many are due at once, and how soon their pings arrive.

For each size N in ``--sizes``, ``--repeats`` times: N acknowledgement escalations (the
带班领导 rung of 一般 incidents nobody acknowledged) are made due, one
``Scheduler.tick()`` of the app's real scheduler and ``incident.escalate`` processor runs
them, then ``App.drain()`` delivers every message they queued through the
``MemoryAdapter``. Reported per size: the tick's milliseconds per item (median over the
repeats), and the time from the start of the tick until the last message was delivered
(p50/p99 over the repeats; a tick and a drain in turn, as the drill mode runs them — the
running bot overlaps them, so this is the slower shape).

One database holds the incidents of every size (seeded as ``bench_incidents.py`` does:
real incidents replicated, none due), so the sizes differ only in how many are due at
once; a warm-up of 100 runs first. SQLite (a file in a temp dir) always; PostgreSQL too
when ``DUTYBOT_TEST_DATABASE_URL`` is set (in a throw-away schema). ``--profile`` writes
a cProfile of the largest size's first tick. Also reported: the SQL statements the tick
ran per item and the drain per message (savepoints counted, commits not). The memory
adapter runs with its defaults: no rate limits, cards edited in place (so the sender looks
up each card's earlier message). The last line is ``BENCH_JSON {...}``.
Run: ``python bench/bench_escalation.py [--sizes 100,1000,10000] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_incidents import SETTINGS, START, add_people, candidates, fill, make_due, templates
from benchlib import percentile, pg_schema
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from core.clock import FakeClock
from core.db import make_engine, upgrade
from core.messages import Outbound

WARM_UP = 100
GENERAL_SHARE = 0.9   # bench_incidents seeds 90 % 一般 incidents, whose ack rung 1 we fire


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class StatementCounter:
    """Counts the SQL statements the engine runs (savepoints included, commits not)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1


def pending_outbox(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox_message WHERE status = 'pending'"))
                   .scalar_one())


async def one_round(app: App, adapter: MemoryAdapter, keys: list[str], statements: StatementCounter,
                    profile: Path | None = None) -> dict[str, float]:
    """Make ``keys`` due, tick, drain; the timings in milliseconds, and the statements."""
    make_due(app.engine, keys)
    before = len(adapter.delivered)
    counted_before = statements.count
    profiler = cProfile.Profile() if profile else None
    began, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    report = app.scheduler.tick()
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    ticked, cpu = time.perf_counter(), time.process_time() - cpu
    tick_statements = statements.count - counted_before
    assert report.processed == len(keys) and not report.failed, (report.processed, report.failed)
    queued = pending_outbox(app.engine)
    counted = time.perf_counter()   # the count is the benchmark's, not the bot's: left out
    drain_before = statements.count
    sent = await app.drain()
    done = time.perf_counter()
    drain_statements = statements.count - drain_before
    delivered = len(adapter.delivered) - before
    assert delivered == queued == sent and pending_outbox(app.engine) == 0, (delivered, queued, sent)
    return {"tick_ms": (ticked - began) * 1000, "tick_cpu_ms": cpu * 1000, "drain_ms": (done - counted) * 1000,
            "total_ms": (ticked - began + done - counted) * 1000, "messages": delivered,
            "tick_statements": tick_statements, "drain_statements": drain_statements}


async def measure(engine: Engine, keys: list[str], sizes: list[int], repeats: int,
                  profile: Path | None) -> list[list[dict[str, float]]]:
    """A warm-up, then ``repeats`` rounds per size, on one app (one event loop)."""
    adapter = MemoryAdapter()
    app = App(SETTINGS, clock=FakeClock(START), adapter=adapter, engine=engine)
    statements = StatementCounter(engine)
    await one_round(app, adapter, keys[:WARM_UP], statements)
    app.settle()   # as App.run does once started
    keys = keys[WARM_UP:]
    measured = []
    for size in sizes:
        rounds = []
        for r in range(repeats):
            batch, keys = keys[:size], keys[size:]
            prof = profile if profile and size == max(sizes) and r == 0 else None
            rounds.append(await one_round(app, adapter, batch, statements, prof))
        measured.append(rounds)
    return measured


class TimedAdapter(MemoryAdapter):
    """The memory adapter, noting when each message arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        ref = await super().send(chat_id, message, is_group=is_group)
        self.arrived.append(time.perf_counter())
        return ref


def last_outbox_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM outbox_message")).scalar_one())


def queued_since(engine: Engine, last_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox_message WHERE id > :id"), {"id": last_id})
                   .scalar_one())


async def running_round(app: App, adapter: TimedAdapter, keys: list[str]) -> dict[str, float]:
    """Make ``keys`` due and tick on a worker thread while the sender loop runs, as the
    running bot does; milliseconds from the tick's start to the last message's arrival."""
    make_due(app.engine, keys)
    last_id, before = last_outbox_id(app.engine), len(adapter.arrived)
    began = time.perf_counter()
    report = await app.scheduler.tick_in_thread()
    ticked = time.perf_counter()
    assert report.processed == len(keys) and not report.failed, (report.processed, report.failed)
    queued = queued_since(app.engine, last_id)
    for _ in range(60_000):   # at most a minute: the sender has everything by now
        if len(adapter.arrived) - before >= queued:
            break
        await asyncio.sleep(0.001)
    arrived = adapter.arrived[before:]
    assert len(arrived) == queued, (len(arrived), queued)
    return {"tick_ms": (ticked - began) * 1000, "total_ms": (arrived[-1] - began) * 1000, "messages": queued}


async def measure_running(engine: Engine, keys: list[str], sizes: list[int],
                          repeats: int) -> list[list[dict[str, float]]]:
    """The running shape: one app whose sender loop runs throughout (App.run's), ticks
    on a worker thread (Scheduler.tick_in_thread, as the running scheduler's)."""
    adapter = TimedAdapter()
    app = App(SETTINGS, clock=FakeClock(START), adapter=adapter, engine=engine)
    stop = asyncio.Event()
    sender = asyncio.create_task(app.sender.run(stop))
    try:
        await running_round(app, adapter, keys[:WARM_UP])
        app.settle()
        keys = keys[WARM_UP:]
        measured = []
        for size in sizes:
            rounds = []
            for _ in range(repeats):
                batch, keys = keys[:size], keys[size:]
                rounds.append(await running_round(app, adapter, batch))
            measured.append(rounds)
        return measured
    finally:
        stop.set()
        app.sender.wake()
        await sender


def run(name: str, engine: Engine, sizes: list[int], repeats: int,
        profile: Path | None) -> dict[str, Any]:
    print(f"\n-- {name}: load average {loadavg()} before", flush=True)
    upgrade(engine)
    add_people(engine)
    tpl = templates(engine)
    need = 2 * (WARM_UP + sum(sizes) * repeats)   # the drill shape's rounds, then the running shape's
    seeded = int(need / GENERAL_SHARE) + 100
    seconds, steps, dues = fill(engine, tpl, 0, seeded)
    keys = candidates(0, seeded)
    assert len(keys) >= need, (len(keys), need)
    print(f"   seeded {seeded:,} open incidents ({steps:,} steps, {dues:,} pending due items) "
          f"in {seconds:.1f} s", flush=True)
    half = len(keys) // 2
    measured = asyncio.run(measure(engine, keys[:half], sizes, repeats, profile))
    running = asyncio.run(measure_running(engine, keys[half:], sizes, repeats))
    results: dict[str, Any] = {}
    for size, rounds, live in zip(sizes, measured, running, strict=True):
        per_item = statistics.median(x["tick_ms"] for x in rounds) / size
        per_item_cpu = statistics.median(x["tick_cpu_ms"] for x in rounds) / size
        totals = [x["total_ms"] for x in rounds]
        results[str(size)] = {"per_item_ms": per_item, "per_item_cpu_ms": per_item_cpu,
                              "tick_ms": [x["tick_ms"] for x in rounds],
                              "drain_ms": [x["drain_ms"] for x in rounds],
                              "delivered_p50_ms": statistics.median(totals),
                              "delivered_p99_ms": percentile(totals, 0.99),
                              "messages": rounds[0]["messages"],
                              "statements_per_item": rounds[0]["tick_statements"] / size,
                              "drain_statements_per_message": rounds[0]["drain_statements"] / rounds[0]["messages"],
                              "running_p50_ms": statistics.median(x["total_ms"] for x in live),
                              "running_p99_ms": percentile([x["total_ms"] for x in live], 0.99)}
        print(f"   {size:>6,} due: tick {per_item:6.2f} ms/item ({per_item_cpu:.2f} ms CPU in this "
              f"process; median of {repeats}); "
              f"{rounds[0]['messages']:,} messages; tick+drain p50 "
              f"{statistics.median(totals):8.1f} ms, p99 {percentile(totals, 0.99):8.1f} ms "
              f"(drain median {statistics.median(x['drain_ms'] for x in rounds):.1f} ms); SQL statements: "
              f"{results[str(size)]['statements_per_item']:.1f} per item in the tick, "
              f"{results[str(size)]['drain_statements_per_message']:.1f} per message in the drain", flush=True)
        print(f"   {size:>6,} due, as the running bot: tick on a thread, sender loop delivering meanwhile: "
              f"last message p50 {results[str(size)]['running_p50_ms']:8.1f} ms, "
              f"p99 {results[str(size)]['running_p99_ms']:8.1f} ms", flush=True)
    smallest, largest = results[str(min(sizes))], results[str(max(sizes))]
    growth = largest["per_item_ms"] / smallest["per_item_ms"]
    growth_cpu = largest["per_item_cpu_ms"] / smallest["per_item_cpu_ms"]
    print(f"   per-item cost {max(sizes):,} vs {min(sizes):,} due: {growth:.2f}x ({growth_cpu:.2f}x CPU); "
          f"load average {loadavg()} after", flush=True)
    if profile:
        print(f"   cProfile of the first {max(sizes):,}-item tick: {profile}")
    return {"sizes": results, "growth": growth, "growth_cpu": growth_cpu, "load": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="escalations due at once, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="ticks timed per size")
    parser.add_argument("--pg", default=os.environ.get("DUTYBOT_TEST_DATABASE_URL"),
                        help="PostgreSQL URL (default: $DUTYBOT_TEST_DATABASE_URL)")
    parser.add_argument("--only", choices=("sqlite", "pg"))
    parser.add_argument("--profile", type=Path, help="write a cProfile of the largest size's first tick "
                        "(the database name is added before the suffix)")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    print(f"escalation benchmark: sizes {sizes}, {args.repeats} repeats, {os.cpu_count()} CPUs")
    out: dict[str, Any] = {"sizes": sizes, "repeats": args.repeats}

    def prof(db: str) -> Path | None:
        return args.profile.with_name(f"{args.profile.stem}-{db}{args.profile.suffix}") if args.profile else None

    if args.only != "pg":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                out["sqlite"] = run("SQLite (WAL)", engine, sizes, args.repeats, prof("sqlite"))
            finally:
                engine.dispose()
    if args.only != "sqlite":
        if args.pg:
            with pg_schema(args.pg) as engine:
                out["postgresql"] = run("PostgreSQL", engine, sizes, args.repeats, prof("pg"))
        else:
            print("\n(PostgreSQL skipped: pass --pg URL or set DUTYBOT_TEST_DATABASE_URL)")
    print("BENCH_JSON " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
