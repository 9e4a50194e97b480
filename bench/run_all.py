"""Every benchmark, with small sizes, in one run: ``python -m bench`` (or ``python bench/run_all.py``).

Each ``bench/bench_*.py`` runs in a subprocess with the small arguments of :data:`BENCHES`
(what each measures is unchanged; only the sizes are smaller than its defaults). Its key
figures are read from its output: the ``BENCH_JSON {...}`` line where the script prints
one, else the summary lines named in :data:`BENCHES`. Beside them, two anchors measured in
this run on this machine, so that a figure can be read against what the machine does anyway:

* ``ptb_dispatch``: a bare python-telegram-bot ``Application`` handling one ``Update``
  through a ``CommandHandler`` whose callback replies (the reply answered in process: no
  network) — what any Telegram bot pays per command;
* ``sqlite_seek``: a raw ``sqlite3`` query on a table shaped like ``due_item`` (100,000
  rows, the ``(status, due_at)`` index) asking what is due when nothing is — the floor of
  a scheduler tick.

Prints a table (benchmark, figure, value, unit, ratio to its anchor), writes
``bench/results.json`` and the table into ``docs/performance.md`` and ``README.md`` between their markers,
with the machine (CPUs, model, Python, load average). PostgreSQL figures only when
``DUTYBOT_TEST_DATABASE_URL`` is set. Options: ``--only NAME[,NAME]``, ``--skip NAME``,
``--no-write``, ``--from-results`` (rewrite the tables from ``bench/results.json``
without running anything), ``--budget SECONDS`` (default 570: the whole run stays under 10 minutes;
a script still running when it is spent is stopped and shown as failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"
PERFORMANCE_MD = ROOT / "docs" / "performance.md"
README_MD = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?)"


@dataclass(frozen=True)
class Figure:
    """One key figure: a regex on the script's output (group 1 is the value), or a path
    into its ``BENCH_JSON`` object; ``anchor``: which anchor a ratio is taken to."""

    name: str
    unit: str
    pattern: str = ""
    json_path: tuple[str, ...] = ()
    anchor: str | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Bench:
    script: str
    args: tuple[str, ...]
    figures: tuple[Figure, ...]
    timeout: float = 120.0
    env: dict[str, str] = field(default_factory=dict)


def _pg(*path: str) -> tuple[str, ...]:
    return ("postgresql", *path)


BENCHES: tuple[Bench, ...] = (
    Bench("bench_tick.py", ("--items", "100000", "--ticks", "20"), (
        Figure("tick, nothing due, 100k open (SQLite)", "ms", r"\(a\) nothing due:\s+median\s+" + NUMBER,
               anchor="sqlite_seek"),
        Figure("tick, 100 due, 100k open (SQLite)", "ms", r"\(b\) 100 items due:\s+median\s+" + NUMBER),
    )),
    Bench("bench_escalation.py", ("--sizes", "100,1000", "--repeats", "3"), (
        Figure("escalation, per item, 100 due (SQLite)", "ms", json_path=("sqlite", "sizes", "100", "per_item_ms"),
               anchor="ptb_dispatch"),
        Figure("escalation, per item, 1,000 due (SQLite)", "ms",
               json_path=("sqlite", "sizes", "1000", "per_item_ms"), anchor="ptb_dispatch"),
        Figure("1,000 escalations due → delivered, p99 (SQLite)", "ms",
               json_path=("sqlite", "sizes", "1000", "delivered_p99_ms")),
        Figure("1,000 escalations due → delivered, running bot, p99 (SQLite)", "ms",
               json_path=("sqlite", "sizes", "1000", "running_p99_ms")),
        Figure("escalation, per item, 100 due (PostgreSQL)", "ms", json_path=_pg("sizes", "100", "per_item_ms"),
               anchor="ptb_dispatch"),
        Figure("escalation, per item, 1,000 due (PostgreSQL)", "ms",
               json_path=_pg("sizes", "1000", "per_item_ms"), anchor="ptb_dispatch"),
        Figure("1,000 escalations due → delivered, p99 (PostgreSQL)", "ms",
               json_path=_pg("sizes", "1000", "delivered_p99_ms")),
        Figure("1,000 escalations due → delivered, running bot, p99 (PostgreSQL)", "ms",
               json_path=_pg("sizes", "1000", "running_p99_ms")),
    ), timeout=300),
    Bench("bench_incidents.py", ("--open", "10000", "--runs", "40", "--incidents", "10000", "--ticks", "10",
                                 "--due-ticks", "1", "--briefing-runs", "2", "--only", "sqlite"), (
        Figure("/incident new → first ping, p50, 10k open (SQLite)", "ms",
               json_path=("sqlite", "first_ping", "p50_ms"), anchor="ptb_dispatch"),
        Figure("/incident new → first ping, p99, 10k open (SQLite)", "ms",
               json_path=("sqlite", "first_ping", "p99_ms"), anchor="ptb_dispatch"),
        Figure("escalation tick, 100 due, 10k open (SQLite)", "ms", json_path=("sqlite", "tick_100", "p50_ms")),
        Figure("daily briefing, 10k open incidents (SQLite)", "ms", json_path=("sqlite", "daily_briefing", "p50_ms")),
    ), timeout=180),
    Bench("bench_roundtrip.py", ("--events", "100000", "--commands", "200"), (
        Figure("command round trip, 100k events, p50 (SQLite)", "ms", json_path=("sqlite", "p50_ms"),
               anchor="ptb_dispatch"),
        Figure("command round trip, 100k events, p99 (SQLite)", "ms", json_path=("sqlite", "p99_ms"),
               anchor="ptb_dispatch"),
        Figure("command round trip, 100k events, p50 (PostgreSQL)", "ms", json_path=_pg("p50_ms"),
               anchor="ptb_dispatch"),
        Figure("command round trip, 100k events, p99 (PostgreSQL)", "ms", json_path=_pg("p99_ms"),
               anchor="ptb_dispatch"),
    ), timeout=240),
    Bench("bench_startup.py", ("--spawns", "3", "--idle", "10"), (
        Figure("cold start to ready, empty database", "s", json_path=("sqlite", "empty", "ready_s")),
        Figure("cold start to ready, 10k open incidents", "s", json_path=("sqlite", "10000", "ready_s")),
        Figure("idle RSS, empty database", "MB", json_path=("sqlite", "empty", "rss_idle_mb")),
        Figure("idle RSS, 10k open incidents", "MB", json_path=("sqlite", "10000", "rss_idle_mb")),
        Figure("idle CPU, empty database (10 s)", "% of a core", json_path=("sqlite", "empty", "idle_cpu_pct")),
        Figure("idle CPU, 10k open incidents (10 s)", "% of a core",
               json_path=("sqlite", "10000", "idle_cpu_pct")),
    ), timeout=240),
    Bench("bench_roster.py", ("--people", "100", "--runs", "20", "--gen-people", "40", "--gen-runs", "2",
                              "--only", "sqlite"), (
        Figure("/duty, p50 (SQLite)", "ms", r"/duty\S*\s+p50\s+" + NUMBER, anchor="ptb_dispatch"),
        Figure("roster draft, p50 (SQLite)", "ms", r"generate_draft.*?p50\s+" + NUMBER),
    )),
    Bench("bench_briefing.py", ("--per-day", "10", "--runs", "5"), (
        Figure("daily briefing, a year of replies (SQLite)", "ms", r"daily briefing:\s+median\s+" + NUMBER),
    )),
    Bench("bench_reply_sweep.py", ("--items", "100000", "--ticks", "10", "--due-ticks", "2"), (
        Figure("reply sweep tick, nothing due, 100k open (SQLite)", "ms",
               r"\(a\) nothing due:\s+median\s+" + NUMBER, anchor="sqlite_seek"),
        Figure("reply sweep, per reminder, 1,000 due (SQLite)", "ms", r"≈\s+" + NUMBER + " ms per reminder"),
    ), timeout=180),
    Bench("bench_outbox.py", ("--messages", "240", "--chats", "60", "--order", "interleaved",
                              "--latency", "0.02,0.1", "--timeout", "30"), (
        Figure("outbox fan-out vs 30 msg/s allowed, 20 ms", "%", json_path=("runs", "interleaved-20ms", "percent")),
        Figure("outbox fan-out vs 30 msg/s allowed, 100 ms", "%", json_path=("runs", "interleaved-100ms", "percent")),
        Figure("outbox fan-out refusals, 20 ms", "sends", json_path=("runs", "interleaved-20ms", "too_many")),
        Figure("outbox fan-out refusals, 100 ms", "sends", json_path=("runs", "interleaved-100ms", "too_many")),
    )),
    Bench("bench_telegram.py", ("--private", "120", "--groups", "2", "--group-messages", "2",
                                "--latency", "0.02,0.1", "--timeout", "40"), (
        Figure("Telegram fan-out vs the allowed rate, 20 ms", "%", json_path=("runs", "20ms", "percent")),
        Figure("Telegram fan-out vs the allowed rate, 100 ms", "%", json_path=("runs", "100ms", "percent")),
        Figure("Telegram fan-out 429 answers, 20 ms", "answers", json_path=("runs", "20ms", "too_many")),
        Figure("Telegram fan-out 429 answers, 100 ms", "answers", json_path=("runs", "100ms", "too_many")),
    )),
    Bench("bench_dingtalk.py", ("--messages", "200", "--people", "10", "--warmup", "10", "--timeout", "60",
                                "--private", "100", "--groups", "2", "--group-messages", "2",
                                "--latency", "0.02,0.1"), (
        Figure("DingTalk callback answer, p50", "ms", r"p50 " + NUMBER + " ms, p99", anchor="ptb_dispatch"),
        Figure("DingTalk fan-out vs the allowed rate, 20 ms", "%",
               json_path=("delivery", "runs", "20ms", "percent")),
        Figure("DingTalk fan-out vs the allowed rate, 100 ms", "%",
               json_path=("delivery", "runs", "100ms", "percent")),
        Figure("DingTalk fan-out QPS refusals, 20 ms", "answers",
               json_path=("delivery", "runs", "20ms", "too_many")),
        Figure("DingTalk fan-out QPS refusals, 100 ms", "answers",
               json_path=("delivery", "runs", "100ms", "too_many")),
    )),
    Bench("bench_wecom.py", ("--messages", "200", "--people", "10", "--warmup", "10", "--timeout", "60",
                             "--members", "10", "--per-member", "31", "--robot", "21", "--hold", "2",
                             "--seconds", "20", "--latency", "0.02,0.1"), (
        Figure("WeCom callback answer, p50", "ms", r"HTTP answer: p50 " + NUMBER + " ms", anchor="ptb_dispatch"),
        Figure("WeCom fan-out, first minute vs allowed, 20 ms", "%",
               json_path=("delivery", "runs", "20ms", "percent")),
        Figure("WeCom fan-out, first minute vs allowed, 100 ms", "%",
               json_path=("delivery", "runs", "100ms", "percent")),
        Figure("WeCom fan-out dropped + 45009, 20 ms", "messages",
               json_path=("delivery", "runs", "20ms", "too_many")),
        Figure("WeCom fan-out dropped + 45009, 100 ms", "messages",
               json_path=("delivery", "runs", "100ms", "too_many")),
    )),
    Bench("bench_terms.py", ("--mb", "1", "--terms", "2000", "--runs", "3"), (
        Figure("sensitive-term scan", "MB/s", r"Lexicon\.scan: best [0-9.]+ s =\s+" + NUMBER + " MB/s"),
    )),
    Bench("bench_crawl.py", ("--pages", "300",), (
        Figure("site crawl", "URLs/s", r"\(" + NUMBER + r" URLs/s\)"),
    )),
    Bench("bench_watch_idle.py", ("--sites", "50", "--window", "20"), (
        Figure("site watch CPU (50 sites, sped up)", "% of a core", r"CPU over the window: [0-9.]+ s = " + NUMBER),
    )),
    Bench("bench_web.py", ("--open", "1000", "--runs", "5"), (
        Figure("web board page, p50 (first listed)", "ms", r"    /\S*\s+p50\s+" + NUMBER, anchor="ptb_dispatch"),
    )),
    Bench("bench_workers.py", ("--workers", "1,2,4", "--messages", "1000", "--escalations", "400"), (
        Figure("outbox sending, 1 worker (PostgreSQL)", "msg/s", json_path=("1", "send_per_s")),
        Figure("outbox sending, 2 workers (PostgreSQL)", "msg/s", json_path=("2", "send_per_s")),
        Figure("outbox sending, 4 workers (PostgreSQL)", "msg/s", json_path=("4", "send_per_s")),
        Figure("escalations processed, 1 worker (PostgreSQL)", "/s", json_path=("1", "escalate_per_s")),
        Figure("escalations processed, 2 workers (PostgreSQL)", "/s", json_path=("2", "escalate_per_s")),
        Figure("escalations processed, 4 workers (PostgreSQL)", "/s", json_path=("4", "escalate_per_s")),
        Figure("leader killed → follower leads, worst of 3 (PostgreSQL)", "s", json_path=("takeover_max_s",)),
    ), timeout=240.0),
)


# ---------------------------------------------------------------- anchors

def sqlite_seek(rows: int = 100_000, runs: int = 2_000) -> float:
    """Microseconds of one 'what is due' query on a due_item-shaped table, nothing due."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "anchor.db")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE due_item (id INTEGER PRIMARY KEY, key VARCHAR(200) UNIQUE, "
                     "kind VARCHAR(60), ref VARCHAR(100), due_at DATETIME NOT NULL, status VARCHAR(10), "
                     "payload TEXT, attempts INTEGER, created_at DATETIME, processed_at DATETIME, "
                     "last_error TEXT)")
        conn.execute("CREATE INDEX ix_due_item_pending ON due_item (status, due_at)")
        conn.executemany(
            "INSERT INTO due_item (key, kind, ref, due_at, status, payload, attempts, created_at) "
            "VALUES (?, 'bench', ?, datetime('2026-11-23 01:00:00', ?), 'pending', '{}', 0, "
            "'2026-11-23 01:00:00')",
            ((f"bench:{n}", f"INC-{n % 5000}", f"+{60 + n * 300} seconds") for n in range(rows)))
        conn.commit()
        conn.execute("ANALYZE")
        query = ("SELECT id, due_at FROM due_item WHERE status = ? AND due_at <= ? "
                 "ORDER BY due_at, id LIMIT 200")
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            conn.execute(query, ("pending", "2026-11-23 01:00:00")).fetchall()
            samples.append(time.perf_counter() - began)
        conn.close()
    return statistics.median(samples) * 1e6


