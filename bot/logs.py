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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.adapters.redact import FILTER
from bot.config import Settings


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
    """The ``SecretStr`` values of a settings model, its sections and their lists."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value if isinstance(value, list | tuple) else [value]
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


class Installation:
    """The filter on the handlers that exist; :meth:`refresh` after more were made (uvicorn
    configures its own when the HTTP service starts), :meth:`close` to take it off again."""

    def __init__(self) -> None:
        self._attached: list[logging.Handler] = []

    def refresh(self) -> None:
        """Put the filter on every handler that does not have it yet."""
        for handler in _handlers():
            if FILTER not in handler.filters:
                handler.addFilter(FILTER)
                self._attached.append(handler)

    def close(self) -> None:
        """Take the filter off the handlers this installation put it on."""
        for handler in self._attached:
            handler.removeFilter(FILTER)
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
