"""How long the reminder sweep takes with a million open reply items.

Fills a throwaway database with 1,000,000 open reply items (received over the ten days
before 2026-11-23 09:00, the four categories in turn, each with its real deadline from
the working-day calendar and the default profile) and the five reminder due items
``replies.flows.schedule_reminders`` gives each (stages already past stored as done,
the rest pending), bulk-inserted in chunks. Then times ``Scheduler.tick()`` with
``reply.remind`` registered: (a) when nothing is due and (b) when 1,000 reminders are due
(1,000 items' "due today" reminders moved to a second ago before each tick; each is
processed for real: the item and its assignee are read and a message is queued).
SQLite always; PostgreSQL too when ``DUTYBOT_TEST_DATABASE_URL`` is set (in a schema
dropped at the end).
Run: ``python bench/bench_reply_sweep.py [--items N] [--ticks N] [--due-ticks N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from benchlib import pg_schema
from sqlalchemy import insert, text, update
from sqlalchemy.engine import Engine

from bot.scheduler import Scheduler
from core.clock import SHANGHAI, FakeClock, local
from core.db import make_engine, upgrade
from core.profiles import load_profile
from core.schedule import DueItem
from core.workdays import WorkdayCalendar
from people.models import Person
from replies.flows import LEVEL, REMIND_KIND, ReminderPolicy, process_reminder, stage_times
from replies.models import ReplyCategory, ReplyChannel, ReplyItem
from replies.service import compute_deadline, default_channel

START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
SPREAD = timedelta(days=10)
CHUNK = 10_000
OFFICERS = 50
DUE_PER_TICK = 1_000
CATEGORIES = list(ReplyCategory)


class _Plan:
    """Deadlines and reminder times per (receipt day, category): they depend on nothing else."""

    def __init__(self) -> None:
        self.calendar, self.profile, self.policy = WorkdayCalendar(), load_profile("default"), ReminderPolicy()
        self._cache: dict[tuple[date, ReplyCategory],
                          tuple[dict[str, object], datetime, dict[str, datetime]]] = {}

    def get(self, received: datetime,
            category: ReplyCategory) -> tuple[dict[str, object], datetime, dict[str, datetime]]:
        """The item's deadline columns, its due instant, and when each reminder stage falls."""
        key = (local(received).date(), category)
        if key not in self._cache:
            d = compute_deadline(calendar=self.calendar, profile=self.profile, category=category,
                                 received_at=received)
            fields: dict[str, object] = {
                "due_at": d.due.due, "due_last_day": d.due.last_day, "ceiling_at": d.ceiling.due,
                "provisional": d.provisional, "rule_id": d.rule.rule_id, "citation": d.basis_zh()}
            probe = ReplyItem(due_at=d.due.due, due_last_day=d.due.last_day)   # what stage_times reads
            self._cache[key] = (fields, d.due.due,
                                stage_times(item=probe, calendar=self.calendar, policy=self.policy))
        return self._cache[key]


def add_people(engine: Engine) -> list[int]:
    """Officers (assignees), leaders, a principal and an admin; returns the officers' ids."""
    rows = [{"name": f"值班员{n:02d}", "unit": f"单位{n % 10}", "roles": "officer"} for n in range(OFFICERS)]
    rows += [{"name": f"领导{n}", "unit": f"单位{n}", "roles": "leader"} for n in range(10)]
    rows += [{"name": "主要负责人", "unit": "", "roles": "principal"},
             {"name": "管理员", "unit": "", "roles": "admin"}]
    with engine.begin() as conn:
        conn.execute(insert(Person), [r | {"phone": "", "organization": "", "active": True,
                                           "created_at": START} for r in rows])
        return [row[0] for row in conn.execute(
            text("SELECT id FROM person WHERE roles = 'officer' ORDER BY id"))]


