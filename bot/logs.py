"""Secrets and personal data out of the log, whatever logged them.

One filter, :data:`bot.adapters.redact.FILTER`, sits on every log handler of the process
(the root logger's, and those of loggers that keep their own, such as uvicorn's): every
record that reaches a handler — from dutybot, python-telegram-bot, httpx, websockets,
uvicorn, SQLAlchemy — is formatted, then masked, message and traceback alike:

* every configured secret (every ``SecretStr`` of the settings — Telegram token and
  webhook secret, WeCom secret/token/aes_key/robot webhook, DingTalk client_secret/
  callback token and key/robot webhook and secret — the query values of a secret URL, the
  password of the database and proxy URLs);
* secrets by their shape (:func:`bot.adapters.redact.redact`: Telegram tokens, secret
  query parameters such as ``access_token=``/``sign=``/``secret=``, URL passwords);
* personal data (:func:`bot.adapters.redact.mask_personal`: mobile numbers, ID-card
  numbers).

``dutybot`` installs it in :func:`bot.cli.main.main` (shapes only; with ``--debug`` the
configured secrets too) and ``dutybot run`` with the settings it runs on
(:func:`bot.runner.run_adapter`).

The format (:func:`configure`): ``text`` (the default: one readable line) or ``json`` (one
JSON object per line, for a log collector: ``--log-format json`` or ``[logging] format``),
with the fields ``time``, ``level``, ``logger``, ``message``, the ``update_id`` of the
chat update or the ``request_id`` of the HTTP request being handled (set with
:func:`update_id` and :func:`request_id`, carried by :mod:`contextvars` into every line
written meanwhile, threads of ``asyncio.to_thread`` included, and added to each record by
:data:`CONTEXT`), ``exc_info`` and any ``extra=`` fields. A JSON line is masked *again*
field by field with the same :data:`FILTER` as it is built, since python-json-logger
formats the traceback anew and writes extra fields the filter never saw.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import BaseModel, SecretStr
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonEncoder, JsonFormatter
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.adapters.redact import FILTER
from bot.config import Settings

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UPDATE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("dutybot_update_id",
                                                                        default=None)
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("dutybot_request_id",
                                                                         default=None)


def secrets_of(settings: Settings) -> set[str]:
    """Every secret value of ``settings`` that must never be written to a log."""
    found: set[str] = set()
    for value in _secret_values(settings):
        _add(found, value)
    _add_url_password(found, settings.database.url)
    if settings.telegram.proxy:
        _add_url_password(found, settings.telegram.proxy)
    token = settings.telegram.token.get_secret_value() if settings.telegram.token else ""
    if ":" in token:
        found.add(token.split(":", 1)[1])   # the secret half, alone, too
    return {s for s in found if s}


def _secret_values(model: BaseModel) -> Iterator[str]:
    """The ``SecretStr`` values of a settings model, its sections, their lists and their
    tables of named entries (``[alerts.sources.<name>]``)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = (value if isinstance(value, list | tuple)
                 else list(value.values()) if isinstance(value, dict) else [value])
        for item in items:
            if isinstance(item, SecretStr):
                yield item.get_secret_value()
            elif isinstance(item, BaseModel):
                yield from _secret_values(item)


def _add(found: set[str], value: str) -> None:
    found.add(value)
    if "://" in value:   # a webhook URL: its key or access_token alone, too
        parts = urlsplit(value)
        found.update(v for _, v in parse_qsl(parts.query) if v)
        if parts.password:
            found.update({parts.password, quote(parts.password, safe="")})


def _add_url_password(found: set[str], url: str) -> None:
    try:
        password = make_url(url).password if "://" in url else None
    except (ArgumentError, ValueError):
        password = urlsplit(url).password
    if password:
        found.update({str(password), quote(str(password), safe="")})


# ---------------------------------------------------------------- ids carried through

@contextlib.contextmanager
def update_id(value: str) -> Iterator[None]:
    """Log lines written inside the block (and the tasks and threads it starts) carry the
    chat update id ``value`` (``telegram:123``)."""
    token = _UPDATE_ID.set(value)
    try:
        yield
    finally:
        _UPDATE_ID.reset(token)


