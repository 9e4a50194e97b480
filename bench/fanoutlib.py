"""Shared by the fan-out benchmarks (``bench_telegram``, ``bench_wecom``, ``bench_dingtalk``,
``bench_outbox``): a fake platform served in a process of its own and its ``GET /stats``; a
simulated network latency and a platform's rate limits in front of a fake platform's ASGI
app; a migrated SQLite file; the real outbox sender run until the sends have arrived; the
share of the allowed rate a run achieved; and the most sends in any window.

The benchmarks are run as scripts, so they import this module by its bare name.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from benchlib import free_port, wait_until_up
from sqlalchemy.engine import Engine

from bot.adapters.base import Adapter
from bot.config import OutboxSettings
from bot.outbox import OutboxSender
from core.clock import SystemClock
from core.db import make_engine, upgrade
from core.messages import Inbound

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Limit:
    """At most ``count`` accepted calls in any ``seconds`` per key (``key`` of the JSON
    body; None: the call does not count)."""

    count: int
    seconds: float
    key: Callable[[dict[str, Any]], str | None]


class PlatformGate:
    """Wraps a fake platform's app: every request (but ``/stats``) waits ``latency``
    first, then a POST to one of ``paths`` is refused with ``refusal`` (a JSON body and
    status) when a :class:`Limit` would be exceeded, measured when the wait is over — as
    the platform counts it after the request has travelled.

    ``accepted``: monotonic times of the calls let through; ``refused``: how many were not.
    """

    def __init__(self, app: App, *, latency: float, paths: Sequence[str] = (),
                 limits: Sequence[Limit] = (), refusal: tuple[int, dict[str, Any]] = (429, {})) -> None:
        self.app, self.latency, self.paths, self.limits = app, latency, set(paths), limits
        self.refusal = refusal
        self.accepted: list[float] = []
        self.refused = 0
        self._logs: dict[tuple[int, str], deque[float]] = defaultdict(deque)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/stats":
            await self.app(scope, receive, send)
            return
        if self.latency:
            await asyncio.sleep(self.latency)
        if scope["path"] not in self.paths or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {}
        now = time.monotonic()
        logs = []
        for index, limit in enumerate(self.limits):
            key = limit.key(data) if isinstance(data, dict) else None
            if key is None:
                continue
            log = self._logs[(index, key)]
            while log and log[0] + limit.seconds <= now:
                log.popleft()
            if len(log) >= limit.count:
                self.refused += 1
                status, answer = self.refusal
                await _respond(send, status, answer)
                return
            logs.append(log)
        for log in logs:
            log.append(now)
        self.accepted.append(now)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _respond(send: Send, status: int, answer: dict[str, Any]) -> None:
    payload = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def most_in_window(times: Sequence[float], span: float) -> int:
    """The most of ``times`` inside any half-open interval ``[t, t + span)``."""
    ordered, best, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] + span <= at:
            first += 1
        best = max(best, last - first + 1)
    return best


def latencies(text: str) -> list[float]:
    """``"0.02,0.1"`` → ``[0.02, 0.1]``."""
    return [float(part) for part in text.split(",") if part.strip()]


def run_key(latency: float) -> str:
    """The key of one latency's run in a ``BENCH_JSON`` object: ``"20ms"``."""
    return f"{latency * 1000:.0f}ms"


def latency_runs(text: str) -> list[tuple[str, float]]:
    """The runs ``--latency`` asks for, each as its :func:`run_key` and its seconds:
    ``"0.02,0.1"`` → ``[("20ms", 0.02), ("100ms", 0.1)]``."""
    return [(run_key(latency), latency) for latency in latencies(text)]


def add_latency_option(parser: Any, run: str = "run") -> None:
    """``--latency`` on ``parser`` (an ``argparse`` parser or argument group): seconds per
    request, comma-separated (default 20 ms and 100 ms), one ``run`` each; read it with
    :func:`latency_runs`."""
    parser.add_argument("--latency", default="0.02,0.1",
                        help=f"seconds per request, comma-separated: one {run} each")


def run_label(latency: float, load: float, what: str = "", extra: str = "") -> str:
    """How the first printed line of a run begins: ``[delivery, latency 20 ms, load 0.52]``
    (``what``, when given, first; ``extra`` right after the latency)."""
    first = f"{what}, " if what else ""
    return f"[{first}latency {latency * 1000:.0f} ms{extra}, load {load:.2f}]"


# --------------------------------------------------------------------------- the fake's process


class FakeServer:
    """A fake platform running in its own process (see :func:`serve_fake`): its base
    ``url``, and its ``GET /stats`` through one client kept open for the whole run (a new
    client each time builds an SSL context, tens of milliseconds that would stall the
    sender's event loop)."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url, self._client = url, client

    async def stats(self) -> dict[str, Any]:
        """The fake's answer to ``GET /stats``."""
        return (await self._client.get(f"{self.url}/stats")).json()  # type: ignore[no-any-return]

    def seen(self, total: int, key: str = "at") -> Callable[[], Awaitable[bool]]:
        """A ``done`` for :func:`run_sender`: the fake's ``stats[key]`` lists ``total``
        sends or more."""

        async def done() -> bool:
            return len((await self.stats())[key]) >= total

        return done


