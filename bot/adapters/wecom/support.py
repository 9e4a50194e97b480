"""Self-contained helpers of the WeCom (企业微信) adapter: no I/O, no adapter state.

Used by :class:`~bot.adapters.wecom.adapter.WeComAdapter`:

* :func:`fit_bytes` cuts a text to WeCom's 2048 UTF-8 bytes (app text messages and robot
  text), ending in ``……（内容过长，已截断）``, never inside a character.
* :func:`card_layout` plans a message with buttons as a ``button_interaction`` template
  card whose title is the first line of the text (≤ 36 characters) and whose body is the
  rest (≤ 160 characters). A card holds at most six buttons, each key (the button's
  command) at most 1024 bytes; other buttons are listed as typed commands. When the text
  is longer than a card holds, the whole text goes first as a text message and a compact
  card with the buttons follows (its body is the start of the text, ending in
  ``……（全文见上一条消息）``); when only one message may be sent, the card goes alone, its
  body cut.
* :class:`MemberBudget` counts the WeCom messages really sent to each member. WeCom
  *silently drops* app messages beyond 30 a minute or 1000 an hour to one member, and a
  long card is two messages for one outbox send, so the adapter asks the budget before
  sending the second one.
* :func:`ledger_id` keeps update ids within the dispatcher ledger's column;
  :func:`missing_settings` names the required ``[wecom]`` settings that are empty.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.adapters.base import Capabilities, text_with_commands
from bot.adapters.wecom.api import MEMBER_PER_HOUR, MEMBER_PER_MINUTE
from bot.adapters.wecom.cards import MAX_BUTTON_KEY_BYTES, MAX_CARD_BUTTONS
from bot.config import WeComSettings
from core.clock import Clock
from core.messages import Button, Outbound

#: WeCom's limit for text content (app text messages and robot text), in UTF-8 bytes.
TEXT_MAX_BYTES = 2048
#: A card's main title: WeCom recommends at most 36 characters.
CARD_TITLE_MAX_CHARS = 36
#: A card's ``sub_title_text``: WeCom recommends at most 160 characters.
CARD_TEXT_MAX_CHARS = 160
TRUNCATED_NOTE = "……（内容过长，已截断）"
SEE_ABOVE_NOTE = "……（全文见上一条消息）"
#: Longest update id the dispatcher's ledger stores (``processed_update.update_id``).
MAX_UPDATE_ID_CHARS = 100

#: For :func:`~bot.adapters.base.text_with_commands`: buttons as typed commands, no cut.
NO_BUTTONS = Capabilities(buttons=False, max_text=10**9)

#: Required settings: (field of ``[wecom]``, environment variable).
REQUIRED_SETTINGS = (
    ("corp_id", "DUTYBOT_WECOM_CORP_ID"),
    ("agent_id", "DUTYBOT_WECOM_AGENT_ID"),
    ("secret", "DUTYBOT_WECOM_SECRET"),
    ("token", "DUTYBOT_WECOM_TOKEN"),
    ("aes_key", "DUTYBOT_WECOM_AES_KEY"),
)


# --------------------------------------------------------------------------- text helpers


def fit_bytes(text: str, limit: int = TEXT_MAX_BYTES, note: str = TRUNCATED_NOTE) -> str:
    """``text`` if it is at most ``limit`` UTF-8 bytes, else its start plus ``note``, the
    whole at most ``limit`` bytes and never cut inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    tail = "\n" + note
    room = max(0, limit - len(tail.encode("utf-8")))
    # "ignore" only drops the partial character at the cut: the input is valid UTF-8.
    return data[:room].decode("utf-8", "ignore").rstrip() + tail


