"""How fast the web board's pages render with 10,000 open incidents (issue 20: under 100 ms).

Seeding: one incident of each type is opened by the real ``open_incident`` (steps with
their deadlines, the ladder snapshot) and rolled back; ``--open`` replicas of them (default
10,000) are bulk-inserted across 10 units, reported over the last 30 days (so most steps
are past their deadline: every row is "overdue", the most work for the ordering), with a
week of roster. Each page is then requested through the board's real Starlette app
(httpx's ASGI transport, no network), signed in as the district office (every unit: all
10,000 incidents) and as a unit's leader (its 1,000), ``--runs`` times; p50 and p95 are
printed in milliseconds. SQLite (a file in a temp dir) always; PostgreSQL too with ``--pg
URL`` (default: ``DUTYBOT_TEST_DATABASE_URL``), analyzed after the bulk load as autovacuum
would (SQLite is not: the bot never runs ANALYZE there).

Run: ``python bench/bench_web.py [--open N] [--runs N] [--pg URL]``. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from benchlib import pg_schema
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from bot.http import HttpService
from bot.web import auth
from bot.web.routes import web_routes
from core.clock import FakeClock, parse_local
from core.db import make_engine, upgrade
from incidents.actions import open_incident
from incidents.models import Grade, Incident, IncidentStep, IncidentType, Source
from incidents.service import steps_of
from people.models import Person, Role
from roster import service as roster_service
from roster.models import DutyRole

UNITS = [f"单位{n}" for n in range(10)]
BASE = "http://bench.test"
ENV = {"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋", "DUTYBOT_WEB_ENABLED": "true", "DUTYBOT_WEB_BASE_URL": BASE}
NOW = parse_local("2026-11-23T10:00")
CHUNK = 2_000


def seed(engine: Engine, count: int) -> str:
    """People, a week of roster and ``count`` open incidents; returns one incident number."""
    rng = random.Random(20)
    settings = load_settings(None, env=ENV)
    app = App(settings, clock=FakeClock(NOW), adapter=MemoryAdapter(), engine=engine)
    with Session(engine) as session:
        people = [Person(name="刘洋", unit="区政府办公室", roles=Role.officer.value, created_at=NOW)]
        for unit in UNITS:
            people += [Person(name=f"{unit}值班员", unit=unit, roles=Role.officer.value, phone="13800000001",
                              created_at=NOW),
                       Person(name=f"{unit}领导", unit=unit, roles=Role.leader.value, phone="13800000002",
                              created_at=NOW)]
        session.add_all(people)
        session.flush()
        shifts = roster_service.ensure_shifts(session=session, calendar=app.calendar,
                                              patterns=settings.roster.patterns(), start=date(2026, 11, 20),
                                              end=date(2026, 11, 30), now=NOW)
        for n, shift in enumerate(shifts):
            for p in people[1 + 2 * (n % 10): 3 + 2 * (n % 10)]:
                roster_service.assign(session=session, shift=shift, person=p, source="manual", now=NOW,
                                      actor="bench", role=DutyRole.leader if "领导" in p.name else DutyRole.officer)
        session.commit()
        reporter = people[1]
        templates = []
        for type_ in IncidentType:
            incident = open_incident(session=session, calendar=app.calendar, profile=app.profile,
                                     policy=app.incident_policy, type_=type_, target="https://www.example.gov.cn/x",
                                     description="基准测试", reporter=reporter, unit=UNITS[0], source=Source.self_found,
                                     grade=Grade.general, now=NOW - timedelta(days=1), actor="bench")
            templates.append((incident, [s.model_dump() for s in steps_of(session=session, incident=incident)]))
        session.rollback()
    for start in range(0, count, CHUNK):
        rows, step_rows = [], []
        with engine.begin() as conn:
            for n in range(start, min(count, start + CHUNK)):
                incident, steps = templates[n % len(templates)]
                reported = NOW - timedelta(minutes=rng.randrange(60, 30 * 24 * 60))
                row = incident.model_dump(exclude={"id"})
                row.update(number=f"INC-B{n:07d}", unit=UNITS[n % 10], reported_at=reported, reporter_id=None)
                rows.append(row)
            ids = conn.execute(insert(Incident).returning(Incident.id), rows).scalars().all()
            for iid, n in zip(ids, range(start, start + len(rows)), strict=True):
                incident, steps = templates[n % len(templates)]
                offset = rows[n - start]["reported_at"] - incident.reported_at
                for s in steps:
                    step = {k: v for k, v in s.items() if k != "id"}
                    step["incident_id"] = iid
                    if step["due_at"] is not None:
                        step["due_at"] = step["due_at"] + offset
                    step_rows.append(step)
            conn.execute(insert(IncidentStep), step_rows)
    app.engine.dispose()
    return f"INC-B{count // 2:07d}"


async def measure(engine: Engine, runs: int, number: str) -> None:
    app = App(load_settings(None, env=ENV), clock=FakeClock(NOW), adapter=MemoryAdapter(), engine=engine)
    service = HttpService(host="127.0.0.1", port=0, routes=web_routes(app), health=app.health)
    transport = httpx.ASGITransport(app=service.app)
    pages = ["/web/incidents", "/web/incidents?overdue=1&page=3", f"/web/incidents/{number}",
             "/web/duty", "/web/replies", "/web/roster", "/web/sites"]
    for who in ("刘洋", "单位3领导"):
        with Session(engine) as session:
            person = session.exec(select(Person).where(Person.name == who)).one()
            token = auth.issue_link(session=session, person=person, now=NOW, minutes=10)
            session.commit()
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            signed = await client.post(f"/web/login/{token}", data={"go": "1"}, headers={"Origin": BASE})
            assert signed.status_code == 303, signed.text
            print(f"  as {who}:")
            for path in pages:
                times = []
                for _ in range(runs):
                    began = time.perf_counter()
                    got = await client.get(path)
                    times.append((time.perf_counter() - began) * 1000)
                    assert got.status_code in (200, 404), (path, got.status_code)
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                print(f"    {path:<36} p50 {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms"
                      f"   ({got.status_code}, {len(got.content) // 1024} KiB)")


def run(engine: Engine, label: str, count: int, runs: int) -> None:
    upgrade(engine)
    began = time.perf_counter()
    number = seed(engine, count)
    if engine.dialect.name == "postgresql":
        # What autovacuum does after a bulk load: without statistics the planner joins the
        # incidents to their steps' minimum deadlines row by row (2 s instead of 60 ms).
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    print(f"{label}: {count:,} open incidents seeded in {time.perf_counter() - began:.1f} s")
    asyncio.run(measure(engine, runs, number))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pg", default=os.environ.get("DUTYBOT_TEST_DATABASE_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        run(engine, "SQLite", args.open, args.runs)
        engine.dispose()
    if args.pg:
        with pg_schema(args.pg) as engine:
            run(engine, "PostgreSQL", args.open, args.runs)


if __name__ == "__main__":
    main()
