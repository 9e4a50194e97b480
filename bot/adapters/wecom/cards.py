"""WeCom (企业微信) ``button_interaction`` template cards: building and checking them.

Pure functions, no I/O: :func:`button_card` builds the card that
:meth:`~bot.adapters.wecom.api.WeComClient.send_template_card` sends, :func:`new_task_id`
a fresh ``task_id`` for it. WeCom's limits are checked here, before anything is sent: at
most :data:`MAX_CARD_BUTTONS` buttons, each key at most :data:`MAX_BUTTON_KEY_BYTES`
UTF-8 bytes, a ``task_id`` of at most :data:`MAX_TASK_ID_CHARS` characters.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

#: A ``button_interaction`` card holds at most this many buttons.
MAX_CARD_BUTTONS = 6
#: A button key (what the click callback carries back) is at most this many UTF-8 bytes.
MAX_BUTTON_KEY_BYTES = 1024
#: A card ``task_id`` is at most this many characters.
MAX_TASK_ID_CHARS = 128

_TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-@]+$")


def new_task_id(prefix: str = "") -> str:
    """A fresh, valid template-card ``task_id`` (``prefix`` + 32 hex digits)."""
    task_id = f"{prefix}{uuid.uuid4().hex}"
    _check_task_id(task_id)
    return task_id


def _check_task_id(task_id: str) -> None:
    if not task_id or len(task_id) > MAX_TASK_ID_CHARS or not _TASK_ID_RE.match(task_id):
        raise ValueError(
            f"task_id must be 1-{MAX_TASK_ID_CHARS} characters of digits, letters, _-@: "
            f"{task_id!r}")


def button_card(title: str, text: str, buttons: list[tuple[str, str]],
                task_id: str) -> dict[str, Any]:
    """A ``button_interaction`` template card.

    Args:
        title: the card's main title.
        text: the body (``sub_title_text``).
        buttons: ``(label, key)`` pairs, 1 to 6; the key comes back in the click callback
            (``EventKey``) and is at most 1024 UTF-8 bytes.
        task_id: unique per card, at most 128 characters of digits, letters and ``_-@``;
            the click callback carries it back (see :func:`new_task_id`).

    Raises:
        ValueError: too many or no buttons, an oversized or empty key, a bad task_id.
    """
    _check_task_id(task_id)
    if not buttons:
        raise ValueError("a button_interaction card needs at least one button")
    if len(buttons) > MAX_CARD_BUTTONS:
        raise ValueError(f"a card holds at most {MAX_CARD_BUTTONS} buttons, got {len(buttons)}")
    button_list = []
    for label, key in buttons:
        if not key:
            raise ValueError(f"button {label!r} has an empty key")
        if len(key.encode("utf-8")) > MAX_BUTTON_KEY_BYTES:
            raise ValueError(f"button {label!r}: key longer than {MAX_BUTTON_KEY_BYTES} bytes")
        button_list.append({"text": label, "style": 1, "key": key})
    return {
        "card_type": "button_interaction",
        "main_title": {"title": title},
        "sub_title_text": text,
        "task_id": task_id,
        "button_list": button_list,
    }
