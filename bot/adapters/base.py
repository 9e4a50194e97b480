"""The adapter interface every chat platform implements.

An adapter only translates: platform updates become :class:`~core.messages.Inbound`
values handed to the bot, and :class:`~core.messages.Outbound` values become platform
calls. It declares what the platform can do (:class:`Capabilities`) and how fast it may
be called (:class:`RateWindow` list); the outbox sender enforces the limits, so an
adapter never sleeps to respect them. A failed call raises
:class:`~core.errors.AdapterError` (``retryable``, ``retry_after``,
``permanent_reason``) — it never only logs.

Push platforms without message editing (e.g. webhook robots) set ``edit=False``; the
sender then sends a new message where it would have edited a card.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar, Literal

from core.errors import AdapterError
from core.messages import Inbound, Outbound

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

InboundHandler = Callable[[Inbound], Awaitable[object]]
ChatMovedHandler = Callable[[str, str], Awaitable[None]]
# (chat id, is a group, the bot can write there now)
ReachabilityHandler = Callable[[str, bool, bool], Awaitable[None]]
# (key, how long to remember it) -> True the first time any worker on the database claims
# it, False while an earlier claim is remembered (replay guards; see bot/one_use.py).
#: Claim a one-use key (a callback signature) bound to a body: ``(key, keep, bound)`` is
#: True the first time and again for the same ``bound`` (a platform's retry of the same
#: request), False for the key with another ``bound`` (a replay) while it is kept.
ClaimOnce = Callable[[str, timedelta, str], bool]


class UpdateNotStored(RuntimeError):
    """The bot could not store an update (its database refused it); the person was told,
    and the platform must deliver it again (a webhook answers 5xx, polling keeps its
    offset, a stream leaves the frame unconfirmed)."""


def stored_or_raise(result: object, update_id: object) -> None:
    """Raise :class:`UpdateNotStored` when the bot's handling result says it was not stored."""
    if getattr(result, "stored", True) is False:
        raise UpdateNotStored(f"update {update_id} was not stored")


@dataclass(frozen=True)
class CommandInfo:
    """One entry of a platform's command menu."""

    command: str
    description: str
    private_only: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What a platform can show.

    Attributes:
        buttons: inline buttons under a message.
        edit: a sent message can be changed later (cards stay current).
        mentions: a person can be @-mentioned in a group.
        markdown: formatted text.
        max_text: the longest message text the platform accepts.
    """

    buttons: bool = False
    edit: bool = False
    mentions: bool = False
    markdown: bool = False
    max_text: int = 4000


@dataclass(frozen=True)
class RateWindow:
    """At most ``count`` messages per ``seconds``, counted over ``scope``.

    ``scope`` is ``global`` (the whole bot), ``chat`` (each chat, private or group) or
    ``group`` (each group chat only).
    """

    scope: Literal["global", "chat", "group"]
    count: int
    seconds: float


class Adapter(ABC):
    """One chat platform.

    Subclasses set ``platform``, ``capabilities`` and ``limits``.
    """

    platform: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    limits: ClassVar[tuple[RateWindow, ...]] = ()
    # Set by the app (``configure``) before ``start``.
    commands: tuple[CommandInfo, ...] = ()
    on_chat_moved: ChatMovedHandler | None = None
    on_reachability: ReachabilityHandler | None = None
    claim_once: ClaimOnce | None = None

    def configure(self, *, commands: Sequence[CommandInfo],
                  on_chat_moved: ChatMovedHandler | None,
                  on_reachability: ReachabilityHandler | None = None,
                  claim_once: ClaimOnce | None = None) -> None:
        """What the app tells the adapter: the command menu, where to report a chat that
        the platform moved to a new id, where to report that the bot was blocked or
        removed from a chat (or let back in), and how to claim a one-use key (a callback
        signature) once across every worker on the database."""
        self.commands = tuple(commands)
        self.on_chat_moved = on_chat_moved
        self.on_reachability = on_reachability
        self.claim_once = claim_once

    @abstractmethod
    async def start(self, handler: InboundHandler) -> None:
        """Begin receiving; call ``handler`` once per inbound update.

        Args:
            handler: the bot's entry point; it records the update id, so the adapter
                may hand the same update twice without harm.
        """

    async def open_for_sending(self) -> None:
        """Get ready to send without receiving: a worker that does not lead
        (:mod:`bot.leader`) on a platform whose receiving connection must be single.
        Default: nothing to do."""
        return None

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving and release connections."""

    @abstractmethod
    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        """Deliver ``message`` to ``chat_id``.

        Returns:
            The platform's id of the sent message (used to edit the card later).

        Raises:
            AdapterError: the platform refused or could not be reached.
        """

    async def edit(self, chat_id: str, message_ref: str, message: Outbound) -> None:
        """Replace a sent message's text and buttons (only when ``capabilities.edit``).

        Raises:
            AdapterError: the platform refused; the sender then sends a new message.
        """
        raise AdapterError(f"{self.platform} cannot edit sent messages", retryable=False)

    async def answer_button(self, inbound: Inbound, notice: str | None = None) -> None:
        """Acknowledge a button press once it was handled (platforms that show a spinner
        or keep a card clickable until answered); the adapter calls it itself."""
        return None

    def http_routes(self) -> list[BaseRoute]:
        """Routes the platform calls (webhooks, callbacks); the app serves them with
        :class:`bot.http.HttpService`. None: the adapter needs no HTTP service."""
        return []


def text_with_commands(message: Outbound, capabilities: Capabilities) -> str:
    """The message text, plus the typed commands when the platform shows no buttons."""
    text = message.text
    if message.buttons and not capabilities.buttons:
        lines = [f"· {b.label}：发送 {b.command}" for b in message.buttons]
        text = text + "\n\n可回复：\n" + "\n".join(lines)
    if len(text) > capabilities.max_text:
        text = text[: capabilities.max_text - 20] + "\n……（内容过长，已截断）"
    return text
