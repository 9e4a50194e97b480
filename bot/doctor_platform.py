"""``dutybot doctor``'s platform checks: the credentials of the configured chat platform,
by one harmless call, and this machine's clock against that call's ``Date`` header.

The calls are the ones the adapters make first, at the same configured addresses:
Telegram ``getMe`` (``[telegram] base_url``, ``proxy``), WeCom ``gettoken``
(``[wecom] api_base``), DingTalk ``accessToken`` (``[dingtalk] api_base``). They are
made with httpx directly, not through the adapters' clients, because the clock check
needs the response's headers; the platform's own package is imported first all the
same (:func:`bot.extras.import_adapter`), since ``dutybot run`` cannot start without it.
Secrets never appear in a finding: a failure names the host, never the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.config import Settings
from bot.doctor_report import Finding, Level
from bot.extras import import_adapter
from core.clock import Clock
from core.errors import MissingExtra

SKEW_WARNING = timedelta(seconds=30)
SKEW_ERROR = timedelta(minutes=5)
PLATFORM_ZH = {"telegram": "Telegram", "wecom": "企业微信", "dingtalk": "钉钉"}
_WECOM_CODES = {40013: "企业ID（wecom.corp_id）无效", 40001: "应用 Secret（wecom.secret）无效",
                60020: "本服务器的 IP 不在应用的“企业可信IP”中", 40056: "AgentId 无效"}


@dataclass(frozen=True)
class _Call:
    """One probe's answer: the finding, and the response (None: none came)."""

    finding: Finding
    response: httpx.Response | None
    host: str


def _host(url: str) -> str:
    """The host (and port) of ``url``, without any user information."""
    return urlsplit(url).netloc.rpartition("@")[2] or url


def _platform(level: Level, detail: str) -> Finding:
    return Finding("platform", "平台凭据", level, detail)


def _network_failure(exc: httpx.HTTPError, host: str, hint: str) -> Finding:
    kind = "连接超时" if isinstance(exc, httpx.TimeoutException) else "连接失败"
    return _platform(Level.error, f"无法连接 {host}（{kind}：{type(exc).__name__}）：{hint}")


async def _telegram(settings: Settings, module: Any, http: httpx.AsyncClient) -> _Call:
    api, _ = module.api_urls(settings.telegram.base_url)
    host = _host(api)
    if settings.telegram.token is None:
        return _Call(_platform(Level.error, "未设置 telegram.token（环境变量 DUTYBOT_TELEGRAM_TOKEN）"), None, host)
    try:
        response = await http.get(f"{api}{settings.telegram.token.get_secret_value()}/getMe")
    except httpx.HTTPError as exc:
        return _Call(_network_failure(exc, host, "请检查网络，必要时设置 telegram.proxy 或 telegram.base_url"),
                     None, host)
    body = _json(response)
    if response.status_code == 200 and body.get("ok"):
        name = (body.get("result") or {}).get("username", "")
        return _Call(_platform(Level.ok, f"Telegram 机器人 @{name} 的令牌有效（getMe，{host}）"), response, host)
    if response.status_code in (401, 404):
        return _Call(_platform(Level.error, f"Telegram 拒绝了令牌（HTTP {response.status_code}）：请核对 telegram.token"),
                     response, host)
    return _Call(_platform(Level.error, f"Telegram getMe 失败（{host}，HTTP {response.status_code}）"), response, host)


async def _wecom(settings: Settings, http: httpx.AsyncClient) -> _Call:
    wecom = settings.wecom
    host = _host(wecom.api_base)
    missing = [key for key, value in (("wecom.corp_id", wecom.corp_id), ("wecom.agent_id", wecom.agent_id),
                                      ("wecom.secret", wecom.secret)) if not value]
    if missing:
        return _Call(_platform(Level.error, f"未设置 {'、'.join(missing)}"), None, host)
    assert wecom.secret is not None
    try:
        response = await http.get(f"{wecom.api_base.rstrip('/')}/cgi-bin/gettoken",
                                  params={"corpid": wecom.corp_id, "corpsecret": wecom.secret.get_secret_value()})
    except httpx.HTTPError as exc:
        return _Call(_network_failure(exc, host, "请检查网络和 wecom.api_base"), None, host)
    body = _json(response)
    code = body.get("errcode", 0 if response.status_code == 200 else None)
    if response.status_code == 200 and code == 0 and body.get("access_token"):
        return _Call(_platform(Level.ok, f"企业微信应用凭据有效（gettoken，{host}）"), response, host)
    if isinstance(code, int) and code:
        why = _WECOM_CODES.get(code, str(body.get("errmsg", ""))[:80])
        return _Call(_platform(Level.error, f"企业微信拒绝了应用凭据（errcode {code}：{why}）：请核对 corp_id、secret "
                                            "和应用的企业可信IP"), response, host)
    return _Call(_platform(Level.error, f"企业微信 gettoken 失败（{host}，HTTP {response.status_code}）"), response, host)


