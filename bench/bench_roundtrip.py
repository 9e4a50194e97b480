"""Command round-trip through the in-memory adapter, with 100k events in the database.

A round trip is what a person waits for: the update is recorded, routed, handled, its
reply written to the outbox and delivered by the sender. Fills ``audit_event`` and
``processed_update`` with 100,000 rows each first. SQLite always; PostgreSQL too when
``DUTYBOT_TEST_DATABASE_URL`` is set (in a throwaway schema).

Each round trip is also split in two: ``handle`` (``App.handle``: the update recorded,
routed, handled and its reply queued, one transaction) and ``drain`` (``App.drain``: the
outbox sender claiming and delivering the reply); the first 20 commands warm up. Prints
the load average with each figure and one ``BENCH_JSON`` line.
Run: ``python bench/bench_roundtrip.py [--events N] [--commands N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from bot.models import ProcessedUpdate
from core.audit import AuditEvent
from core.clock import SHANGHAI, FakeClock
from core.db import make_engine, upgrade
from core.messages import Inbound
from people.models import ChatIdentity, Person

START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
COMMANDS = ["/whoami", "/help", "/due 2026-09-30 3个工作日", "期限 今天 15个工作日"]
WARMUP = 20


def fill(engine: Engine, events: int) -> None:
    """``events`` audit events and processed updates, in chunks."""
    with engine.begin() as conn:
        for first in range(0, events, 10_000):
            n = min(10_000, events - first)
            conn.execute(insert(AuditEvent), [
                {"at": START - timedelta(seconds=i), "entity_type": "incident",
                 "entity_id": f"INC-{i // 20}", "action": "note", "actor": "bench",
                 "detail": "{}"} for i in range(first, first + n)])
            conn.execute(insert(ProcessedUpdate), [
                {"platform": "memory", "update_id": f"old-{i}", "received_at": START}
                for i in range(first, first + n)])


async def measure(engine: Engine, commands: int) -> dict[str, list[float]]:
    """Milliseconds per command: the round trip, and its ``handle`` and ``drain`` parts."""
    clock = FakeClock(START)
    with Session(engine) as session:
        person = Person(name="王芳", roles="officer,admin", created_at=clock.now())
        session.add(person)
        session.flush()
        assert person.id is not None
        session.add(ChatIdentity(person_id=person.id, platform="memory", external_id="u-王芳",
                                 chat_id="u-王芳", bound_at=clock.now()))
        session.commit()
    adapter = MemoryAdapter()
    app = App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine)
    timings: dict[str, list[float]] = {"round_trip": [], "handle": [], "drain": []}
    for i in range(commands + WARMUP):
        before = len(adapter.delivered)
        inbound = Inbound(platform="memory", chat_id="u-王芳", sender_id="u-王芳", sender_name="王芳",
                          text=COMMANDS[i % len(COMMANDS)], update_id=f"m{i}", is_group=False)
        began = time.perf_counter()
        await app.handle(inbound)
        handled = time.perf_counter()
        await app.drain()
        done = time.perf_counter()
        assert len(adapter.delivered) > before, "no reply"
        if i == WARMUP - 1:
            app.settle()   # as App.run does once started
        if i >= WARMUP:
            timings["round_trip"].append((done - began) * 1000)
            timings["handle"].append((handled - began) * 1000)
            timings["drain"].append((done - handled) * 1000)
    return timings


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report(label: str, timings: dict[str, list[float]]) -> dict[str, float | str]:
    trips = sorted(timings["round_trip"])
    figures: dict[str, float | str] = {
        "p50_ms": statistics.median(trips), "p99_ms": _p99(trips), "max_ms": trips[-1],
        "handle_p50_ms": statistics.median(timings["handle"]), "handle_p99_ms": _p99(timings["handle"]),
        "drain_p50_ms": statistics.median(timings["drain"]), "drain_p99_ms": _p99(timings["drain"]),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    print(f"{label}: {len(trips)} commands, p50 {figures['p50_ms']:.2f} ms, "
          f"p99 {figures['p99_ms']:.2f} ms, max {figures['max_ms']:.2f} ms   "
          f"(handle p50 {figures['handle_p50_ms']:.2f} ms, drain p50 {figures['drain_p50_ms']:.2f} ms; "
          f"load {figures['load']})", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=400)
    args = parser.parse_args()
    out: dict[str, object] = {"events": args.events, "commands": args.commands}
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        fill(engine, args.events)
        out["sqlite"] = report(f"SQLite, {args.events} events", asyncio.run(measure(engine, args.commands)))
        engine.dispose()
    url = os.environ.get("DUTYBOT_TEST_DATABASE_URL")
    if url:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            engine = make_engine(url, search_path=schema)
            upgrade(engine)
            fill(engine, args.events)
            out["postgresql"] = report(f"PostgreSQL, {args.events} events",
                                       asyncio.run(measure(engine, args.commands)))
            engine.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print("BENCH_JSON " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