def fill(engine: Engine, items: int) -> tuple[float, list[str], int, int]:
    """Insert the items and their reminders; returns seconds, candidate keys, pending, done."""
    began = time.perf_counter()
    officers, plan = add_people(engine), _Plan()
    seq: dict[date, int] = {}
    candidates: list[str] = []
    pending = done = 0
    step = (SPREAD - timedelta(minutes=1)) / items
    with engine.begin() as conn:
        for first in range(0, items, CHUNK):
            replies: list[dict[str, object]] = []
            dues: list[dict[str, object]] = []
            for n in range(first, min(first + CHUNK, items)):
                received = START - timedelta(minutes=1) - step * n
                category = CATEGORIES[n % len(CATEGORIES)]
                day = local(received).date()
                seq[day] = seq.get(day, 0) + 1
                number = f"MSG-{day:%Y%m%d}-{seq[day]:03d}"
                fields, due_at, stages = plan.get(received, category)
                level = 0
                for stage, at in stages.items():
                    if stage in ("before", "due") and at >= due_at:
                        continue
                    is_pending = at > START
                    pending, done = pending + is_pending, done + (not is_pending)
                    level = level if is_pending else max(level, LEVEL.get(stage, 0))
                    if stage == "due" and is_pending:
                        candidates.append(f"reply:{number}:due")
                    dues.append({"key": f"reply:{number}:{stage}", "kind": REMIND_KIND,
                                 "ref": f"reply:{number}", "due_at": at,
                                 "status": "pending" if is_pending else "done",
                                 "payload": json.dumps({"stage": stage, "due": due_at.isoformat()}),
                                 "attempts": 0, "created_at": received,
                                 "processed_at": None if is_pending else at})
                replies.append(fields | {
                    "number": number, "external_ref": None,
                    "channel": default_channel(category).value if n % 3 else ReplyChannel.new_media.value,
                    "category": category.value, "summary": f"网民留言 {n}：栏目信息需要核实",
                    "unit": f"单位{n % 10}", "assignee_id": officers[n % len(officers)],
                    "received_at": received, "extended_workdays": 0, "status": "open",
                    "escalation_level": level, "created_at": received})
            conn.execute(insert(ReplyItem), replies)
            conn.execute(insert(DueItem), dues)
    with engine.connect() as conn:   # what autovacuum / a long-running DB would have
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - began, candidates, pending, done


def make_due(engine: Engine, keys: list[str]) -> None:
    """Move these reminders to a second ago (outside the timed tick)."""
    with engine.begin() as conn:
        conn.execute(update(DueItem).where(DueItem.key.in_(keys))  # type: ignore[attr-defined]
                     .values(due_at=START - timedelta(seconds=1)))


def timed_ticks(sched: Scheduler, ticks: int, batches: list[list[str]]) -> list[float]:
    """Milliseconds per tick; before tick i, the reminders in ``batches[i]`` fall due."""
    samples = []
    for i in range(ticks):
        expected = len(batches[i]) if batches else 0
        if expected:
            make_due(sched.engine, batches[i])
        began = time.perf_counter()
        report = sched.tick()
        samples.append((time.perf_counter() - began) * 1000)
        assert report.processed == expected and not report.failed, report
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):9.2f} ms   p99 {p99:9.2f} ms   (n={len(ordered)})"


def plan_of(engine: Engine) -> str:
    """The query plan of the tick's due-item query."""
    query = ("SELECT id, due_at FROM due_item WHERE status = 'pending' AND due_at <= "
             "'2026-11-23 01:00:00' ORDER BY due_at, id LIMIT 200")
    prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    with engine.connect() as conn:
        return " | ".join(str(row[-1]) for row in conn.exec_driver_sql(f"{prefix} {query}").all())


def run(name: str, engine: Engine, items: int, ticks: int, due_ticks: int) -> None:
    upgrade(engine)
    print(f"\n== {name}: filling {items:,} open reply items and their reminders ...", flush=True)
    seconds, candidates, pending, done = fill(engine, items)
    print(f"   filled in {seconds:.1f} s: {pending:,} pending reminders, {done:,} already done")
    print(f"   due-item query plan: {plan_of(engine)}")
    sched = Scheduler(engine=engine, clock=FakeClock(START))
    sched.register(REMIND_KIND, process_reminder)
    timed_ticks(sched, 3, [])   # warm up
    print(f"   (a) nothing due:          {summary(timed_ticks(sched, ticks, []))}", flush=True)
    chosen = random.Random(7).sample(candidates, DUE_PER_TICK * (due_ticks + 1))
    batches = [chosen[i * DUE_PER_TICK:(i + 1) * DUE_PER_TICK] for i in range(due_ticks + 1)]
    timed_ticks(sched, 1, batches[:1])   # warm up the processing path
    samples = timed_ticks(sched, due_ticks, batches[1:])
    print(f"   (b) {DUE_PER_TICK:,} reminders due:   {summary(samples)}"
          f"   ≈ {statistics.median(samples) / DUE_PER_TICK:.2f} ms per reminder")
    with engine.connect() as conn:
        queued = conn.execute(text("SELECT count(*) FROM outbox_message")).scalar_one()
    assert queued == DUE_PER_TICK * (due_ticks + 1), queued   # one message per reminder
    print(f"   messages queued by the processed reminders: {queued:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=50, help="ticks timed with nothing due")
    parser.add_argument("--due-ticks", type=int, default=10, help="ticks timed with 1,000 due")
    args = parser.parse_args()
    print(f"reply reminder sweep benchmark: {args.items:,} open items, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            run("SQLite (WAL)", engine, args.items, args.ticks, args.due_ticks)
        finally:
            engine.dispose()
    url = os.environ.get("DUTYBOT_TEST_DATABASE_URL")
    if url:
        with pg_schema(url) as engine:
            run("PostgreSQL", engine, args.items, args.ticks, args.due_ticks)
    else:
        print("\n(PostgreSQL skipped: set DUTYBOT_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
