"""A fake Tencent Cloud SMS API 3.0 (``SendSms``, version 2021-01-11) for tests: a Starlette
app to run with ``serve_asgi``, at ``/``.

It checks every request as Tencent Cloud documents TC3-HMAC-SHA256, with its own
implementation (not the bot's signer): the ``Authorization`` header's form, a known
SecretId, the service ``sms``, an ``X-TC-Timestamp`` within 5 minutes of
``time_source`` whose UTC date is the credential's date, ``content-type`` and ``host``
among the signed headers, and the signature recomputed over the headers as received and
the body. A refused request is answered like the real API: HTTP 200 with
``Response.Error.Code`` (``AuthFailure.SignatureFailure`` …). Accepted messages are kept
in :attr:`sms`; ``fail_next(status)`` answers the next request with that HTTP status.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
                   r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$")


def _h(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class FakeTencentSms:
    """In-memory Tencent Cloud SMS.

    Args:
        secret_id: the SecretId it knows.
        secret_key: its SecretKey.
        app_id: the SmsSdkAppId it accepts.
        time_source: the current instant (pass ``clock.now``).
    """

    def __init__(self, *, secret_id: str, secret_key: str, app_id: str,
                 time_source: Callable[[], datetime]) -> None:
        self.secret_id, self.secret_key, self.app_id = secret_id, secret_key, app_id
        self.time_source = time_source
        self.sms: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.requests = 0
        self._failures: list[int] = []
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/", self._send, methods=["POST"])])

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures += [status] * times

    def _error(self, code: str) -> Response:
        self.refused.append(code)
        return JSONResponse({"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "fake-req"}})

    def _verify(self, request: Request, body: bytes) -> str | None:
        """The error code of a request that fails the TC3 checks (None: it passes)."""
        match = _AUTH.match(request.headers.get("authorization", ""))
        if match is None:
            return "AuthFailure.InvalidAuthorization"
        if match["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        if match["service"] != "sms":
            return "AuthFailure.InvalidAuthorization"
        stamp = request.headers.get("x-tc-timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - self.time_source().timestamp()) > 300:
            return "AuthFailure.SignatureExpire"
        if datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d") != match["date"]:
            return "AuthFailure.InvalidAuthorization"
        signed = match["signed"].split(";")
        if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
            return "AuthFailure.InvalidAuthorization"
        headers = "".join(f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed)
        canonical = "\n".join(["POST", "/", request.url.query, headers, match["signed"],
                               hashlib.sha256(body).hexdigest()])
        scope = f"{match['date']}/sms/tc3_request"
        to_sign = "\n".join(["TC3-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = _h(_h(_h(("TC3" + self.secret_key).encode(), match["date"]), "sms"), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, match["sig"]) else "AuthFailure.SignatureFailure"

    async def _send(self, request: Request) -> Response:
        self.requests += 1
        if self._failures:
            return Response(status_code=self._failures.pop(0))
        body = await request.body()
        problem = self._verify(request, body)
        if problem is not None:
            return self._error(problem)
        if request.headers.get("x-tc-action") != "SendSms" or request.headers.get("x-tc-version") != "2021-01-11":
            return self._error("InvalidAction")
        data = json.loads(body)
        if data.get("SmsSdkAppId") != self.app_id:
            return self._error("FailedOperation.SmsSdkAppIdVerifyFail")
        phones = data.get("PhoneNumberSet") or []
        if not phones or not all(re.fullmatch(r"\+861[3-9]\d{9}", p) for p in phones):
            return self._error("InvalidParameterValue.IncorrectPhoneNumber")
        if not isinstance(data.get("TemplateParamSet"), list):
            return self._error("InvalidParameterValue.TemplateParameterFormatError")
        self.sms.append(data)
        return JSONResponse({"Response": {"SendStatusSet": [
            {"SerialNo": f"sn-{next(self._ids)}", "PhoneNumber": p, "Fee": 1,
             "SessionContext": data.get("SessionContext", ""), "Code": "Ok", "Message": "send success",
             "IsoCode": "CN"} for p in phones], "RequestId": "fake-req"}})
