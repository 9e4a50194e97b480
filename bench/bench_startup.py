"""Cold start to ready, and the idle footprint, of ``dutybot run`` (issue 21 item 2).

What runs: ``python -m bot.cli run --adapter wecom`` (the ``dutybot`` command) in a new
process each time, on a SQLite database in a temp dir, with made-up WeCom credentials and
its API pointed at a closed loopback port: the whole service as deployed (configuration,
schema check, every domain's jobs, the scheduler's catch-up, the HTTP service, the
callback adapter, the outbox sender) with no network. WeCom being unreachable is only
logged by the adapter; nothing is sent while idle, so ``/readyz`` answers 200 once the
scheduler ticked. (The console adapter is no service: it reads its input on the event
loop and starts no scheduler.)

Measured, for an empty database (migrated beforehand: creating it is not part of a
start) and for one with ``--incidents`` open incidents (seeded as ``bench_incidents.py``
seeds them: each with its steps and pending escalation due items):

* cold start to ready: from spawning the process until ``/readyz`` answers 200, and until
  the started line (``值班机器人已启动``) is printed; the median of ``--spawns`` starts;
* idle RSS (``VmRSS``): when ready, and after ``--idle`` seconds of doing nothing;
* idle CPU: the process's user + system CPU time over those ``--idle`` seconds, as % of
  one core (the scheduler ticks every ``[bot] tick_seconds``, 5 s by default; run with
  ``--idle 60`` or more for a figure that is not dominated by one tick).

Each start runs as a deployed service does, with the compiled bytecode of every module
already on disk (pip writes it on install): the environment's ``PYTHONDONTWRITEBYTECODE``
is dropped for the service, its cache goes to a temporary ``PYTHONPYCACHEPREFIX``, and one
start before the timed ones writes it. ``--no-bytecode`` times starts that compile the
project's modules every time instead (an editable install where bytecode is not written:
about 0.35 s more here).

Linux only (``/proc``). Prints the load average with each figure, and one ``BENCH_JSON``
line. Run: ``python bench/bench_startup.py [--spawns N] [--idle SECONDS] [--incidents N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import free_port

ROOT = Path(__file__).resolve().parent.parent
STARTED = "值班机器人已启动"
TIMEOUT = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_database(path: Path, incidents: int) -> None:
    """A migrated database, with ``incidents`` open incidents (as bench_incidents seeds them)."""
    from core.db import make_engine, upgrade  # here: the bench's own imports are no part of a start

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    if incidents:
        import bench_incidents as seeding

        from core.clock import SHANGHAI

        # Reported over the days before, their due items from a minute to a year after ten
        # minutes from now: nothing falls due while the starts are timed (the service runs
        # on the real clock), so a start has nothing to catch up on — what is timed is
        # starting with 10,000 open incidents, not working through the first due ones.
        seeding.START = (datetime.now(SHANGHAI) + timedelta(minutes=10)).replace(second=0, microsecond=0)
        seeding.add_people(engine)
        seconds, steps, dues = seeding.fill(engine, seeding.templates(engine), 0, incidents)
        print(f"   seeded {incidents:,} open incidents ({steps:,} steps, {dues:,} pending due items) "
              f"in {seconds:.1f} s", flush=True)
    engine.dispose()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime, stime (fields 14, 15)


class Service:
    """One ``dutybot run`` process on ``db``; its output read on a thread."""

    def __init__(self, db: Path, workdir: Path, pycache: Path | None) -> None:
        self.port = free_port()
        env = os.environ | {
            "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
            "DUTYBOT_DATABASE_URL": f"sqlite:///{db}", "DUTYBOT_HTTP_PORT": str(self.port),
            "DUTYBOT_WECOM_CORP_ID": "wwbench", "DUTYBOT_WECOM_AGENT_ID": "1000002",
            "DUTYBOT_WECOM_SECRET": "bench-secret", "DUTYBOT_WECOM_TOKEN": "benchtoken",
            "DUTYBOT_WECOM_AES_KEY": "a" * 43, "DUTYBOT_WECOM_API_BASE": f"http://127.0.0.1:{free_port()}"}
        env.pop("DUTYBOT_CONFIG", None)
        if pycache is not None:   # as deployed: bytecode written once, then read
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(pycache)
        self.began = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--adapter", "wecom"],
                                     cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, encoding="utf-8")
        self.started_at: float | None = None
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if self.started_at is None and STARTED in line:
                self.started_at = time.perf_counter()

    def wait_ready(self) -> float:
        """Seconds from the spawn until ``/readyz`` answered 200."""
        url = f"http://127.0.0.1:{self.port}/readyz"
        while time.perf_counter() - self.began < TIMEOUT:
            if self.proc.poll() is not None:
                raise RuntimeError("dutybot run exited:\n" + "".join(self.output[-30:]))
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - self.began
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"not ready after {TIMEOUT:.0f} s:\n" + "".join(self.output[-30:]))

    def started_line(self) -> float | None:
        for _ in range(100):   # printed just before or after /readyz first answers
            if self.started_at is not None:
                return self.started_at - self.began
            time.sleep(0.01)
        return None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(name: str, db: Path, workdir: Path, spawns: int, idle: float,
            pycache: Path | None) -> dict[str, Any]:
    ready, started = [], []
    if pycache is not None and not any(pycache.iterdir()):
        warm = Service(db, workdir, pycache)   # writes the bytecode, as pip does on install
        try:
            warm.wait_ready()
        finally:
            warm.stop()
    for n in range(spawns):
        service = Service(db, workdir, pycache)
        try:
            ready.append(service.wait_ready())
            line = service.started_line()
            if line is not None:
                started.append(line)
            if n < spawns - 1:
                continue
            # The last start stays up for the idle figures.
            rss_ready = _rss_mb(service.proc.pid)
            time.sleep(1.0)   # the start's own work (catch-up, first tick) is over
            cpu0, t0 = _cpu_seconds(service.proc.pid), time.perf_counter()
            time.sleep(idle)
            cpu1, t1 = _cpu_seconds(service.proc.pid), time.perf_counter()
            rss_idle = _rss_mb(service.proc.pid)
        finally:
            service.stop()
    result = {
        "ready_s": statistics.median(ready), "ready_all_s": ready,
        "started_line_s": statistics.median(started) if started else None,
        "rss_ready_mb": rss_ready, "rss_idle_mb": rss_idle,
        "idle_seconds": t1 - t0, "idle_cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "load": load(),
    }
    print(f"{name}: cold start to ready (/readyz 200): median {result['ready_s']:.2f} s of {spawns} "
          f"({', '.join(f'{r:.2f}' for r in ready)}); started line: median "
          f"{result['started_line_s'] or float('nan'):.2f} s   (load {result['load']})", flush=True)
    print(f"{name}: idle RSS {rss_ready:.0f} MB when ready, {rss_idle:.0f} MB after {t1 - t0:.0f} s idle; "
          f"idle CPU {result['idle_cpu_pct']:.2f}% of one core   (load {load()})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=5, help="starts timed per database (median)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idling measured (issue: 60)")
    parser.add_argument("--incidents", type=int, default=10_000, help="open incidents in the second database")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile the modules on every start (no bytecode cache)")
    args = parser.parse_args()
    print(f"startup benchmark: {os.cpu_count()} CPUs, {json.dumps(vars(args))}, load {load()}", flush=True)
    data: dict[str, Any] = {"sqlite": {}, "args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        pycache = None if args.no_bytecode else Path(tmp) / "pycache"
        if pycache is not None:
            pycache.mkdir()
        for label, count in (("empty", 0), (str(args.incidents), args.incidents)):
            if label != "empty" and count == 0:
                continue
            work = Path(tmp) / label
            work.mkdir()
            make_database(work / "bot.db", count)
            name = "SQLite, empty database" if not count else f"SQLite, {count:,} open incidents"
            data["sqlite"][label] = measure(name, work / "bot.db", work, args.spawns, args.idle, pycache)
    print("BENCH_JSON " + json.dumps(data, ensure_ascii=False))


if __name__ == "__main__":
    main()
