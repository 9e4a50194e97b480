"""Telegram, through python-telegram-bot v22 (the only package that imports ``telegram``).

Receiving: long polling (default) or a webhook served by :mod:`bot.http` at
``/telegram/webhook``, registered with a secret token that every request must carry in
``X-Telegram-Bot-Api-Secret-Token``. Updates become :class:`~core.messages.Inbound` values:
text and captions, commands (``/help@thisbot`` in groups; commands addressed to another
bot are ignored), photos and files (downloaded), and button presses, each answered so the
client stops its spinner. A group that became a supergroup is reported through
``on_chat_moved``; a person blocking the bot (or unblocking it) and the bot being removed
from a group arrive as ``my_chat_member`` updates and are reported through
``on_reachability`` at once, not only at the next failed send. Only one process may poll a
bot: ``dutybot run`` holds the bot's receiver lock in polling mode (:mod:`bot.runner`),
and the token, which python-telegram-bot and httpx put in every URL they log, is masked
in every log line (:mod:`bot.logs`).

Exactly once: the handler records every ``update_id`` in the update ledger, so a webhook
retry or the updates Telegram repeats after a restart are handled once. An update whose
handling raised is not confirmed: polling asks for it again (from that update on) and the
webhook answers 500 so Telegram redelivers it.

Sending: ``sendMessage`` with an inline keyboard, ``editMessageText`` for cards. Limits
(30 messages/s overall, 1/s per chat, 20/min per group) are declared in ``limits`` and
enforced by the outbox sender; errors become :class:`~core.errors.AdapterError` — 429
with ``retry_after``, 403 as ``blocked``, a migrated group with its new id, network
errors and 5xx as retryable.
"""

import os

# python-telegram-bot 22 moves time periods (RetryAfter.retry_after …) to timedelta and
# warns on every read until one opts in; we read both forms. Set before the first import.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from bot.adapters.telegram.adapter import WEBHOOK_PATH, TelegramAdapter
from bot.adapters.telegram.convert import adapter_error, api_urls, keyboard

__all__ = ["WEBHOOK_PATH", "TelegramAdapter", "adapter_error", "api_urls", "keyboard"]
