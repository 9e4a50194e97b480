"""CPU of the running bot with 500 websites on 5-minute availability probes (not a test).

Issue 17's goal: at most 2 % of one core. Run ``python bench/bench_watch_idle.py``
(options: ``--sites``, ``--window``, ``--speed``, ``--page-kb``, ``--history-days``,
``--profile``).

**What runs.** The whole :class:`bot.app.App` (memory chat adapter, its HTTP service, the
outbox sender, and the scheduler of ``bot/scheduler.py`` with every domain's jobs and the
site-watch jobs of ``watch.schedule.register_watch``) on a temporary SQLite database, as
``dutybot run`` runs it, with the default ``[watch]`` settings (probes every 5 minutes, at
most 2 requests at a time and 500 ms between request starts per host) and the default
tick of 5 s. ``--sites`` intranet websites are registered, each on its own port of one
loopback server in another process (uvicorn, one listening socket per site; a port is a
host to the politeness limits, as 500 real sites are 500 hosts). Each homepage is a
fast 200 of ``--page-kb`` KB. The probe table holds ``--history-days`` days of earlier
probes of every site (default 15: the middle of a month), because each probe cycle counts
the month's probes of every site.

**The clock.** A cron job fires on the minute, so a real 5-minute schedule would give one
probe cycle in a 2-minute window, or none. The bot's clock therefore runs ``--speed``
times faster than real time (default 5): the ``*/5`` availability job fires every 60 real
seconds, while the tick, the sender and everything on a real-time timer keep their real
pace. The clock starts at 09:04 on 16 November 2026 (Asia/Shanghai), so that the window
holds availability fires only (no hourly content check at :30, no 6-hourly freshness,
no nightly crawl); every cron job that does run is listed.

**What is measured.** The process's CPU time (``time.process_time``: all its threads —
the event loop, the tick thread that runs the probe cycle, the sender; the server's
process is not counted) over ``--window`` real seconds after a short warm-up, and for
each probe cycle its wall time and the process CPU used while it ran. Reported:

- the CPU over the window as % of one core — with cycles ``--speed`` times as frequent as
  in production, so an over-estimate;
- the cost of one probe cycle (CPU seconds, per site);
- the idle rest: CPU outside the cycles over the time outside them;
- the production estimate: idle % + one cycle's CPU / (5 × 60 s).

The machine, its load and the page size change these numbers; the report says how many
CPUs there were. ``--profile`` profiles the probe cycles (cProfile, on their thread) and
prints where their time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import pstats
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import free_port, wait_until_up
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from core.clock import SHANGHAI
from core.db import make_engine, upgrade
from roster.sites import add_site, validate
from watch.models import Probe

START = datetime(2026, 11, 16, 9, 4, tzinfo=SHANGHAI)
UNIT = "区政府办"
JOB = "watch.availability"
FILLER = "区政府召开常务会议，研究部署当前重点工作，强调要扎实做好民生保障和安全生产各项工作。"
CHUNK = 20_000

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def homepage(page_kb: int) -> bytes:
    """A government homepage of about ``page_kb`` KB: menu, news list, text."""
    menu = "".join(f'<li><a href="/lm/{k}/">栏目{k}</a></li>' for k in range(12))
    news = "".join(f'<li><a href="/xw/{k}.html">信息标题{k}</a><span>2026-11-{1 + k % 15:02d}</span></li>'
                   for k in range(30))
    text = FILLER * max(1, page_kb * 1024 // len(FILLER.encode()))
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>区政府门户网站</title></head><body>'
            f'<div class="nav"><ul>{menu}</ul></div><ul class="list">{news}</ul><p>{text}</p>'
            f"</body></html>").encode()


def _serve(sites: int, page_kb: int, ports: Connection) -> None:
    """The websites, in their own process: one listening socket per site."""
    import uvicorn

    body = homepage(page_kb)
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    listeners = []
    for _ in range(sites):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        listeners.append(sock)
    ports.send([s.getsockname()[1] for s in listeners])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    asyncio.run(server.serve(sockets=listeners))


class ScaledClock:
    """Real time from ``start``, ``speed`` times faster."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start, self.speed, self.began = start, speed, time.monotonic()

    def now(self) -> datetime:
        return (self.start + timedelta(seconds=(time.monotonic() - self.began) * self.speed)).astimezone(UTC)


@dataclass
class Cycle:
    """One run of the availability job: when (perf_counter), wall and process CPU seconds."""

    began: float
    wall: float
    cpu: float
    thread_cpu: float


@dataclass
class Recorder:
    """Wraps the scheduler's cron jobs: counts each run, times the probe cycles."""

    profile: bool
    cycles: list[Cycle] = field(default_factory=list)
    runs: list[tuple[str, float]] = field(default_factory=list)     # (job, perf_counter)
    profiler: cProfile.Profile = field(default_factory=cProfile.Profile)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, name: str, fn: Callable[..., None]) -> Callable[..., None]:
        def job(*args: Any) -> None:
            self.runs.append((name, time.perf_counter()))
            if name != JOB:
                fn(*args)
                return
            began, cpu, thread_cpu = time.perf_counter(), time.process_time(), time.thread_time()
            if self.profile:
                self.profiler.enable()
            try:
                fn(*args)
            finally:
                if self.profile:
                    self.profiler.disable()
                with self.lock:
                    self.cycles.append(Cycle(began, time.perf_counter() - began, time.process_time() - cpu,
                                             time.thread_time() - thread_cpu))
        return job