async def _dingtalk(settings: Settings, http: httpx.AsyncClient) -> _Call:
    ding = settings.dingtalk
    host = _host(ding.api_base)
    missing = [key for key, value in (("dingtalk.client_id", ding.client_id),
                                      ("dingtalk.client_secret", ding.client_secret)) if not value]
    if missing:
        return _Call(_platform(Level.error, f"未设置 {'、'.join(missing)}"), None, host)
    assert ding.client_secret is not None
    try:
        response = await http.post(f"{ding.api_base.rstrip('/')}/v1.0/oauth2/accessToken",
                                   json={"appKey": ding.client_id, "appSecret": ding.client_secret.get_secret_value()})
    except httpx.HTTPError as exc:
        return _Call(_network_failure(exc, host, "请检查网络和 dingtalk.api_base"), None, host)
    body = _json(response)
    if response.status_code == 200 and body.get("accessToken"):
        return _Call(_platform(Level.ok, f"钉钉应用凭据有效（accessToken，{host}）"), response, host)
    if 400 <= response.status_code < 500:
        code = str(body.get("code", ""))[:60]
        return _Call(_platform(Level.error, f"钉钉拒绝了应用凭据（HTTP {response.status_code}{'，' + code if code else ''}）："
                                            "请核对 dingtalk.client_id 和 client_secret"), response, host)
    return _Call(_platform(Level.error, f"钉钉 accessToken 失败（{host}，HTTP {response.status_code}）"), response, host)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def skew_finding(local_now: datetime, response: httpx.Response | None, host: str) -> Finding:
    """This machine's clock against the ``Date`` of ``response`` (None: no answer came)."""
    if response is None:
        return Finding("clock", "时钟", Level.warning, f"未能与 {host} 对时（平台凭据的检查没有完成）")
    try:
        server = parsedate_to_datetime(response.headers["date"])
    except (KeyError, TypeError, ValueError):
        return Finding("clock", "时钟", Level.warning, f"未能与 {host} 对时（回应中没有可用的 Date 时间）")
    skew = local_now - server
    size = abs(skew)
    direction = "快" if skew > timedelta(0) else "慢"
    seconds = int(size.total_seconds())
    if size > SKEW_ERROR:
        return Finding("clock", "时钟", Level.error,
                       f"本机时间比 {host} {direction} {seconds} 秒，超过 5 分钟：平台会拒绝回调，定时提醒也会错时。"
                       "请校准时间（timedatectl set-ntp true）")
    if size > SKEW_WARNING:
        return Finding("clock", "时钟", Level.warning,
                       f"本机时间比 {host} {direction} {seconds} 秒（超过 30 秒）：请检查时间同步（timedatectl）")
    return Finding("clock", "时钟", Level.ok, f"本机时间与 {host} 相差 {seconds} 秒")


async def probe(settings: Settings, adapter: str, *, clock: Clock, timeout: float = 10.0) -> list[Finding]:
    """The platform's credentials and the clock, as two findings."""
    if adapter == "console":
        return [_platform(Level.ok, "控制台（console），不连接聊天平台，无需检查"),
                Finding("clock", "时钟", Level.ok, "控制台不连接聊天平台，没有可对照的平台时间，未检查")]
    try:
        module = import_adapter(adapter)
    except MissingExtra as exc:
        return [_platform(Level.error, exc.message),
                Finding("clock", "时钟", Level.warning, "未能与平台对时（平台的程序库未安装）")]
    proxy = settings.telegram.proxy if adapter == "telegram" else None
    async with httpx.AsyncClient(timeout=timeout, proxy=proxy) as http:
        if adapter == "telegram":
            call = await _telegram(settings, module, http)
        elif adapter == "wecom":
            call = await _wecom(settings, http)
        else:
            call = await _dingtalk(settings, http)
    return [call.finding, skew_finding(clock.now(), call.response, call.host)]
