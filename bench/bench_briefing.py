"""How long the daily briefing and the weekly summary take to build with a year of data.

Fills a throwaway database with a year of reply items (``--per-day`` a day, default 40:
most answered, on time or late; the last weeks' still open, some overdue), the outbox
messages such a year causes (five per item, mostly sent, some dead) and 30 people, then
times ``build_daily(...).text()`` and ``build_weekly(...).text()``. SQLite always;
PostgreSQL too when ``DUTYBOT_TEST_DATABASE_URL`` is set (in a schema dropped at the end).
Run: ``python bench/bench_briefing.py [--per-day N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from benchlib import pg_schema
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.config import load_settings
from briefing.service import build_daily, build_weekly
from core.clock import SHANGHAI
from core.db import make_engine, upgrade
from core.outbox import OutboxMessage
from core.workdays import WorkdayCalendar
from people.models import Person
from replies.models import CATEGORY_RULE, ReplyCategory, ReplyItem
from replies.service import compute_deadline

NOW = datetime(2026, 11, 23, 8, 30, tzinfo=SHANGHAI)
DAYS = 365
CHUNK = 5_000
MESSAGES_PER_ITEM = 5
DEAD_EVERY = 400            # one outbox row in 400 is dead (a few a week)
SETTINGS = load_settings(None, env={})


def fill(engine: Engine, per_day: int) -> tuple[float, int, int]:
    """A year of people, reply items and outbox rows; returns (seconds, items, messages)."""
    began, rng = time.perf_counter(), random.Random(7)
    calendar, profile = WorkdayCalendar(), SETTINGS.profile()
    with engine.begin() as conn:
        conn.execute(insert(Person), [
            {"name": f"人员{n:02d}", "phone": "", "unit": f"单位{n % 6}", "organization": "",
             "roles": "leader" if n < 3 else "officer", "active": True, "created_at": NOW}
            for n in range(30)])
    items: list[dict[str, object]] = []
    categories = list(ReplyCategory)
    deadlines: dict[tuple[ReplyCategory, datetime], object] = {}
    for day in range(DAYS, 0, -1):
        base = (NOW - timedelta(days=day)).replace(hour=8, minute=0)
        for n in range(per_day):
            category = categories[n % len(categories)]
            received = base + timedelta(minutes=(n * 997) % 600)
            key = (category, received.date())   # deadlines depend on the day only
            if key not in deadlines:
                deadlines[key] = compute_deadline(calendar=calendar, profile=profile,
                                                  category=category, received_at=received)
            d = deadlines[key]
            due, last_day, ceiling = d.due.due, d.due.last_day, d.ceiling.due  # type: ignore[attr-defined]
            roll = rng.random()
            closed = (due + timedelta(hours=rng.randint(1, 72)) if roll > 0.97   # late
                      else received + (due - received) * rng.uniform(0.1, 0.95))
            # Open: not answered by now, the recent backlog, and a few forgotten ones.
            if closed > NOW or (received > NOW - timedelta(days=14) and roll < 0.5) or roll < 0.003:
                status, closed = "open", None
            else:
                status = "answered"
            items.append({
                "number": f"MSG-{received:%Y%m%d}-{n + 1:03d}", "channel": "website",
                "category": category.value, "summary": "网站某栏目信息有误，请核实", "unit": f"单位{n % 6}",
                "assignee_id": 4 + n % 26, "received_at": received, "due_at": due,
                "due_last_day": last_day, "ceiling_at": ceiling, "provisional": d.provisional,  # type: ignore[attr-defined]
                "rule_id": CATEGORY_RULE[category][0], "citation": "依据：古丈办法第十三条",
                "extended_workdays": 0, "status": status, "closed_at": closed,
                "escalation_level": 0, "created_at": received})
    messages = [{
        "dedupe_key": f"bench:{i}|p:{1 + i % 30}", "event_key": f"bench:{i}",
        "person_id": 1 + i % 30, "text": "【答复提醒】今天到期", "buttons": "[]",
        "status": "dead" if i % DEAD_EVERY == 0 else "sent", "attempts": 1,
        "created_at": NOW - timedelta(minutes=DAYS * 24 * 60 * (1 - i / (len(items) * MESSAGES_PER_ITEM))),
    } for i in range(len(items) * MESSAGES_PER_ITEM)]
    for m in messages:
        m["next_attempt_at"] = m["created_at"]
    with engine.begin() as conn:
        for rows, table in ((items, ReplyItem), (messages, OutboxMessage)):
            for first in range(0, len(rows), CHUNK):
                conn.execute(insert(table), rows[first:first + CHUNK])
    with engine.connect() as conn:   # what autovacuum / a long-running DB would have
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - began, len(items), len(messages)


def timed(engine: Engine, runs: int, build: Callable[..., object]) -> tuple[list[float], str]:
    """Milliseconds per build (a fresh session each, as the cron job and /brief have)."""
    samples, last = [], ""
    calendar = WorkdayCalendar()
    for _ in range(runs + 3):
        began = time.perf_counter()
        with Session(engine) as session:
            last = build(session=session, now=NOW, calendar=calendar,
                         settings=SETTINGS.briefing).text()  # type: ignore[attr-defined]
        samples.append((time.perf_counter() - began) * 1000)
    return samples[3:], last   # the first runs warm connections and caches


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):8.2f} ms   p99 {p99:8.2f} ms   (n={len(ordered)})"


def run(name: str, engine: Engine, per_day: int, runs: int, show: bool) -> None:
    upgrade(engine)
    print(f"\n== {name}: filling a year, {per_day} reply items a day ...", flush=True)
    seconds, items, messages = fill(engine, per_day)
    print(f"   {items:,} reply items, {messages:,} outbox rows, filled in {seconds:.1f} s")
    daily, daily_text = timed(engine, runs, build_daily)
    weekly, weekly_text = timed(engine, runs, build_weekly)
    print(f"   daily briefing: {summary(daily)}")
    print(f"   weekly summary: {summary(weekly)}")
    if show:
        print("\n" + daily_text + "\n\n" + weekly_text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=40)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--show", action="store_true", help="print the texts built")
    args = parser.parse_args()
    print(f"briefing benchmark: a year at {args.per_day} reply items a day, {args.runs} runs, "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            run("SQLite (WAL)", engine, args.per_day, args.runs, args.show)
        finally:
            engine.dispose()
    url = os.environ.get("DUTYBOT_TEST_DATABASE_URL")
    if url:
        with pg_schema(url) as engine:
            run("PostgreSQL", engine, args.per_day, args.runs, False)
    else:
        print("\n(PostgreSQL skipped: set DUTYBOT_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