def ptb_dispatch(updates: int = 2_000) -> float:
    """Milliseconds for a bare python-telegram-bot Application to handle one /start."""
    # The anchor is the SDK itself, without the bot: the one place outside the adapter
    # that may import it (imported here, so that the other figures need no SDK).
    from telegram import Update  # noqa: TID251
    from telegram.ext import Application, CommandHandler, ContextTypes  # noqa: TID251
    from telegram.request import BaseRequest, RequestData  # noqa: TID251

    bot_user = {"id": 1, "is_bot": True, "first_name": "anchor", "username": "anchor_bot"}

    class InProcess(BaseRequest):
        """Answers the Bot API in process: getMe, and each sendMessage with a message."""

        @property
        def read_timeout(self) -> float | None:
            return None

        async def initialize(self) -> None:
            return None

        async def shutdown(self) -> None:
            return None

        async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                             read_timeout: Any = None, write_timeout: Any = None,
                             connect_timeout: Any = None, pool_timeout: Any = None) -> tuple[int, bytes]:
            params = request_data.parameters if request_data else {}
            if url.endswith("/getMe"):
                result: Any = bot_user
            else:
                result = {"message_id": 2, "date": 0, "text": params.get("text", ""),
                          "chat": {"id": params.get("chat_id", 1), "type": "private"}, "from": bot_user}
            return 200, json.dumps({"ok": True, "result": result}).encode()

    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("ok")

    async def run() -> list[float]:
        app = (Application.builder().token("123:ANCHOR").request(InProcess()).get_updates_request(InProcess())
               .updater(None).build())
        app.add_handler(CommandHandler("start", reply))
        await app.initialize()
        samples = []
        for n in range(updates + 100):
            update = Update.de_json({"update_id": n, "message": {
                "message_id": n, "date": 0, "text": "/start", "chat": {"id": 7, "type": "private"},
                "from": {"id": 7, "is_bot": False, "first_name": "王芳"},
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}, app.bot)
            began = time.perf_counter()
            await app.process_update(update)
            if n >= 100:   # the first hundred warm up
                samples.append(time.perf_counter() - began)
        await app.shutdown()
        return samples

    return statistics.median(asyncio.run(run())) * 1000


ANCHORS: dict[str, tuple[str, str, Callable[[], float]]] = {
    "ptb_dispatch": ("bare python-telegram-bot dispatch of one command (anchor)", "ms", ptb_dispatch),
    "sqlite_seek": ("raw sqlite3 'what is due' index seek, 100k rows (anchor)", "µs", sqlite_seek),
}


# ---------------------------------------------------------------- running and reading

def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(), "load_before": list(os.getloadavg())}


