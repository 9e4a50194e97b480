"""Secrets out of logs: one filter for every adapter's HTTP and WebSocket loggers.

``httpx`` logs each request with its full URL at INFO, and ``websockets`` its connect
line; platform URLs carry secrets — WeCom's ``corpsecret``/``access_token``/robot ``key``,
DingTalk's ``access_token``/``sign``/``session``/``ticket``, the Telegram bot token in the
path (``/bot123456:ABC…/``). :func:`install` attaches a filter that masks them in those
loggers' records; :func:`redact` does the same to any string (error messages, ``repr``).
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = ("access_token", "corpsecret", "key", "session", "sign", "ticket")
_QUERY = re.compile(r"(?<=[?&])(" + "|".join(SECRET_PARAMETERS) + r")=[^&\s\"']*")
_TELEGRAM_TOKEN = re.compile(r"(/(?:file/)?bot)\d+:[A-Za-z0-9_-]+")
LOGGERS = ("httpx", "websockets.client")


def redact(text: str) -> str:
    """``text`` with secret query values and Telegram bot tokens replaced by ``***``."""
    text = _QUERY.sub(lambda m: f"{m.group(1)}=***", text)
    return _TELEGRAM_TOKEN.sub(lambda m: f"{m.group(1)}***", text)


class RedactFilter(logging.Filter):
    """Masks secrets in a record's message (keeps every record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_FILTER = RedactFilter()


def install(loggers: tuple[str, ...] = LOGGERS) -> None:
    """Attach the filter to ``loggers`` (idempotent)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
