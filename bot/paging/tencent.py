"""Tencent Cloud (腾讯云) SMS: ``SendSms`` of API 3.0 (``sms``, version 2021-01-11), signed
with TC3-HMAC-SHA256.

TC3-HMAC-SHA256 (Tencent Cloud API 3.0, "Signature v3"):

1. CanonicalRequest = ``POST`` \\n ``/`` \\n (empty query) \\n CanonicalHeaders \\n
   SignedHeaders \\n hex(SHA256(body)); CanonicalHeaders is ``name:value\\n`` per signed
   header, names and values lower-case, sorted by name (here ``content-type``, ``host``
   and ``x-tc-action``).
2. StringToSign = ``TC3-HMAC-SHA256`` \\n timestamp \\n CredentialScope \\n
   hex(SHA256(CanonicalRequest)), CredentialScope = ``<UTC date of the timestamp>/sms/tc3_request``.
3. SecretDate = HMAC-SHA256("TC3" + SecretKey, date), SecretService = HMAC-SHA256(SecretDate,
   service), SecretSigning = HMAC-SHA256(SecretService, "tc3_request"); Signature =
   hex(HMAC-SHA256(SecretSigning, StringToSign)).
4. ``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, SignedHeaders=<…>,
   Signature=<…>``, sent with ``X-TC-Action``, ``X-TC-Version``, ``X-TC-Region`` and
   ``X-TC-Timestamp``.

The body: ``PhoneNumberSet`` (``+86…``), ``SmsSdkAppId``, ``SignName``, ``TemplateId``,
``TemplateParamSet`` (the values in the template's order), ``SessionContext`` (our page id).
The answer is ``{"Response": {"SendStatusSet": [{"SerialNo", "Code": "Ok", …}], …}}`` or
``{"Response": {"Error": {"Code", "Message"}, …}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from bot.paging.providers import (
    PagingError,
    http_status_error,
    refusal,
    transport_error,
    unreadable,
)
from bot.paging.settings import PagingSettings
from core.clock import Clock

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "sms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
#: Error codes that may pass: Tencent's own trouble and request-rate limits.
RETRY_CODES = ("InternalError", "RequestLimitExceeded", "ResourceUnavailable")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_request(method: str, headers: Mapping[str, str], payload: bytes, query: str = "") -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders) for ``headers`` (every one of them is signed)."""
    names = sorted(k.lower() for k in headers)
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed = ";".join(names)
    return f"{method}\n/\n{query}\n{canonical_headers}\n{signed}\n{_sha256(payload)}", signed


def signature(secret_key: str, date: str, service: str, to_sign: str) -> str:
    """hex(HMAC-SHA256(SecretSigning, StringToSign)) with the derived key of ``date`` and ``service``."""
    secret_date = _hmac(f"TC3{secret_key}".encode(), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(*, secret_id: str, secret_key: str, service: str, timestamp: int,
                  headers: Mapping[str, str], payload: bytes) -> str:
    """The ``Authorization`` header of a POST with ``headers`` (to be signed) and ``payload``."""
    request, signed = canonical_request("POST", headers, payload)
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{_sha256(request.encode())}"
    return (f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature(secret_key, date, service, to_sign)}")


class TencentSmsClient:
    """SMS through Tencent Cloud (:class:`bot.paging.providers.Provider`; no voice calls).

    Args:
        settings: ``[paging]`` (keys, SmsSdkAppId, sign name, template, endpoint).
        http: the HTTP client (its timeout bounds each call).
        clock: for ``X-TC-Timestamp``.
    """

    name = "tencent"

    def __init__(self, settings: PagingSettings, *, http: httpx.AsyncClient, clock: Clock) -> None:
        self.settings, self.http, self.clock = settings, http, clock

    def request(self, action: str, body: Mapping[str, object]) -> tuple[dict[str, str], bytes]:
        """The headers (``Authorization`` included) and the payload of one call."""
        s = self.settings
        assert s.tencent_secret_key is not None
        payload = json.dumps(body, ensure_ascii=False).encode()
        timestamp = int(self.clock.now().timestamp())
        signed = {"Content-Type": CONTENT_TYPE, "Host": urlsplit(s.tencent_sms_url).netloc, "X-TC-Action": action}
        auth = authorization(secret_id=s.tencent_secret_id, secret_key=s.tencent_secret_key.get_secret_value(),
                             service=SERVICE, timestamp=timestamp, headers=signed, payload=payload)
        return {**signed, "Authorization": auth, "X-TC-Version": VERSION, "X-TC-Region": s.tencent_region,
                "X-TC-Timestamp": str(timestamp)}, payload

    async def send_sms(self, phone: str, values: Mapping[str, str], out_id: str) -> str:
        """``SendSms`` to one number; returns its ``SerialNo``."""
        s = self.settings
        headers, payload = self.request("SendSms", {
            "PhoneNumberSet": [f"+86{phone}"], "SmsSdkAppId": s.tencent_sms_app_id, "SignName": s.tencent_sign_name,
            "TemplateId": s.tencent_template_id, "TemplateParamSet": [values.get(n, "") for n in s.template_params],
            "SessionContext": out_id})
        what = "tencent SendSms"
        try:
            response = await self.http.post(s.tencent_sms_url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name, what) from None
        failed = http_status_error(response, self.name, what)
        if failed is not None:
            raise failed
        try:
            answer = response.json()["Response"]
        except (ValueError, KeyError, TypeError):
            raise unreadable(self.name, what, response.status_code) from None
        error = answer.get("Error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            code = str(error.get("Code", ""))
            raise refusal(self.name, what, code, str(error.get("Message", ""))[:200],
                          retryable=code.startswith(RETRY_CODES))
        statuses = answer.get("SendStatusSet") or [{}]
        status = statuses[0] if isinstance(statuses[0], dict) else {}
        code = str(status.get("Code", ""))
        if code != "Ok":
            raise refusal(self.name, what, code, str(status.get("Message", ""))[:200],
                          retryable=code.startswith(RETRY_CODES))
        return str(status.get("SerialNo") or "")

    async def call(self, phone: str, values: Mapping[str, str], out_id: str) -> str:
        """Not offered: voice calls go through Alibaba Cloud (``[paging]`` validation)."""
        raise PagingError("tencent: voice calls are not supported; configure Alibaba Cloud voice", retryable=False,
                          zh="腾讯云语音电话未接入，请配置阿里云语音服务")
