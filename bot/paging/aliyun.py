"""Alibaba Cloud (阿里云): SMS ``SendSms`` (dysmsapi) and the voice call ``SingleCallByTts``
(dyvmsapi), both RPC-style APIs version 2017-05-25 signed with signature V1.

Signature V1 (Alibaba Cloud, "Signature mechanism" of the RPC APIs): every parameter but
``Signature`` — the common ones (``AccessKeyId``, ``Action``, ``Format``, ``RegionId``,
``SignatureMethod`` HMAC-SHA1, ``SignatureNonce``, ``SignatureVersion`` 1.0,
``Timestamp`` in UTC ``yyyy-MM-ddTHH:mm:ssZ``, ``Version``) and the action's — is
percent-encoded per RFC 3986 (unreserved ``A-Z a-z 0-9 - _ . ~`` kept, UTF-8, space
``%20``), sorted by name, joined as ``k=v&k=v``; the string to sign is
``METHOD&%2F&`` + that query percent-encoded once more; the signature is
Base64(HMAC-SHA1(AccessKeySecret + "&", string to sign)). The request here is a POST
with the parameters, ``Signature`` included, as a form body.

A response is JSON: ``{"Code": "OK", "BizId" | "CallId": …, "RequestId": …}``; any other
``Code`` is a refusal (``isv.BUSINESS_LIMIT_CONTROL`` and ``Throttling…``: try later).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC
from urllib.parse import quote

import httpx

from bot.paging.providers import http_status_error, refusal, transport_error, unreadable
from bot.paging.settings import PagingSettings
from core.clock import Clock

VERSION = "2017-05-25"
#: Refusals that may pass: flow control.
RETRY_CODES = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling", "ServiceUnavailable", "InternalError")


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 ``value``: only ``A-Za-z0-9-_.~`` stay as they are."""
    return quote(value, safe="~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&`` + the percent-encoded canonicalized query of ``params`` (without ``Signature``)."""
    query = "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                     for k, v in sorted(params.items()) if k != "Signature")
    return f"{method}&{percent_encode('/')}&{percent_encode(query)}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """Signature V1: Base64(HMAC-SHA1(secret + "&", string to sign))."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunClient:
    """SMS and voice calls through Alibaba Cloud (:class:`bot.paging.providers.Provider`).

    Args:
        settings: ``[paging]`` (keys, sign name, templates, endpoints).
        http: the HTTP client (its timeout bounds each call).
        clock: for ``Timestamp``.
        nonce: ``SignatureNonce`` source (a fresh UUID per request).
    """

    name = "aliyun"

    def __init__(self, settings: PagingSettings, *, http: httpx.AsyncClient, clock: Clock,
                 nonce: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.settings, self.http, self.clock, self.nonce = settings, http, clock, nonce

    def signed(self, action: str, params: Mapping[str, str]) -> dict[str, str]:
        """``params`` with the common parameters and the signature (POST)."""
        secret = self.settings.aliyun_access_key_secret
        assert secret is not None
        every = {"AccessKeyId": self.settings.aliyun_access_key_id, "Action": action, "Format": "JSON",
                 "RegionId": self.settings.aliyun_region, "SignatureMethod": "HMAC-SHA1",
                 "SignatureNonce": self.nonce(), "SignatureVersion": "1.0",
                 "Timestamp": self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "Version": VERSION, **params}
        every["Signature"] = sign("POST", every, secret.get_secret_value())
        return every

    async def _call(self, url: str, action: str, params: Mapping[str, str], id_field: str) -> str:
        what = f"aliyun {action}"
        try:
            response = await self.http.post(url, data=self.signed(action, params))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.name, what) from None
        failed = http_status_error(response, self.name, what)
        if failed is not None:
            raise failed
        try:
            body = response.json()
        except ValueError:
            raise unreadable(self.name, what, response.status_code) from None
        code = str(body.get("Code", "")) if isinstance(body, dict) else ""
        if code != "OK":
            message = str(body.get("Message", ""))[:200] if isinstance(body, dict) else ""
            raise refusal(self.name, what, code or str(response.status_code), message,
                          retryable=code.startswith(RETRY_CODES))
        return str(body.get(id_field) or "")

    def _values(self, names: list[str], values: Mapping[str, str]) -> str:
        return json.dumps({name: values.get(name, "") for name in names}, ensure_ascii=False)

    async def send_sms(self, phone: str, values: Mapping[str, str], out_id: str) -> str:
        """``SendSms``; returns its ``BizId``."""
        s = self.settings
        return await self._call(s.aliyun_sms_url, "SendSms", {
            "PhoneNumbers": phone, "SignName": s.aliyun_sign_name, "TemplateCode": s.aliyun_sms_template,
            "TemplateParam": self._values(s.template_params, values), "OutId": out_id}, "BizId")

    async def call(self, phone: str, values: Mapping[str, str], out_id: str) -> str:
        """``SingleCallByTts``; returns its ``CallId``."""
        s = self.settings
        return await self._call(s.aliyun_voice_url, "SingleCallByTts", {
            "CalledShowNumber": s.aliyun_called_show_number, "CalledNumber": phone, "TtsCode": s.aliyun_tts_code,
            "TtsParam": self._values(s.tts_params, values), "PlayTimes": str(s.aliyun_play_times),
            "OutId": out_id}, "CallId")
