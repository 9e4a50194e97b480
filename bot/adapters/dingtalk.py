"""DingTalk (钉钉): an enterprise-internal app robot (企业内部应用机器人), two-way.

Receiving, one of (``[dingtalk] mode``):

* **stream** (default; no public URL): :class:`~bot.adapters.dingtalk_stream.StreamClient`
  keeps a WebSocket to DingTalk's Stream gateway subscribed to the bot-message topic
  ``/v1.0/im/bot/messages/get``; every frame is answered (ACK), callbacks once handled.
* **callback**: DingTalk posts each message to ``/dingtalk/callback`` on the HTTP
  service with the headers ``timestamp`` and ``sign``, checked with the app secret
  (:func:`bot.adapters.dingtalk_sign.verify_callback`): a forged or missing sign, or a
  timestamp an hour or more away, is refused with 403. The request is answered
  ``200 {}`` at once and handled in the background.

Either way the message (``conversationType`` "1" private / "2" group, ``senderStaffId``,
``text.content`` …) becomes an :class:`~core.messages.Inbound`: a private chat's id is
the sender's staff id (so a bound person's chat id is their staffId), a group's is its
``conversationId`` (= ``openConversationId``). Group text starts after the @mention, so
leading whitespace is stripped. ``msgId`` is the update id: the dispatcher's ledger makes
a redelivered message (the gateway repeats unanswered callbacks) a no-op, and a copy
arriving while the first is still being handled is dropped here. Messages of one chat
are handled one at a time, in order.

Sending (``send``), by chat id:

* ``"robot"``: the custom robot (自定义机器人) webhook, signed (加签) with
  :func:`~bot.adapters.dingtalk_sign.robot_url` when a secret is set;
* a chat with a live ``sessionWebhook`` (remembered from its latest inbound message,
  until ``sessionWebhookExpiredTime`` less a minute): that webhook;
* otherwise a group (an id seen as a group, or one starting with ``cid``):
  ``POST /v1.0/robot/groupMessages/send``; a person (staff id):
  ``POST /v1.0/robot/oToMessages/batchSend``. Both carry the app's access token
  (``x-acs-dingtalk-access-token``), fetched from ``/v1.0/oauth2/accessToken``, cached
  and refreshed five minutes early (or when refused with 401).

Buttons: an ActionCard whose buttons are ``dtmd://dingtalkclient/sendMessage?content=
<URL-encoded command>`` links. Pressing one makes the DingTalk client send the command
into the chat as the person's own message, so a press arrives as ordinary text
(``is_button`` False) and goes through the same path as a typed command. At most
:data:`MAX_CARD_BUTTONS` buttons (the robot templates ``sampleActionCard`` …
``sampleActionCard5``); further buttons are listed as typed commands. In groups the
robot only receives messages that @-mention it, so group cards also list the typed
commands with that hint. The card text is the plain message text made safe for
DingTalk's Markdown; handlers always send plain text (``markdown`` is False).

Limits (enforced by the outbox sender, declared in :attr:`DingTalkAdapter.limits`):
20 calls/s for the whole bot (DingTalk's per-app, per-API QPS limit of a standard
organisation; beyond it ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``), and 20
messages a minute per group (the custom robot's documented 20/min, applied to every group
to be safe: the rate limiter's ``group`` scope cannot single out the robot). Errors become
:class:`~core.errors.AdapterError`: network failures, 5xx and throttling are retryable
(``retry_after`` 1 s for QPS limits, 60 s for errcode 130101 "too fast"); an invalid
user or a robot no longer in the group is permanent (``permanent_reason="blocked"``);
other refusals are permanent.

Secrets (app secret, tokens, session webhooks, the robot's ``access_token`` and ``sign``,
Stream tickets) never reach logs: a filter masks them in ``httpx`` and ``websockets``
request lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.base import (
    Adapter,
    Capabilities,
    InboundHandler,
    RateWindow,
    text_with_commands,
)
from bot.adapters.dingtalk_sign import DingTalkSignError, robot_url, verify_callback
from bot.adapters.dingtalk_stream import BOT_MESSAGE_TOPIC, StreamClient
from bot.config import DingTalkSettings
from bot.http import read_body
from core.clock import Clock, SystemClock
from core.errors import AdapterError
from core.messages import Button, Inbound, Outbound

log = logging.getLogger("dutybot.dingtalk")

CALLBACK_PATH = "/dingtalk/callback"
ROBOT_CHAT_ID = "robot"
USER_AGENT = "dutybot"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

#: ``sampleActionCard`` (one button) to ``sampleActionCard5`` (five, stacked).
MAX_CARD_BUTTONS = 5
#: A link that makes the DingTalk client send ``content`` into the chat as a message.
SEND_MESSAGE_URL = "dtmd://dingtalkclient/sendMessage?content="
#: Longest message text. ``groupMessages/send`` caps ``msgParam`` at 15,000 bytes; 4,000
#: CJK characters are 12,000 bytes of UTF-8, leaving room for the card's markup.
MAX_TEXT = 4000
CARD_TITLE_CHARS = 30
DEFAULT_TITLE = "值班机器人"

#: A session webhook is not used in its last minute (a send may take that long).
SESSION_MARGIN_MS = 60_000
#: Tokens are refreshed this long before they expire (capped at half their lifetime).
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
QPS_RETRY_AFTER = 1.0
ROBOT_RETRY_AFTER = 60.0
STOP_GRACE_SECONDS = 1.0
MAX_REMEMBERED_CHATS = 5000

#: Webhook errcodes (custom robot and session webhooks).
ERR_SYSTEM_BUSY = -1
ERR_TOO_FAST = 130101          # more than 20 messages a minute
ERR_ROBOT_SECURITY = 310000    # keyword, IP or signature check failed
_WEBHOOK_CONFIG_ERRORS = {
    300001: "invalid robot access_token",
    310000: "security check failed (keyword, IP allow-list or signature)",
    400101: "robot access_token missing",
    400102: "robot is disabled",
}

_SECRET_QUERY_RE = re.compile(r"(?<=[?&])(access_token|session|sign|ticket)=[^&\s\"']*")


# --------------------------------------------------------------------------- log hygiene


def redact(text: str) -> str:
    """``text`` with the values of ``access_token``, ``session``, ``sign`` and
    ``ticket`` query parameters replaced by ``***``."""
    return _SECRET_QUERY_RE.sub(lambda m: f"{m.group(1)}=***", text)


class _RedactFilter(logging.Filter):
    """Masks secrets in the request lines ``httpx`` and ``websockets`` log."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_REDACT_FILTER = _RedactFilter()


