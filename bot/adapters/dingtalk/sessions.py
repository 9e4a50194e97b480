"""DingTalk session webhooks: where a reply to a conversation may go, and until when.

Every robot message carries a ``sessionWebhook`` (``https://oapi.dingtalk.com/robot/
sendBySession?session=…``) and its ``sessionWebhookExpiredTime``; the adapter answers the
conversation through it while it lives (less :data:`SESSION_MARGIN_MS`). The URL comes
from the message body, so it is only as trustworthy as the body: a webhook is accepted
only as ``https`` on DingTalk's own hosts (:data:`DINGTALK_HOSTS`, default port, no user
info) or on the origin of the configured API root (``[dingtalk] api_base``: a 专有钉钉 /
政务钉钉 deployment, or a test fake), which already receives the app's access token.
Anything else is ignored and logged with its host only; the chat is then answered
through the robot message API, as when no webhook is known.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

log = logging.getLogger("dutybot.dingtalk")

#: The hosts DingTalk's session webhooks live on.
DINGTALK_HOSTS = frozenset({"oapi.dingtalk.com", "api.dingtalk.com"})
#: A session webhook is not used in its last minute (a send may take that long).
SESSION_MARGIN_MS = 60_000
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a URL without user info, or None."""
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def trusted_webhook(url: str, *, api_base: str) -> bool:
    """Whether ``url`` may receive replies: https on a DingTalk host, or ``api_base``'s
    own origin."""
    try:
        origin = _origin(urlsplit(url))
        base = _origin(urlsplit(api_base))
    except ValueError:
        return False
    if origin is None:
        return False
    if origin[0] == "https" and origin[1] in DINGTALK_HOSTS and origin[2] == 443:
        return True
    return base is not None and origin == base


@dataclass
class _Session:
    url: str
    expires_ms: int


class SessionWebhooks:
    """The live session webhook of each chat, from its latest message.

    Args:
        api_base: the configured API root, whose origin is trusted too.
    """

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base
        self._sessions: dict[str, _Session] = {}

    def remember(self, chat_id: str, data: dict[str, Any]) -> None:
        """Keep the message's webhook for ``chat_id`` if it is a trusted one."""
        url, expires = data.get("sessionWebhook"), data.get("sessionWebhookExpiredTime")
        if not isinstance(url, str) or not url or not isinstance(expires, int | float):
            return
        if not trusted_webhook(url, api_base=self.api_base):
            try:
                host = urlsplit(url).hostname or "?"
            except ValueError:
                host = "?"
            log.warning("ignored the sessionWebhook of DingTalk message %s: not https on a "
                        "DingTalk host (host %r); replies go through the API",
                        data.get("msgId"), host[:100])
            self._sessions.pop(chat_id, None)
            return
        self._sessions[chat_id] = _Session(url, int(expires))

    def live(self, chat_id: str, now_ms: int) -> str | None:
        """The chat's webhook while it has more than a minute to live, else None."""
        session = self._sessions.get(chat_id)
        if session is None:
            return None
        if session.expires_ms - now_ms <= SESSION_MARGIN_MS:
            del self._sessions[chat_id]
            return None
        return session.url

    def forget(self, chat_id: str) -> None:
        """Stop using the chat's webhook (DingTalk refused it)."""
        self._sessions.pop(chat_id, None)

    def prune(self, now_ms: int) -> None:
        """Drop the webhooks that have expired."""
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires_ms > now_ms}
