"""The bot's one small HTTP service: platform callbacks and ``/healthz``.

Platforms that call us (the Telegram webhook, WeCom and DingTalk callbacks) hand their
routes to :class:`HttpService`; it serves them with uvicorn inside the bot's event loop,
next to the scheduler and the outbox sender. It listens on 127.0.0.1:8080 by default; a
reverse proxy in front terminates TLS.

``GET /healthz`` answers 200 with a small JSON status while the database answers, and
503 when it does not, so a monitor notices a bot that runs but cannot work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

log = logging.getLogger(__name__)

# Callbacks from chat platforms are small; anything bigger is refused unread.
MAX_BODY_BYTES = 1_000_000


class HttpService:
    """Serves ``routes`` and ``/healthz`` until :meth:`stop`.

    Args:
        host: the address to listen on.
        port: the port (0: any free port; :attr:`port` tells which after start).
        routes: the platforms' routes.
        health: returns the status dict for ``/healthz``; raises when the bot cannot work.
    """

    def __init__(self, *, host: str, port: int, routes: Sequence[BaseRoute],
                 health: Callable[[], dict[str, Any]]) -> None:
        self.host, self.port = host, port
        self._health = health
        self.app = Starlette(routes=[Route("/healthz", self._healthz, methods=["GET"]), *routes])
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def _healthz(self, request: Request) -> Response:
        try:
            status = await asyncio.to_thread(self._health)
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "error", "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", **status})

    async def start(self) -> None:
        """Listen; returns once the socket accepts connections.

        Raises:
            OSError: the address is in use or not allowed.
        """
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                lifespan="off", access_log=False, server_header=False)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(), name="http-service")
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