def _install_log_redaction() -> None:
    for name in ("httpx", "websockets.client"):
        logger = logging.getLogger(name)
        if _REDACT_FILTER not in logger.filters:
            logger.addFilter(_REDACT_FILTER)


# --------------------------------------------------------------------------- rendering


def command_url(command: str) -> str:
    """The button link that sends ``command`` into the chat when pressed."""
    return SEND_MESSAGE_URL + quote(command, safe="")


def card_title(text: str) -> str:
    """A card's title (shown in the chat list and notifications): the first line."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= CARD_TITLE_CHARS else line[:CARD_TITLE_CHARS - 1] + "…"
    return DEFAULT_TITLE


_MD_INLINE = re.compile(r"([\\`*_\[\]~<>|])")
_MD_LINE_MARK = re.compile(r"^(\s*)([#>+\-])(?=\s|$)")
_MD_LINE_NUMBER = re.compile(r"^(\s*\d+)\.(?=\s|$)")


def to_markdown(text: str) -> str:
    """Plain text as DingTalk Markdown that shows the same characters and line breaks."""
    lines = []
    for line in text.split("\n"):
        line = _MD_INLINE.sub(r"\\\1", line)
        line = _MD_LINE_MARK.sub(lambda m: m.group(1) + "\\" + m.group(2), line)
        line = _MD_LINE_NUMBER.sub(lambda m: m.group(1) + "\\.", line)
        lines.append(line)
    return "  \n".join(lines)


def _typed_commands(buttons: Sequence[Button], *, group: bool) -> str:
    if not buttons:
        return ""
    head = "在群内 @我 并发送：" if group else "也可回复："
    return "\n\n" + head + "\n" + "\n".join(f"· {b.label}：{b.command}" for b in buttons)


@dataclass(frozen=True)
class Rendered:
    """A message as DingTalk shows it: plain text, or a card with link buttons."""

    text: str
    title: str
    buttons: tuple[Button, ...] = ()

    @property
    def is_card(self) -> bool:
        """Whether it is sent as an ActionCard."""
        return bool(self.buttons)


def render(message: Outbound, *, group: bool, max_text: int = MAX_TEXT) -> Rendered:
    """The text and card buttons for ``message`` in a private chat or a group."""
    shown = message.buttons[:MAX_CARD_BUTTONS]
    typed = message.buttons if group else message.buttons[MAX_CARD_BUTTONS:]
    suffix = _typed_commands(typed, group=group)
    budget = max(max_text // 2, max_text - len(suffix))
    body = text_with_commands(Outbound(message.text), Capabilities(max_text=budget))
    return Rendered(text=body + suffix, title=card_title(message.text), buttons=shown)


def webhook_payload(rendered: Rendered) -> dict[str, Any]:
    """The body for a session webhook or the custom robot."""
    if not rendered.is_card:
        return {"msgtype": "text", "text": {"content": rendered.text}}
    return {"msgtype": "actionCard", "actionCard": {
        "title": rendered.title, "text": to_markdown(rendered.text), "btnOrientation": "0",
        "btns": [{"title": b.label, "actionURL": command_url(b.command)}
                 for b in rendered.buttons]}}


def api_payload(rendered: Rendered) -> tuple[str, dict[str, str]]:
    """``(msgKey, msgParam)`` for the robot message APIs."""
    if not rendered.is_card:
        return "sampleText", {"content": rendered.text}
    param = {"title": rendered.title, "text": to_markdown(rendered.text)}
    if len(rendered.buttons) == 1:
        button = rendered.buttons[0]
        return "sampleActionCard", {**param, "singleTitle": button.label,
                                    "singleURL": command_url(button.command)}
    for index, button in enumerate(rendered.buttons, start=1):
        param[f"actionTitle{index}"] = button.label
        param[f"actionURL{index}"] = command_url(button.command)
    return f"sampleActionCard{len(rendered.buttons)}", param


# --------------------------------------------------------------------------- errors


def _retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _hint(body: dict[str, Any]) -> str:
    text = f"{body.get('code', '')} {body.get('message', '') or body.get('errmsg', '')}"
    return redact(text.strip()).encode("ascii", "replace").decode("ascii")[:160]


_THROTTLE_MARKS = ("qpslimit", "throttl", "flowcontrol", "toofast", "too.fast", "ratelimit",
                   "too.many")
_USER_MARKS = ("userid", "staffid", "staff", "user.not", "usernotexist", "notexist.user")
_GROUP_MARKS = ("openconversationid", "conversation", "notingroup", "not.in.group", "group",
                "chat")


def openapi_error(status: int, body: dict[str, Any], *, what: str,
                  target: Literal["user", "group"] | None = None,
                  retry_after: float | None = None) -> AdapterError:
    """The :class:`AdapterError` for a failed OpenAPI (``api.dingtalk.com``) call.

    DingTalk answers errors with an HTTP status and ``{"code", "message"}``; throttling
    comes as 429 or as 403 ``Forbidden.AccessDenied.QpsLimit…``.

    Args:
        status: the HTTP status.
        body: the decoded error body.
        what: the call, for the message.
        target: whom the call addressed; a code naming that recipient is permanent.
        retry_after: the ``Retry-After`` header, if any.
    """
    code = str(body.get("code") or "")
    lowered = code.lower()
    if status == 429 or any(mark in lowered for mark in _THROTTLE_MARKS):
        return AdapterError(f"DingTalk {what}: throttled (HTTP {status}, {code or 'no code'})",
                            retryable=True, retry_after=retry_after or QPS_RETRY_AFTER)
    if status >= 500:
        return AdapterError(f"DingTalk {what}: HTTP {status} from server", retryable=True,
                            retry_after=retry_after)
    if status == 401 or lowered == "invalidauthentication":
        return AdapterError(f"DingTalk {what}: access token refused even after a refresh",
                            retryable=True, retry_after=QPS_RETRY_AFTER)
    if target == "user" and any(mark in lowered for mark in _USER_MARKS):
        return AdapterError(f"DingTalk {what}: the user cannot be reached ({_hint(body)})",
                            retryable=False, permanent_reason="blocked")
    if target == "group" and any(mark in lowered for mark in _GROUP_MARKS):
        return AdapterError(f"DingTalk {what}: the robot cannot post to this group "
                            f"({_hint(body)})", retryable=False, permanent_reason="blocked")
    return AdapterError(f"DingTalk {what}: refused (HTTP {status}, {_hint(body)})",
                        retryable=False)


def webhook_error(errcode: int, body: dict[str, Any], *, what: str) -> AdapterError:
    """The :class:`AdapterError` for a non-zero webhook ``errcode``."""
    if errcode == ERR_TOO_FAST:
        return AdapterError(f"DingTalk {what}: sending too fast (errcode {errcode})",
                            retryable=True, retry_after=ROBOT_RETRY_AFTER)
    if errcode == ERR_SYSTEM_BUSY:
        return AdapterError(f"DingTalk {what}: system busy (errcode -1)", retryable=True,
                            retry_after=QPS_RETRY_AFTER)
    if errcode in _WEBHOOK_CONFIG_ERRORS:
        return AdapterError(f"DingTalk {what}: {_WEBHOOK_CONFIG_ERRORS[errcode]} "
                            f"(errcode {errcode})", retryable=False)
    return AdapterError(f"DingTalk {what}: refused with errcode {errcode} ({_hint(body)})",
                        retryable=False)


# --------------------------------------------------------------------------- API client


class DingTalkApi:
    """The app's OpenAPI calls, its webhooks, and its access token.

    Args:
        client_id: the app's Client ID (AppKey).
        client_secret: the app's Client Secret (AppSecret); never logged.
        robot_code: the robot's code (usually the Client ID).
        api_base: the OpenAPI root; tests point it at the fake.
        clock: decides when the cached token is due for a refresh.
        http: a shared client; when None one is made (and closed by :meth:`aclose`).
    """

    def __init__(self, *, client_id: str, client_secret: str, robot_code: str,
                 api_base: str, clock: Clock, http: httpx.AsyncClient | None = None) -> None:
        _install_log_redaction()
        self.client_id = client_id
        self._secret = client_secret
        self.robot_code = robot_code
        self.api_base = api_base.rstrip("/")
        self.clock = clock
        self._own_http = http is None
        self._http = http or self._new_http()
        self._token: str | None = None
        self._refresh_at: datetime | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"DingTalkApi(client_id={self.client_id!r})"

    @staticmethod
    def _new_http() -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, headers={"User-Agent": USER_AGENT})

    def reopen(self) -> None:
        """Make a new HTTP client if this object's own one was closed."""
        if self._own_http and self._http.is_closed:
            self._http = self._new_http()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    async def _post(self, url: str, body: dict[str, Any], *, what: str,
                    headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            return await self._http.post(url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise AdapterError(f"DingTalk {what}: timed out ({type(exc).__name__})",
                               retryable=True) from None
        except httpx.TransportError as exc:
            raise AdapterError(f"DingTalk {what}: network error ({type(exc).__name__})",
                               retryable=True) from None
        except RuntimeError:  # the client was closed: the adapter is stopping
            raise AdapterError(f"DingTalk {what}: the adapter is stopped",
                               retryable=True) from None

    # ------------------------------------------------------------------ token

    def _token_fresh(self) -> bool:
        return (self._token is not None and self._refresh_at is not None
                and self.clock.now() < self._refresh_at)

    async def token(self) -> str:
        """A valid access token, from the cache or fetched (one fetch for all waiters).

        Raises:
            AdapterError: the credentials were refused (``retryable=False``), or
                DingTalk could not be reached.
        """
        if self._token_fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if self._token_fresh():
                assert self._token is not None
                return self._token
            response = await self._post(f"{self.api_base}/v1.0/oauth2/accessToken",
                                        {"appKey": self.client_id, "appSecret": self._secret},
                                        what="accessToken")
            body = _json_object(response)
            if response.status_code >= 500 or response.status_code == 429:
                raise openapi_error(response.status_code, body, what="accessToken",
                                    retry_after=_retry_after_header(response))
            if response.status_code >= 400:
                raise AdapterError(f"DingTalk accessToken: credentials refused "
                                   f"(HTTP {response.status_code}, {_hint(body)})",
                                   retryable=False)
            token, expire_in = body.get("accessToken"), body.get("expireIn", 7200)
            if not isinstance(token, str) or not token:
                raise AdapterError("DingTalk accessToken: response has no accessToken",
                                   retryable=True)
            try:
                lifetime = max(1.0, float(expire_in))
            except (TypeError, ValueError):
                lifetime = 7200.0
            margin = min(TOKEN_REFRESH_MARGIN_SECONDS, lifetime / 2)
            self._token = token
            self._refresh_at = self.clock.now() + timedelta(seconds=lifetime - margin)
            log.info("DingTalk access token fetched for app %s (valid %ds)", self.client_id,
                     int(lifetime))
            return token

    def invalidate_token(self, token: str) -> None:
        """Forget the cached token if it is still ``token``."""
        if self._token == token:
            self._token = self._refresh_at = None

    async def call(self, path: str, body: dict[str, Any], *, what: str,
                   target: Literal["user", "group"] | None = None) -> dict[str, Any]:
        """POST ``body`` to an OpenAPI ``path`` with the access token; the JSON answer.

        A 401 drops the token and retries once with a fresh one.

        Raises:
            AdapterError: mapped by :func:`openapi_error`.
        """
        for attempt in (1, 2):
            token = await self.token()
            response = await self._post(f"{self.api_base}{path}", body, what=what,
                                        headers={"x-acs-dingtalk-access-token": token})
            answer = _json_object(response)
            if response.status_code < 400:
                return answer
            if attempt == 1 and (response.status_code == 401 or str(
                    answer.get("code", "")).lower() == "invalidauthentication"):
                log.warning("DingTalk %s: access token refused; refreshing once", what)
                self.invalidate_token(token)
                continue
            raise openapi_error(response.status_code, answer, what=what, target=target,
                                retry_after=_retry_after_header(response))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ stream

    async def open_stream(self, subscriptions: Sequence[dict[str, str]]) -> tuple[str, str]:
        """Register a Stream connection; ``(endpoint, ticket)``.

        Raises:
            AdapterError: refused (``retryable=False``: wrong Client ID or Secret) or
                not reachable.
        """
        what = "gateway/connections/open"
        response = await self._post(f"{self.api_base}/v1.0/gateway/connections/open", {
            "clientId": self.client_id, "clientSecret": self._secret,
            "subscriptions": list(subscriptions), "ua": USER_AGENT}, what=what)
        body = _json_object(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise openapi_error(response.status_code, body, what=what,
                                retry_after=_retry_after_header(response))
        if response.status_code >= 400:
            raise AdapterError(f"DingTalk {what}: refused (HTTP {response.status_code}, "
                               f"{_hint(body)})", retryable=False)
        endpoint, ticket = body.get("endpoint"), body.get("ticket")
        if not isinstance(endpoint, str) or not endpoint or not isinstance(ticket, str) \
                or not ticket:
            raise AdapterError(f"DingTalk {what}: response has no endpoint or ticket",
                               retryable=True)
        return endpoint, ticket

    # ------------------------------------------------------------------ messages

    async def send_to_user(self, staff_id: str, msg_key: str, msg_param: dict[str, str]) -> str:
        """A robot message in the person's private chat with the robot (batchSend).

        Returns:
            DingTalk's ``processQueryKey``.
        """
        what = "oToMessages/batchSend"
        answer = await self.call("/v1.0/robot/oToMessages/batchSend", {
            "robotCode": self.robot_code, "userIds": [staff_id], "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False)}, what=what, target="user")
        if staff_id in (answer.get("invalidStaffIdList") or []):
            raise AdapterError(f"DingTalk {what}: staff id is invalid or outside the app's "
                               "range", retryable=False, permanent_reason="blocked")
        if staff_id in (answer.get("flowControlledStaffIdList") or []):
            raise AdapterError(f"DingTalk {what}: the user's messages are flow-controlled",
                               retryable=True, retry_after=ROBOT_RETRY_AFTER)
        return str(answer.get("processQueryKey") or "")

    async def send_to_group(self, conversation_id: str, msg_key: str,
                            msg_param: dict[str, str]) -> str:
        """A robot message in a group the robot is in (groupMessages/send).

        Returns:
            DingTalk's ``processQueryKey``.
        """
        answer = await self.call("/v1.0/robot/groupMessages/send", {
            "robotCode": self.robot_code, "openConversationId": conversation_id,
            "msgKey": msg_key, "msgParam": json.dumps(msg_param, ensure_ascii=False)},
            what="groupMessages/send", target="group")
        return str(answer.get("processQueryKey") or "")

    async def post_webhook(self, url: str, payload: dict[str, Any], *, what: str) -> None:
        """POST to a session webhook or the custom robot (``errcode`` answers).

        Raises:
            AdapterError: mapped by :func:`webhook_error` (HTTP 5xx/429: retryable).
        """
        response = await self._post(url, payload, what=what)
        body = _json_object(response)
        status = response.status_code
        if status == 429 or status >= 500:
            raise AdapterError(f"DingTalk {what}: HTTP {status}", retryable=True,
                               retry_after=_retry_after_header(response)
                               or (ROBOT_RETRY_AFTER if status == 429 else None))
        if status >= 400:
            raise AdapterError(f"DingTalk {what}: HTTP {status} ({_hint(body)})",
                               retryable=False)
        try:
            errcode = int(body.get("errcode", 0))
        except (TypeError, ValueError):
            errcode = ERR_SYSTEM_BUSY
        if errcode != 0:
            raise webhook_error(errcode, body, what=what)


# --------------------------------------------------------------------------- adapter


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


@dataclass
class _Session:
    url: str
    expires_ms: int


class DingTalkAdapter(Adapter):
    """A DingTalk enterprise-internal app robot.

    Args:
        settings: ``[dingtalk]`` (mode, credentials, robot code, API root, custom robot).
        clock: the current time (token and session expiry, callback and robot
            signatures); the system clock by default.
        http: a shared HTTP client (tests); by default the adapter makes its own.
        retry_base_seconds: the first wait after a failed Stream connection.
        stop_grace_seconds: how long :meth:`stop` lets messages in hand finish.

    Raises:
        AdapterError: the Client ID or Client Secret is not configured
            (``retryable=False``, a Chinese message naming the variables).
    """

    platform = "dingtalk"
    capabilities = Capabilities(buttons=True, edit=False, mentions=False, markdown=False,
                                max_text=MAX_TEXT)
    limits = (RateWindow("global", 20, 1.0), RateWindow("group", 20, 60.0))

    def __init__(self, settings: DingTalkSettings, *, clock: Clock | None = None,
                 http: httpx.AsyncClient | None = None,
                 retry_base_seconds: float = 1.0,
                 stop_grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        secret = _secret(settings.client_secret)
        missing = [name for name, value in (("DUTYBOT_DINGTALK_CLIENT_ID", settings.client_id),
                                            ("DUTYBOT_DINGTALK_CLIENT_SECRET", secret))
                   if not value.strip()]
        if missing:
            raise AdapterError(
                "未配置钉钉应用凭证：请设置环境变量 " + " 和 ".join(missing)
                + "（或配置文件 [dingtalk] client_id、client_secret，"
                "即钉钉开发者后台应用的 Client ID 与 Client Secret）。", retryable=False)
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.api = DingTalkApi(client_id=settings.client_id.strip(), client_secret=secret,
                               robot_code=(settings.robot_code or settings.client_id).strip(),
                               api_base=settings.api_base, clock=self.clock, http=http)
        self._app_secret = secret
        self.stream: StreamClient | None = None
        if settings.mode == "stream":
            self.stream = StreamClient(
                open_connection=self._open_stream, on_callback=self._on_stream_callback,
                retry_base_seconds=retry_base_seconds, stop_grace_seconds=stop_grace_seconds)
        self.stop_grace = stop_grace_seconds
        self.handler: InboundHandler | None = None
        self._sessions: dict[str, _Session] = {}
        self._groups: dict[str, bool] = {}
        self._in_hand: set[str] = set()
        self._chat_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self, handler: InboundHandler) -> None:
        """Begin receiving (stream: connect; callback: wait for DingTalk's posts).

        Raises:
            AdapterError: DingTalk refused the Client ID or Secret (``retryable=False``).
        """
        self.handler = handler
        self.api.reopen()
        try:
            if self.stream is not None:
                await self.stream.start()
                log.info("DingTalk adapter receiving in stream mode (app %s)",
                         self.api.client_id)
            else:
                try:
                    await self.api.token()
                except AdapterError as exc:
                    if not exc.retryable:
                        raise
                    log.warning("DingTalk is not reachable yet (%s); sending will retry",
                                exc.message)
                log.info("DingTalk adapter receiving callbacks at %s (app %s)", CALLBACK_PATH,
                         self.api.client_id)
        except AdapterError as exc:
            if exc.retryable:
                raise
            self.handler = None
            raise AdapterError(
                "钉钉拒绝了应用凭证：请检查 DUTYBOT_DINGTALK_CLIENT_ID 与 "
                "DUTYBOT_DINGTALK_CLIENT_SECRET 是否与开发者后台一致、应用是否已发布"
                f"（{exc.message}）。", retryable=False) from None

    async def stop(self) -> None:
        """Stop receiving, let messages in hand finish briefly, close connections."""
        if self.stream is not None:
            await self.stream.stop()
        if self._background:
            await asyncio.wait(set(self._background), timeout=self.stop_grace)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self.api.aclose()
        self.handler = None

    # ------------------------------------------------------------ receiving

    async def _open_stream(self) -> tuple[str, str]:
        return await self.api.open_stream([{"type": "CALLBACK", "topic": BOT_MESSAGE_TOPIC}])

    async def _on_stream_callback(self, topic: str, data: dict[str, Any]) -> None:
        if topic != BOT_MESSAGE_TOPIC:
            log.info("DingTalk Stream: ignoring callback topic %s", topic)
            return
        await self.deliver(data)

    def to_inbound(self, data: dict[str, Any]) -> Inbound | None:
        """The platform-neutral message (and the chat's session webhook remembered), or
        None when there is nothing for the bot in it."""
        msg_id = str(data.get("msgId") or "")
        sender = str(data.get("senderStaffId") or data.get("senderId") or "")
        is_group = str(data.get("conversationType", "1")) == "2"
        chat_id = str(data.get("conversationId") or "") if is_group else sender
        if not msg_id or not sender or not chat_id:
            log.warning("DingTalk message without msgId, sender or conversation; ignored")
            return None
        self._remember(chat_id, is_group, data)
        text = _message_text(data).strip()
        if not text:
            log.info("DingTalk %s message %s has no text; ignored", data.get("msgtype"), msg_id)
            return None
        received_at = None
        created = data.get("createAt")
        if isinstance(created, int | float) and created > 0:
            received_at = datetime.fromtimestamp(created / 1000, UTC)
        return Inbound(platform=self.platform, chat_id=chat_id, sender_id=sender,
                       sender_name=str(data.get("senderNick") or ""), text=text,
                       update_id=msg_id, is_group=is_group, received_at=received_at, raw=data)

    def _remember(self, chat_id: str, is_group: bool, data: dict[str, Any]) -> None:
        if len(self._groups) >= MAX_REMEMBERED_CHATS and chat_id not in self._groups:
            self._forget_stale()
        self._groups[chat_id] = is_group
        url, expires = data.get("sessionWebhook"), data.get("sessionWebhookExpiredTime")
        if isinstance(url, str) and url.startswith(("https://", "http://")) \
                and isinstance(expires, int | float):
            self._sessions[chat_id] = _Session(url, int(expires))

    def _forget_stale(self) -> None:
        now = self._now_ms()
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires_ms > now}
        if len(self._groups) >= MAX_REMEMBERED_CHATS:
            keep = list(self._groups.items())[-(MAX_REMEMBERED_CHATS // 2):]
            self._groups = dict(keep)

    async def deliver(self, data: dict[str, Any]) -> None:
        """Hand one bot message to the bot: one at a time per chat, in arrival order;
        a copy of a message still in hand is dropped (the ledger catches later ones).

        Raises:
            Exception: whatever the bot's handler raised (the frame is then not confirmed).
        """
        handler = self.handler
        if handler is None:
            raise RuntimeError("the DingTalk adapter is not started")
        inbound = self.to_inbound(data)
        if inbound is None:
            return
        if inbound.update_id in self._in_hand:
            log.info("DingTalk message %s is already being handled; copy ignored",
                     inbound.update_id)
            return
        self._in_hand.add(inbound.update_id)
        key = inbound.chat_id
        lock, users = self._chat_locks.get(key, (asyncio.Lock(), 0))
        self._chat_locks[key] = (lock, users + 1)
        try:
            async with lock:
                await handler(inbound)
        finally:
            self._in_hand.discard(inbound.update_id)
            lock, users = self._chat_locks[key]
            if users <= 1:
                del self._chat_locks[key]
            else:
                self._chat_locks[key] = (lock, users - 1)

    # ------------------------------------------------------------ HTTP callback

    def http_routes(self) -> list[BaseRoute]:
        """The callback route, in callback mode (stream mode needs no HTTP service)."""
        if self.settings.mode != "callback":
            return []
        return [Route(CALLBACK_PATH, self._callback, methods=["POST"])]

    async def _callback(self, request: Request) -> Response:
        peer = request.client.host if request.client else "?"
        try:
            verify_callback(request.headers.get("timestamp", ""), request.headers.get("sign", ""),
                            self._app_secret, self._now_ms())
        except DingTalkSignError as exc:
            log.warning("refused a DingTalk callback from %s: %s", peer, exc.code)
            return Response(status_code=403)
        body = await read_body(request)
        if body is None:
            return Response(status_code=413)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.warning("refused a DingTalk callback whose body is not a JSON object")
            return Response(status_code=400)
        if self.handler is None:
            return Response(status_code=503)
        task = asyncio.create_task(self._deliver_logged(data), name="dingtalk-callback")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return JSONResponse({})

    async def _deliver_logged(self, data: dict[str, Any]) -> None:
        try:
            await self.deliver(data)
        except Exception:
            log.exception("handling DingTalk message %s failed", data.get("msgId"))

    # ------------------------------------------------------------ sending

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def is_group_chat(self, chat_id: str) -> bool:
        """Whether ``chat_id`` is a group: as seen in its messages, else by the shape of
        DingTalk's conversation ids (``cid…``); anything else is a staff id."""
        known = self._groups.get(chat_id)
        return known if known is not None else chat_id.startswith("cid")

    def _live_session(self, chat_id: str) -> str | None:
        session = self._sessions.get(chat_id)
        if session is None:
            return None
        if session.expires_ms - self._now_ms() <= SESSION_MARGIN_MS:
            del self._sessions[chat_id]
            return None
        return session.url

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        """Deliver ``message``; see the module docstring for the route taken.

        ``is_group`` is not trusted: the outbox also calls private chats of unbound
        people "groups"; the chat id decides.

        Returns:
            DingTalk's ``processQueryKey`` for API sends, ``""`` for webhooks.
        """
        if chat_id == ROBOT_CHAT_ID:
            await self._send_robot(message)
            return ""
        group = self.is_group_chat(chat_id)
        rendered = render(message, group=group)
        session = self._live_session(chat_id)
        if session is not None:
            try:
                await self.api.post_webhook(session, webhook_payload(rendered),
                                            what="sessionWebhook")
                return ""
            except AdapterError as exc:
                if exc.retryable:
                    raise
                log.warning("DingTalk session webhook of chat %s refused (%s); sending through "
                            "the API instead", chat_id, exc.message)
                self._sessions.pop(chat_id, None)
        msg_key, msg_param = api_payload(rendered)
        if group:
            return await self.api.send_to_group(chat_id, msg_key, msg_param)
        return await self.api.send_to_user(chat_id, msg_key, msg_param)

    async def _send_robot(self, message: Outbound) -> None:
        webhook = _secret(self.settings.robot_webhook)
        if not webhook:
            raise AdapterError(
                "未配置钉钉自定义机器人：请设置 DUTYBOT_DINGTALK_ROBOT_WEBHOOK（及加签密钥 "
                "DUTYBOT_DINGTALK_ROBOT_SECRET），或把群聊改为机器人所在群的会话 ID。",
                retryable=False)
        secret = _secret(self.settings.robot_secret)
        url = robot_url(webhook, secret, self._now_ms()) if secret else webhook
        await self.api.post_webhook(url, webhook_payload(render(message, group=True)),
                                    what="custom robot")


def _message_text(data: dict[str, Any]) -> str:
    """The text of a bot message: ``text``, ``richText`` parts, or an audio message's
    speech recognition; empty for pictures, files and others."""
    msgtype = data.get("msgtype")
    text = data.get("text")
    if isinstance(text, dict) and isinstance(text.get("content"), str):
        return text["content"]
    content = data.get("content")
    if not isinstance(content, dict):
        return ""
    if msgtype == "richText" and isinstance(content.get("richText"), list):
        return "".join(str(part.get("text", "")) for part in content["richText"]
                       if isinstance(part, dict))
    if msgtype == "audio" and isinstance(content.get("recognition"), str):
        return content["recognition"]
    return ""
