"""Platform-neutral messages: what adapters produce and consume.

An adapter turns a platform update into one frozen :class:`Inbound`; handlers and
domain flows produce :class:`Outbound` values; adapters deliver them by type. Nothing
here knows any chat platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Button:
    """A button; pressing it is the same as sending ``command`` (the typed equivalent)."""

    label: str
    command: str


@dataclass(frozen=True)
class Attachment:
    """A photo or file sent with a message; the adapter has already downloaded it."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"
    kind: str = "file"          # "photo" or "file"


@dataclass(frozen=True)
class Inbound:
    """One message or button press from a person.

    Attributes:
        platform: ``telegram``, ``wecom``, ``dingtalk``, ``console``, ``memory``.
        chat_id: where it was said (a private chat or a group), platform's id.
        sender_id: the platform's id of the person who said it.
        sender_name: display name, for logs and for unbound users.
        text: the message text, or a button's command.
        is_group: said in a group chat.
        update_id: the platform's id of this update; redeliveries carry the same id.
        is_button: a button press rather than typed text.
        callback_id: the platform's id to acknowledge a button press, if any.
        message_ref: the platform's id of the message a button sits on, if any.
        attachments: photos and files sent with the message, already downloaded.
        reply_to_message_id: the platform's id of the message this one quotes or replies
            to (Telegram's ``reply_to_message``), if the platform says; a reply to a bot
            card acts on that card's item (see ``bot.refs``).
        raw: the platform's original object, for debugging only.
    """

    platform: str
    chat_id: str
    sender_id: str
    text: str
    update_id: str
    sender_name: str = ""
    is_group: bool = False
    is_button: bool = False
    callback_id: str | None = None
    message_ref: str | None = None
    received_at: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to_message_id: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Outbound:
    """A message to deliver.

    Exactly one recipient is normally set: ``person_id`` (resolved to the person's bound
    chat on the active platform at delivery) or ``chat_id`` (a platform chat, such as the
    duty group). With neither set, a handler's reply goes to the chat the command came from.

    Attributes:
        text: plain Chinese text.
        buttons: optional buttons; platforms without buttons show the typed commands.
        card_key: identifies a card (e.g. ``incident:INC-20261123-001``); a later message
            with the same key to the same chat replaces it where the platform can edit.
        event_key: what caused the message; with the recipient it forms the dedupe key,
            so the same event never reaches the same person twice.
    """

    text: str
    person_id: int | None = None
    chat_id: str | None = None
    buttons: tuple[Button, ...] = ()
    card_key: str | None = None
    event_key: str | None = None


def duration_zh(td: timedelta) -> str:
    """A span as a person writes it in a chat message: ``不到1分钟``, ``45分钟``, ``2小时``,
    ``4小时45分钟``, ``1天``, ``8天3小时``.

    Whole minutes, rounded down; once days are shown, minutes are dropped. No space
    between number and unit. A negative span (clock skew, a deadline not yet reached)
    reads as zero, ``不到1分钟``: a chat message never shows a minus sign or fails over it.
    """
    minutes = max(0, int(td.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天" + (f"{hours}小时" if hours else "")
    if hours:
        return f"{hours}小时" + (f"{mins}分钟" if mins else "")
    return f"{mins}分钟" if mins else "不到1分钟"
