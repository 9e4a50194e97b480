"""HTTP client for the WeCom (企业微信) self-built-app API and group robot webhooks.

This module only speaks the WeCom HTTP API; the chat adapter builds on it. It knows:

* the access token: fetched with ``corpid`` + ``corpsecret``, cached per client, refreshed
  ``refresh_margin_seconds`` before it expires, fetched once for concurrent callers, and
  refreshed once more when the server says it is invalid (40014) or expired (42001);
* the error model: every failure becomes an :class:`~core.errors.AdapterError`, decided
  by ``errcode`` only (``errmsg`` is free text WeCom changes at will and is only logged);
* application messages (text, markdown, ``button_interaction`` template cards built by
  :mod:`bot.adapters.wecom.cards`), marking a card's buttons as handled, and the group
  robot webhook;
* downloading a picture or file a member sent (``media/get``), streamed and refused past
  a size limit (:class:`MediaTooLarge`).

Sending returns a :class:`SendResult` (``msgid``, ``invalid_users``, ``response_code``)
rather than a bare ``msgid``: WeCom reports a partly failed send with ``errcode`` 0 and an
``invaliduser`` list, and a multi-user send must expose it. When *every* addressed user is
invalid (a single ``touser`` listed in ``invaliduser``, or errcode 81013) the send raises a
non-retryable ``AdapterError`` with ``permanent_reason="blocked"``.

WeCom silently drops messages beyond :data:`MEMBER_PER_MINUTE` / :data:`MEMBER_PER_HOUR`
to one member (the API still answers errcode 0), so the outbox must never exceed them; the
robot answers errcode 45009 beyond :data:`ROBOT_PER_MINUTE`.

Secrets never reach logs or error messages: the corp secret, access tokens and robot
webhook keys travel only in query strings, and a filter on the ``httpx`` logger masks
them in its request lines.
"""

from __future__ import annotations

import asyncio
import hashlib
import json as json_module
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx

from bot.adapters.media import MediaFile, read_capped
from bot.adapters.redact import install as install_log_redaction
from bot.adapters.redact import redact
from bot.adapters.wecom.cards import button_card
from bot.http import retry_after_of
from core.clock import Clock
from core.errors import AdapterError

log = logging.getLogger("dutybot.wecom")

#: Messages one member may receive from an app per minute; more are dropped silently.
MEMBER_PER_MINUTE = 30
#: Messages one member may receive from an app per hour; more are dropped silently.
MEMBER_PER_HOUR = 1000
#: Messages one group robot may send per minute; more are refused with errcode 45009.
ROBOT_PER_MINUTE = 20

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
#: Read timeout 60 s: longer than WeCom's slow moments, so that a slow answer is not taken
#: for a failure and the message sent again (``[wecom] send_timeout_seconds``).
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
#: WeCom's duplicate check drops a ``message/send`` whose request JSON equals one sent
#: within ``duplicate_check_interval`` seconds (at most 4 hours). The interval of a
#: message is taken from its key, between these two, so that retries of one message are
#: the same request and two messages with the same text (different keys) usually are not.
DUPLICATE_CHECK_MIN = 1801
DUPLICATE_CHECK_SPREAD = 1800

# errcodes this client branches on (never on errmsg).
ERR_SYSTEM_BUSY = -1
ERR_INVALID_SECRET = 40001
ERR_INVALID_CORPID = 40013
ERR_INVALID_TOKEN = 40014
ERR_TOKEN_EXPIRED = 42001
ERR_FREQUENCY_LIMIT = 45009
ERR_CONCURRENCY_LIMIT = 45033
ERR_IP_NOT_ALLOWED = 60020
ERR_ALL_RECIPIENTS_INVALID = 81013
ERR_INVALID_MEDIA_ID = 40007

_TOKEN_REFRESH_CODES = frozenset({ERR_INVALID_TOKEN, ERR_TOKEN_EXPIRED})
_RATE_LIMIT_CODES = frozenset({ERR_FREQUENCY_LIMIT, ERR_CONCURRENCY_LIMIT})
_CONFIG_CODES = {
    ERR_INVALID_SECRET: "invalid corp secret",
    ERR_INVALID_CORPID: "invalid corp id",
    ERR_IP_NOT_ALLOWED: "server IP not in the app's trusted IP list",
}
BUSY_RETRY_AFTER = 1.0
RATE_LIMIT_RETRY_AFTER = 60.0
#: An error answer of ``media/get`` is a small JSON object; more is not read.
MEDIA_ERROR_MAX_BYTES = 64 * 1024


