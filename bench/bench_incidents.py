"""How fast incidents go out and climb their ladders when many are open.

(1) ``/incident new`` to the first ping: the district office reports an outage of
    区教育局 through ``App`` + ``MemoryAdapter``; timed from the send until the unit's
    duty officer's 【新事件】 is in ``adapter.delivered`` after ``app.drain()``; p50/p99
    over ``--runs`` reports, with ``--open`` open incidents already stored.
(2) Escalation with ``--incidents`` open incidents: ``Scheduler.tick()`` with the real
    ``incident.escalate`` processor, (a) when nothing is due, (b) when 100 and when
    1,000 acknowledgement escalations (带班领导 rung) are due, processed for real.
(3) The daily briefing and weekly summary built on that database, with the number of
    queries each incident provider ran.

Seeding: one incident per (type, grade, unit) is opened by the real ``open_incident``
and ``announce_new`` and rolled back; its rows (steps, ladder snapshot, pending due items
with their real keys and payloads, its "reported" audit event) are then bulk-inserted as
replicas, reported over the days before 2026-11-23 (900 a day; 2% 特级, 8% 重大), none
acknowledged. Each replica's step deadlines keep their distance from its report (so most
are past: the worst case for the briefing); its due items keep their distances from each
other but are moved to start between a minute and a year after the benchmark's "now"
(nothing due: the worst case for the due-item index, not a model of when real ladders
fire).

SQLite (a file in a temp dir) always; PostgreSQL with ``--pg URL`` (default:
``DUTYBOT_TEST_DATABASE_URL``), in a throwaway schema dropped at the end. Part (1) also
gives the split of each report into ``handle`` (``App.handle``: registered, its pings
queued) and ``drain`` (``App.drain``: delivered). The last line is ``BENCH_JSON {...}``
(``sqlite``/``postgresql`` → ``first_ping``, ``tick_idle``, ``tick_100``, ``tick_1000``,
``daily_briefing``, ``weekly_summary``: p50/p99 in ms; with the load average).
Run: ``python bench/bench_incidents.py [--open N] [--runs N] [--incidents N] [--ticks N]
[--due-ticks N] [--pg URL] [--only sqlite|pg] [--plans]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import pg_schema
from sqlalchemy import event, insert, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from bot.scheduler import Scheduler
from briefing import incident_sections as incident_briefing
from briefing.service import build_daily, build_weekly
from core.audit import AuditEvent
from core.clock import SHANGHAI, FakeClock, local, local_midnight
from core.db import make_engine, upgrade
from core.messages import Inbound
from core.numbering import next_number
from core.schedule import DueItem, DueStatus
from core.workdays import WorkdayCalendar
from incidents.actions import open_incident
from incidents.escalation import KIND, Escalator, announce_new
from incidents.models import Grade, Incident, IncidentStep, IncidentType, Source
from incidents.service import steps_of
from people.models import ChatIdentity, Person
from roster import service as roster_service

START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
PER_DAY = 900                  # replicas reported a day (numbers stay INC-YYYYMMDD-NNN)
CHUNK = 5_000                  # incidents per bulk insert
YEAR_SECONDS = 365 * 24 * 3600
UNITS = [f"单位{n}" for n in range(10)]
DISTRICT, OFFICE_UNIT, OFFICER = "刘洋", "区教育局", "陈晨"
SETTINGS = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": DISTRICT})
POLICY = SETTINGS.incidents.policy(on_duty=roster_service)   # as bot.app wires it
PROFILE = SETTINGS.profile()
CALENDAR = WorkdayCalendar()
_INCIDENT_COLS = [c.name for c in Incident.__table__.columns if c.name != "id"]   # type: ignore[attr-defined]
_STEP_COLS = [c.name for c in IncidentStep.__table__.columns if c.name not in ("id", "incident_id")]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- seeding

def add_people(engine: Engine) -> None:
    """Two officers and a leader per unit, the 区教育局 officer, a principal, an admin and
    the district office; each bound on the memory platform."""
    people = [(f"值班员{u}-{k}", unit, "officer") for u, unit in enumerate(UNITS) for k in range(2)]
    people += [(f"领导{u}", unit, "leader") for u, unit in enumerate(UNITS)]
    people += [(OFFICER, OFFICE_UNIT, "officer"), ("主要负责人", "", "principal"), ("管理员", "", "admin"),
               (DISTRICT, "区政府办公室", "officer")]
    with Session(engine) as session:
        for name, unit, role in people:
            person = Person(name=name, unit=unit, roles=role, created_at=START)
            session.add(person)
            session.flush()
            assert person.id is not None
            session.add(ChatIdentity(person_id=person.id, platform="memory", external_id=f"u-{name}",
                                     chat_id=f"u-{name}", display_name=name, bound_at=START))
        session.commit()


@dataclass
class Template:
    """One real incident's rows, to be copied: times relative to its report."""

    incident: dict[str, Any]
    steps: list[dict[str, Any]]
    dues: list[dict[str, Any]]
    number: str


