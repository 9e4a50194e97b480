"""DingTalk (钉钉) app robot, the sending side: the API client and its error model.

:class:`DingTalkApi` makes the calls :class:`~bot.adapters.dingtalk.DingTalkAdapter`
needs: ``POST /v1.0/robot/groupMessages/send`` (a group) and
``POST /v1.0/robot/oToMessages/batchSend`` (a person), both carrying the app's access
token (``x-acs-dingtalk-access-token``), fetched from ``/v1.0/oauth2/accessToken``, cached
and refreshed five minutes early (or when refused with 401); posts to session webhooks and
the custom robot (``errcode`` answers); and the Stream registration
``/v1.0/gateway/connections/open`` for :class:`~bot.adapters.dingtalk.stream.StreamClient`;
and the download of a picture or file sent to the robot (``/v1.0/robot/messageFiles/download``
gives a short-lived link, which is then fetched, streamed and refused past a size limit:
:class:`MediaTooLarge`).

What is sent is rendered by :mod:`bot.adapters.dingtalk.render` (text, or an ActionCard
with command buttons).

Errors become :class:`~core.errors.AdapterError`: network failures, 5xx and throttling
(HTTP 429, or ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`` beyond the per-app,
per-API QPS limit) are retryable (``retry_after`` 1 s for QPS limits, 60 s for errcode
130101 "too fast"); an invalid user or a robot no longer in the group is permanent
(``permanent_reason="blocked"``); other refusals are permanent.

Secrets (app secret, tokens, session webhooks, the robot's ``access_token`` and ``sign``,
Stream tickets, the signature of a download link) never reach logs: filters mask them in
``httpx`` and ``websockets`` request lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx

from bot.adapters.media import MediaFile, read_capped
from bot.adapters.redact import install as install_log_redaction
from bot.adapters.redact import redact
from bot.delivery import UncertainDelivery
from bot.http import retry_after_of
from core.clock import Clock
from core.errors import AdapterError

log = logging.getLogger("dutybot.dingtalk")

USER_AGENT = "dutybot"
#: Read timeout 60 s: longer than DingTalk's slow moments, so that a slow answer is not
#: taken for a failure and the message sent again (DingTalk's robot send has no
#: idempotency key: a resend after a lost answer is counted as a possible duplicate).
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)

#: Tokens are refreshed this long before they expire (capped at half their lifetime).
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
QPS_RETRY_AFTER = 1.0
ROBOT_RETRY_AFTER = 60.0

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

#: Query parameters of a download link (an OSS signed URL) that are credentials.
_LINK_SECRETS = re.compile(r"(?<=[?&])(Signature|OSSAccessKeyId|security-token|"
                           r"x-oss-signature|x-oss-credential|x-oss-security-token)="
                           r"[^&\s\"']*", re.IGNORECASE)


class _DownloadLinkFilter(logging.Filter):
    """Masks the signature of download links in ``httpx`` request lines (the common
    filter of :mod:`bot.adapters.redact` does not know these parameters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        cleaned = _LINK_SECRETS.sub(lambda m: f"{m.group(1)}=***", message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_LINK_FILTER = _DownloadLinkFilter()


def _install_link_filter() -> None:
    logger = logging.getLogger("httpx")
    if _LINK_FILTER not in logger.filters:
        logger.addFilter(_LINK_FILTER)


# --------------------------------------------------------------------------- media




# --------------------------------------------------------------------------- errors


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
        install_log_redaction()
        _install_link_filter()
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
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # never sent
            raise AdapterError(f"DingTalk {what}: timed out ({type(exc).__name__})",
                               retryable=True) from None
        except httpx.TimeoutException as exc:
            # Sent, no answer: it may have arrived, and DingTalk has no idempotency key.
            raise UncertainDelivery(f"DingTalk {what}: no answer in time ({type(exc).__name__})",
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
                                    retry_after=retry_after_of(response))
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
                                retry_after=retry_after_of(response))
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
                                retry_after=retry_after_of(response))
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

    # ------------------------------------------------------------------ media

    async def download(self, download_code: str, *, max_bytes: int) -> MediaFile:
        """A picture or file sent to the robot: ``messageFiles/download`` turns its
        ``downloadCode`` into a short-lived link, which is fetched (without the access
        token), streamed and refused past ``max_bytes``.

        Raises:
            MediaTooLarge: the file is over ``max_bytes``.
            AdapterError: the code is unknown or expired, or the link refused (not
                retryable); network errors, 5xx, throttling (retryable).
        """
        what = "messageFiles/download"
        answer = await self.call("/v1.0/robot/messageFiles/download",
                                 {"downloadCode": download_code, "robotCode": self.robot_code},
                                 what=what)
        url = answer.get("downloadUrl")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise AdapterError(f"DingTalk {what}: the answer has no downloadUrl",
                               retryable=False)
        what = "file download"
        try:
            async with self._http.stream("GET", url) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    raise AdapterError(f"DingTalk {what}: HTTP {status}", retryable=True,
                                       retry_after=retry_after_of(response))
                if status >= 400:
                    raise AdapterError(f"DingTalk {what}: HTTP {status} (the link is "
                                       "expired or refused)", retryable=False)
                data = await read_capped(response, max_bytes, platform="DingTalk", what=what)
                return MediaFile(data=data,
                                 content_type=response.headers.get("content-type", ""),
                                 disposition=response.headers.get("content-disposition", ""))
        except httpx.TimeoutException as exc:
            raise AdapterError(f"DingTalk {what}: timed out ({type(exc).__name__})",
                               retryable=True) from None
        except httpx.TransportError as exc:
            raise AdapterError(f"DingTalk {what}: network error ({type(exc).__name__})",
                               retryable=True) from None

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
                               retry_after=retry_after_of(response)
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
