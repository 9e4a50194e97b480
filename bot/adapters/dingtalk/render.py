"""DingTalk (钉钉) message rendering: what a message looks like in a DingTalk chat.

Buttons (:func:`render`): an ActionCard whose buttons are ``dtmd://dingtalkclient/
sendMessage?content=<URL-encoded command>`` links. Pressing one makes the DingTalk client
send the command into the chat as the person's own message, so a press arrives as ordinary
text. At most :data:`MAX_CARD_BUTTONS` buttons (the robot templates ``sampleActionCard`` …
``sampleActionCard5``); further buttons are listed as typed commands. In groups the robot
only receives messages that @-mention it, so group cards also list the typed commands with
that hint. The card text is the plain message text made safe for DingTalk's Markdown
(:func:`to_markdown`).

:func:`webhook_payload` and :func:`api_payload` turn a :class:`Rendered` message into the
bodies of the webhook and the robot message APIs (:mod:`bot.adapters.dingtalk.api`).
Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.adapters.base import Capabilities, text_with_commands
from core.messages import Button, Outbound

#: ``sampleActionCard`` (one button) to ``sampleActionCard5`` (five, stacked).
MAX_CARD_BUTTONS = 5
#: A link that makes the DingTalk client send ``content`` into the chat as a message.
SEND_MESSAGE_URL = "dtmd://dingtalkclient/sendMessage?content="
#: Longest message text. ``groupMessages/send`` caps ``msgParam`` at 15,000 bytes; 4,000
#: CJK characters are 12,000 bytes of UTF-8, leaving room for the card's markup.
MAX_TEXT = 4000
CARD_TITLE_CHARS = 30
DEFAULT_TITLE = "值班机器人"


def command_url(command: str) -> str:
    """The button link that sends ``command`` into the chat when pressed."""
    return SEND_MESSAGE_URL + quote(command, safe="")


def card_title(text: str) -> str:
    """A card's title (shown in the chat list and notifications): the first line."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= CARD_TITLE_CHARS else line[:CARD_TITLE_CHARS - 1] + "…"
    return DEFAULT_TITLE


_MD_INLINE = re.compile(r"([\\`*_\[\]~<>|])")
_MD_LINE_MARK = re.compile(r"^(\s*)([#>+\-])(?=\s|$)")
_MD_LINE_NUMBER = re.compile(r"^(\s*\d+)\.(?=\s|$)")


def to_markdown(text: str) -> str:
    """Plain text as DingTalk Markdown that shows the same characters and line breaks."""
    lines = []
    for line in text.split("\n"):
        line = _MD_INLINE.sub(r"\\\1", line)
        line = _MD_LINE_MARK.sub(lambda m: m.group(1) + "\\" + m.group(2), line)
        line = _MD_LINE_NUMBER.sub(lambda m: m.group(1) + "\\.", line)
        lines.append(line)
    return "  \n".join(lines)


def _typed_commands(buttons: Sequence[Button], *, group: bool) -> str:
    if not buttons:
        return ""
    head = "在群内 @我 并发送：" if group else "也可回复："
    return "\n\n" + head + "\n" + "\n".join(f"· {b.label}：{b.command}" for b in buttons)


@dataclass(frozen=True)
class Rendered:
    """A message as DingTalk shows it: plain text, or a card with link buttons."""

    text: str
    title: str
    buttons: tuple[Button, ...] = ()

    @property
    def is_card(self) -> bool:
        """Whether it is sent as an ActionCard."""
        return bool(self.buttons)


def render(message: Outbound, *, group: bool, max_text: int = MAX_TEXT) -> Rendered:
    """The text and card buttons for ``message`` in a private chat or a group."""
    shown = message.buttons[:MAX_CARD_BUTTONS]
    typed = message.buttons if group else message.buttons[MAX_CARD_BUTTONS:]
    suffix = _typed_commands(typed, group=group)
    budget = max(max_text // 2, max_text - len(suffix))
    body = text_with_commands(Outbound(message.text), Capabilities(max_text=budget))
    return Rendered(text=body + suffix, title=card_title(message.text), buttons=shown)


def webhook_payload(rendered: Rendered) -> dict[str, Any]:
    """The body for a session webhook or the custom robot."""
    if not rendered.is_card:
        return {"msgtype": "text", "text": {"content": rendered.text}}
    return {"msgtype": "actionCard", "actionCard": {
        "title": rendered.title, "text": to_markdown(rendered.text), "btnOrientation": "0",
        "btns": [{"title": b.label, "actionURL": command_url(b.command)}
                 for b in rendered.buttons]}}


def api_payload(rendered: Rendered) -> tuple[str, dict[str, str]]:
    """``(msgKey, msgParam)`` for the robot message APIs."""
    if not rendered.is_card:
        return "sampleText", {"content": rendered.text}
    param = {"title": rendered.title, "text": to_markdown(rendered.text)}
    if len(rendered.buttons) == 1:
        button = rendered.buttons[0]
        return "sampleActionCard", {**param, "singleTitle": button.label,
                                    "singleURL": command_url(button.command)}
    for index, button in enumerate(rendered.buttons, start=1):
        param[f"actionTitle{index}"] = button.label
        param[f"actionURL{index}"] = command_url(button.command)
    return f"sampleActionCard{len(rendered.buttons)}", param
