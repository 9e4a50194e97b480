"""The bot's one small HTTP service: platform callbacks, health and metrics.

``dutybot run`` always serves it (unless ``[http] enabled = false`` and the platform needs
no callback), with uvicorn inside the bot's event loop, next to the scheduler and the
outbox sender. It listens on 127.0.0.1:8080 by default; a reverse proxy in front
terminates TLS. Platforms that call us (the Telegram webhook, WeCom and DingTalk
callbacks) add their routes.

* ``GET /healthz`` — liveness: 200 with a small JSON status whenever the process answers.
* ``GET /readyz`` — readiness: 200 when every check passes, 503 naming the failing ones
  (``{"status": "fail", "failing": ["database"], "checks": {…}}``); see
  :meth:`bot.app.App.readiness`.
* ``GET /metrics`` — the Prometheus text format (:mod:`bot.metrics`).

Every request runs with a request id (the caller's ``X-Request-ID`` when it is a short
token, else a new one), carried into each log line written while it is handled
(:mod:`bot.logs`) and sent back in the ``X-Request-ID`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import logs

log = logging.getLogger(__name__)

# Callbacks from chat platforms are small; anything bigger is refused unread.
MAX_BODY_BYTES = 1_000_000


#: The classic Prometheus text format, which every Prometheus version reads (what
#: :func:`prometheus_client.generate_latest` writes).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: A caller's request id is kept when it looks like one (else a new one is made).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Readiness: (all checks passed, the JSON body). Runs in a worker thread.
Readiness = Callable[[], tuple[bool, dict[str, Any]]]


class HttpService:
    """Serves ``routes``, ``/healthz``, ``/readyz`` and ``/metrics`` until :meth:`stop`.

    Args:
        host: the address to listen on.
        port: the port (0: any free port; :attr:`port` tells which after start).
        routes: the platforms' routes.
        health: the status dict for ``/healthz`` (no I/O: it answers while the process does).
        ready: the readiness checks for ``/readyz`` (None: ``/readyz`` is ``/healthz``).
        metrics: the Prometheus exposition for ``/metrics`` (None: no such route).
    """

    def __init__(self, *, host: str, port: int, routes: Sequence[BaseRoute],
                 health: Callable[[], dict[str, Any]], ready: Readiness | None = None,
                 metrics: Callable[[], bytes] | None = None) -> None:
        self.host, self.port = host, port
        self._health, self._ready, self._metrics = health, ready, metrics
        own = [Route("/healthz", self._healthz, methods=["GET"]),
               Route("/readyz", self._readyz, methods=["GET"])]
        if metrics is not None:
            own.append(Route("/metrics", self._metrics_route, methods=["GET"]))
        self.app = _RequestIds(Starlette(routes=[*own, *routes]))
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", **self._health()})

    async def _readyz(self, request: Request) -> Response:
        if self._ready is None:
            return await self._healthz(request)
        try:
            ok, body = await asyncio.to_thread(self._ready)
        except Exception as exc:   # the checks catch their own failures; this is a bug
            log.exception("readiness check failed")
            return JSONResponse({"status": "fail", "failing": ["readiness"],
                                 "error": type(exc).__name__}, status_code=503)
        if not ok:
            log.warning("not ready: %s", ", ".join(body.get("failing", [])))
        return JSONResponse(body, status_code=200 if ok else 503)

    async def _metrics_route(self, request: Request) -> Response:
        assert self._metrics is not None
        payload = await asyncio.to_thread(self._metrics)
        return Response(payload, headers={"content-type": METRICS_CONTENT_TYPE})

    async def start(self) -> None:
        """Listen; returns once the socket accepts connections.

        Raises:
            OSError: the address is in use or not allowed.
        """
        # log_config=None: uvicorn's lines go through the process's handlers (text or JSON,
        # redacted: bot.logs) instead of handlers of its own.
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                log_config=None, lifespan="off", access_log=False,
                                server_header=False)
        # Bound here, so that an address in use is an OSError of ours (uvicorn would exit).
        sock = _listening_socket(self.host, self.port)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-service")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the startup error (e.g. port in use)
                raise OSError(f"HTTP service on {self.host}:{self.port} stopped during start")
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("HTTP service listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Finish the requests in flight and close the socket."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout=10)
        self._server = self._task = None


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (the first address ``host`` resolves to).

    Raises:
        OSError: the address is in use, not allowed or unknown.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _RequestIds:
    """ASGI middleware: each HTTP request gets a request id for its log lines and answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        with logs.request_id(request_id):
            await self.app(scope, receive, send_with_id)


async def read_body(request: Request) -> bytes | None:
    """The request body, or None when it is larger than :data:`MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return body


def retry_after_of(response: httpx.Response) -> float | None:
    """A platform's ``Retry-After`` header in seconds (None when absent or not a number)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