@contextlib.contextmanager
def request_id(value: str) -> Iterator[None]:
    """Log lines written inside the block carry the HTTP request id ``value``."""
    token = _REQUEST_ID.set(value)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``update_id`` and ``request_id`` (None outside an update or a request) to every
    record; keeps every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.update_id = _UPDATE_ID.get()
        record.request_id = _REQUEST_ID.get()
        return True


#: The one context filter, beside :data:`FILTER` on every handler.
CONTEXT = ContextFilter()


# ---------------------------------------------------------------- formats

class TextFormatter(logging.Formatter):
    """``2026-11-23 09:00:00,123 WARNING bot.outbox: … [update telegram:42]``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{name} {value}" for name, value in (("update", getattr(record, "update_id", None)),
                                                     ("request", getattr(record, "request_id", None)))
               if value]
        if not ids:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{', '.join(ids)}]{newline}{rest}"


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, ``update_id``, ``request_id``, then ``exc_info``/``stack_info`` and extra
    fields; every string in it masked by :data:`FILTER`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(update_id)s %(request_id)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         # uvicorn's copy of the message with terminal colours
                         reserved_attrs=[*RESERVED_ATTRS, "color_message"],
                         json_ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        cleaned = _scrubbed(log_record)
        assert isinstance(cleaned, dict)
        return cleaned


_ENCODER = JsonEncoder()


def _scrubbed(value: Any) -> Any:
    """``value`` as JSON-ready data with every string masked by :data:`FILTER`."""
    if isinstance(value, str):
        return FILTER.scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {FILTER.scrub(str(k)): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(v) for v in value]
    return _scrubbed(_ENCODER.default(value))   # what the encoder would write, masked


def formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter of ``fmt``."""
    return RedactingJsonFormatter() if fmt == "json" else TextFormatter()


_OURS = "_dutybot_handler"


def configure(fmt: LogFormat, level: int) -> None:
    """What ``dutybot`` does at start (in place of :func:`logging.basicConfig`): the root
    logger at ``level``, writing to stderr in ``fmt``. The stderr handler is made once; a
    process whose root logger already has handlers of its own (an embedding program, the
    test runner) keeps them as they are."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _OURS, False)]
    if not ours and root.handlers:
        return
    root.setLevel(level)
    if not ours:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _OURS, True)
        root.addHandler(handler)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(formatter(fmt))


class Installation:
    """The filters on the handlers that exist; :meth:`refresh` after more were made,
    :meth:`close` to take them off again."""

    def __init__(self) -> None:
        self._attached: list[tuple[logging.Handler, logging.Filter]] = []

    def refresh(self) -> None:
        """Put the filters on every handler that does not have them yet."""
        for handler in _handlers():
            for one in (CONTEXT, FILTER):
                if one not in handler.filters:
                    handler.addFilter(one)
                    self._attached.append((handler, one))

    def close(self) -> None:
        """Take the filters off the handlers this installation put them on."""
        for handler, one in self._attached:
            handler.removeFilter(one)
        self._attached = []


def _handlers() -> Iterable[logging.Handler]:
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in list(logging.Logger.manager.loggerDict.values())
                if isinstance(lg, logging.Logger)]
    seen: set[int] = set()
    for logger in loggers:
        for handler in list(logger.handlers):
            if id(handler) not in seen:
                seen.add(id(handler))
                yield handler
    if logging.lastResort is not None and id(logging.lastResort) not in seen:
        yield logging.lastResort


@contextlib.contextmanager
def installed(settings: Settings | None = None) -> Iterator[Installation]:
    """The redaction filter on every log handler for the ``with`` block, masking the
    secrets of ``settings`` (None: only what has a recognisable shape) besides those
    already being masked; both are as before afterwards."""
    previous = FILTER.secrets
    if settings is not None:
        FILTER.set_secrets(previous | secrets_of(settings))
    installation = Installation()
    installation.refresh()
    try:
        yield installation
    finally:
        installation.close()
        FILTER.set_secrets(previous)
