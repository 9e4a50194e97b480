"""Shared by the fan-out benchmarks (``bench_telegram``, ``bench_wecom``, ``bench_dingtalk``):
a simulated network latency and a platform's rate limits in front of a fake platform's
ASGI app, and the most sends in any window.

The benchmarks are run as scripts, so they import this module by its bare name.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

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
