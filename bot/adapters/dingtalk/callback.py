"""DingTalk's HTTP callbacks: the two routes DingTalk may post to, and what each checks.

* ``POST /dingtalk/callback`` (``[dingtalk] mode = "callback"``; the robot's message
  receiving mode set to HTTP). DingTalk signs only the ``timestamp`` header: ``sign`` is
  HMAC-SHA256 of ``timestamp\\nappSecret`` (:func:`~bot.adapters.dingtalk.sign.verify_callback`),
  valid for an hour either side, and nothing covers the body. So besides a matching sign
  and a fresh timestamp, each ``(timestamp, sign)`` pair is accepted **once**: the pair is
  claimed through the adapter's ``claim_once`` — the app records it in the database
  (:mod:`bot.one_use`), so every worker on the database refuses a second use, kept for
  :data:`REPLAY_KEEP` (two hours: every moment the pair could still be fresh). A replay —
  a captured pair sent again with any body — gets 403, is logged with the peer and the
  timestamp (never the sign or the secret), and nothing is dispatched. The pair is claimed
  last, once the body was read and parsed and the bot is ready, so a request refused for
  another reason leaves it unused. Two genuine callbacks signed in the same millisecond
  carry the same pair, and the second is refused too: the signature cannot tell them
  apart from a replay (Stream mode and encrypted callbacks have no such limit).
* ``POST /dingtalk/events`` (when ``callback_token`` and ``callback_aes_key`` are set;
  事件订阅 HTTP 推送): the body is encrypted and the signature covers it
  (:class:`~bot.adapters.dingtalk.crypto.DingTalkCallbackCrypto`); a forged, stale or
  tampered request gets 403 (400 when a correctly signed body cannot be read). A robot
  message inside is handed to the bot like any other (its ``msgId`` goes through the
  update ledger, so a redelivered body is handled once); ``check_url`` (DingTalk saving
  the URL) and other events are logged. Every accepted request is answered with the
  encrypted, signed ``success`` DingTalk expects.

An adapter not configured by an app (tests, tools) claims pairs in memory
(:class:`MemoryClaims`): one process only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.adapters.callback_crypto import BAD_SIGNATURE, CallbackCryptoError
from bot.adapters.dingtalk.crypto import BAD_TIMESTAMP, STALE_TIMESTAMP, DingTalkCallbackCrypto
from bot.adapters.dingtalk.sign import CALLBACK_MAX_SKEW_MS, DingTalkSignError, verify_callback
from bot.config import DingTalkSettings
from bot.http import read_body
from core.errors import AdapterError

log = logging.getLogger("dutybot.dingtalk")

CALLBACK_PATH = "/dingtalk/callback"
EVENTS_PATH = "/dingtalk/events"
#: How long a used ``(timestamp, sign)`` pair is remembered: it is fresh from an hour
#: before its timestamp to an hour after, so two hours after its first use it is stale.
REPLAY_KEEP = timedelta(milliseconds=2 * CALLBACK_MAX_SKEW_MS)
#: A callback is answered once its message is stored, or 503 after this long (DingTalk
#: waits a few seconds for an answer).
ACK_DEADLINE = 4.0
#: Codes of requests that are not DingTalk's (403); others are unreadable ones (400).
_FORGED = frozenset({BAD_SIGNATURE, BAD_TIMESTAMP, STALE_TIMESTAMP})


class MemoryClaims:
    """One-use keys in this process's memory (when no app gave the adapter a database)."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._seen: dict[str, datetime] = {}
        self._bound: dict[str, str] = {}

    def __call__(self, key: str, keep: timedelta, bound: str = "") -> bool:
        now = self._now()
        self._seen = {k: at for k, at in self._seen.items() if at > now - keep}
        self._bound = {k: b for k, b in self._bound.items() if k in self._seen}
        if key in self._seen:
            return bool(bound) and self._bound.get(key) == bound
        self._seen[key], self._bound[key] = now, bound
        return True