# --------------------------------------------------------------------------- log hygiene

def _errmsg_for_log(body: dict[str, Any]) -> str:
    """The server's ``errmsg``, shortened and ASCII-only, for log lines and error text."""
    raw = str(body.get("errmsg", ""))
    cleaned = redact(raw).encode("ascii", "replace").decode("ascii")
    return cleaned[:160]


# --------------------------------------------------------------------------- errors


def error_for_errcode(errcode: int, body: dict[str, Any], *, what: str) -> AdapterError:
    """The :class:`AdapterError` for a non-zero WeCom ``errcode`` (``errmsg`` is ignored
    except as log text).

    Args:
        errcode: the response's ``errcode``.
        body: the whole response, for the ``errmsg`` shown in the message.
        what: the API path or a short name of the call, for the message.
    """
    hint = _errmsg_for_log(body)
    if errcode == ERR_SYSTEM_BUSY:
        return AdapterError(f"WeCom {what}: system busy (errcode -1)",
                            retryable=True, retry_after=BUSY_RETRY_AFTER)
    if errcode in _RATE_LIMIT_CODES:
        return AdapterError(f"WeCom {what}: API frequency limit reached (errcode {errcode})",
                            retryable=True, retry_after=RATE_LIMIT_RETRY_AFTER)
    if errcode in _TOKEN_REFRESH_CODES:
        # Only reached when a fresh token was refused too; a later attempt may succeed.
        return AdapterError(
            f"WeCom {what}: access token refused even after a refresh (errcode {errcode})",
            retryable=True, retry_after=BUSY_RETRY_AFTER)
    if errcode in _CONFIG_CODES:
        return AdapterError(
            f"WeCom {what}: configuration error, {_CONFIG_CODES[errcode]} (errcode {errcode}); "
            "check corp_id, secret and the trusted IP list",
            retryable=False)
    if errcode == ERR_ALL_RECIPIENTS_INVALID:
        return AdapterError(
            f"WeCom {what}: every recipient is invalid or outside the app's visible range "
            f"(errcode {errcode})",
            retryable=False, permanent_reason="blocked")
    return AdapterError(f"WeCom {what}: refused with errcode {errcode} ({hint})",
                        retryable=False)


async def _request_json(http: httpx.AsyncClient, method: str, url: str, *, what: str,
                        params: dict[str, Any] | None = None,
                        json: Any = None) -> dict[str, Any]:
    """One HTTP call; the decoded JSON object, or a mapped :class:`AdapterError`.

    Network errors, timeouts, HTTP 5xx/429 and undecodable bodies are retryable; other
    HTTP errors are not. ``errcode`` is *not* inspected here.
    """
    try:
        response = await http.request(method, url, params=params, json=json)
    except httpx.TimeoutException as exc:
        raise AdapterError(f"WeCom {what}: timed out ({type(exc).__name__})",
                           retryable=True) from None
    except httpx.TransportError as exc:
        raise AdapterError(f"WeCom {what}: network error ({type(exc).__name__})",
                           retryable=True) from None
    status = response.status_code
    if status == 429:
        raise AdapterError(f"WeCom {what}: HTTP 429 too many requests", retryable=True,
                           retry_after=retry_after_of(response) or RATE_LIMIT_RETRY_AFTER)
    if status >= 500:
        raise AdapterError(f"WeCom {what}: HTTP {status} from server", retryable=True,
                           retry_after=retry_after_of(response))
    if status >= 400:
        raise AdapterError(f"WeCom {what}: HTTP {status}", retryable=False)
    try:
        body = response.json()
    except ValueError:
        raise AdapterError(f"WeCom {what}: response is not JSON (HTTP {status})",
                           retryable=True) from None
    if not isinstance(body, dict):
        raise AdapterError(f"WeCom {what}: response is not a JSON object", retryable=True)
    return body


def _errcode(body: dict[str, Any]) -> int:
    """The response's ``errcode`` as an int (a missing one counts as success)."""
    try:
        return int(body.get("errcode", 0))
    except (TypeError, ValueError):
        return ERR_SYSTEM_BUSY  # garbage: treat like a transient server fault


