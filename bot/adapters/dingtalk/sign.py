"""DingTalk (钉钉) request signatures, written from the published protocol.

Pure functions — no network, no I/O, no clock reads: the caller passes ``now_ms``.

Two schemes share one primitive, ``base64(HMAC-SHA256(key=secret, msg))`` with
``msg = f"{timestamp}\\n{secret}"`` and a millisecond timestamp:

* **Inbound HTTP callback** (机器人/应用「接收消息」HTTP 模式): DingTalk sends the
  headers ``timestamp`` and ``sign``. ``sign`` is the plain Base64 value (not
  URL-encoded), keyed with the robot's ``appSecret``. A request is genuine only if the
  signature matches *and* the timestamp is less than one hour from now.
* **Outbound custom robot** (自定义机器人「加签」): the webhook URL gets
  ``&timestamp=<ms>&sign=<urlencode(base64 value)>``, keyed with the ``SEC…`` secret.

Verification failures raise :class:`DingTalkSignError` with a stable ``code``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final
from urllib.parse import quote_plus

__all__ = [
    "BAD_SIGNATURE",
    "BAD_TIMESTAMP",
    "CALLBACK_MAX_SKEW_MS",
    "STALE_TIMESTAMP",
    "DingTalkSignError",
    "compute_sign",
    "hmac_sha256_base64",
    "robot_sign",
    "robot_url",
    "verify_callback",
]

BAD_SIGNATURE: Final = "bad_signature"
STALE_TIMESTAMP: Final = "stale_timestamp"
BAD_TIMESTAMP: Final = "bad_timestamp"

CALLBACK_MAX_SKEW_MS: Final = 60 * 60 * 1000
"""DingTalk rejects callbacks whose timestamp is one hour or more from now."""

_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,16}")


class DingTalkSignError(Exception):
    """A DingTalk callback failed signature verification.

    Attributes:
        message: human-readable explanation (never contains the secret).
        code: ``bad_signature``, ``stale_timestamp`` or ``bad_timestamp``.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"DingTalkSignError({self.message!r}, {self.code!r})"


def hmac_sha256_base64(key: str, message: str) -> str:
    """Return ``base64(HMAC-SHA256(key, message))`` with both strings UTF-8 encoded."""
    digest = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def compute_sign(secret: str, timestamp: str | int) -> str:
    """Return the raw (not URL-encoded) DingTalk sign for ``timestamp`` (ms).

    This is the value of the inbound callback's ``sign`` header; :func:`robot_sign`
    is the URL-encoded form used on outbound robot webhooks.
    """
    return hmac_sha256_base64(secret, f"{timestamp}\n{secret}")


def verify_callback(
    timestamp: str,
    sign: str,
    app_secret: str,
    now_ms: int,
    *,
    max_skew_ms: int = CALLBACK_MAX_SKEW_MS,
) -> None:
    """Check the ``timestamp``/``sign`` headers of an inbound DingTalk callback.

    The signature is computed over the header's ``timestamp`` string exactly as
    received and compared in constant time.

    Args:
        timestamp: the ``timestamp`` header (milliseconds since the epoch).
        sign: the ``sign`` header (plain Base64).
        app_secret: the robot's / app's ``appSecret``.
        now_ms: current Unix time in milliseconds.
        max_skew_ms: the request is valid only if ``|now_ms - timestamp| < max_skew_ms``.

    Raises:
        DingTalkSignError: ``bad_timestamp`` if the timestamp is not a decimal number,
            ``bad_signature`` if the sign does not match, ``stale_timestamp`` if the
            signature matches but the timestamp is too far from ``now_ms``.
    """
    if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
        raise DingTalkSignError("timestamp header is not a decimal number", BAD_TIMESTAMP)
    if not isinstance(sign, str) or not sign:
        raise DingTalkSignError("sign header is missing", BAD_SIGNATURE)
    expected = compute_sign(app_secret, timestamp)
    if not hmac.compare_digest(expected.encode("ascii"), sign.encode("utf-8")):
        raise DingTalkSignError("sign does not match", BAD_SIGNATURE)
    if abs(now_ms - int(timestamp)) >= max_skew_ms:
        raise DingTalkSignError("timestamp is more than an hour from now", STALE_TIMESTAMP)


def robot_sign(secret: str, timestamp_ms: int) -> str:
    """Return the URL-encoded ``sign`` query value for a custom robot webhook.

    ``quote_plus(base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}")))``.

    Raises:
        ValueError: if ``timestamp_ms`` is not a non-negative ``int``.
    """
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
        raise ValueError("timestamp_ms must be a non-negative int (milliseconds)")
    return quote_plus(compute_sign(secret, timestamp_ms))


def robot_url(webhook_url: str, secret: str, timestamp_ms: int) -> str:
    """Append ``timestamp`` and ``sign`` to a custom robot webhook URL.

    Args:
        webhook_url: e.g. ``https://oapi.dingtalk.com/robot/send?access_token=…``.
        secret: the robot's ``SEC…`` signing secret.
        timestamp_ms: current Unix time in milliseconds (DingTalk accepts it for one
            hour).

    Returns:
        ``webhook_url`` + ``&timestamp=<ms>&sign=<sign>`` (``?`` instead of the first
        ``&`` if the URL has no query yet).
    """
    if "?" not in webhook_url:
        sep = "?"
    elif webhook_url.endswith(("?", "&")):
        sep = ""
    else:
        sep = "&"
    return f"{webhook_url}{sep}timestamp={timestamp_ms}&sign={robot_sign(secret, timestamp_ms)}"
