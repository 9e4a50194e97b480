"""A fake WeCom (企业微信) API server for tests: a Starlette app to run with ``serve_asgi``.

It implements what :mod:`bot.adapters.wecom.api` uses, with WeCom's behaviour where it
matters to us:

* ``GET /cgi-bin/gettoken`` checks ``corpid`` (40013) and ``corpsecret`` (40001) and
  issues ``tok-1``, ``tok-2``, … valid ``expires_in`` seconds;
* an expired token (its time passed, or :meth:`FakeWeComApi.expire_tokens`) answers
  42001, a token never issued (or dropped by :meth:`FakeWeComApi.forget_tokens`) 40014;
* ``POST /cgi-bin/message/send`` reports users in :attr:`FakeWeComApi.invalid_users` in
  ``invaliduser`` (errcode 0), or errcode 81013 when every addressed user is invalid;
* per-member limits: beyond 30 messages a minute or 1000 an hour to one member, a message
  is **silently dropped** — errcode 0, recorded in ``dropped`` instead of ``sent``;
* ``POST /cgi-bin/message/update_template_card`` records the update;
* ``POST /cgi-bin/webhook/send?key=..`` (group robot): beyond 20 a minute → errcode 45009;
* ``GET /cgi-bin/media/get?media_id=..`` serves what :meth:`FakeWeComApi.add_media` stored:
  the bytes with ``Content-Type`` and a ``Content-Disposition`` file name (sent in chunks
  without ``Content-Length`` when added with ``chunked=True``); an unknown media id is
  errcode 40007, as WeCom answers an expired one.

``fail_next(path, errcode=..., status=...)`` injects failures before any other check;
``errmsg_for`` overrides the ``errmsg`` of any error, to prove clients branch on errcode.
Time comes from ``time_source`` (pass ``clock.now``), so no test sleeps. The request
log, failure injection, tokens and rate windows are :mod:`tests.fakes.platform`'s.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.platform import FakePlatform, Injected, SlidingWindow

MEMBER_PER_MINUTE = 30
MEMBER_PER_HOUR = 1000
ROBOT_PER_MINUTE = 20

_DEFAULT_ERRMSG = {
    -1: "system busy",
    40001: "invalid credential",
    40007: "invalid media_id",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid parameter",
    42001: "access_token expired",
    45009: "api freq out of limit",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}


@dataclass(frozen=True)
class FakeMedia:
    """A file ``media/get`` serves."""

    data: bytes
    content_type: str
    filename: str
    chunked: bool = False


class FakeWeComApi(FakePlatform):
    """In-memory WeCom server.

    Args:
        corp_id: the ``corpid`` gettoken accepts.
        secret: the ``corpsecret`` gettoken accepts.
        agent_id: the ``agentid`` message calls must carry.
        expires_in: lifetime of issued tokens, in seconds.
        robot_keys: webhook keys the robot endpoint accepts.
        time_source: the current instant (aware); defaults to the system clock.

    State (inspect in tests):
        tokens_issued: tokens handed out, in order.
        sent: one dict per delivered (member, message): ``touser`` (that member),
            ``msgtype``, ``content`` (text/markdown) or ``card`` (template card), ``token``,
            ``time``, ``msgid``, ``raw`` (the request body).
        dropped: the same, for messages silently dropped by the per-member limits.
        updates: request bodies of ``update_template_card`` calls, plus ``token``/``time``.
        robot_sent: ``{"key", "msgtype", "content", "time"}`` per accepted robot message.
        media: media id → :class:`FakeMedia`, what ``media/get`` serves.
        calls: ``{"method", "path", "params", "json", "headers", "time"}`` per request,
            in order.
    """

    def __init__(self, *, corp_id: str = "corp-1", secret: str = "s3cret",
                 agent_id: int = 1000002, expires_in: int = 7200,
                 robot_keys: tuple[str, ...] = ("robot-key",),
                 time_source: Callable[[], datetime] | None = None) -> None:
        super().__init__(time_source=time_source)
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.expires_in = expires_in
        self.robot_keys = set(robot_keys)
        self.invalid_users: set[str] = set()
        #: when every addressed user is invalid: errcode 81013 (WeCom's behaviour) or,
        #: when False, errcode 0 with them all in ``invaliduser``.
        self.all_invalid_is_error = True
        self.errmsg_for: dict[int, str] = {}
        self.sent: list[dict[str, Any]] = []
        self.dropped: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.robot_sent: list[dict[str, Any]] = []
        self._expired: set[str] = set()
        # per member: both windows must allow a message, and it counts in both
        self._member_limits: dict[str, tuple[SlidingWindow, SlidingWindow]] = {}
        self._robot_limits: dict[str, SlidingWindow] = {}
        self._response_codes: set[str] = set()
        self._msg_ids = itertools.count(1)
        self.media: dict[str, FakeMedia] = {}
        self._media_ids = itertools.count(1)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/cgi-bin/gettoken", self._gettoken, methods=["GET"]),
            Route("/cgi-bin/message/send", self._message_send, methods=["POST"]),
            Route("/cgi-bin/message/update_template_card", self._update_card,
                  methods=["POST"]),
            Route("/cgi-bin/webhook/send", self._webhook_send, methods=["POST"]),
            Route("/cgi-bin/media/get", self._media_get, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ test controls

    def fail_next(self, path: str, errcode: int | None = None, status: int | None = None,
                  times: int = 1, errmsg: str | None = None) -> None:
        """Answer the next ``times`` requests to ``path`` with ``errcode`` (HTTP 200) or
        HTTP ``status`` (plain-text body), before any other processing."""
        self._fail_next(path, Injected(times, status=status, errcode=errcode, errmsg=errmsg))

    def expire_tokens(self) -> None:
        """Make every token issued so far expired (answers 42001 from now on)."""
        self._expired.update(self._tokens)

    def forget_tokens(self) -> None:
        """Forget every token issued so far, as if never issued (answers 40014)."""
        self._tokens.clear()
        self._expired.clear()

    def add_media(self, data: bytes, *, content_type: str = "image/jpeg",
                  filename: str = "image.jpg", chunked: bool = False) -> str:
        """Store a file for ``media/get``; its media id (``media-N``)."""
        media_id = f"media-{next(self._media_ids)}"
        self.media[media_id] = FakeMedia(data, content_type, filename, chunked)
        return media_id

    def media_calls(self) -> list[dict[str, Any]]:
        """The ``media/get`` requests, in order."""
        return [c for c in self.calls if c["path"] == "/cgi-bin/media/get"]

    def sent_to(self, userid: str) -> list[dict[str, Any]]:
        """The delivered messages of one member."""
        return [m for m in self.sent if m["touser"] == userid]

    def gettoken_calls(self) -> int:
        """How many gettoken requests arrived (including refused ones)."""
        return sum(1 for c in self.calls if c["path"] == "/cgi-bin/gettoken")

    # ------------------------------------------------------------------ helpers

    def _error(self, errcode: int, errmsg: str | None = None, **extra: Any) -> JSONResponse:
        msg = self.errmsg_for.get(errcode, errmsg or _DEFAULT_ERRMSG.get(errcode, "error"))
        return JSONResponse({"errcode": errcode, "errmsg": msg, **extra})

    def _injected_error(self, injected: Injected) -> Response:
        assert injected.errcode is not None
        return self._error(injected.errcode, injected.errmsg)

    def _check_token(self, request: Request) -> tuple[str, Response | None]:
        token = request.query_params.get("access_token", "")
        if token not in self._tokens:
            return token, self._error(40014)
        if token in self._expired or not self._token_live(token):
            return token, self._error(42001)
        return token, None

    def _member_windows(self, userid: str) -> tuple[SlidingWindow, SlidingWindow]:
        return self._member_limits.setdefault(userid, (
            SlidingWindow(MEMBER_PER_MINUTE, timedelta(minutes=1)),
            SlidingWindow(MEMBER_PER_HOUR, timedelta(hours=1))))

    # ------------------------------------------------------------------ endpoints

    async def _gettoken(self, request: Request) -> Response:
        _, injected = await self._record(request)
        if injected is not None:
            return injected
        if request.query_params.get("corpid") != self.corp_id:
            return self._error(40013)
        if request.query_params.get("corpsecret") != self.secret:
            return self._error(40001)
        token = self._issue_token(self.expires_in)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token,
                             "expires_in": self.expires_in})

    async def _message_send(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        token, refused = self._check_token(request)
        if refused is not None:
            return refused
        if body.get("agentid") != self.agent_id:
            return self._error(40056)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown", "template_card"):
            return self._error(40058, "invalid msgtype")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        if not users:
            return self._error(40058, "touser empty")
        invalid = [u for u in users if u in self.invalid_users]
        valid = [u for u in users if u not in self.invalid_users]
        if not valid and self.all_invalid_is_error:
            return self._error(81013)
        now = self.time_source()
        msgid = f"msg-{next(self._msg_ids)}"
        payload: dict[str, Any] = {}
        if msgtype in ("text", "markdown"):
            payload["content"] = body.get(msgtype, {}).get("content")
        else:
            payload["card"] = body.get("template_card")
        for user in valid:
            entry = {"touser": user, "msgtype": msgtype, **payload, "token": token,
                     "time": now, "msgid": msgid, "raw": body}
            windows = self._member_windows(user)
            if all([w.allows(now) for w in windows]):
                for window in windows:
                    window.add(now)
                self.sent.append(entry)
            else:
                self.dropped.append(entry)  # WeCom drops it and still answers "ok"
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": msgid,
                                  "invaliduser": "|".join(invalid),
                                  "invalidparty": "", "invalidtag": ""}
        card = payload.get("card")
        if isinstance(card, dict) and card.get("card_type") == "button_interaction":
            code = f"rc-{msgid}"
            self._response_codes.add(code)
            answer["response_code"] = code
        return JSONResponse(answer)

    async def _update_card(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        token, refused = self._check_token(request)
        if refused is not None:
            return refused
        if body.get("agentid") != self.agent_id:
            return self._error(40056)
        code = body.get("response_code")
        if code not in self._response_codes:
            return self._error(40058, "invalid response_code")
        self._response_codes.discard(code)  # a response_code is usable once
        users = [str(u) for u in body.get("userids") or []]
        invalid = [u for u in users if u in self.invalid_users]
        self.updates.append({**body, "token": token, "time": self.time_source()})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "invaliduser": invalid})

    async def _webhook_send(self, request: Request) -> Response:
        body, injected = await self._record(request)
        if injected is not None:
            return injected
        key = request.query_params.get("key", "")
        if key not in self.robot_keys:
            return self._error(93000)
        now = self.time_source()
        window = self._robot_limits.setdefault(
            key, SlidingWindow(ROBOT_PER_MINUTE, timedelta(minutes=1)))
        if not window.allows(now):
            return self._error(45009)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown"):
            return self._error(40058, "invalid msgtype")
        window.add(now)
        self.robot_sent.append({"key": key, "msgtype": msgtype,
                                "content": body.get(msgtype, {}).get("content"),
                                "time": now})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _media_get(self, request: Request) -> Response:
        _, injected = await self._record(request)
        if injected is not None:
            return injected
        _, refused = self._check_token(request)
        if refused is not None:
            return refused
        media = self.media.get(request.query_params.get("media_id", ""))
        if media is None:
            return self._error(40007)
        name = media.filename
        disposition = (f'attachment; filename="{name}"' if name.isascii()
                       else f"attachment; filename*=UTF-8''{quote(name)}")
        headers = {"Content-Disposition": disposition, "Cache-Control": "no-cache"}
        if not media.chunked:
            return Response(media.data, media_type=media.content_type, headers=headers)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(media.data), 4096):
                yield media.data[start:start + 4096]

        return StreamingResponse(chunks(), media_type=media.content_type, headers=headers)
