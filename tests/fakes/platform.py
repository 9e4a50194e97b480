"""What the fake chat platforms (:mod:`tests.fakes.fake_wecom`,
:mod:`tests.fakes.fake_dingtalk`) have in common: a Starlette app to run with
:func:`tests.fakes.serve.serve_asgi` on a free loopback port, an injectable clock, a log
of every request, failure injection before any other check, ``tok-N`` access tokens with
a lifetime, sliding-window rate limits, and a bounded wait for the tests.

A platform subclasses :class:`FakePlatform`, lists its endpoints in :meth:`routes`,
answers injected failures in its own wire format in :meth:`_injected_error`, and starts
each endpoint with::

    body, injected = await self._record(request)
    if injected is not None:
        return injected
"""

from __future__ import annotations

import asyncio
import itertools
import json
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute


def system_now() -> datetime:
    """The system clock, timezone-aware (the default ``time_source``)."""
    return datetime.now(UTC)


def epoch_ms(instant: datetime) -> int:
    """``instant`` in milliseconds since the epoch."""
    return int(instant.timestamp() * 1000)


@dataclass
class Injected:
    """A failure to answer instead of processing the request, ``times`` times.

    ``status`` alone answers that HTTP status with a plain-text body; otherwise the
    platform renders it (:meth:`FakePlatform._injected_error`) from ``errcode`` (an error
    in an HTTP-200 JSON body), ``code`` (an OpenAPI error code with ``status``) and
    ``errmsg``.
    """

    times: int
    status: int | None = None
    errcode: int | None = None
    code: str | None = None
    errmsg: str | None = None


class SlidingWindow:
    """At most ``limit`` events in any ``window`` (e.g. a platform's messages a minute)."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._events: deque[datetime] = deque()

    def allows(self, now: datetime) -> bool:
        """Whether one more event at ``now`` stays within the limit."""
        while self._events and now - self._events[0] >= self.window:
            self._events.popleft()
        return len(self._events) < self.limit

    def add(self, now: datetime) -> None:
        """Count an event at ``now``."""
        self._events.append(now)


class FakePlatform(ABC):
    """The scaffolding of an in-memory chat platform.

    Args:
        time_source: the current instant (aware); defaults to the system clock.

    State (inspect in tests):
        app: the Starlette app serving :meth:`routes` (serve it with ``serve_asgi``).
        base_url: where the fake is served, for URLs it hands out (set it to the URL
            ``serve_asgi`` yields when the platform needs it).
        tokens_issued: access tokens handed out, in order.
        calls: ``{"method", "path", "params", "json", "headers", "time"}`` per HTTP
            request, in order (``json``: the decoded body, None when empty or not JSON).
    """

    def __init__(self, *, time_source: Callable[[], datetime] | None = None) -> None:
        self.time_source = time_source or system_now
        self.base_url = "http://127.0.0.1"
        self.tokens_issued: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self._tokens: dict[str, datetime] = {}      # token -> expiry instant
        self._token_ids = itertools.count(1)
        self._inject: dict[str, list[Injected]] = {}
        self.app = Starlette(routes=self.routes())

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The platform's endpoints."""

    # ------------------------------------------------------------------ test controls

    def now_ms(self) -> int:
        """The fake's current time in milliseconds."""
        return epoch_ms(self.time_source())

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float = 3.0,
                       what: str = "condition") -> None:
        """Wait (bounded) until ``predicate()`` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    def _fail_next(self, path: str, injected: Injected) -> None:
        """Queue ``injected`` for the next requests to ``path`` (the platforms' ``fail_next``)."""
        if (injected.status is None) == (injected.errcode is None):
            raise ValueError("give exactly one of status or errcode")
        self._inject.setdefault(path, []).append(injected)

    # ------------------------------------------------------------------ tokens

    def _issue_token(self, lifetime: int) -> str:
        """A new access token ``tok-N``, valid ``lifetime`` seconds from now."""
        token = f"tok-{next(self._token_ids)}"
        self._tokens[token] = self.time_source() + timedelta(seconds=lifetime)
        self.tokens_issued.append(token)
        return token

    def _token_live(self, token: str) -> bool:
        """Whether ``token`` was issued, not forgotten, and has not expired."""
        expiry = self._tokens.get(token)
        return expiry is not None and self.time_source() < expiry

    # ------------------------------------------------------------------ requests

    async def _record(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        """Log the request; its JSON object body (else ``{}``), and the injected failure
        to answer with instead, if one is due for its path."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.calls.append({"method": request.method, "path": request.url.path,
                           "params": dict(request.query_params), "json": body,
                           "headers": dict(request.headers), "time": self.time_source()})
        queue = self._inject.get(request.url.path)
        if queue:
            injected = queue[0]
            injected.times -= 1
            if injected.times <= 0:
                queue.pop(0)
            if injected.errcode is None and injected.code is None:
                assert injected.status is not None
                return {}, PlainTextResponse("injected failure", status_code=injected.status)
            return {}, self._injected_error(injected)
        return body if isinstance(body, dict) else {}, None

    @abstractmethod
    def _injected_error(self, injected: Injected) -> Response:
        """The platform's answer to an injected ``errcode`` or ``code`` failure."""
