"""DingTalk Stream mode (Stream 模式): a plain-asyncio client, written from the protocol.

No SDK: the official Python SDK's ``start()`` swallows cancellation and reconnects
forever, and its repliers block the event loop with ``requests``. This client runs as
one background task, never blocks the loop, and :meth:`StreamClient.stop` returns
promptly.

The protocol (open-dingtalk developerpedia "Stream 协议", and the official Go SDK):

1. ``POST {api_base}/v1.0/gateway/connections/open`` with ``clientId``,
   ``clientSecret``, ``subscriptions`` and ``ua`` answers ``{"endpoint", "ticket"}``
   (the caller supplies this step as ``open_connection``).
2. A WebSocket to ``{endpoint}?ticket={ticket}``; a ticket is used once.
3. Every frame is JSON ``{"specVersion", "type", "headers": {"topic", "messageId",
   "contentType", "time", …}, "data": "<JSON string>"}`` with ``type`` ``SYSTEM``,
   ``EVENT`` or ``CALLBACK``.
4. Every frame is answered (ACK) with ``{"code": 200, "headers": {"contentType":
   "application/json", "messageId": <the frame's>}, "message": "OK", "data": "<JSON
   string>"}``:

   * SYSTEM ``ping``: answered at once with the frame's own ``data``;
   * SYSTEM ``disconnect``: the gateway is about to close this connection; it is
     answered, a new connection is opened at once (new ticket), and the old one is
     closed once the callbacks still running on it have answered;
   * CALLBACK: handed to ``on_callback(topic, data)`` in its own task (pings are never
     held up by a slow handler) and answered when it returns — code 500 if it raised.
     Handler tasks run concurrently; ordering per chat is the caller's business;
   * EVENT (not subscribed by dutybot): answered ``{"status": "SUCCESS"}``.

Failures (the open call, the WebSocket, a dropped connection) are retried with
exponential backoff and jitter, from ``retry_base_seconds`` doubling to
``retry_max_seconds``; the backoff starts over once a connection was established.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote_plus

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.errors import AdapterError

log = logging.getLogger("dutybot.dingtalk.stream")

BOT_MESSAGE_TOPIC = "/v1.0/im/bot/messages/get"
TOPIC_PING = "ping"
TOPIC_DISCONNECT = "disconnect"
ACK_CONTENT_TYPE = "application/json"
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
STOP_GRACE_SECONDS = 1.0
# How long an old connection may stay open after a disconnect notice, for the acks of
# callbacks still running on it (the gateway closes it about 10 s after the notice).
RETIRE_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 1.0
OPEN_TIMEOUT_SECONDS = 10.0
MAX_FRAME_BYTES = 2 * 1024 * 1024

OpenConnection = Callable[[], Awaitable[tuple[str, str]]]
CallbackHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


def stream_uri(endpoint: str, ticket: str) -> str:
    """The WebSocket URI for ``endpoint`` and a one-time ``ticket``."""
    sep = "&" if "?" in endpoint else "?"
    return f"{endpoint}{sep}ticket={quote_plus(ticket)}"


def ack_frame(message_id: str, data: str, *, code: int = 200, message: str = "OK") -> str:
    """The JSON text answering the frame ``message_id``."""
    return json.dumps({"code": code,
                       "headers": {"contentType": ACK_CONTENT_TYPE, "messageId": message_id},
                       "message": message, "data": data}, ensure_ascii=False)


class StreamClient:
    """One Stream connection at a time, kept up until :meth:`stop`.

    Args:
        open_connection: registers a connection; returns ``(endpoint, ticket)``. It
            raises :class:`AdapterError` on failure (``retryable=False``: the
            credentials are refused).
        on_callback: called with the topic and the decoded ``data`` of each CALLBACK
            frame; the frame is answered when it returns.
        retry_base_seconds: the first wait after a failure (doubling to
            ``retry_max_seconds``).
        retry_max_seconds: the longest wait between attempts.
        stop_grace_seconds: how long :meth:`stop` lets running callbacks finish (and
            answer) before cancelling them.
        rng: jitter source.

    Attributes:
        connections: WebSocket connections established so far.
    """

    def __init__(self, *, open_connection: OpenConnection, on_callback: CallbackHandler,
                 retry_base_seconds: float = RETRY_BASE_SECONDS,
                 retry_max_seconds: float = RETRY_MAX_SECONDS,
                 stop_grace_seconds: float = STOP_GRACE_SECONDS,
                 rng: random.Random | None = None) -> None:
        self._open = open_connection
        self._on_callback = on_callback
        self.retry_base = retry_base_seconds
        self.retry_max = max(retry_max_seconds, retry_base_seconds)
        self.stop_grace = stop_grace_seconds
        self._rng = rng or random.Random()
        self.connections = 0
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the receive task is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Register the first connection and start receiving in the background.

        Raises:
            AdapterError: the gateway refused the credentials (``retryable=False``);
                a network failure is only logged and retried in the background.
        """
        if self.running:
            return
        self._stopping = False
        first: tuple[str, str] | None = None
        try:
            first = await self._open()
        except AdapterError as exc:
            if not exc.retryable:
                raise
            log.warning("DingTalk Stream gateway not reachable yet (%s); retrying in the "
                        "background", exc.message)
        self._task = asyncio.create_task(self._run(first), name="dingtalk-stream")

    async def stop(self) -> None:
        """Stop receiving: running callbacks get ``stop_grace_seconds`` to finish and
        answer, the rest is cancelled, the connection closed. Returns promptly."""
        self._stopping = True
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=self.stop_grace)
        tasks = [*self._handlers, *self._retiring]
        if self._task is not None:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._handlers.clear()
        self._retiring.clear()

    # ------------------------------------------------------------ connection loop

    async def _run(self, pending: tuple[str, str] | None) -> None:
        delay = self.retry_base
        while True:
            connected_before = self.connections
            try:
                if pending is None:
                    pending = await self._open()
                endpoint, ticket = pending
                pending = None
                notice = await self._session(stream_uri(endpoint, ticket))
                delay = self.retry_base
                if notice:
                    log.info("DingTalk Stream gateway asked to reconnect; opening a new "
                             "connection")
                    continue
                log.info("DingTalk Stream connection closed by the gateway; reconnecting")
                wait = self.retry_base
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pending = None
                if self.connections > connected_before:
                    delay = self.retry_base  # it worked for a while: start over
                wait = delay
                delay = min(delay * 2, self.retry_max)
                level = logging.ERROR if (isinstance(exc, AdapterError)
                                          and not exc.retryable) else logging.WARNING
                log.log(level, "DingTalk Stream connection failed (%s); retrying in %.1fs",
                        _describe(exc), wait)
            await asyncio.sleep(wait * self._rng.uniform(0.5, 1.0))

    async def _session(self, uri: str) -> bool:
        """One connection, until it closes; True when the gateway sent ``disconnect``."""
        ws = await connect(uri, open_timeout=OPEN_TIMEOUT_SECONDS,
                           close_timeout=CLOSE_TIMEOUT_SECONDS, max_size=MAX_FRAME_BYTES,
                           user_agent_header="dutybot")
        self.connections += 1
        log.info("DingTalk Stream connected (connection %d)", self.connections)
        running: set[asyncio.Task[None]] = set()
        retire = False
        try:
            async for raw in ws:
                if await self._on_frame(ws, raw, running):
                    retire = True
                    return True
            return False
        finally:
            if retire and running:
                task = asyncio.create_task(self._retire(ws, running),
                                           name="dingtalk-stream-retire")
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            else:
                await ws.close()

    async def _retire(self, ws: ClientConnection, running: set[asyncio.Task[None]]) -> None:
        """Keep a connection the gateway is leaving open until its callbacks answered."""
        try:
            await asyncio.wait(set(running), timeout=RETIRE_SECONDS)
        finally:
            await ws.close()

    # ------------------------------------------------------------ frames

    async def _on_frame(self, ws: ClientConnection, raw: str | bytes,
                        running: set[asyncio.Task[None]]) -> bool:
        """Answer or dispatch one frame; True for a ``disconnect`` notice."""
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("DingTalk Stream: ignoring a frame that is not JSON")
            return False
        if not isinstance(frame, dict):
            log.warning("DingTalk Stream: ignoring a frame that is not a JSON object")
            return False
        headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
        kind = frame.get("type")
        topic = str(headers.get("topic", ""))
        message_id = str(headers.get("messageId", ""))
        data = frame.get("data") if isinstance(frame.get("data"), str) else ""
        if kind == "SYSTEM":
            await self._send(ws, ack_frame(message_id, data))
            if topic == TOPIC_DISCONNECT:
                return True
            if topic != TOPIC_PING:
                log.info("DingTalk Stream: unknown system topic %r answered", topic)
            return False
        if kind == "CALLBACK":
            if self._stopping:
                return False  # not answered: the gateway delivers it to the next connection
            task = asyncio.create_task(self._callback(ws, message_id, topic, data),
                                       name="dingtalk-stream-callback")
            for group in (self._handlers, running):
                group.add(task)
                task.add_done_callback(group.discard)
            return False
        if kind == "EVENT":
            await self._send(ws, ack_frame(message_id, json.dumps(
                {"status": "SUCCESS", "message": "success"})))
            return False
        log.warning("DingTalk Stream: unknown frame type %r answered", kind)
        await self._send(ws, ack_frame(message_id, "{}"))
        return False

    async def _callback(self, ws: ClientConnection, message_id: str, topic: str,
                        data: str) -> None:
        code, message = 200, "OK"
        try:
            decoded = json.loads(data) if data else {}
            if not isinstance(decoded, dict):
                raise ValueError("callback data is not a JSON object")
            await self._on_callback(topic, decoded)
        except asyncio.CancelledError:
            raise  # not answered: the gateway delivers it again
        except Exception:
            log.exception("DingTalk Stream callback %s (%s) failed", message_id, topic)
            code, message = 500, "handler failed"
        await self._send(ws, ack_frame(message_id, "{}", code=code, message=message))

    async def _send(self, ws: ClientConnection, text: str) -> None:
        try:
            await ws.send(text)
        except ConnectionClosed:
            log.info("DingTalk Stream: connection closed before an answer could be sent")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AdapterError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"[:300]

