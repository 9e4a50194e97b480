"""Command round-trip through the in-memory adapter, with 100k events in the database.

A round trip is what a person waits for: the update is recorded, routed, handled, its
reply written to the outbox and delivered by the sender. Fills ``audit_event`` and
``processed_update`` with 100,000 rows each first. SQLite always; PostgreSQL too when
``DUTYBOT_TEST_DATABASE_URL`` is set (in a throwaway schema).
Run: ``python bench/bench_roundtrip.py [--events N] [--commands N]``.
"""

from __future__ import annotations

import argparse
import asyncio
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

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from bot.models import ProcessedUpdate
from core.audit import AuditEvent
from core.clock import SHANGHAI, FakeClock
from core.db import make_engine, upgrade
from people.models import ChatIdentity, Person

START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
COMMANDS = ["/whoami", "/help", "/due 2026-09-30 3个工作日", "期限 今天 15个工作日"]


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


async def measure(engine: Engine, commands: int) -> list[float]:
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
    chat = MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter,
                          engine=engine), adapter)
    timings = []
    for i in range(commands):
        began = time.perf_counter()
        reply = await chat.send(COMMANDS[i % len(COMMANDS)], as_="王芳")
        timings.append((time.perf_counter() - began) * 1000)
        assert reply, "no reply"
    return timings


def report(label: str, timings: list[float]) -> None:
    timings = sorted(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"{label}: {len(timings)} commands, p50 {statistics.median(timings):.2f} ms, "
          f"p99 {p99:.2f} ms, max {timings[-1]:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        fill(engine, args.events)
        report(f"SQLite, {args.events} events", asyncio.run(measure(engine, args.commands)))
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
            report(f"PostgreSQL, {args.events} events", asyncio.run(measure(engine, args.commands)))
            engine.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
