"""How long one scheduler tick takes with a million open deadlines.

Fills a throwaway database with 1,000,000 pending due items spread over the next year,
then times ``Scheduler.tick()`` (a) when nothing is due and (b) when 100 items are due.
SQLite always; PostgreSQL too when ``DUTYBOT_TEST_DATABASE_URL`` is set (in a schema
dropped at the end). Run: ``python bench/bench_tick.py [--items N] [--ticks N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from benchlib import pg_schema
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from bot.scheduler import Scheduler
from core.clock import SHANGHAI, FakeClock
from core.db import make_engine, upgrade
from core.schedule import DueItem

START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
CHUNK = 20_000
YEAR_SECONDS = 365 * 24 * 3600


def fill(engine: Engine, items: int) -> float:
    """Insert ``items`` pending rows due between a minute and a year from START."""
    began = time.perf_counter()
    step = (YEAR_SECONDS - 60) / items
    with engine.begin() as conn:
        for first in range(0, items, CHUNK):
            conn.execute(insert(DueItem), [
                {"key": f"bench:{n}", "kind": "bench", "ref": f"INC-{n % 5000}",
                 "due_at": START + timedelta(seconds=60 + n * step), "status": "pending",
                 "payload": "{}", "attempts": 0, "created_at": START}
                for n in range(first, min(first + CHUNK, items))])
    with engine.connect() as conn:   # what autovacuum / a long-running DB would have
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - began


def add_due(engine: Engine, batch: int, count: int) -> None:
    """``count`` items due a second ago (set up outside the timed tick)."""
    with engine.begin() as conn:
        conn.execute(insert(DueItem), [
            {"key": f"due:{batch}:{n}", "kind": "bench", "ref": "INC-due",
             "due_at": START - timedelta(seconds=1), "status": "pending", "payload": "{}",
             "attempts": 0, "created_at": START} for n in range(count)])


def timed_ticks(sched: Scheduler, ticks: int, due: int) -> list[float]:
    """Milliseconds per tick, with ``due`` items due before each."""
    samples = []
    for batch in range(ticks):
        if due:
            add_due(sched.engine, batch, due)
        began = time.perf_counter()
        report = sched.tick()
        samples.append((time.perf_counter() - began) * 1000)
        assert report.processed == due, report
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):8.2f} ms   p99 {p99:8.2f} ms   (n={len(ordered)})"


def plan(engine: Engine) -> str:
    """The query plan of the tick's due-item query."""
    query = ("SELECT id, due_at FROM due_item WHERE status = 'pending' AND due_at <= "
             "'2026-11-23 01:00:00' ORDER BY due_at, id LIMIT 200")
    prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"{prefix} {query}").all()
    return " | ".join(str(row[-1]) for row in rows)


def run(name: str, engine: Engine, items: int, ticks: int) -> None:
    upgrade(engine)
    print(f"\n== {name}: filling {items:,} pending due items ...", flush=True)
    print(f"   filled in {fill(engine, items):.1f} s")
    print(f"   due-item query plan: {plan(engine)}")
    sched = Scheduler(engine=engine, clock=FakeClock(START))
    sched.register("bench", lambda session, item, now: None)
    sched.register_cron("daily_brief", lambda session, fire, now: None, hour=8, minute=30)
    sched.register_cron("shift_change", lambda session, fire, now: None, hour="8,20")
    timed_ticks(sched, 3, 0)   # warm up: connections, cron states
    print(f"   (a) nothing due:   {summary(timed_ticks(sched, ticks, 0))}")
    print(f"   (b) 100 items due: {summary(timed_ticks(sched, ticks, 100))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=50)
    args = parser.parse_args()
    print(f"scheduler tick benchmark: {args.items:,} open items, {args.ticks} ticks, "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            run("SQLite (WAL)", engine, args.items, args.ticks)
        finally:
            engine.dispose()
    url = os.environ.get("DUTYBOT_TEST_DATABASE_URL")
    if url:
        with pg_schema(url) as engine:
            run("PostgreSQL", engine, args.items, args.ticks)
    else:
        print("\n(PostgreSQL skipped: set DUTYBOT_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
