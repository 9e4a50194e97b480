"""A fake DingTalk (钉钉) for tests: OpenAPI, Stream gateway and webhooks in one Starlette
app, to run with ``serve_asgi`` (set :attr:`FakeDingTalk.base_url` to the served URL).

It implements what :mod:`bot.adapters.dingtalk` and :mod:`bot.adapters.dingtalk.api`
use, with DingTalk's behaviour where it matters to us:

* ``POST /v1.0/oauth2/accessToken`` checks ``appKey``/``appSecret`` and issues ``tok-1``,
  ``tok-2``, … valid ``expire_in`` seconds; an expired or unknown token is answered
  HTTP 401 ``InvalidAuthentication`` by the robot APIs;
* ``POST /v1.0/gateway/connections/open`` checks ``clientId``/``clientSecret``, records
  the request (:attr:`opens`) and hands out ``ticket-1``, ``ticket-2``, … for the
  WebSocket at ``/gateway`` (a ticket works once);
* the gateway pushes frames on request (:meth:`push_callback`, :meth:`push_system`) and
  records every answer (:attr:`acks`); :meth:`wait_ack` waits for one;
* ``POST /v1.0/robot/oToMessages/batchSend`` and ``/v1.0/robot/groupMessages/send``
  check the token, ``robotCode``, ``msgKey`` and the ``msgParam`` fields each template
  needs; users in :attr:`invalid_users` come back in ``invalidStaffIdList``, users in
  :attr:`flow_controlled` in ``flowControlledStaffIdList``; groups in
  :attr:`groups_without_robot` are refused (HTTP 400 ``invalidParameter.openConversationId``);
* session webhooks (``/robot/sendBySession?session=…``) made by :meth:`bot_message`, valid
  ``session_ttl`` seconds (expired: errcode 300001 ``session expired``);
* the custom robot (``/robot/send?access_token=…&timestamp=…&sign=…``) checks the token
  (300001), the 加签 signature and that the timestamp is within an hour (310000), and
  allows 20 messages a minute (then errcode 130101);
* ``POST /v1.0/robot/messageFiles/download`` turns a ``downloadCode`` made by
  :meth:`FakeDingTalk.add_file` into a signed link on this server (``/files/N?…&Signature=…``,
  valid ``link_ttl`` seconds, then 403 as OSS answers); an unknown code is HTTP 400
  ``invalidParameter.downloadCode``. The link serves the bytes with their
  ``Content-Type`` (in chunks without ``Content-Length`` when added with ``chunked=True``).

``fail_next(path, status=..., code=..., errcode=...)`` injects failures before any other
check. Time comes from ``time_source`` (pass ``clock.now``), so no test sleeps for time.
The request log, failure injection, tokens and rate window are :mod:`tests.fakes.platform`'s.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.adapters.dingtalk.sign import compute_sign
from tests.fakes.platform import FakePlatform, Injected, SlidingWindow, epoch_ms

ROBOT_PER_MINUTE = 20
BOT_TOPIC = "/v1.0/im/bot/messages/get"
ERR_TOO_FAST = 130101
ERR_TOKEN = 300001
ERR_SECURITY = 310000

_ACTION_KEYS = {"sampleActionCard2": 2, "sampleActionCard3": 3, "sampleActionCard4": 4,
                "sampleActionCard5": 5}


@dataclass(frozen=True)
class FakeFile:
    """A picture or file the robot received, as ``messageFiles/download`` serves it."""

    data: bytes
    content_type: str
    chunked: bool = False


@dataclass
class GatewayConnection:
    """One WebSocket client of the fake gateway."""

    ticket: str
    ws: WebSocket
    closed: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)


class FakeDingTalk(FakePlatform):
    """In-memory DingTalk.

    Args:
        client_id: the app's Client ID (also the default robot code).
        client_secret: the app's Client Secret.
        robot_code: the robot code the message APIs accept.
        robot_token: the custom robot's ``access_token``.
        robot_secret: the custom robot's 加签 secret (None: unsigned robot).
        expire_in: lifetime of issued access tokens, in seconds.
        session_ttl: lifetime of session webhooks, in seconds.
        time_source: the current instant (aware); defaults to the system clock.

    State (inspect in tests):
        tokens_issued: access tokens handed out, in order.
        opens: bodies of ``connections/open`` requests, in order (refused ones too).
        connections: gateway WebSocket clients, in connection order.
        acks: every frame a client sent to the gateway (the answers), in order.
        oto_sent: ``{"user", "msgKey", "msgParam" (decoded), "robotCode", "token", "time"}``
            per person reached through batchSend.
        group_sent: ``{"conversation", "msgKey", "msgParam", "robotCode", "token", "time"}``.
        session_sent: ``{"chat", "msgtype", "body", "time"}`` per session-webhook message
            (``chat``: the staff id of a private chat, the conversation id of a group).
        robot_sent: ``{"msgtype", "body", "timestamp", "time"}`` per custom-robot message.
        files: download code → :class:`FakeFile` (see :meth:`add_file`).
        calls: ``{"method", "path", "params", "json", "headers", "time"}`` per request.
    """

    def __init__(self, *, client_id: str = "dingclient001", client_secret: str = "app-secret",
                 robot_code: str | None = None, robot_token: str = "robot-token",
                 robot_secret: str | None = "SECrobot-secret", expire_in: int = 7200,
                 session_ttl: int = 90 * 60,
                 time_source: Callable[[], datetime] | None = None) -> None:
        super().__init__(time_source=time_source)
        self.client_id = client_id
        self.client_secret = client_secret
        self.robot_code = robot_code or client_id
        self.robot_token = robot_token
        self.robot_secret = robot_secret
        self.expire_in = expire_in
        self.session_ttl = session_ttl
        self.invalid_users: set[str] = set()
        self.flow_controlled: set[str] = set()
        self.groups_without_robot: set[str] = set()
        self.opens: list[dict[str, Any]] = []
        self.connections: list[GatewayConnection] = []
        self.acks: list[dict[str, Any]] = []
        self.oto_sent: list[dict[str, Any]] = []
        self.group_sent: list[dict[str, Any]] = []
        self.session_sent: list[dict[str, Any]] = []
        self.robot_sent: list[dict[str, Any]] = []
        self._tickets: set[str] = set()
        self._sessions: dict[str, tuple[str, int]] = {}  # session -> (chat, expiry ms)
        self._robot_limit = SlidingWindow(ROBOT_PER_MINUTE, timedelta(minutes=1))
        self._ticket_ids = itertools.count(1)
        self._frame_ids = itertools.count(1)
        self._msg_ids = itertools.count(1)
        self._session_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self.files: dict[str, FakeFile] = {}
        self.link_ttl = 3600
        self._links: dict[str, tuple[str, str, int]] = {}  # link id -> (code, signature, expiry ms)
        self._file_ids = itertools.count(1)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1.0/oauth2/accessToken", self._access_token, methods=["POST"]),
            Route("/v1.0/gateway/connections/open", self._open, methods=["POST"]),
            WebSocketRoute("/gateway", self._gateway),
            Route("/v1.0/robot/oToMessages/batchSend", self._batch_send, methods=["POST"]),
            Route("/v1.0/robot/groupMessages/send", self._group_send, methods=["POST"]),
            Route("/robot/sendBySession", self._session_send, methods=["POST"]),
            Route("/robot/send", self._robot_send, methods=["POST"]),
            Route("/v1.0/robot/messageFiles/download", self._file_download, methods=["POST"]),
            Route("/files/{link}", self._file_get, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ test controls

    def fail_next(self, path: str, *, status: int | None = None, code: str | None = None,
                  errcode: int | None = None, times: int = 1, message: str | None = None) -> None:
        """Answer the next ``times`` requests to ``path`` with HTTP ``status`` (and an
        OpenAPI error ``code`` and ``message``) or, for webhooks, HTTP 200 with ``errcode``."""
        self._fail_next(path, Injected(times, status=status, errcode=errcode, code=code,
                                       errmsg=message))

    def add_file(self, data: bytes, *, content_type: str = "image/png",
                 chunked: bool = False) -> str:
        """Store a received picture or file; its ``downloadCode``."""
        code = f"dlc-{next(self._file_ids)}"
        self.files[code] = FakeFile(data, content_type, chunked)
        return code

    def file_calls(self) -> list[dict[str, Any]]:
        """The ``messageFiles/download`` requests and link fetches, in order."""
        return [c for c in self.calls if c["path"] == "/v1.0/robot/messageFiles/download"
                or c["path"].startswith("/files/")]

    def forget_tokens(self) -> None:
        """Every access token issued so far stops working (401 from now on)."""
        self._tokens.clear()

    def callback_headers(self, *, timestamp_ms: int | None = None,
                         secret: str | None = None) -> dict[str, str]:
        """The ``timestamp`` and ``sign`` headers DingTalk sends with an HTTP callback."""
        ts = str(self.now_ms() if timestamp_ms is None else timestamp_ms)
        return {"timestamp": ts, "sign": compute_sign(secret or self.client_secret, ts),
                "content-type": "application/json"}

    def bot_message(self, text: str, *, staff_id: str = "staff001", nick: str = "王芳",
                    group: str | None = None, msg_id: str | None = None,
                    msgtype: str = "text",
                    content: dict[str, Any] | None = None) -> dict[str, Any]:
        """A bot-message callback body, as DingTalk sends it, with a fresh session webhook.

        Args:
            text: ``text.content`` (in a group DingTalk leaves a space where the @ was).
            staff_id: the sender's staff id.
            nick: the sender's display name.
            group: a conversation id for a group message; None for a private chat.
            msg_id: the message id (default: a new one).
            msgtype: the message type.
            content: the ``content`` of a ``picture``, ``file`` or ``richText`` message.
        """
        session = f"s{next(self._session_ids)}"
        expires = self.now_ms() + self.session_ttl * 1000
        self._sessions[session] = (group or staff_id, expires)
        now = self.now_ms()
        data: dict[str, Any] = {
            "conversationId": group or f"cidPrivate-{staff_id}",
            "conversationType": "2" if group else "1",
            "chatbotCorpId": "ding-corp", "chatbotUserId": "$:LWCP_v1:$robot",
            "msgId": msg_id or f"msg{next(self._msg_ids):05d}",
            "senderNick": nick, "isAdmin": False, "senderStaffId": staff_id,
            "senderId": f"$:LWCP_v1:${staff_id}", "senderCorpId": "ding-corp",
            "sessionWebhookExpiredTime": expires, "createAt": now,
            "conversationTitle": "值班群" if group else "", "isInAtList": True,
            "sessionWebhook": f"{self.base_url}/robot/sendBySession?session={session}",
            "robotCode": self.robot_code, "msgtype": msgtype,
        }
        if msgtype == "text":
            data["text"] = {"content": text}
        if content is not None:
            data["content"] = content
        return data

    # ------------------------------------------------------------------ gateway controls

    @property
    def live_connections(self) -> list[GatewayConnection]:
        """Gateway clients still connected."""
        return [c for c in self.connections if not c.closed]

    async def wait_connections(self, count: int, *, timeout: float = 3.0) -> GatewayConnection:
        """Wait until ``count`` clients have connected; the newest one."""
        await self.wait_for(lambda: len(self.connections) >= count, timeout=timeout,
                            what=f"{count} gateway connection(s)")
        return self.connections[count - 1]

    async def push(self, frame: dict[str, Any],
                   connection: GatewayConnection | None = None) -> None:
        """Send a raw frame to ``connection`` (default: the newest live one)."""
        target = connection or (self.live_connections or [None])[-1]
        if target is None:
            raise AssertionError("no gateway client is connected")
        await target.ws.send_text(json.dumps(frame, ensure_ascii=False))

    async def push_callback(self, data: dict[str, Any], *, topic: str = BOT_TOPIC,
                            connection: GatewayConnection | None = None) -> str:
        """Push a CALLBACK frame carrying ``data``; its ``messageId``."""
        message_id = f"frame-{next(self._frame_ids)}"
        await self.push({"specVersion": "1.0", "type": "CALLBACK",
                         "headers": {"topic": topic, "messageId": message_id,
                                     "contentType": "application/json",
                                     "time": str(self.now_ms()), "appId": "app-1"},
                         "data": json.dumps(data, ensure_ascii=False)}, connection)
        return message_id

    async def push_system(self, topic: str, data: str = "",
                          connection: GatewayConnection | None = None) -> str:
        """Push a SYSTEM frame (``ping``, ``disconnect``); its ``messageId``."""
        message_id = f"frame-{next(self._frame_ids)}"
        await self.push({"specVersion": "1.0", "type": "SYSTEM",
                         "headers": {"topic": topic, "messageId": message_id,
                                     "contentType": "application/json",
                                     "time": str(self.now_ms())},
                         "data": data}, connection)
        return message_id

    def ack_for(self, message_id: str) -> list[dict[str, Any]]:
        """The answers received for ``message_id``."""
        return [a for a in self.acks
                if isinstance(a.get("headers"), dict) and a["headers"].get("messageId") == message_id]

    async def wait_ack(self, message_id: str, *, timeout: float = 3.0) -> dict[str, Any]:
        """Wait for the answer to ``message_id``; that answer."""
        await self.wait_for(lambda: bool(self.ack_for(message_id)), timeout=timeout,
                            what=f"the answer to {message_id}")
        return self.ack_for(message_id)[0]

    async def drop(self, connection: GatewayConnection | None = None) -> None:
        """Close a client's connection abruptly, as a network failure would."""
        target = connection or (self.live_connections or [None])[-1]
        if target is not None:
            await target.ws.close(code=1011)

    # ------------------------------------------------------------------ helpers

    def _injected_error(self, injected: Injected) -> Response:
        if injected.errcode is not None:
            return JSONResponse({"errcode": injected.errcode, "errmsg": "injected"})
        assert injected.status is not None
        return JSONResponse({"code": injected.code, "message": injected.errmsg or "injected",
                             "requestid": "req-1"}, status_code=injected.status)

    @staticmethod
    def _error(status: int, code: str, message: str = "") -> JSONResponse:
        return JSONResponse({"code": code, "message": message or code, "requestid": "req-1"},
                            status_code=status)

    def _token_error(self, request: Request) -> tuple[str, Response | None]:
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        if not self._token_live(token):
            return token, self._error(401, "InvalidAuthentication", "不合法的access_token")
        return token, None

    @staticmethod
    def _param_error(msg_key: Any, raw: Any) -> tuple[dict[str, Any], str | None]:
        try:
            param = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            param = None
        if not isinstance(param, dict):
            return {}, "msgParam is not a JSON object string"
        needed: list[str]
        if msg_key == "sampleText":
            needed = ["content"]
        elif msg_key == "sampleMarkdown":
            needed = ["title", "text"]
        elif msg_key == "sampleActionCard":
            needed = ["title", "text", "singleTitle", "singleURL"]
        elif msg_key in _ACTION_KEYS:
            needed = ["title", "text"]
            for i in range(1, _ACTION_KEYS[msg_key] + 1):
                needed += [f"actionTitle{i}", f"actionURL{i}"]
        else:
            return param, f"unknown msgKey {msg_key!r}"
        missing = [k for k in needed if not isinstance(param.get(k), str) or not param[k]]
        return param, (f"msgParam lacks {', '.join(missing)}" if missing else None)

    # ------------------------------------------------------------------ OpenAPI

    async def _access_token(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        if body.get("appKey") != self.client_id or body.get("appSecret") != self.client_secret:
            return self._error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = self._issue_token(self.expire_in)
        return JSONResponse({"accessToken": token, "expireIn": self.expire_in})

    async def _open(self, request: Request) -> Response:
        body, injected = await self._record(request)
        self.opens.append(body)
        if injected is not None:
            return injected
        if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
            return self._error(401, "Unauthorized", "clientId or clientSecret is invalid")
        if not isinstance(body.get("subscriptions"), list) or not body["subscriptions"]:
            return self._error(400, "invalidParameter.subscriptions")
        ticket = f"ticket-{next(self._ticket_ids)}"
        self._tickets.add(ticket)
        ws_base = "ws" + self.base_url.removeprefix("http")
        return JSONResponse({"endpoint": f"{ws_base}/gateway", "ticket": ticket})

    async def _gateway(self, ws: WebSocket) -> None:
        ticket = ws.query_params.get("ticket", "")
        if ticket not in self._tickets:
            await ws.close(code=1008)
            return
        self._tickets.discard(ticket)  # one connection per ticket
        await ws.accept()
        connection = GatewayConnection(ticket=ticket, ws=ws)
        self.connections.append(connection)
        try:
            while True:
                text = await ws.receive_text()
                try:
                    answer = json.loads(text)
                except ValueError:
                    answer = {"unparsable": text}
                connection.received.append(answer)
                self.acks.append(answer)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            connection.closed = True

    async def _batch_send(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        token, refused = self._token_error(request)
        if refused is not None:
            return refused
        if body.get("robotCode") != self.robot_code:
            return self._error(400, "invalidParameter.robotCode", "robotCode无效")
        users = body.get("userIds")
        if not isinstance(users, list) or not users or len(users) > 20:
            return self._error(400, "invalidParameter.userIds", "userIds为空或超过20个")
        param, problem = self._param_error(body.get("msgKey"), body.get("msgParam"))
        if problem:
            return self._error(400, "invalidParameter.msgParam", problem)
        invalid = [u for u in users if u in self.invalid_users]
        throttled = [u for u in users if u in self.flow_controlled and u not in invalid]
        for user in users:
            if user not in invalid and user not in throttled:
                self.oto_sent.append({"user": user, "msgKey": body["msgKey"], "msgParam": param,
                                      "robotCode": body["robotCode"], "token": token,
                                      "time": self.time_source()})
        return JSONResponse({"processQueryKey": f"pqk-{next(self._query_ids)}",
                             "invalidStaffIdList": invalid, "flowControlledStaffIdList": throttled})

    async def _group_send(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        token, refused = self._token_error(request)
        if refused is not None:
            return refused
        if body.get("robotCode") != self.robot_code:
            return self._error(400, "invalidParameter.robotCode", "robotCode无效")
        conversation = body.get("openConversationId")
        if not isinstance(conversation, str) or not conversation \
                or conversation in self.groups_without_robot:
            return self._error(400, "invalidParameter.openConversationId",
                               "机器人不在该群或群不存在")
        raw = body.get("msgParam")
        if isinstance(raw, str) and len(raw.encode()) > 15000:
            return self._error(400, "invalidParameter.msgParam", "msgParam超过15000字节")
        param, problem = self._param_error(body.get("msgKey"), raw)
        if problem:
            return self._error(400, "invalidParameter.msgParam", problem)
        self.group_sent.append({"conversation": conversation, "msgKey": body["msgKey"],
                                "msgParam": param, "robotCode": body["robotCode"],
                                "token": token, "time": self.time_source()})
        return JSONResponse({"processQueryKey": f"pqk-{next(self._query_ids)}"})

    # ------------------------------------------------------------------ webhooks

    @staticmethod
    def _webhook_problem(body: dict[str, Any]) -> str | None:
        msgtype = body.get("msgtype")
        if msgtype == "text":
            ok = isinstance(body.get("text"), dict) and bool(body["text"].get("content"))
        elif msgtype == "actionCard":
            card = body.get("actionCard")
            ok = (isinstance(card, dict) and bool(card.get("title")) and bool(card.get("text"))
                  and isinstance(card.get("btns"), list) and all(
                      isinstance(b, dict) and b.get("title") and b.get("actionURL")
                      for b in card["btns"]))
        elif msgtype == "markdown":
            ok = isinstance(body.get("markdown"), dict) and bool(body["markdown"].get("text"))
        else:
            return f"unsupported msgtype {msgtype!r}"
        return None if ok else f"malformed {msgtype} message"

    async def _session_send(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        found = self._sessions.get(request.query_params.get("session", ""))
        if found is None or self.now_ms() >= found[1]:
            return JSONResponse({"errcode": ERR_TOKEN, "errmsg": "session expired"})
        problem = self._webhook_problem(body)
        if problem:
            return JSONResponse({"errcode": 40035, "errmsg": problem})
        self.session_sent.append({"chat": found[0], "msgtype": body["msgtype"], "body": body,
                                  "time": self.time_source()})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _robot_send(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        params = request.query_params
        if params.get("access_token") != self.robot_token:
            return JSONResponse({"errcode": ERR_TOKEN, "errmsg": "token is not exist"})
        instant = self.time_source()
        now = epoch_ms(instant)
        if self.robot_secret is not None:
            ts = params.get("timestamp", "")
            if not ts.isdigit() or abs(now - int(ts)) >= 3_600_000:
                return JSONResponse({"errcode": ERR_SECURITY, "errmsg": "timestamp invalid"})
            if params.get("sign") != compute_sign(self.robot_secret, ts):
                return JSONResponse({"errcode": ERR_SECURITY, "errmsg": "sign not match"})
        if not self._robot_limit.allows(instant):
            return JSONResponse({"errcode": ERR_TOO_FAST,
                                 "errmsg": "send too fast, exceed 20 times per minute"})
        problem = self._webhook_problem(body)
        if problem:
            return JSONResponse({"errcode": 40035, "errmsg": problem})
        self._robot_limit.add(instant)
        self.robot_sent.append({"msgtype": body["msgtype"], "body": body,
                                "timestamp": params.get("timestamp"), "time": self.time_source()})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    # ------------------------------------------------------------------ received files

    async def _file_download(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        _, refused = self._token_error(request)
        if refused is not None:
            return refused
        if body.get("robotCode") != self.robot_code:
            return self._error(400, "invalidParameter.robotCode", "robotCode无效")
        code = body.get("downloadCode")
        if not isinstance(code, str) or code not in self.files:
            return self._error(400, "invalidParameter.downloadCode", "downloadCode无效或已过期")
        link = str(next(self._file_ids))
        signature = f"sig{link}x"
        expires = self.now_ms() + self.link_ttl * 1000
        self._links[link] = (code, signature, expires)
        return JSONResponse({"downloadUrl": f"{self.base_url}/files/{link}?Expires="
                                            f"{expires // 1000}&OSSAccessKeyId=LTAIfake"
                                            f"&Signature={signature}"})

    async def _file_get(self, request: Request) -> Response:
        _, injected = await self._record(request)
        if injected is not None:
            return injected
        found = self._links.get(request.path_params["link"])
        if found is None or request.query_params.get("Signature") != found[1] \
                or self.now_ms() >= found[2]:
            return PlainTextResponse("<Error><Code>AccessDenied</Code></Error>", status_code=403)
        file = self.files[found[0]]
        if not file.chunked:
            return Response(file.data, media_type=file.content_type)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(file.data), 4096):
                yield file.data[start:start + 4096]

        return StreamingResponse(chunks(), media_type=file.content_type)
