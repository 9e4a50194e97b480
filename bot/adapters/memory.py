"""An in-memory chat platform: the test backend, and a first-class part of the product.

``MemoryAdapter`` records what the bot sends and can be told to fail; ``MemoryChat``
drives a whole :class:`~bot.app.App` like a conversation::

    reply = await chat.send("/help", as_="王芳")
    assert "可以使用以下命令" in reply
    assert "待确认" in chat.last("李强")     # what the leader received
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.adapters.base import Adapter, Capabilities, InboundHandler, RateWindow, text_with_commands
from core.errors import AdapterError
from core.messages import Attachment, Inbound, Outbound

if TYPE_CHECKING:
    from bot.app import App


@dataclass
class Delivered:
    """One message as the platform received it."""

    chat_id: str
    text: str
    buttons: tuple[tuple[str, str], ...]
    ref: str
    is_group: bool
    card_key: str | None
    edits: list[str] = field(default_factory=list)


class MemoryAdapter(Adapter):
    """Records sends; ``fail_with`` queues errors to raise on the next sends."""

    platform = "memory"

    def __init__(self, *, capabilities: Capabilities | None = None,
                 limits: tuple[RateWindow, ...] = ()) -> None:
        self.capabilities = capabilities or Capabilities(buttons=True, edit=True)  # type: ignore[misc]
        self.limits = limits  # type: ignore[misc]
        self.delivered: list[Delivered] = []
        self.fail_with: list[AdapterError] = []
        self._ids = itertools.count(1)
        self.handler: InboundHandler | None = None

    async def start(self, handler: InboundHandler) -> None:
        self.handler = handler

    async def stop(self) -> None:
        self.handler = None

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        if self.fail_with:
            raise self.fail_with.pop(0)
        ref = str(next(self._ids))
        self.delivered.append(Delivered(
            chat_id, text_with_commands(message, self.capabilities),
            tuple((b.label, b.command) for b in message.buttons), ref, is_group, message.card_key))
        return ref

    async def edit(self, chat_id: str, message_ref: str, message: Outbound) -> None:
        if not self.capabilities.edit:
            raise AdapterError("memory adapter configured without edit", retryable=False)
        for item in self.delivered:
            if item.ref == message_ref and item.chat_id == chat_id:
                item.edits.append(item.text)
                item.text = text_with_commands(message, self.capabilities)
                item.buttons = tuple((b.label, b.command) for b in message.buttons)
                return
        raise AdapterError(f"message {message_ref} not found in {chat_id}", retryable=False)


class MemoryChat:
    """A conversation with a whole app over the memory adapter.

    People are addressed by name; a bound person's chat id is ``u-<name>`` (see
    ``tests/factories.make_person``), and so is an unknown person's.
    """

    def __init__(self, app: App, adapter: MemoryAdapter) -> None:
        self.app, self.adapter = app, adapter
        self._update_ids = itertools.count(1)
        self._read: dict[str, int] = {}

    async def send(self, text: str, *, as_: str, group: str | None = None,
                   update_id: str | None = None, button: bool = False,
                   attachments: tuple[Attachment, ...] = ()) -> str:
        """Say ``text`` as ``as_`` (in ``group`` if given), with ``attachments`` if any;
        return what came back to the chat it was said in (cards updated in place
        included), joined by blank lines."""
        chat = group or f"u-{as_}"
        before = len(self.adapter.delivered)
        edits_before = [len(d.edits) for d in self.adapter.delivered]
        await self.app.handle(Inbound(
            platform="memory", chat_id=chat, sender_id=f"u-{as_}", sender_name=as_, text=text,
            update_id=update_id or f"m{next(self._update_ids)}", is_group=group is not None,
            is_button=button, attachments=attachments))
        await self.app.drain()
        edited = [d for d, n in zip(self.adapter.delivered, edits_before, strict=False)
                  if d.chat_id == chat and len(d.edits) > n]  # cards this message updated
        fresh = [d for d in self.adapter.delivered[before:] if d.chat_id == chat]
        return "\n\n".join(d.text for d in edited + fresh)

    def messages(self, name: str) -> list[str]:
        """Everything delivered to ``name``'s private chat, oldest first."""
        return [d.text for d in self.adapter.delivered if d.chat_id == f"u-{name}"]

    def last(self, name: str) -> str:
        """The newest message in ``name``'s private chat ('' if none)."""
        got = self.messages(name)
        return got[-1] if got else ""

    def pop(self, name: str) -> list[str]:
        """Messages to ``name`` not yet popped."""
        got = self.messages(name)
        start = self._read.get(name, 0)
        self._read[name] = len(got)
        return got[start:]
