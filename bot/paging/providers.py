"""What the paging worker needs from a cloud provider, and the error every client raises.

A provider client sends one SMS (:meth:`Provider.send_sms`) or places one text-to-speech
call (:meth:`Provider.call`) to an 11-digit mainland mobile number with the template
values by name (``number``, ``short``, ``grade``, ``type``, ``site``, ``rung``), and
returns the provider's id of it (Alibaba ``BizId`` / ``CallId``, Tencent ``SerialNo``).
It raises :class:`PagingError`; ``retryable`` says whether the same request may succeed
later (no answer, a 5xx, throttling) or never will (a wrong signature, template, number).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from core.errors import AdapterError

#: Chinese names of the providers, for the timeline and the admins.
PROVIDER_ZH = {"aliyun": "阿里云", "tencent": "腾讯云"}


class PagingError(AdapterError):
    """A provider call failed; ``message`` is English for the log and short (no secrets),
    ``zh`` the Chinese reason the timeline and the admins read."""

    def __init__(self, message: str, *, retryable: bool, zh: str = "") -> None:
        super().__init__(message, retryable=retryable)
        self.zh = zh or "发送失败"


#: What the providers' refusal codes mean, for people (the code itself is shown beside it).
REFUSALS_ZH = {
    "SignatureDoesNotMatch": "签名校验失败，请核对 AccessKey",
    "InvalidAccessKeyId.NotFound": "AccessKey 不存在或已停用",
    "isv.MOBILE_NUMBER_ILLEGAL": "手机号码无效",
    "isv.SMS_TEMPLATE_ILLEGAL": "短信模板不存在或未审核通过",
    "isv.SMS_SIGNATURE_ILLEGAL": "短信签名不存在或未审核通过",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板变量缺失",
    "isv.BUSINESS_LIMIT_CONTROL": "发送频率超过限制",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "AuthFailure.SignatureFailure": "签名校验失败，请核对 SecretKey",
    "AuthFailure.SecretIdNotFound": "SecretId 不存在或已停用",
    "AuthFailure.SignatureExpire": "签名已过期，请核对服务器时间",
    "InvalidParameterValue.IncorrectPhoneNumber": "手机号码无效",
    "FailedOperation.TemplateIncorrectOrUnapproved": "短信模板不存在或未审核通过",
    "FailedOperation.SignatureIncorrectOrUnapproved": "短信签名不存在或未审核通过",
    "FailedOperation.InsufficientBalanceInSmsPackage": "短信套餐余量不足",
    "LimitExceeded.PhoneNumberDailyLimit": "该号码当天发送条数超过限制",
}


def refusal(provider: str, what: str, code: str, message: str, *, retryable: bool) -> PagingError:
    """The provider refused: ``code`` and its meaning, in English and Chinese."""
    meaning = REFUSALS_ZH.get(code, "请按错误码查阅服务商文档")
    return PagingError(f"{what}: {code} {message}".strip(), retryable=retryable,
                       zh=f"{PROVIDER_ZH.get(provider, provider)}拒绝发送：{meaning}（错误码 {code or '无'}）")


class Provider(Protocol):
    name: str

    async def send_sms(self, phone: str, values: Mapping[str, str], out_id: str) -> str: ...

    async def call(self, phone: str, values: Mapping[str, str], out_id: str) -> str: ...


@dataclass(frozen=True)
class Providers:
    """Who sends SMS and who places voice calls (None: that channel is not configured)."""

    sms: Provider
    voice: Provider | None


def transport_error(exc: httpx.HTTPError, provider: str, what: str) -> PagingError:
    """An HTTP failure as a retryable :class:`PagingError` (the request may not have arrived)."""
    return PagingError(f"{what}: {type(exc).__name__}", retryable=True,
                       zh=f"{PROVIDER_ZH.get(provider, provider)}无应答（网络故障或超时）")


def http_status_error(response: httpx.Response, provider: str, what: str) -> PagingError | None:
    """A 5xx or 429 as a retryable error; None for anything else (read the body)."""
    if response.status_code >= 500 or response.status_code == 429:
        return PagingError(f"{what}: HTTP {response.status_code}", retryable=True,
                           zh=f"{PROVIDER_ZH.get(provider, provider)}暂时无法服务（HTTP {response.status_code}）")
    return None


def unreadable(provider: str, what: str, status: int) -> PagingError:
    """An answer that is not the provider's JSON (a proxy's page, a wrong address)."""
    return PagingError(f"{what}: HTTP {status}, not the provider's answer", retryable=False,
                       zh=f"{PROVIDER_ZH.get(provider, provider)}的答复无法识别（HTTP {status}），请核对接口地址")
