"""Pure translations between python-telegram-bot's types and ours: the Bot API URLs, the
inline keyboard, and what a failed call means for the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import httpx
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.delivery import UncertainDelivery
from core.errors import AdapterError
from core.messages import Button

MAX_CALLBACK_BYTES = 64          # Telegram's limit on callback_data
BUTTONS_PER_ROW = 2


def api_urls(base_url: str | None) -> tuple[str, str]:
    """The Bot API and file URLs for python-telegram-bot, from ``telegram.base_url``.

    ``https://tg.example`` → ``https://tg.example/bot`` and ``https://tg.example/file/bot``;
    a value already ending in ``/bot`` is used as it is.
    """
    if not base_url:
        return "https://api.telegram.org/bot", "https://api.telegram.org/file/bot"
    root = base_url.rstrip("/")
    if root.endswith("/bot"):
        root = root.removesuffix("/bot")
    return f"{root}/bot", f"{root}/file/bot"


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def adapter_error(exc: TelegramError) -> AdapterError:
    """What the outbox sender should do about a failed Bot API call."""
    if isinstance(exc, RetryAfter):
        wait = _seconds(exc.retry_after)
        return AdapterError(f"Telegram 429: retry after {wait:g}s", retry_after=wait)
    if isinstance(exc, ChatMigrated):
        return AdapterError(f"Telegram: chat migrated to {exc.new_chat_id}",
                            migrated_to=str(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return AdapterError(f"Telegram 403: {exc.message}", retryable=False,
                            permanent_reason="blocked")
    if isinstance(exc, InvalidToken):
        return AdapterError(f"Telegram: invalid token ({exc.message})")
    if isinstance(exc, BadRequest):
        return AdapterError(f"Telegram 400: {exc.message}", retryable=False)
    if isinstance(exc, TimedOut) and not isinstance(exc.__cause__, httpx.ConnectTimeout | httpx.PoolTimeout):
        # The request went out and no answer came: Telegram may have delivered it, and it
        # has no idempotency key. The outbox retries (never lose) and counts the row.
        return UncertainDelivery(f"Telegram: no answer in time ({type(exc.__cause__).__name__})")
    return AdapterError(f"Telegram: {type(exc).__name__}: {exc.message}")  # network, 5xx, 409


def keyboard(buttons: Sequence[Button]) -> tuple[InlineKeyboardMarkup | None, tuple[Button, ...]]:
    """The inline keyboard, and the buttons that cannot be one (command over 64 bytes),
    which are then shown as typed commands."""
    fit = [b for b in buttons if len(b.command.encode()) <= MAX_CALLBACK_BYTES]
    rest = tuple(b for b in buttons if b not in fit)
    if not fit:
        return None, rest
    rows = [[InlineKeyboardButton(b.label, callback_data=b.command) for b in fit[i:i + BUTTONS_PER_ROW]]
            for i in range(0, len(fit), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows), rest
