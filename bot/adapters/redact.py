"""Secrets and personal data out of logs: the one redaction filter of the whole process.

``httpx`` logs each request with its full URL, ``websockets`` its connect line, and
python-telegram-bot its calls; platform URLs carry secrets — WeCom's
``corpsecret``/``access_token``/robot ``key``, DingTalk's ``access_token``/``sign``/
``session``/``ticket``, the Telegram bot token in the path (``/bot123456:ABC…/``). And a
message people type may hold a mobile number or an ID-card number.

* :func:`redact` masks secrets that have a recognisable *shape*: secret query parameters,
  ``"clientSecret": "…"`` in JSON, Telegram tokens, the password of a URL.
* :func:`mask_personal` masks Chinese mobile numbers (``138****5678``) and ID-card numbers
  (first 6 and last 4 characters kept).
* :class:`RedactFilter` does both, and replaces every *configured* secret it was given
  (:mod:`bot.logs` reads them from the settings), in a record's message and in its
  traceback. There is one instance, :data:`FILTER`: :mod:`bot.logs` puts it on every log
  handler at start-up; :func:`install` puts it on the chatty libraries' loggers too, for
  an adapter used without the command line.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"
SECRET_PARAMETERS = ("access_token", "corpsecret", "key", "session", "sign", "ticket",
                     "secret", "client_secret", "appsecret", "password",
                     # an OSS signed download link (DingTalk files)
                     "Signature", "OSSAccessKeyId", "security-token", "x-oss-signature",
                     "x-oss-credential", "x-oss-security-token")
_QUERY = re.compile(r"(?<=[?&])(" + "|".join(re.escape(p) for p in SECRET_PARAMETERS) + r")=[^&\s\"']*",
                    re.IGNORECASE)
# libpq key=value connection strings: "host=db password=x user=u".
_DSN_PASSWORD = re.compile(r"(?<![\w?&])(password)=(?:'[^']*'|[^\s'\"&]+)", re.IGNORECASE)
_JSON_SECRET = re.compile(
    r"""(["'](?:access_?token|accessToken|client_?secret|clientSecret|app_?secret|appSecret|"""
    r"""corpsecret|ticket|secret|password|webhook_secret|aes_?key)["']\s*:\s*["'])[^"']*""",
    re.IGNORECASE)
_TELEGRAM_TOKEN = re.compile(r"(/(?:file/)?bot)\d+:[A-Za-z0-9_-]+")
_TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_])\d{6,12}:[A-Za-z0-9_-]{30,}")
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@")
# A mobile number (13x–19x), alone or written 138-1234-5678 / 138 1234 5678.
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?!\d)")
# An 18-character resident ID: region, a plausible birth date, sequence, check character.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{5})(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                      r"(?:0[1-9]|[12]\d|3[01])(\d{3}[0-9Xx])(?![0-9A-Za-z])")
LOGGERS = ("httpx", "websockets.client")
#: Configured secrets shorter than this are not replaced (they would mask ordinary words);
#: passwords inside URLs are masked whatever their length.
MIN_SECRET_LENGTH = 6


def redact(text: str) -> str:
    """``text`` with secret query values, JSON secrets, Telegram tokens and URL passwords
    replaced by ``***``."""
    text = _QUERY.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _DSN_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _JSON_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _TELEGRAM_TOKEN.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _TOKEN_SHAPED.sub(MASK, text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def mask_personal(text: str) -> str:
    """``text`` with ID-card numbers (``530102********123X``) and mobile numbers
    (``138****5678``) masked."""
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}{'*' * 8}{m.group(2)}", text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


class RedactFilter(logging.Filter):
    """Masks secrets and personal data in a record's message, traceback and stack (keeps
    every record). The message is formatted first (``msg % args``), then masked; a record
    with nothing to mask is left as it was.

    Args:
        secrets: configured secret values, replaced wherever they appear.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.set_secrets(secrets)

    @property
    def secrets(self) -> frozenset[str]:
        """The configured secrets being replaced."""
        return self._secrets

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Replace the configured secrets (values shorter than :data:`MIN_SECRET_LENGTH`
        are ignored)."""
        kept = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        # Longest first, so that a secret containing another is masked whole.
        ordered = sorted(kept, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        with self._lock:
            self._secrets, self._pattern = kept, pattern

    def scrub(self, text: str) -> str:
        """``text`` with configured secrets, secret-shaped strings and personal data masked."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return mask_personal(redact(text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            message = None
        if message is not None:
            cleaned = self.scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            # What Formatter.format would write; it uses the cached exc_text as it is.
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


_PLAIN = logging.Formatter()
#: The one redaction filter of the process (its secrets are set by :mod:`bot.logs`).
FILTER = RedactFilter()


def install(loggers: tuple[str, ...] = LOGGERS) -> None:
    """Attach :data:`FILTER` to ``loggers`` (idempotent): their records are masked even
    where :mod:`bot.logs` did not put it on the handlers (an adapter used in a library)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if FILTER not in logger.filters:
            logger.addFilter(FILTER)
