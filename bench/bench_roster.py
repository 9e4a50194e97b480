"""How fast ``/duty`` answers on a year of roster, and how long drafting a quarter takes.

(a) ``/duty`` through ``App`` + ``MemoryAdapter`` + ``MemoryChat`` (send to reply
    delivered, ``app.drain()`` included), with a year of published roster (2025-10-01 to
    2026-09-30, default patterns, one officer and one leader per shift) for ``--people``
    people with chat identities, bulk-inserted. Timed: ``/duty`` (now and next), ``/duty
    明天``, ``/duty week`` and ``/myduty``, with ``/help`` as the baseline (the dispatcher,
    identity lookup and delivery without a roster query); the fake clock moves 7 h 13 min
    between asks so each lands on another shift. p50/p99 per command.
(b) ``roster.drafts.generate_draft`` for the quarter 2026-10-01..2026-12-31 with
    ``--gen-people`` people (4 officers to 1 leader), the 28 days before it published
    (lookback) and a week of leave for one person in ten; each run replaces the previous
    draft and commits. Then the pure fill (``rotate``) alone, ``load_draft`` and one
    ``publish_draft`` (one summary message queued per person).

SQLite (a file in a temp dir) always; PostgreSQL with ``--pg URL`` (default:
``DUTYBOT_TEST_DATABASE_URL``), in a throwaway schema dropped at the end.
Run: ``python bench/bench_roster.py [--people N] [--runs N] [--gen-people N]
[--gen-runs N] [--pg URL] [--only sqlite|pg]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

from benchlib import pg_schema
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import SHANGHAI, FakeClock
from core.db import make_engine, upgrade
from core.workdays import WorkdayCalendar
from people.models import ChatIdentity, Person
from roster import drafts, rotation
from roster.models import Leave, Shift, ShiftAssignment
from roster.service import planned

SETTINGS = load_settings(None, env={})
PATTERNS = SETTINGS.roster.patterns()
CAL = WorkdayCalendar()
CREATED = datetime(2025, 9, 1, 9, 0, tzinfo=SHANGHAI)
YEAR = (date(2025, 10, 1), date(2026, 9, 30))
QUARTER = (date(2026, 10, 1), date(2026, 12, 31))
ASK_FROM = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
STEP = timedelta(hours=7, minutes=13)
CHUNK = 5_000


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"p50 {statistics.median(ordered):9.2f} ms   p99 {p99:9.2f} ms   "
            f"max {ordered[-1]:9.2f} ms   (n={len(ordered)})")


# ---------------------------------------------------------------- seeding

def add_people(engine: Engine, count: int, *, bound: bool) -> tuple[list[int], list[int]]:
    """``count`` people, one leader to four officers; returns (officer ids, leader ids)."""
    rows = [{"name": f"{'带班' if n % 5 == 4 else '值班'}{n:04d}", "phone": f"138{n:08d}", "unit": "区政府办",
             "roles": "leader" if n % 5 == 4 else "officer", "organization": "", "active": True,
             "created_at": CREATED} for n in range(count)]
    with engine.begin() as conn:
        conn.execute(insert(Person), rows)
        people = conn.execute(text("SELECT id, name, roles FROM person ORDER BY id")).all()
        if bound:
            conn.execute(insert(ChatIdentity), [
                {"person_id": pid, "platform": "memory", "external_id": f"u-{name}", "chat_id": f"u-{name}",
                 "display_name": name, "bound_at": CREATED, "blocked_at": None} for pid, name, _ in people])
    return ([pid for pid, _, roles in people if roles == "officer"],
            [pid for pid, _, roles in people if roles == "leader"])


def add_roster(engine: Engine, start: date, end: date, officers: list[int], leaders: list[int]) -> int:
    """Published shifts for ``start``..``end``, people in turn (by a stride, so neighbours
    differ); returns the number of shifts."""
    plans = planned(calendar=CAL, patterns=PATTERNS, start=start, end=end)
    with engine.begin() as conn:
        for first in range(0, len(plans), CHUNK):
            conn.execute(insert(Shift), [
                {"day": p.day, "name": p.name, "pattern": p.pattern, "starts_at": p.starts_at, "ends_at": p.ends_at,
                 "provisional": p.provisional, "published": True, "created_at": CREATED}
                for p in plans[first:first + CHUNK]])
        ids = [row[0] for row in conn.execute(
            select(Shift.id).where(Shift.day >= start, Shift.day <= end).order_by(Shift.starts_at))]  # type: ignore[arg-type]
        rows = []
        for i, sid in enumerate(ids):
            rows.append({"shift_id": sid, "person_id": officers[(i * 7) % len(officers)], "role": "officer",
                         "source": "import", "checked_in_at": None, "created_at": CREATED})
            rows.append({"shift_id": sid, "person_id": leaders[(i * 3) % len(leaders)], "role": "leader",
                         "source": "import", "checked_in_at": None, "created_at": CREATED})
        for first in range(0, len(rows), CHUNK):
            conn.execute(insert(ShiftAssignment), rows[first:first + CHUNK])
    analyze(engine)
    return len(ids)


def analyze(engine: Engine) -> None:
    """What autovacuum / a long-running database would have done (to this schema's tables only)."""
    with engine.connect() as conn:
        for table in ("person", "chat_identity", "shift", "shift_assignment", "leave"):
            conn.execute(text(f"ANALYZE {table}"))
        conn.commit()


# ---------------------------------------------------------------- (a) /duty

async def duty_latency(engine: Engine, runs: int) -> dict[str, list[float]]:
    """Milliseconds from send to the reply delivered, per command."""
    with Session(engine) as session:
        names = [p.name for p in session.exec(select(Person).order_by(Person.id))]  # type: ignore[arg-type]
    clock = FakeClock(ASK_FROM)
    adapter = MemoryAdapter()
    chat = MemoryChat(App(SETTINGS, clock=clock, adapter=adapter, engine=engine), adapter)
    commands = {"/help": "您可以使用以下命令", "/duty": "值班：", "/duty 明天": "（", "/duty week": "本周值班",
                "/myduty": "值班"}
    samples: dict[str, list[float]] = {c: [] for c in commands}
    for i in range(runs + 5):                      # the first five warm up
        for command, expect in commands.items():
            began = time.perf_counter()
            reply = await chat.send(command, as_=names[(i * 37) % len(names)])
            elapsed = (time.perf_counter() - began) * 1000
            assert expect in reply and "尚未排班" not in reply, (command, reply)   # /help: the baseline
            if i >= 5:
                samples[command].append(elapsed)
        clock.advance(STEP)
    return samples


def run_duty(name: str, engine: Engine, args: argparse.Namespace) -> None:
    upgrade(engine)
    began = time.perf_counter()
    officers, leaders = add_people(engine, args.people, bound=True)
    shifts = add_roster(engine, *YEAR, officers, leaders)
    print(f"\n== {name}: (a) /duty with a year of published roster", flush=True)
    print(f"   seeded {args.people} people, {shifts:,} shifts, {2 * shifts:,} assignments "
          f"in {time.perf_counter() - began:.1f} s", flush=True)
    for command, values in asyncio.run(duty_latency(engine, args.runs)).items():
        label = command + (" (baseline)" if command == "/help" else "")
        print(f"   {label}{' ' * (18 - _width(label))}{summary(values)}")


# ---------------------------------------------------------------- (b) generating

def timed(fn: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    out = fn()
    return (time.perf_counter() - began) * 1000, out


def run_generate(name: str, engine: Engine, args: argparse.Namespace) -> None:
    upgrade(engine)
    start, end = QUARTER
    officers, leaders = add_people(engine, args.gen_people, bound=True)
    add_roster(engine, start - timedelta(days=drafts.LOOKBACK_DAYS), start - timedelta(days=1), officers, leaders)
    with engine.begin() as conn:
        conn.execute(insert(Leave), [
            {"person_id": pid, "start_day": start + timedelta(days=(i * 11) % 80),
             "end_day": start + timedelta(days=(i * 11) % 80 + 6), "reason": "年休假", "created_at": CREATED}
            for i, pid in enumerate((officers + leaders)[::10])])
    print(f"\n== {name}: (b) drafting {start}..{end} for {args.gen_people} people "
          f"({len(officers)} officers, {len(leaders)} leaders)", flush=True)
    now = datetime(2026, 9, 20, 10, 0, tzinfo=SHANGHAI)

    def generate(seed: int) -> drafts.Draft:
        with Session(engine, expire_on_commit=False) as session:
            draft = drafts.generate_draft(session=session, calendar=CAL, patterns=PATTERNS, start=start, end=end,
                                          now=now, actor="bench", seed=seed)
            session.commit()
        return draft

    samples, draft = [], None
    for i in range(args.gen_runs + 1):             # the first warms up
        ms, draft = timed(lambda i=i: generate(i))
        if i:
            samples.append(ms)
    assert isinstance(draft, drafts.Draft)
    filled = sum(len(v.officers) + len(v.leaders) for v in draft.views)
    print(f"   generate_draft (replace, fill, store, commit): {summary(samples)}")
    print(f"      {len(draft.views)} shifts, {filled} assignments, {len(draft.unfilled)} unfilled, "
          f"{draft.replaced} replaced")
    table = [r for r in draft.fairness if r.roles]
    for role in ("officer", "leader"):
        rows = [r.period for r in table if r.roles[0].value == role]
        spreads = {a: max(getattr(t, a) for t in rows) - min(getattr(t, a) for t in rows)
                   for a in ("total", "nights", "restdays", "holidays")}
        print(f"      {role}s: spread (max - min) {json.dumps(spreads)}")
    slots = [rotation.to_slot(v.shift, 1, rotation.Holidays(CAL)) for v in draft.views]
    pools = ([rotation.Candidate(pid, f"p{pid}") for pid in officers],
             [rotation.Candidate(pid, f"p{pid}") for pid in leaders])
    pure = [timed(lambda: rotation.rotate(slots=slots, officers=pools[0], leaders=pools[1]))[0] for _ in range(3)]
    print(f"   rotate alone (no database):                    {summary(pure)}")
    with Session(engine) as session:
        ms, _ = timed(lambda: drafts.load_draft(session=session, calendar=CAL, patterns=PATTERNS, start=start,
                                                end=end))
    print(f"   load_draft (roster draft):                     {ms:9.2f} ms")
    with Session(engine) as session:
        ms, done = timed(lambda: (drafts.publish_draft(session=session, calendar=CAL, patterns=PATTERNS,
                                                       start=start, end=end, now=now, actor="bench"),
                                  session.commit())[0])
    assert isinstance(done, drafts.Published)
    print(f"   publish_draft + commit:                        {ms:9.2f} ms   "
          f"({len(done.shifts)} shifts, {len(done.notified)} messages queued)")


# ---------------------------------------------------------------- driver

@contextmanager
def sqlite_file() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=500, help="people in part (a)")
    parser.add_argument("--runs", type=int, default=200, help="asks timed per command in part (a)")
    parser.add_argument("--gen-people", type=int, default=200, help="people in part (b)")
    parser.add_argument("--gen-runs", type=int, default=10, help="drafts timed in part (b)")
    parser.add_argument("--pg", default=os.environ.get("DUTYBOT_TEST_DATABASE_URL"),
                        help="PostgreSQL URL (default: $DUTYBOT_TEST_DATABASE_URL)")
    parser.add_argument("--only", choices=("sqlite", "pg"))
    args = parser.parse_args()
    print(f"roster benchmark: {os.cpu_count()} CPUs, {json.dumps(vars(args) | {'pg': bool(args.pg)})}")
    if args.only != "pg":
        with sqlite_file() as engine:
            run_duty("SQLite (WAL)", engine, args)
        with sqlite_file() as engine:
            run_generate("SQLite (WAL)", engine, args)
    if args.only != "sqlite":
        if not args.pg:
            print("\n(PostgreSQL skipped: pass --pg URL or set DUTYBOT_TEST_DATABASE_URL)")
            return
        with pg_schema(args.pg) as engine:
            run_duty("PostgreSQL", engine, args)
        with pg_schema(args.pg) as engine:
            run_generate("PostgreSQL", engine, args)


if __name__ == "__main__":
    main()