def duplicate_check(key: str) -> dict[str, int]:
    """The ``message/send`` members asking WeCom to drop a repeat of the message ``key``
    (an outbox row's recipient and event): an interval of 1801–3600 s, longer than the
    outbox's retries of one row, fixed by the key."""
    spread = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big")
    return {"enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_MIN + spread % DUPLICATE_CHECK_SPREAD}


def _split_ids(value: Any) -> tuple[str, ...]:
    """``"a|b"`` or ``["a", "b"]`` → ``("a", "b")``; empty parts dropped."""
    if not value:
        return ()
    parts = value if isinstance(value, list) else str(value).split("|")
    return tuple(str(p) for p in parts if str(p))


# --------------------------------------------------------------------------- app client




@dataclass(frozen=True)
class SendResult:
    """What ``message/send`` reported.

    Attributes:
        msgid: WeCom's id of the message (can be used to recall it).
        invalid_users: addressed user ids WeCom did not deliver to (``invaliduser``);
            empty on a full success.
        response_code: for ``button_interaction`` cards, the code
            :meth:`WeComClient.update_template_card` needs (valid 72 hours); else ``None``.
    """

    msgid: str
    invalid_users: tuple[str, ...] = ()
    response_code: str | None = None


class WeComClient:
    """One WeCom self-built app (企业微信自建应用): token handling and message calls.

    Args:
        corp_id: the enterprise's ``corpid``.
        secret: the app's ``corpsecret`` (never logged).
        agent_id: the app's ``agentid``.
        api_base: the API root; tests point it at the fake server.
        clock: decides when the cached token is due for a refresh.
        http: a shared ``httpx.AsyncClient``; when ``None`` the client makes (and
            :meth:`aclose` closes) its own.
        refresh_margin_seconds: refresh this long before the token expires. It is capped at
            half the token's lifetime so a short-lived token is still reused.
    """

    button_card = staticmethod(button_card)

    def __init__(self, *, corp_id: str, secret: str, agent_id: int,
                 api_base: str = DEFAULT_API_BASE, clock: Clock,
                 http: httpx.AsyncClient | None = None,
                 refresh_margin_seconds: float = 300) -> None:
        install_log_redaction()
        self.corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self.api_base = api_base.rstrip("/")
        self.clock = clock
        self.refresh_margin_seconds = refresh_margin_seconds
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
        self._token: str | None = None
        self._refresh_at: datetime | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, agent_id={self.agent_id})"

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    # ------------------------------------------------------------------ token

    def _token_fresh(self) -> bool:
        return (self._token is not None and self._refresh_at is not None
                and self.clock.now() < self._refresh_at)

    async def token(self) -> str:
        """A valid access token, from the cache or fetched (one fetch for all waiters).

        Raises:
            AdapterError: ``gettoken`` failed (40001/40013/60020 are not retryable).
        """
        if self._token_fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if self._token_fresh():  # another caller fetched it while we waited
                assert self._token is not None
                return self._token
            return await self._fetch_token()

    async def _fetch_token(self) -> str:
        body = await _request_json(
            self._http, "GET", f"{self.api_base}/cgi-bin/gettoken", what="gettoken",
            params={"corpid": self.corp_id, "corpsecret": self._secret})
        code = _errcode(body)
        if code != 0:
            log.warning("WeCom gettoken failed for corp %s: errcode %s (%s)",
                        self.corp_id, code, _errmsg_for_log(body))
            raise error_for_errcode(code, body, what="gettoken")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AdapterError("WeCom gettoken: response has no access_token", retryable=True)
        try:
            lifetime = float(body.get("expires_in", 7200))
        except (TypeError, ValueError):
            lifetime = 7200.0
        margin = min(float(self.refresh_margin_seconds), lifetime / 2)
        self._token = token
        self._refresh_at = self.clock.now() + timedelta(seconds=lifetime - margin)
        log.info("WeCom access token fetched for corp %s (valid %ds)", self.corp_id,
                 int(lifetime))
        return token

    def invalidate_token(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given)."""
        if token is None or token == self._token:
            self._token = None
            self._refresh_at = None

    # ------------------------------------------------------------------ calls

    async def call(self, method: Literal["GET", "POST"], path: str, *,
                   params: dict[str, Any] | None = None,
                   json: Any = None) -> dict[str, Any]:
        """Call ``path`` with the access token; the response object when errcode is 0.

        A 40014 (invalid token) or 42001 (expired token) answer drops the cached token,
        fetches a new one and retries once. 40001 (invalid secret) drops the token but is
        not retried: it is a configuration error.

        Raises:
            AdapterError: mapped from the HTTP status or ``errcode`` (see the module doc).
        """
        if method not in ("GET", "POST"):
            raise ValueError(f"unsupported method {method!r}")
        url = f"{self.api_base}/{path.lstrip('/')}"
        what = "/" + path.lstrip("/")
        for attempt in (1, 2):
            token = await self.token()
            query = {**(params or {}), "access_token": token}
            body = await _request_json(self._http, method, url, what=what, params=query,
                                       json=json)
            code = _errcode(body)
            if code == 0:
                return body
            if code in _TOKEN_REFRESH_CODES and attempt == 1:
                log.warning("WeCom %s: access token refused (errcode %s); refreshing once",
                            what, code)
                self.invalidate_token(token)
                continue
            if code == ERR_INVALID_SECRET:
                self.invalidate_token(token)
            log.warning("WeCom %s failed: errcode %s (%s)", what, code, _errmsg_for_log(body))
            raise error_for_errcode(code, body, what=what)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ media

    async def download_media(self, media_id: str, *, max_bytes: int) -> MediaFile:
        """``GET /cgi-bin/media/get``: a picture or file a member sent to the app.

        The body is streamed and refused past ``max_bytes`` (never read whole). WeCom
        answers a refusal with a JSON ``errcode`` instead of a file; a 40014/42001 one
        refreshes the token once, as :meth:`call` does.

        Raises:
            MediaTooLarge: the file is over ``max_bytes``.
            AdapterError: the media id is unknown or expired (errcode 40007, not
                retryable), or another refusal, network error or 5xx (as for :meth:`call`).
        """
        url = f"{self.api_base}/cgi-bin/media/get"
        what = "/cgi-bin/media/get"
        for attempt in (1, 2):
            token = await self.token()
            params = {"access_token": token, "media_id": media_id}
            try:
                async with self._http.stream("GET", url, params=params) as response:
                    status = response.status_code
                    if status == 429:
                        raise AdapterError(f"WeCom {what}: HTTP 429 too many requests",
                                           retryable=True,
                                           retry_after=retry_after_of(response)
                                           or RATE_LIMIT_RETRY_AFTER)
                    if status >= 500:
                        raise AdapterError(f"WeCom {what}: HTTP {status} from server",
                                           retryable=True, retry_after=retry_after_of(response))
                    if status >= 400:
                        raise AdapterError(f"WeCom {what}: HTTP {status}", retryable=False)
                    ctype = response.headers.get("content-type", "")
                    disposition = response.headers.get("content-disposition", "")
                    if disposition or not ctype.lower().startswith(("application/json",
                                                                     "text/plain")):
                        data = await read_capped(response, max_bytes, platform="WeCom", what=what)
                        return MediaFile(data=data, content_type=ctype, disposition=disposition)
                    raw = await read_capped(response, MEDIA_ERROR_MAX_BYTES, platform="WeCom", what=what)
            except httpx.TimeoutException as exc:
                raise AdapterError(f"WeCom {what}: timed out ({type(exc).__name__})",
                                   retryable=True) from None
            except httpx.TransportError as exc:
                raise AdapterError(f"WeCom {what}: network error ({type(exc).__name__})",
                                   retryable=True) from None
            try:
                body = json_module.loads(raw)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise AdapterError(f"WeCom {what}: the answer is neither a file nor JSON",
                                   retryable=True)
            code = _errcode(body)
            if code in _TOKEN_REFRESH_CODES and attempt == 1:
                log.warning("WeCom %s: access token refused (errcode %s); refreshing once",
                            what, code)
                self.invalidate_token(token)
                continue
            if code == 0:
                raise AdapterError(f"WeCom {what}: the answer carries no file",
                                   retryable=False)
            log.warning("WeCom %s failed: errcode %s (%s)", what, code, _errmsg_for_log(body))
            raise error_for_errcode(code, body, what=what)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ messages

    async def _send(self, touser: str, msgtype: str, payload: dict[str, Any],
                    dedupe_key: str | None = None) -> SendResult:
        wanted = _split_ids(touser)
        if not wanted:
            raise ValueError("touser is empty")
        extra = duplicate_check(dedupe_key) if dedupe_key else {}
        body = await self.call("POST", "/cgi-bin/message/send", json={
            "touser": touser, "msgtype": msgtype, "agentid": self.agent_id, **payload, **extra})
        invalid = _split_ids(body.get("invaliduser"))
        if invalid and set(wanted) <= set(invalid):
            raise AdapterError(
                f"WeCom message/send: recipient not reachable ({len(wanted)} of "
                f"{len(wanted)} user(s) listed in invaliduser)",
                retryable=False, permanent_reason="blocked")
        if invalid:
            log.warning("WeCom message/send: %d of %d recipients invalid: %s",
                        len(invalid), len(wanted), "|".join(invalid))
        response_code = body.get("response_code")
        return SendResult(msgid=str(body.get("msgid", "")), invalid_users=invalid,
                          response_code=str(response_code) if response_code else None)

    async def send_text(self, touser: str, content: str, *,
                        dedupe_key: str | None = None) -> SendResult:
        """Send plain text to ``touser`` (one user id, or several joined by ``|``);
        with ``dedupe_key``, WeCom drops a repeat of the same request (:func:`duplicate_check`).

        Raises:
            AdapterError: the call failed; ``permanent_reason="blocked"`` when no addressed
                user can receive app messages.
        """
        return await self._send(touser, "text", {"text": {"content": content}}, dedupe_key)

    async def send_markdown(self, touser: str, content: str) -> SendResult:
        """Send WeCom markdown (a subset; shown only in the WeCom client) to ``touser``."""
        return await self._send(touser, "markdown", {"markdown": {"content": content}})

    async def send_template_card(self, touser: str, card: dict[str, Any], *,
                                 dedupe_key: str | None = None) -> SendResult:
        """Send a template card (e.g. from :func:`button_card`) to ``touser`` (with
        ``dedupe_key`` as for :meth:`send_text`; the card's ``task_id`` must then be the
        same on a retry)."""
        return await self._send(touser, "template_card", {"template_card": card}, dedupe_key)

    async def update_template_card(self, userids: list[str], response_code: str,
                                   replace_name: str) -> tuple[str, ...]:
        """Mark a ``button_interaction`` card's buttons as handled for ``userids``.

        The buttons are replaced by one disabled button reading ``replace_name``.

        Args:
            userids: whose copy of the card to update.
            response_code: from :attr:`SendResult.response_code` or the click callback
                (usable once, within 72 hours).
            replace_name: the text shown instead of the buttons, e.g. ``已确认``.

        Returns:
            The user ids WeCom reported invalid (usually empty).
        """
        body = await self.call("POST", "/cgi-bin/message/update_template_card", json={
            "userids": list(userids), "agentid": self.agent_id,
            "response_code": response_code, "button": {"replace_name": replace_name}})
        return _split_ids(body.get("invaliduser"))


# --------------------------------------------------------------------------- group robot


class WeComRobot:
    """A group robot (群机器人) webhook, for broadcasts to a group.

    Args:
        webhook_url: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...`` (the
            key is a secret: it is never logged).
        http: a shared ``httpx.AsyncClient``; when ``None`` the robot makes (and
            :meth:`aclose` closes) its own.
    """

    def __init__(self, webhook_url: str, http: httpx.AsyncClient | None = None) -> None:
        install_log_redaction()
        self._url = webhook_url
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)

    def __repr__(self) -> str:
        return f"WeComRobot({redact(self._url)!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    async def _post(self, payload: dict[str, Any]) -> None:
        body = await _request_json(self._http, "POST", self._url, what="webhook/send",
                                   json=payload)
        code = _errcode(body)
        if code != 0:
            log.warning("WeCom robot send failed: errcode %s (%s)", code, _errmsg_for_log(body))
            raise error_for_errcode(code, body, what="webhook/send")

    async def send_markdown(self, content: str) -> None:
        """Post a markdown message to the group."""
        await self._post({"msgtype": "markdown", "markdown": {"content": content}})

    async def send_text(self, content: str) -> None:
        """Post a plain-text message to the group."""
        await self._post({"msgtype": "text", "text": {"content": content}})