@asynccontextmanager
async def serve_fake(target: Callable[..., None], *args: Any,
                     ready_path: str = "/stats") -> AsyncIterator[FakeServer]:
    """Run ``target(port, *args)``, a module-level function that serves a fake platform on
    127.0.0.1:``port``, in a spawned process of its own (as the real platform is remote:
    its timing is not distorted by the bot's event loop); yield it once something answers
    at ``ready_path``, and stop the process afterwards."""
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=target, args=(port, *args),
                                                          daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_up(f"{url}{ready_path}")
        async with httpx.AsyncClient() as client:
            yield FakeServer(url, client)
    finally:
        server.terminate()
        server.join()


# --------------------------------------------------------------------------- the bot's side


def sqlite_engine(directory: str | Path, name: str = "bench.db") -> Engine:
    """An engine on a fresh SQLite file ``name`` in ``directory``, migrated to the head."""
    engine = make_engine(f"sqlite:///{Path(directory) / name}")
    upgrade(engine)
    return engine


async def ignore_inbound(inbound: Inbound) -> None:
    """The inbound handler of an adapter that only sends: what comes in is dropped."""
    return None


async def run_sender(engine: Engine, adapter: Adapter, settings: OutboxSettings,
                     done: Callable[[], Awaitable[bool]], *, timeout: float,
                     interval: float = 0.25,
                     clock: Callable[[], float] = time.monotonic) -> tuple[float, float]:
    """Run the real :class:`~bot.outbox.OutboxSender` (with the real clock) over ``engine``
    and ``adapter`` until ``await done()`` is true, asked every ``interval`` seconds, or
    ``timeout`` seconds have passed; then stop it and wait for it to finish.

    Returns when it started and how long it ran before it was told to stop, both by
    ``clock`` (monotonic seconds unless told otherwise)."""
    sender = OutboxSender(engine=engine, adapter=adapter, clock=SystemClock(), settings=settings)
    stop = asyncio.Event()
    started = clock()
    task = asyncio.create_task(sender.run(stop))
    try:
        while clock() - started < timeout:
            if await done():
                break
            await asyncio.sleep(interval)
    finally:
        ran = clock() - started
        stop.set()
        sender.wake()
        await task
    return started, ran


# --------------------------------------------------------------------------- the figures


@dataclass(frozen=True)
class RateShare:
    """How close a run's sends came to ``allowed`` in any second. Under a strict sliding
    window the n-th send (from 0) can go at the earliest floor(n / allowed) s after the
    first, so the shortest possible time from the first to the last of ``messages`` sends
    is ``shortest`` = floor((messages - 1) / allowed) s; ``share`` is that over the
    measured ``span`` (NaN for fewer than two sends)."""

    messages: int
    span: float
    shortest: int
    share: float
    allowed: int

    @property
    def rate(self) -> float:
        """The achieved rate: the allowed one times the share."""
        return self.allowed * self.share

    def describe(self, unit: str) -> str:
        """``first to last 4.10 s, shortest possible 4 s: 97.6% of the allowed rate (29.27 of
        30 msg/s)`` (``unit``: ``msg/s``)."""
        return (f"first to last {self.span:.2f} s, shortest possible {self.shortest} s: "
                f"{100 * self.share:.1f}% of the allowed rate ({self.rate:.2f} of "
                f"{self.allowed} {unit})")

    def figures(self, *, latency: float, load: float, too_many: int, queued: int | None = None,
                **extra: Any) -> dict[str, Any]:
        """A run's entry in the ``BENCH_JSON`` line: ``messages``, ``queued`` (when given),
        ``seconds``, ``shortest_seconds``, ``rate``, ``allowed_rate``, ``percent``, any
        ``extra``, ``too_many``, ``latency_ms`` and ``load``."""
        figures: dict[str, Any] = {"messages": self.messages}
        if queued is not None:
            figures["queued"] = queued
        return figures | {
            "seconds": round(self.span, 3), "shortest_seconds": self.shortest,
            "rate": round(self.rate, 2), "allowed_rate": self.allowed,
            "percent": round(100 * self.share, 1), **extra, "too_many": too_many,
            "latency_ms": round(latency * 1000), "load": round(load, 2)}


def rate_share(times: Sequence[float], allowed: int) -> RateShare:
    """The :class:`RateShare` of sends at ``times`` (seconds) against ``allowed`` a second."""
    done = sorted(times)
    span = done[-1] - done[0] if len(done) > 1 else math.nan
    shortest = (len(done) - 1) // allowed
    return RateShare(len(done), span, shortest, shortest / span if span else math.nan, allowed)
