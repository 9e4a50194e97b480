"""A fake Alibaba Cloud SMS (dysmsapi ``SendSms``) and voice (dyvmsapi ``SingleCallByTts``)
API for tests: a Starlette app to run with ``serve_asgi``; SMS at ``/sms/``, calls at
``/voice/``.

It checks every request as Alibaba Cloud documents the RPC signature V1, with its own
implementation (not the bot's signer): the common parameters, a ``Timestamp`` within 15
minutes of ``time_source``, a ``SignatureNonce`` never seen before, and the
``Signature`` — Base64(HMAC-SHA1(secret + "&", "POST&%2F&" + percent-encoded sorted
query)) — and refuses a request that fails any of them (``SignatureDoesNotMatch`` …), as
the real API answers. Accepted messages and calls are kept in :attr:`sms` and
:attr:`calls`; ``fail_next(status)`` answers the next request with that HTTP status
before any check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def rfc3986(text: str) -> str:
    """Percent-encode UTF-8 ``text``: unreserved bytes as they are, every other byte %XX."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def expected_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    query = "&".join(f"{rfc3986(k)}={rfc3986(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = method + "&" + rfc3986("/") + "&" + rfc3986(query)
    return base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


class FakeAliyun:
    """In-memory Alibaba Cloud SMS and voice.

    Args:
        access_key_id: the one AccessKey ID it knows.
        secret: its AccessKey secret.
        time_source: the current instant (pass ``clock.now``).
    """

    def __init__(self, *, access_key_id: str, secret: str, time_source: Callable[[], datetime]) -> None:
        self.access_key_id, self.secret, self.time_source = access_key_id, secret, time_source
        self.sms: list[dict[str, str]] = []
        self.calls: list[dict[str, str]] = []
        self.refused: list[str] = []      # the Code of every refused request
        self.requests = 0
        self._nonces: set[str] = set()
        self._failures: list[int] = []
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/sms/", self._sms, methods=["POST"]),
                                     Route("/voice/", self._voice, methods=["POST"])])

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures += [status] * times

    def _refuse(self, code: str, status: int = 400) -> Response:
        self.refused.append(code)
        return JSONResponse({"Code": code, "Message": code, "RequestId": "fake-req"}, status_code=status)

    async def _checked(self, request: Request, action: str) -> dict[str, str] | Response:
        self.requests += 1
        if self._failures:
            return JSONResponse({"Code": "ServiceUnavailable"}, status_code=self._failures.pop(0))
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        if params.get("AccessKeyId") != self.access_key_id:
            return self._refuse("InvalidAccessKeyId.NotFound", 404)
        common = {"Action": action, "Format": "JSON", "SignatureMethod": "HMAC-SHA1",
                  "SignatureVersion": "1.0", "Version": "2017-05-25"}
        for key, value in common.items():
            if params.get(key) != value:
                return self._refuse(f"InvalidParameter.{key}")
        try:
            stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self._refuse("InvalidTimeStamp.Format")
        if abs(stamp - self.time_source()) > timedelta(minutes=15):
            return self._refuse("InvalidTimeStamp.Expired")
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in self._nonces:
            return self._refuse("SignatureNonceUsed")
        given = params.get("Signature", "")
        if not hmac.compare_digest(given, expected_signature(params, self.secret)):
            return self._refuse("SignatureDoesNotMatch")
        self._nonces.add(nonce)
        return params

    async def _sms(self, request: Request) -> Response:
        params = await self._checked(request, "SendSms")
        if isinstance(params, Response):
            return params
        for key in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(key):
                return self._refuse(f"MissingParameter.{key}")
        try:
            json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return self._refuse("isv.INVALID_JSON_PARAM")
        self.sms.append(params)
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": f"biz-{next(self._ids)}",
                             "RequestId": "fake-req"})

    async def _voice(self, request: Request) -> Response:
        params = await self._checked(request, "SingleCallByTts")
        if isinstance(params, Response):
            return params
        for key in ("CalledShowNumber", "CalledNumber", "TtsCode"):
            if not params.get(key):
                return self._refuse(f"MissingParameter.{key}")
        self.calls.append(params)
        return JSONResponse({"Code": "OK", "Message": "OK", "CallId": f"call-{next(self._ids)}^1",
                             "RequestId": "fake-req"})

    def params_of(self, phone: str) -> list[dict[str, Any]]:
        """The TemplateParam of every SMS accepted for ``phone``, decoded."""
        return [json.loads(m["TemplateParam"]) for m in self.sms if m["PhoneNumbers"] == phone]
