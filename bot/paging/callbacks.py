"""What the providers report back: SMS replies and pressed keys, which acknowledge incidents.

Routes on the bot's HTTP service (``bot/http.py``), each behind a secret of its own in the
path (``[paging] aliyun_callback_token`` / ``tencent_callback_token``; a wrong one is
answered 404, compared in constant time):

``POST /paging/tencent/<token>/sms-reply``  Tencent Cloud SMS 短信回复 callback: one JSON
    object ``{"extend", "mobile", "nationcode", "sign", "text", "time"}``; answered
    ``{"result": 0, "errmsg": "OK"}``.
``POST /paging/aliyun/<token>/sms-up``  Alibaba Cloud SMS 上行短信 (SmsUp, HTTP batch push):
    a JSON array of ``{"phone_number", "content", "send_time", "dest_code", "sequence_id"}``;
    answered ``{"code": 0, "msg": "接收成功"}``.
``POST /paging/aliyun/<token>/voice-report``  Alibaba Cloud voice 呼叫记录 (VoiceReport):
    a JSON array of ``{"call_id", "out_id", "callee", "status_code", "status_msg",
    "dtmf", …}``; ``out_id`` is our page (``page-<id>``), ``dtmf`` the keys pressed where
    the call collected them (1 acknowledges). Answered like SmsUp.

Each reply goes to :mod:`incidents.paging_ack` in one transaction, committed before the
answer; a storage failure answers 500, so the provider pushes it again (a repeated ``1``
finds the incident acknowledged and changes nothing).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.http import read_body
from bot.paging.settings import PagingSettings
from core.clock import Clock
from core.db import session_scope
from incidents import paging_ack
from incidents.paging_models import Page
from incidents.service import IncidentPolicy, record

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("dutybot.paging")

_OUT_ID = re.compile(r"^page-(\d{1,12})$")
ALIYUN_OK = {"code": 0, "msg": "接收成功"}
TENCENT_OK = {"result": 0, "errmsg": "OK"}


def _token_ok(given: str, token: SecretStr | None) -> bool:
    if token is None or not token.get_secret_value():
        return False
    return hmac.compare_digest(given.encode(), token.get_secret_value().encode())


class PagingCallbacks:
    """Serves the callback routes of the configured providers.

    Args:
        engine: the database.
        clock: the time of receipt.
        settings: ``[paging]`` (tokens, reply window).
        policy: the incidents policy (who may acknowledge).
        on_commit: called after a reply was stored (wakes the senders).
    """

    def __init__(self, *, engine: Engine, clock: Clock, settings: PagingSettings, policy: IncidentPolicy,
                 on_commit: Callable[[], None] = lambda: None) -> None:
        self.engine, self.clock, self.settings, self.policy = engine, clock, settings, policy
        self.on_commit = on_commit

    def routes(self) -> list[BaseRoute]:
        if not self.settings.enabled:
            return []
        routes: list[BaseRoute] = []
        if self.settings.aliyun_callback_token is not None:
            routes += [Route("/paging/aliyun/{token}/sms-up", self._aliyun_sms_up, methods=["POST"]),
                       Route("/paging/aliyun/{token}/voice-report", self._aliyun_voice, methods=["POST"])]
        if self.settings.tencent_callback_token is not None:
            routes.append(Route("/paging/tencent/{token}/sms-reply", self._tencent_reply, methods=["POST"]))
        return routes

    async def _json(self, request: Request, token: SecretStr | None) -> tuple[Any, Response | None]:
        if not _token_ok(request.path_params["token"], token):
            log.warning("refused a paging callback on %s: wrong token", request.url.path.rsplit("/", 1)[-1])
            return None, Response(status_code=404)
        body = await read_body(request)
        if body is None:
            return None, Response(status_code=413)
        try:
            return json.loads(body), None
        except (ValueError, RecursionError):
            return None, JSONResponse({"error": "the body is not JSON"}, status_code=400)

    async def _store(self, work: Callable[[], int], ok: dict[str, Any], what: str) -> Response:
        try:
            count = await asyncio.to_thread(work)
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("error %s: a %s callback was not stored; the provider will push it again",
                          error_id, what)
            return JSONResponse({"error": "not stored", "error_id": error_id}, status_code=500)
        if count:
            self.on_commit()
        return JSONResponse(ok)

    def _reply(self, phone: str, text: str) -> int:
        window = timedelta(hours=self.settings.reply_window_hours)
        with session_scope(self.engine) as session:
            answer = paging_ack.answer_sms(session, phone=phone, text=text, policy=self.policy,
                                           now=self.clock.now(), window=window)
        if answer is None:
            log.info("an SMS reply matched no page of the last %d hours; ignored", self.settings.reply_window_hours)
            return 0
        log.info("SMS reply about %s: %s", answer.incident, "acknowledged" if answer.acked else "recorded")
        return 1

    async def _tencent_reply(self, request: Request) -> Response:
        data, refused = await self._json(request, self.settings.tencent_callback_token)
        if refused is not None:
            return refused
        if not isinstance(data, dict) or not isinstance(data.get("mobile"), str) \
                or not isinstance(data.get("text"), str):
            return JSONResponse({"result": 1, "errmsg": "mobile and text expected"}, status_code=400)
        if str(data.get("nationcode") or "86") != "86":
            return JSONResponse(TENCENT_OK)   # only mainland numbers are paged
        return await self._store(lambda: self._reply(data["mobile"], data["text"]), TENCENT_OK, "tencent sms-reply")

    async def _aliyun_sms_up(self, request: Request) -> Response:
        data, refused = await self._json(request, self.settings.aliyun_callback_token)
        if refused is not None:
            return refused
        items = [i for i in data if isinstance(i, dict)] if isinstance(data, list) else None
        if items is None:
            return JSONResponse({"code": 1, "msg": "a JSON array expected"}, status_code=400)

        def work() -> int:
            return sum(self._reply(str(i.get("phone_number", "")), str(i.get("content", ""))) for i in items)

        return await self._store(work, ALIYUN_OK, "aliyun sms-up")

    def _voice(self, item: dict[str, Any]) -> int:
        match = _OUT_ID.match(str(item.get("out_id", "")))
        if match is None:
            return 0
        page_id, callee = int(match.group(1)), str(item.get("callee") or "") or None
        keys = str(item.get("dtmf") or "").strip()
        with session_scope(self.engine) as session:
            page = session.get(Page, page_id)
            if page is None:
                return 0
            answer = None
            if keys:
                answer = paging_ack.answer_key(session, page_id=page_id, phone=callee, key=keys[:1],
                                               policy=self.policy, now=self.clock.now())
            status = str(item.get("status_msg") or "")[:60]
            if answer is None or not answer.zh:   # the answer wrote its own line
                incident = paging_ack.incident_of(session, page)
                outcome = status or f"状态码 {str(item.get('status_code') or '-')[:10]}"
                pressed = f"，按键 {keys[:6]}" if keys else ""
                record(session, incident, self.clock.now(), "page_call_report",
                       f"语音电话结果：{paging_ack.person_name(session, page)}——{outcome}{pressed}",
                       person=None, actor="system", page=page.id)
        return 1

    async def _aliyun_voice(self, request: Request) -> Response:
        data, refused = await self._json(request, self.settings.aliyun_callback_token)
        if refused is not None:
            return refused
        items = [i for i in data if isinstance(i, dict)] if isinstance(data, list) else None
        if items is None:
            return JSONResponse({"code": 1, "msg": "a JSON array expected"}, status_code=400)
        return await self._store(lambda: sum(self._voice(i) for i in items), ALIYUN_OK, "aliyun voice-report")


def paging_routes(app: App) -> list[BaseRoute]:
    """The callback routes of ``app`` (none when paging is off or no token is set)."""
    callbacks = PagingCallbacks(engine=app.engine, clock=app.clock, settings=app.settings.paging,
                                policy=app.incident_policy, on_commit=app.wake_senders)
    return callbacks.routes()