def fit_chars(text: str, limit: int, note: str) -> str:
    """``text`` if it has at most ``limit`` characters, else its start plus ``note``."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(note))].rstrip() + note


def ledger_id(raw: str) -> str:
    """An update id the ledger can store: ``raw`` itself, or, when longer than the column,
    its kind prefix and a SHA-256 digest (the same input always gives the same id)."""
    if len(raw) <= MAX_UPDATE_ID_CHARS:
        return raw
    kind = raw.split(":", 1)[0][:10]
    return f"{kind}:h:{hashlib.sha256(raw.encode('utf-8')).hexdigest()}"


def missing_settings(settings: WeComSettings) -> list[str]:
    """The environment variables of the required ``[wecom]`` settings that are empty."""
    missing = []
    for field, env in REQUIRED_SETTINGS:
        value = getattr(settings, field)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(env)
    return missing


# --------------------------------------------------------------------------- card layout


@dataclass(frozen=True)
class CardLayout:
    """How one outbound message with buttons becomes WeCom messages.

    Attributes:
        title: the card's main title (the text's first line).
        body: the card's ``sub_title_text``.
        buttons: the card's buttons (at most six, keys within WeCom's limit).
        lead_text: the whole text, sent as a text message before the card when the card
            cannot hold it; None when the card alone says everything.
        single_body: the card body to use when only one message may be sent (the text cut).
    """

    title: str
    body: str
    buttons: tuple[Button, ...]
    lead_text: str | None
    single_body: str


def card_buttons(buttons: Sequence[Button]) -> tuple[tuple[Button, ...], tuple[Button, ...]]:
    """(buttons a card can carry, buttons to show as typed commands instead).

    A card holds at most six buttons and a key of at most 1024 bytes; the key is the
    button's command.
    """
    fit: list[Button] = []
    rest: list[Button] = []
    for button in buttons:
        key_ok = 0 < len(button.command.encode("utf-8")) <= MAX_BUTTON_KEY_BYTES
        if key_ok and len(fit) < MAX_CARD_BUTTONS:
            fit.append(button)
        else:
            rest.append(button)
    return tuple(fit), tuple(rest)


def card_layout(message: Outbound) -> CardLayout | None:
    """The card plan for ``message``; None when it has no button a card can carry."""
    buttons, typed = card_buttons(message.buttons)
    if not buttons:
        return None
    text = message.text.strip("\n")
    head, _, rest = text.partition("\n")
    head = head.strip()
    title = fit_chars(head, CARD_TITLE_MAX_CHARS, "…") if head else "请选择"
    fits = (len(head) <= CARD_TITLE_MAX_CHARS and len(rest) <= CARD_TEXT_MAX_CHARS
            and not typed)
    if fits:
        return CardLayout(title, rest, buttons, None, rest)
    full = text_with_commands(Outbound(text, buttons=typed), NO_BUTTONS)
    body = rest if len(head) <= CARD_TITLE_MAX_CHARS else text
    return CardLayout(
        title=title,
        body=fit_chars(body, CARD_TEXT_MAX_CHARS, SEE_ABOVE_NOTE) if body else "详见上一条消息",
        buttons=buttons,
        lead_text=fit_bytes(full),
        single_body=fit_chars(body, CARD_TEXT_MAX_CHARS, TRUNCATED_NOTE),
    )


# --------------------------------------------------------------------------- member budget


class MemberBudget:
    """What this process really sent to each member, against WeCom's per-member limits.

    The outbox counts one send per :meth:`WeComAdapter.send`; a long card is two WeCom
    messages. This ledger counts WeCom messages, so the adapter can decide whether the
    second one fits. Times come from the injected clock (WeCom counts in wall time).
    """

    def __init__(self, clock: Clock, *, per_minute: int = MEMBER_PER_MINUTE,
                 per_hour: int = MEMBER_PER_HOUR) -> None:
        self.clock = clock
        self.per_minute, self.per_hour = per_minute, per_hour
        self._sent: dict[str, deque[datetime]] = {}

    def _log(self, member: str, now: datetime) -> deque[datetime]:
        log_ = self._sent.setdefault(member, deque())
        while log_ and now - log_[0] >= timedelta(hours=1):
            log_.popleft()
        return log_

    def room(self, member: str) -> tuple[int, float]:
        """(messages ``member`` may still get now, seconds until one more is allowed when
        none is)."""
        now = self.clock.now()
        sent = self._log(member, now)
        minute = [t for t in sent if now - t < timedelta(minutes=1)]
        room = min(self.per_minute - len(minute), self.per_hour - len(sent))
        if room > 0:
            return room, 0.0
        waits = []
        if len(minute) >= self.per_minute:
            waits.append(minute[len(minute) - self.per_minute] + timedelta(minutes=1) - now)
        if len(sent) >= self.per_hour:
            waits.append(sent[len(sent) - self.per_hour] + timedelta(hours=1) - now)
        return 0, max((w.total_seconds() for w in waits), default=1.0)

    def record(self, member: str) -> None:
        """One message went to ``member`` now."""
        now = self.clock.now()
        self._log(member, now).append(now)
        if len(self._sent) > 10_000:  # forget idle members now and then
            for key in [k for k, v in self._sent.items() if not self._log(k, now)]:
                del self._sent[key]