def _grade_of(n: int) -> Grade:
    return Grade.special if n % 50 == 0 else Grade.major if n % 50 < 5 else Grade.general


def templates(engine: Engine) -> dict[tuple[IncidentType, Grade, str], Template]:
    """Open one incident per (type, grade, unit) for real, read its rows, roll back."""
    found: dict[tuple[IncidentType, Grade, str], Template] = {}
    with Session(engine) as session:
        for unit_no, unit in enumerate(UNITS):
            reporter = session.exec(select(Person).where(Person.name == f"值班员{unit_no}-0")).one()
            for type_ in IncidentType:
                for grade in Grade:
                    inc = open_incident(session=session, calendar=CALENDAR, profile=PROFILE, policy=POLICY,
                                        type_=type_, target="https://www.example.gov.cn/a.html",
                                        description="基准测试事件", reporter=reporter, unit=unit,
                                        source=Source.self_found, grade=grade, now=START, actor="bench")
                    announce_new(session, inc, profile=PROFILE, policy=POLICY, now=START)
                    session.flush()
                    steps = [{c: getattr(s, c) for c in _STEP_COLS} for s in steps_of(session=session, incident=inc)]
                    dues = [{c: getattr(d, c) for c in ("key", "kind", "ref", "due_at", "payload")}
                            for d in session.exec(select(DueItem).where(
                                DueItem.ref == f"incident:{inc.number}", DueItem.status == DueStatus.pending))]
                    found[type_, grade, unit] = Template({c: getattr(inc, c) for c in _INCIDENT_COLS},
                                                         steps, dues, inc.number)
        session.rollback()
    return found