def read_figure(figure: Figure, out: str, data: dict[str, Any] | None) -> float | None:
    if figure.json_path:
        node: Any = data
        for part in figure.json_path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return float(node) * figure.scale if isinstance(node, int | float) else None
    found = re.search(figure.pattern, out)
    return float(found.group(1).replace(",", "")) * figure.scale if found else None


def settle_disk() -> None:
    """Let the disk catch up before the next benchmark: what the last one wrote is flushed
    now (``sync``; a PostgreSQL ``CHECKPOINT``), not during the next one's timings. Without
    it the round trips measured right after the escalation and incident benchmarks (which
    write and drop a few hundred MB) came out twice as slow as alone."""
    os.sync()
    url = os.environ.get("DUTYBOT_TEST_DATABASE_URL")
    if not url:
        return
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("CHECKPOINT"))
        finally:
            engine.dispose()
    except Exception as exc:   # not a superuser, say: the figures are only noisier
        print(f"   (no CHECKPOINT before the next benchmark: {type(exc).__name__})", flush=True)


def run_bench(bench: Bench, timeout: float) -> dict[str, Any]:
    began = time.perf_counter()
    env = os.environ | bench.env | {"PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.run([sys.executable, str(HERE / bench.script), *bench.args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        out, code = proc.stdout, proc.returncode
        err = proc.stderr[-2000:] if code else ""
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code, err = None, f"timed out after {timeout:.0f} s"
    data = None
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
    figures = [{"name": f.name, "unit": f.unit, "anchor": f.anchor, "value": read_figure(f, out, data)}
               for f in bench.figures]
    return {"script": bench.script, "args": list(bench.args), "exit": code, "seconds": time.perf_counter() - began,
            "figures": figures, "error": err, "json": data, "output": out[-6000:]}


def rows_of(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    anchors = results["anchors"]
    rows = [("(anchor)", a["name"], f"{a['value']:.3g}", a["unit"], "1") for a in anchors.values()]
    for bench in results["benches"]:
        name = bench["script"].removesuffix(".py")
        if bench["exit"] != 0:
            rows.append((name, f"failed ({bench['error'].splitlines()[-1] if bench['error'] else bench['exit']})",
                         "—", "", ""))
        for fig in bench["figures"]:
            value = fig["value"]
            if value is None:
                if bench["exit"] == 0 and "PostgreSQL" not in fig["name"]:
                    rows.append((name, fig["name"], "not found", fig["unit"], ""))
                continue
            ratio = ""
            anchor = anchors.get(fig["anchor"] or "")
            if anchor:
                factor = 1000 if anchor["unit"] == "µs" and fig["unit"] == "ms" else 1
                ratio = f"{value * factor / anchor['value']:,.0f}×"
            rows.append((name, fig["name"], f"{value:,.3g}" if value < 1000 else f"{value:,.0f}", fig["unit"], ratio))
    return rows


def table(rows: list[tuple[str, str, str, str, str]]) -> str:
    head = ("benchmark", "figure", "value", "unit", "× anchor")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    load = " ".join(f"{x:.2f}" for x in m["load_before"])
    after = " ".join(f"{x:.2f}" for x in m["load_after"])
    pg = "PostgreSQL figures included" if results["postgresql"] else "SQLite only (no DUTYBOT_TEST_DATABASE_URL)"
    return (f"Measured {results['finished'][:16].replace('T', ' ')} UTC by `python -m bench` in "
            f"{results['seconds'] / 60:.1f} minutes on {m['cpus']} × {m['cpu_model']}, {m['python']}; "
            f"load average {load} before, {after} after (a shared machine: compare a figure with "
            f"the anchors of the same run, not across runs); {pg}. The anchors: "
            "`ptb_dispatch` is a bare python-telegram-bot `Application` handling one command "
            "with a reply answered in process; `sqlite_seek` a raw sqlite3 'what is due' query "
            "on a `due_item`-shaped table of 100,000 rows.\n\n" + table(rows_of(results)) + "\n")


def write_markdown(text: str) -> None:
    """The table into docs/performance.md and into the README's performance section (each
    between the markers; the README is left alone when it has none)."""
    if README_MD.exists():
        readme = README_MD.read_text(encoding="utf-8")
        start, end = readme.find(BEGIN), readme.find(END)
        if 0 <= start < end:
            README_MD.write_text(readme[:start + len(BEGIN)] + "\n" + text + readme[end:], encoding="utf-8")
    if PERFORMANCE_MD.exists():
        old = PERFORMANCE_MD.read_text(encoding="utf-8")
    else:
        old = ("# Performance\n\nWhat the benchmarks in `bench/` measured, written by "
               "`python -m bench` (`bench/run_all.py`), which runs each with small sizes; run a "
               "script alone with its defaults for the full-size figures (docs/development.md, "
               f"Benchmarks).\n\n{BEGIN}\n{END}\n")
    start, end = old.find(BEGIN), old.find(END)
    if start < 0 or end < start:
        old, start, end = old.rstrip() + f"\n\n{BEGIN}\n{END}\n", -1, -1
        start, end = old.find(BEGIN), old.find(END)
    PERFORMANCE_MD.write_text(old[:start + len(BEGIN)] + "\n" + text + old[end:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated script names (bench_tick or tick)")
    parser.add_argument("--skip", action="append", default=[], help="a script name to leave out")
    parser.add_argument("--no-write", action="store_true", help="print only; write no files")
    parser.add_argument("--from-results", action="store_true",
                        help="run nothing: read bench/results.json again and rewrite the table")
    parser.add_argument("--budget", type=float, default=570,
                        help="seconds for the whole run; a script is cut short or left out when it runs out")
    args = parser.parse_args()

    if args.from_results:
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
        for bench in results["benches"]:   # the figures as the current patterns read them
            spec = next((b for b in BENCHES if b.script == bench["script"]), None)
            if spec is not None and bench["output"]:
                bench["figures"] = [{"name": f.name, "unit": f.unit, "anchor": f.anchor,
                                     "value": read_figure(f, bench["output"], bench["json"])}
                                    for f in spec.figures]
        text = markdown(results)
        print(text)
        if not args.no_write:
            RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            write_markdown(text)
        return

    def short(name: str) -> str:
        return name.removesuffix(".py").removeprefix("bench_")

    wanted = {short(n) for n in args.only.split(",")} if args.only else None
    skipped = {short(n) for n in args.skip}
    benches = [b for b in BENCHES if (wanted is None or short(b.script) in wanted)
               and short(b.script) not in skipped and (HERE / b.script).exists()]
    began = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "postgresql": bool(os.environ.get("DUTYBOT_TEST_DATABASE_URL")),
                               "anchors": {}, "benches": []}
    for key, (name, unit, measure) in ANCHORS.items():
        results["anchors"][key] = {"name": name, "unit": unit, "value": measure()}
        print(f"anchor {key}: {results['anchors'][key]['value']:.3g} {unit}", flush=True)
    for bench in benches:
        left = args.budget - (time.perf_counter() - began)
        if left < 15:
            print(f"skipping {bench.script}: the time budget is spent", flush=True)
            results["benches"].append({"script": bench.script, "args": list(bench.args), "exit": None,
                                       "seconds": 0.0, "figures": [], "error": "left out: time budget spent",
                                       "json": None, "output": ""})
            continue
        settle_disk()
        print(f"running {bench.script} {' '.join(bench.args)} ...", flush=True)
        result = run_bench(bench, min(bench.timeout, left))
        results["benches"].append(result)
        state = "ok" if result["exit"] == 0 else f"FAILED ({result['error'].splitlines()[-1] if result['error'] else result['exit']})"
        print(f"   {state} in {result['seconds']:.0f} s", flush=True)
    results["machine"]["load_after"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - began
    results["finished"] = datetime.now(UTC).isoformat()
    text = markdown(results)
    print("\n" + text)
    print(f"all benchmarks in {results['seconds'] / 60:.1f} minutes")
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        write_markdown(text)
        print(f"wrote {RESULTS.relative_to(ROOT)} and {PERFORMANCE_MD.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