def _secret_of(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def crypto_from_settings(settings: DingTalkSettings) -> DingTalkCallbackCrypto | None:
    """The encrypted callbacks' keys, or None when neither is configured.

    Raises:
        AdapterError: only one of them is set, or the aes_key is unusable.
    """
    token, aes_key = _secret_of(settings.callback_token), _secret_of(settings.callback_aes_key)
    if not token and not aes_key:
        return None
    if not token or not aes_key:
        missing = "DUTYBOT_DINGTALK_CALLBACK_TOKEN" if not token else "DUTYBOT_DINGTALK_CALLBACK_AES_KEY"
        raise AdapterError(
            f"钉钉加密回调配置不完整：请同时设置 {missing}（开发者后台“事件订阅”中的加密 "
            "token 与 aes_key），或两者都不设置。", retryable=False)
    try:
        return DingTalkCallbackCrypto(token, aes_key,
                                      (settings.callback_owner_key or settings.client_id).strip())
    except CallbackCryptoError:
        raise AdapterError(
            "钉钉加密回调的 aes_key 无效：请把 DUTYBOT_DINGTALK_CALLBACK_AES_KEY 设为开发者后台"
            "“事件订阅”中的 43 位加密 aes_key。", retryable=False) from None


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def is_robot_message(data: dict[str, Any]) -> bool:
    """Whether a decrypted callback is a robot message (rather than an event)."""
    return bool(data.get("msgId")) and "conversationType" in data


class CallbackRoutes:
    """The request handlers of both routes.

    Args:
        app_secret: the app's Client Secret (the signed callback's key).
        crypto: the encrypted callbacks' keys, or None when they are not configured.
        now_ms: the current Unix time in milliseconds.
        claim: records a one-use key bound to a body (``(key, keep, bound) -> first
            time, or the same body again``), called in a
            worker thread (it may wait for the database).
        ready: whether the bot takes messages now (False: 503, DingTalk retries).
        accept: hands a robot message to the bot; the future says whether it was stored.
    """

    def __init__(self, *, app_secret: str, crypto: DingTalkCallbackCrypto | None,
                 now_ms: Callable[[], int], claim: Callable[[str, timedelta, str], bool],
                 ready: Callable[[], bool],
                 accept: Callable[[dict[str, Any]], asyncio.Future[bool]]) -> None:
        self._app_secret = app_secret
        self.crypto = crypto
        self._now_ms = now_ms
        self._claim = claim
        self._ready = ready
        self._accept = accept

    async def signed(self, request: Request) -> Response:
        """``/dingtalk/callback``: a robot message signed over its timestamp."""
        timestamp = request.headers.get("timestamp", "")
        sign = request.headers.get("sign", "")
        try:
            verify_callback(timestamp, sign, self._app_secret, self._now_ms())
        except DingTalkSignError as exc:
            log.warning("refused a DingTalk callback from %s: %s", _peer(request), exc.code)
            return Response(status_code=403)
        data = await self._json_body(request, "callback")
        if not isinstance(data, dict):
            return data
        if not self._ready():
            return Response(status_code=503)
        # The pair is bound to this body: DingTalk's retry of the same request passes (the
        # update ledger handles it once), the same pair with another body is a replay.
        body = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        if not await asyncio.to_thread(self._claim, f"{timestamp}:{sign}", REPLAY_KEEP, body[:16]):
            log.warning("refused a replayed DingTalk callback from %s: the signature of "
                        "timestamp %s was used before; nothing was handled",
                        _peer(request), timestamp)
            return Response(status_code=403)
        return await self._stored(self._accept(data), JSONResponse({}))

    async def encrypted(self, request: Request) -> Response:
        """``/dingtalk/events``: an encrypted event or robot message."""
        crypto = self.crypto
        if crypto is None:
            return Response(status_code=404)
        envelope = await self._json_body(request, "encrypted callback")
        if not isinstance(envelope, dict):
            return envelope
        query = request.query_params
        encrypted = envelope.get("encrypt")
        try:
            data = crypto.open(
                msg_signature=query.get("msg_signature") or query.get("signature") or "",
                timestamp=query.get("timestamp") or query.get("timeStamp") or "",
                nonce=query.get("nonce") or "",
                encrypted=encrypted if isinstance(encrypted, str) else "",
                now_ms=self._now_ms())
        except CallbackCryptoError as exc:
            log.warning("refused a DingTalk encrypted callback from %s: %s (%s)",
                        _peer(request), exc.code, exc.message)
            return Response(status_code=403 if exc.code in _FORGED else 400)
        if is_robot_message(data):
            if not self._ready():
                return Response(status_code=503)
            return await self._stored(self._accept(data), JSONResponse(crypto.answer(now_ms=self._now_ms())))
        elif data.get("EventType") == "check_url":
            log.info("DingTalk checked the encrypted callback URL %s", EVENTS_PATH)
        else:
            log.info("DingTalk event %r received; dutybot does not act on it",
                     str(data.get("EventType", "?"))[:60])
        return JSONResponse(crypto.answer(now_ms=self._now_ms()))

    @staticmethod
    async def _stored(handling: asyncio.Future[bool], answer: Response) -> Response:
        """Store first, answer after: ``answer`` once the message is stored, 500 when it
        could not be (DingTalk delivers it again), 503 when it is still in hand after
        :data:`ACK_DEADLINE` (the retry joins it, or the ledger ignores it once stored)."""
        try:
            stored = await asyncio.wait_for(asyncio.shield(handling), timeout=ACK_DEADLINE)
        except TimeoutError:
            log.warning("a DingTalk message is still being handled after %.1fs; answered 503 "
                        "so that DingTalk asks again", ACK_DEADLINE)
            return Response(status_code=503)
        return answer if stored else Response(status_code=500)

    @staticmethod
    async def _json_body(request: Request, what: str) -> dict[str, Any] | Response:
        """The body as a JSON object, or the response refusing it."""
        body = await read_body(request)
        if body is None:
            log.warning("refused a DingTalk %s larger than the body limit", what)
            return Response(status_code=413)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.warning("refused a DingTalk %s whose body is not a JSON object", what)
            return Response(status_code=400)
        return data