def register_sites(engine: Engine, ports: list[int]) -> list[int]:
    """One intranet website per port; their ids."""
    with Session(engine) as session:
        ids = []
        for n, port in enumerate(ports):
            site, _ = add_site(session=session, new=validate(f"基准网站{n:03d}", "网站", f"http://127.0.0.1:{port}/",
                                                             UNIT, True), now=START - timedelta(days=30), actor="bench")
            session.flush()
            assert site.id is not None
            ids.append(site.id)
        session.commit()
    return ids


def fill_history(engine: Engine, ids: list[int], ports: list[int], days: int) -> int:
    """Homepage probes every 5 minutes for ``days`` days before START (this month only),
    written in time order as the probe cycles write them (every site's rows interleaved)."""
    first = max(START - timedelta(days=days), START.replace(day=1, hour=0, minute=0))
    times = [first + timedelta(minutes=5 * k) for k in range(int((START - first).total_seconds() // 300))]
    rows = ({"site_id": site_id, "column_id": None, "url": f"http://127.0.0.1:{port}/", "at": at, "ok": True,
             "status": 200, "elapsed_ms": 30, "error": ""} for at in times
            for site_id, port in zip(ids, ports, strict=True))
    total = 0
    with engine.begin() as conn:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK:
                conn.execute(insert(Probe), batch)
                total += len(batch)
                batch = []
        if batch:
            conn.execute(insert(Probe), batch)
            total += len(batch)
    return total


async def measure(app: App, warmup: float, window: float) -> tuple[float, float, float]:
    """Run the app; after ``warmup``, the window's start (perf_counter), wall and process
    CPU seconds."""
    stop = asyncio.Event()
    runner = asyncio.create_task(app.run(stop))
    await asyncio.sleep(warmup)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.sleep(window)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stop.set()
    await runner
    return wall0, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--window", type=float, default=120, help="real seconds measured")
    parser.add_argument("--speed", type=float, default=5, help="how much faster the bot's clock runs")
    parser.add_argument("--page-kb", type=int, default=64, help="size of each homepage")
    parser.add_argument("--history-days", type=int, default=15, help="earlier probes of each site this month")
    parser.add_argument("--profile", action="store_true", help="profile the probe cycles")
    args = parser.parse_args()

    receiving, sending = multiprocessing.get_context("spawn").Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(args.sites, args.page_kb, sending),
                                                          daemon=True)
    server.start()
    try:
        ports: list[int] = receiving.recv()
        asyncio.run(wait_until_up(f"http://127.0.0.1:{ports[0]}/"))
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                run(args, engine, ports, Path(tmp))
            finally:
                engine.dispose()
    finally:
        server.terminate()
        server.join()


def run(args: argparse.Namespace, engine: Engine, ports: list[int], tmp: Path) -> None:
    upgrade(engine)
    began = time.perf_counter()
    ids = register_sites(engine, ports)
    history = fill_history(engine, ids, ports, args.history_days)
    print(f"site watch idle CPU: {args.sites} sites on one loopback server ({args.page_kb} KB homepages), "
          f"{history:,} earlier probes, set up in {time.perf_counter() - began:.0f} s; {os.cpu_count()} CPUs")
    settings = load_settings(None, env={"DUTYBOT_HTTP_PORT": str(free_port()),
                                        "DUTYBOT_INCIDENTS_EVIDENCE_DIR": str(tmp / "evidence")})
    policy = settings.watch_policy()
    clock = ScaledClock(START, args.speed)
    app = App(settings, clock=clock, adapter=MemoryAdapter(), engine=engine)
    recorder = Recorder(args.profile)
    for name, cron in app.scheduler._crons.items():
        cron.fn = recorder.wrap(name, cron.fn)
    warmup = 5.0
    wall0, wall, cpu = asyncio.run(measure(app, warmup, args.window))
    with Session(engine) as session:
        probes = session.exec(select(func.count()).select_from(Probe)).one() - history
    inside = [c for c in recorder.cycles if wall0 <= c.began <= wall0 + wall]
    runs = Counter(name for name, at in recorder.runs if wall0 <= at <= wall0 + wall)
    period = policy.availability_minutes * 60
    print(f"window {wall:.0f} s at {args.speed:g}× ({wall * args.speed / 60:.0f} min of schedule), tick every "
          f"{settings.bot.tick_seconds:g} s; probes recorded: {probes:,}; cron jobs run: "
          + ", ".join(f"{name} ×{n}" for name, n in sorted(runs.items())))
    for n, cycle in enumerate(inside, 1):
        print(f"  probe cycle {n}: wall {cycle.wall:.2f} s, process CPU {cycle.cpu:.2f} s "
              f"({cycle.cpu / args.sites * 1000:.1f} ms a site; its thread {cycle.thread_cpu:.2f} s)")
    print(f"CPU over the window: {cpu:.2f} s = {100 * cpu / wall:.2f} % of one core "
          f"(probe cycles every {period / args.speed:.0f} s: {args.speed:g}× production)")
    if inside:
        cycles_cpu, cycles_wall = sum(c.cpu for c in inside), sum(c.wall for c in inside)
        idle = 100 * (cpu - cycles_cpu) / (wall - cycles_wall)
        per_cycle = cycles_cpu / len(inside)
        estimate = idle + 100 * per_cycle / period
        print(f"idle between cycles: {cpu - cycles_cpu:.2f} s over {wall - cycles_wall:.0f} s = {idle:.2f} %")
        print(f"at {policy.availability_minutes}-minute probes: {idle:.2f} % + {per_cycle:.2f} s / {period} s "
              f"= {estimate:.2f} % of one core (goal ≤ 2 %)")
    else:
        print("no probe cycle in the window: lengthen --window or raise --speed")
    if args.profile and inside:
        print("\nwhere the probe cycles' time goes (cumulative, top 30):")
        pstats.Stats(recorder.profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