def _replica(n: int) -> tuple[str, datetime, timedelta]:
    """Replica ``n``'s number, report time and how far after START its due items start."""
    day = START.date() - timedelta(days=1 + n // PER_DAY)
    seq = n % PER_DAY + 1
    reported = local_midnight(day) + timedelta(seconds=90 * seq)
    ahead = timedelta(seconds=60 + (n * 7919) % YEAR_SECONDS)
    return f"INC-{day:%Y%m%d}-{seq:03d}", reported, ahead


def fill(engine: Engine, tpl: dict[tuple[IncidentType, Grade, str], Template], first: int,
         count: int) -> tuple[float, int, int]:
    """Insert replicas ``first``..``first+count-1``; returns (seconds, steps, due items)."""
    began, n_steps, n_dues = time.perf_counter(), 0, 0
    types = list(IncidentType)
    table = Incident.__table__   # type: ignore[attr-defined]
    with engine.begin() as conn:
        for lo in range(first, first + count, CHUNK):
            ns = range(lo, min(lo + CHUNK, first + count))
            chosen = [tpl[types[n % len(types)], _grade_of(n), UNITS[n // len(types) % len(UNITS)]] for n in ns]
            meta = [_replica(n) for n in ns]
            rows = [t.incident | {"number": number, "reported_at": reported, "description": f"基准测试事件 {n}"}
                    for n, t, (number, reported, _) in zip(ns, chosen, meta, strict=True)]
            ids = [r[0] for r in conn.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)]
            steps: list[dict[str, Any]] = []
            dues: list[dict[str, Any]] = []
            for inc_id, t, (number, reported, ahead) in zip(ids, chosen, meta, strict=True):
                for s in t.steps:
                    row = s | {"incident_id": inc_id}
                    if s["due_at"] is not None:
                        row["due_at"] = reported + (s["due_at"] - START)
                        row["due_last_day"] = local(row["due_at"] - timedelta(microseconds=1)).date()
                    steps.append(row)
                for d in t.dues:
                    dues.append(d | {"key": d["key"].replace(t.number, number), "ref": f"incident:{number}",
                                     "due_at": START + ahead + (d["due_at"] - START), "status": "pending",
                                     "attempts": 0, "created_at": reported})
            conn.execute(insert(IncidentStep), steps)
            conn.execute(insert(DueItem), dues)
            conn.execute(insert(AuditEvent), [   # open_incident's "reported" event
                {"at": reported, "entity_type": "incident", "entity_id": number, "action": "reported",
                 "actor": "bench", "to_state": "reported", "detail": "{}"}
                for number, reported, _ in meta])
            n_steps, n_dues = n_steps + len(steps), n_dues + len(dues)
    with engine.connect() as conn:   # what autovacuum / a long-running DB would have
        # Table by table: a bare ANALYZE on PostgreSQL walks every schema of the database
        # and waits on other sessions' locks there.
        for table in ("incident", "incident_step", "due_item", "audit_event", "person"):
            conn.execute(text(f"ANALYZE {table}"))
        conn.commit()
    return time.perf_counter() - began, n_steps, n_dues


# ---------------------------------------------------------------- timing helpers

def figures(samples: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``samples`` (ms), for ``BENCH_JSON``."""
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered), "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
            "max_ms": ordered[-1], "n": len(ordered)}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"p50 {statistics.median(ordered):9.2f} ms   p99 {p99:9.2f} ms   "
            f"max {ordered[-1]:9.2f} ms   (n={len(ordered)})")


@dataclass
class QueryLog:
    """Queries run on ``engine`` while active (for counts and plans; not BEGIN/SAVEPOINT)."""

    engine: Engine
    statements: list[tuple[str, Any]] = field(default_factory=list)
    active: bool = False

    def __post_init__(self) -> None:
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        if self.active and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.statements.append((statement, parameters))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any]]]:
        self.statements, self.active = [], True
        try:
            yield self.statements
        finally:
            self.active = False

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def plan(engine: Engine, statement: str, parameters: Any) -> str:
    """The query plan of one captured statement, on one line."""
    prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"{prefix} {statement}", parameters).all()
    return " | ".join(str(row[-1]).strip() for row in rows)


# ---------------------------------------------------------------- (1) new → first ping

async def first_ping(engine: Engine, runs: int, split: dict[str, list[float]] | None = None) -> list[float]:
    """Milliseconds from ``/incident new`` to the officer's 【新事件】 being delivered;
    ``split`` gets the ``handle`` and ``drain`` parts."""
    adapter = MemoryAdapter()
    app = App(SETTINGS, clock=FakeClock(START), adapter=adapter, engine=engine)
    samples = []
    for i in range(runs + 5):          # the first five warm up
        before = len(adapter.delivered)
        inbound = Inbound(platform="memory", chat_id=f"u-{DISTRICT}", sender_id=f"u-{DISTRICT}",
                          sender_name=DISTRICT, text=f"/incident new 无法访问 @{OFFICE_UNIT} "
                          f"https://www.example.gov.cn/p{i}.html 首页502", update_id=f"bench-{i}",
                          is_group=False)
        began = time.perf_counter()
        await app.handle(inbound)
        handled = time.perf_counter()
        await app.drain()
        elapsed = (time.perf_counter() - began) * 1000
        pinged = [d for d in adapter.delivered[before:] if d.chat_id == f"u-{OFFICER}"]
        assert pinged and pinged[0].text.startswith("【新事件】"), adapter.delivered[before:]
        if i == 4:
            app.settle()   # as App.run does once started
        if i >= 5:
            samples.append(elapsed)
            if split is not None:
                split.setdefault("handle", []).append((handled - began) * 1000)
                split.setdefault("drain", []).append(elapsed - (handled - began) * 1000)
    return samples


def numbering(engine: Engine) -> str:
    """Time and plan of ``next_number`` for a day with no incident yet (a day's first report)."""
    log = QueryLog(engine)
    try:
        with Session(engine) as session, log.recording() as statements:
            began = time.perf_counter()
            next_number(session=session, column=Incident.number, prefix="INC",
                        day=START.date() + timedelta(days=1))
            ms = (time.perf_counter() - began) * 1000
    finally:
        log.close()
    return f"{ms:.2f} ms, plan: {plan(engine, *statements[-1])}"


# ---------------------------------------------------------------- (2) escalation ticks

def candidates(first: int, count: int) -> list[str]:
    """Keys of the 带班领导 rung of general-grade replicas' acknowledgement ladders."""
    keys = []
    for n in range(first, first + count):
        if _grade_of(n) == Grade.general:
            keys.append(f"incident:{_replica(n)[0]}:ack:-:general:1:0")
    return keys


def make_due(engine: Engine, keys: list[str]) -> None:
    """Move these due items to a second ago (outside the timed tick)."""
    with engine.begin() as conn:
        conn.execute(update(DueItem).where(DueItem.key.in_(keys))  # type: ignore[attr-defined]
                     .values(due_at=START - timedelta(seconds=1)))


def timed_ticks(sched: Scheduler, batches: list[list[str]], ticks: int = 0) -> list[float]:
    """Milliseconds per tick: ``ticks`` with nothing due, or one per batch made due first."""
    samples = []
    for batch in batches or [[] for _ in range(ticks)]:
        if batch:
            make_due(sched.engine, batch)
        began = time.perf_counter()
        report = sched.tick()
        samples.append((time.perf_counter() - began) * 1000)
        assert report.processed == len(batch) and not report.failed, report
    return samples


def escalation(engine: Engine, keys: list[str], ticks: int, due_ticks: int, out: dict[str, Any]) -> None:
    sched = Scheduler(engine=engine, clock=FakeClock(START))
    sched.register(KIND, Escalator(PROFILE, POLICY))
    timed_ticks(sched, [], 3)   # warm up
    idle = timed_ticks(sched, [], ticks)
    out["tick_idle"] = figures(idle) | {"load": load()}
    print(f"   (a) nothing due:            {summary(idle)}", flush=True)
    rng = random.Random(7)
    pool = rng.sample(keys, min(len(keys), (1 + due_ticks) * 1_100))
    for size in (100, 1_000):
        batches = [pool[:size]] + [pool[size * (i + 1):size * (i + 2)] for i in range(due_ticks)]
        pool = pool[size * (due_ticks + 1):]
        if any(len(b) < size for b in batches):
            print(f"   (b) {size:,} due: not enough candidates")
            continue
        timed_ticks(sched, batches[:1])   # warm up the processing path
        samples = timed_ticks(sched, batches[1:])
        out[f"tick_{size}"] = figures(samples) | {"per_item_ms": statistics.median(samples) / size, "load": load()}
        print(f"   (b) {size:>5,} escalations due: {summary(samples)}"
              f"   ≈ {statistics.median(samples) / size:.2f} ms each", flush=True)
    with engine.connect() as conn:
        queued = conn.execute(text("SELECT count(*) FROM outbox_message")).scalar_one()
    print(f"   messages queued by the processed escalations (and part 1): {queued:,}")


# ---------------------------------------------------------------- (3) briefing

def briefing(engine: Engine, runs: int, plans: bool, out: dict[str, Any]) -> None:
    now = START
    log = QueryLog(engine)
    captured: list[tuple[str, list[tuple[str, Any]]]] = []

    def timed(session: Session, build: Callable[..., Any]) -> list[float]:
        out = []
        for _ in range(runs):
            began = time.perf_counter()
            build(session=session, now=now, calendar=CALENDAR, settings=SETTINGS.briefing).text()
            out.append((time.perf_counter() - began) * 1000)
        return out

    try:
        with Session(engine) as session:
            daily, weekly = timed(session, build_daily), timed(session, build_weekly)
            out["daily_briefing"] = figures(daily) | {"load": load()}
            out["weekly_summary"] = figures(weekly) | {"load": load()}
            print(f"   daily briefing:  {summary(daily)}")
            print(f"   weekly summary:  {summary(weekly)}")
            for provider in (*incident_briefing.DAILY, *incident_briefing.WEEKLY):
                with log.recording() as statements:
                    began = time.perf_counter()
                    section = provider(session, now, CALENDAR, SETTINGS.briefing)
                    ms = (time.perf_counter() - began) * 1000
                captured.append((provider.__name__, statements))
                print(f"   {provider.__name__:<26} {len(statements)} queries {ms:9.2f} ms   "
                      f"{section.headline if section else '—'}")
    finally:
        log.close()
    if plans:   # after the session: SQLite's transactions hold the write lock
        for name, statements in captured:
            for statement, parameters in statements:
                print(f"      {name}: {plan(engine, statement, parameters)}")


# ---------------------------------------------------------------- driver

def run(name: str, engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": load()}
    print(f"\n-- {name}: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} before")
    upgrade(engine)
    add_people(engine)
    began = time.perf_counter()
    tpl = templates(engine)
    print(f"== {name}: {len(tpl)} template incidents in {time.perf_counter() - began:.1f} s", flush=True)
    seconds, steps, dues = fill(engine, tpl, 0, args.open)
    print(f"   seeded {args.open:,} open incidents ({steps:,} steps, {dues:,} pending due items) "
          f"in {seconds:.1f} s", flush=True)
    if args.runs:
        split: dict[str, list[float]] = {}
        samples = asyncio.run(first_ping(engine, args.runs, split))
        out["first_ping"] = figures(samples) | {
            "open": args.open, "handle_p50_ms": statistics.median(split["handle"]),
            "drain_p50_ms": statistics.median(split["drain"]), "load": load()}
        print(f"(1) /incident new → officer's 【新事件】 delivered, {args.open:,} open: {summary(samples)}",
              flush=True)
        print(f"   of which handle p50 {out['first_ping']['handle_p50_ms']:.2f} ms, drain p50 "
              f"{out['first_ping']['drain_p50_ms']:.2f} ms   (load {load()})", flush=True)
        print(f"   numbering query: {numbering(engine)}")
    more = args.incidents - args.open
    if more > 0:
        seconds, steps, dues = fill(engine, tpl, args.open, more)
        print(f"   seeded {more:,} more ({steps:,} steps, {dues:,} due items) in {seconds:.1f} s", flush=True)
    total = max(args.incidents, args.open)
    with engine.connect() as conn:
        pending = conn.execute(text("SELECT count(*) FROM due_item WHERE status = 'pending'")).scalar_one()
    print(f"(2) escalation ticks, {total:,} open incidents, {pending:,} pending due items", flush=True)
    print(f"   due-item query plan: {plan(engine, DUE_QUERY, {})}")
    escalation(engine, candidates(0, total), args.ticks, args.due_ticks, out)
    print(f"(3) briefing with {total:,} open incidents (all unacknowledged; most with overdue steps)")
    briefing(engine, args.briefing_runs, args.plans, out)
    print(f"-- load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} after")
    out["load_after"] = load()
    return out


DUE_QUERY = ("SELECT id, due_at FROM due_item WHERE status = 'pending' AND due_at <= "
             "'2026-11-23 01:00:00' ORDER BY due_at, id LIMIT 200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000, help="open incidents during part 1")
    parser.add_argument("--runs", type=int, default=200, help="reports timed in part 1 (0: skip)")
    parser.add_argument("--incidents", type=int, default=100_000, help="open incidents in parts 2-3")
    parser.add_argument("--ticks", type=int, default=50, help="ticks timed with nothing due")
    parser.add_argument("--due-ticks", type=int, default=5, help="ticks timed per batch size")
    parser.add_argument("--briefing-runs", type=int, default=5)
    parser.add_argument("--pg", default=os.environ.get("DUTYBOT_TEST_DATABASE_URL"),
                        help="PostgreSQL URL (default: $DUTYBOT_TEST_DATABASE_URL)")
    parser.add_argument("--only", choices=("sqlite", "pg"))
    parser.add_argument("--plans", action="store_true", help="print the briefing queries' plans")
    args = parser.parse_args()
    print(f"incident benchmark: {os.cpu_count()} CPUs, {json.dumps(vars(args) | {'pg': bool(args.pg)})}")
    results: dict[str, Any] = {"args": vars(args) | {"pg": bool(args.pg)}}
    if args.only != "pg":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                results["sqlite"] = run("SQLite (WAL)", engine, args)
            finally:
                engine.dispose()
    if args.only != "sqlite":
        if args.pg:
            with pg_schema(args.pg) as engine:
                results["postgresql"] = run("PostgreSQL", engine, args)
        else:
            print("\n(PostgreSQL skipped: pass --pg URL or set DUTYBOT_TEST_DATABASE_URL)")
    print("BENCH_JSON " + json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
