"""The dispatcher: one inbound update in, one transaction, replies into the outbox.

For each update it (1) records the platform update id — a redelivery is acknowledged
and ignored; (2) refuses over-long input; (3) finds the command (``/help``, a Chinese
alias such as ``帮助``, or a button's command; a reply to a bot card — ``确认``, ``完成 2`` —
is the card's command about its item, :mod:`bot.refs`; a mistyped one gets the closest
name suggested, :mod:`bot.suggest`); (4) looks up who is speaking — unknown
people get a polite refusal and a log line, nothing else; (5) checks the roles the
handler declares; (6) runs the handler; (7) writes the replies and any notifications
into the outbox in the same transaction as the handler's changes, then commits.

Pictures and files without a command (any platform) are held for their sender
(:mod:`bot.held_media`, on disk) and the person is told to send ``/incident evidence 编号
说明``; a handler that :meth:`~Handler.takes_held_media` gets them as attachments, and they
are forgotten once its transaction committed — a refused command leaves them held.

A handler's :class:`~core.errors.InputError` becomes its Chinese usage line; any other
:class:`~core.errors.DutybotError` is shown as it is; an unexpected exception is logged
with context and the person gets an apology with an error id.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import bindparam, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, select

from bot import refs
from bot.adapters.base import CommandInfo
from bot.commit_wait import WriteWatch
from bot.config import Settings
from bot.held_media import FOLDER as HELD_FOLDER
from bot.held_media import HeldItem, HeldMedia, held_text, kind_of, sender_key, still_held_text
from bot.models import PendingPrompt, ProcessedUpdate
from bot.suggest import unknown_hint
from core.clock import Clock
from core.errors import DutybotError, InputError
from core.messages import Inbound, Outbound
from core.outbox import enqueue_each
from core.profiles import Profile
from core.text import clean_text
from core.workdays import WorkdayCalendar
from incidents.service import IncidentPolicy
from people.models import ROLE_ZH, ChatIdentity, Person, Role
from people.service import identity_for

log = logging.getLogger(__name__)

PROMPT_TTL = timedelta(minutes=15)
CANCEL_WORDS = frozenset({"取消", "算了", "退出"})
_COMMAND = re.compile(r"^[/／]([A-Za-z0-9_]+)(?:@\S+)?(?:\s+(.*))?$", re.S)

# The statements every update runs, built once (issue 21): building a statement and its
# cache key took longer than running it. The update is recorded by a plain INSERT (no
# unit-of-work flush); a redelivery still fails it on ``uq_processed_update``.
_MARK_PROCESSED = insert(ProcessedUpdate.__table__)  # type: ignore[attr-defined]
_PROMPT = select(PendingPrompt).where(PendingPrompt.platform == bindparam("platform"),
                                      PendingPrompt.chat_id == bindparam("chat_id"),
                                      PendingPrompt.sender_id == bindparam("sender_id"))
Identity = tuple[ChatIdentity, Person]


@dataclass
class Context:
    """What a handler may use. Handlers return replies; they never send."""

    session: Session
    now: datetime
    inbound: Inbound
    person: Person | None
    args: str
    settings: Settings
    calendar: WorkdayCalendar
    profile: Profile
    # ``[incidents]`` with who the roster has on duty (built once by the composition root).
    incident_policy: IncidentPolicy
    handlers: Sequence[Handler] = field(default_factory=tuple)
    # What the handler's ``prepare`` produced outside the transaction (e.g. a fetched page).
    prepared: object = None
    # Set by ``ask``: the person's next plain-text message continues this command.
    follow_up: str | None = None
    # The item of the bot card this message replies to (``bot.refs``), for this handler's kind.
    card: refs.CardRef | None = None
    # Lines put before the first reply, e.g. which item a short reference meant.
    notes: list[str] = field(default_factory=list)

    def ask(self, prefix: str) -> None:
        """Read the person's next plain-text message (within PROMPT_TTL) as ``prefix`` + text."""
        self.follow_up = prefix

    @property
    def actor(self) -> str:
        """The name recorded in audit events."""
        return self.person.name if self.person else f"{self.inbound.platform}:{self.inbound.sender_id}"


class Handler(ABC):
    """A chat command.

    Attributes:
        command: the ASCII slash command without ``/``.
        aliases: Chinese keywords that mean the same (free-text platforms).
        roles: roles any one of which allows the command; empty = any bound person.
        allow_unbound: usable before binding (``/bind``, ``/help``).
        private_only: refused in group chats (``/bind``: a code said in a group is spent
            in public); also left out of the group command menu.
        usage: the Chinese usage line shown on malformed input.
        summary: one Chinese line for ``/help``.
    """

    command: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    roles: ClassVar[frozenset[Role]] = frozenset()
    allow_unbound: ClassVar[bool] = False
    private_only: ClassVar[bool] = False
    usage: ClassVar[str]
    summary: ClassVar[str]
    # The items whose cards this command acts on when a person replies to one (``incident``).
    card_kind: ClassVar[str | None] = None

    def understands(self, word: str) -> bool:
        """Whether a reply to one of this command's cards that starts with ``word``
        (``确认``, ``完成``) is this command without its name."""
        return False

    def allowed(self, person: Person | None) -> bool:
        """Whether ``person`` may use this command."""
        if person is None:
            return self.allow_unbound
        return not self.roles or bool(self.roles & person.role_set())

    def usage_for(self, args: str) -> str:
        """The usage line shown after bad input; handlers with many sub-commands may
        show only the one that was attempted."""
        return self.usage

    def takes_held_media(self, args: str) -> bool:
        """Whether this command takes the pictures and files held for its sender (as
        ``inbound.attachments``, before those sent with it); they are forgotten only when
        ``handle`` returns (and the transaction commits)."""
        return False

    def needs_prepare(self, args: str) -> bool:
        """Whether ``prepare`` must run before the transaction (slow I/O such as a fetch)."""
        return False

    def check_prepare(self, args: str, *, card: refs.CardRef | None, session: Session, person: Person,
                      now: datetime, policy: IncidentPolicy) -> None:
        """Checks that must pass before ``prepare`` runs (the item exists, is open, ``person``
        may act on it); raise the refusal (a :class:`~core.errors.DutybotError`). Runs in a
        read-only session after the role check; the refusal becomes ``ctx.prepared`` and
        ``prepare`` is skipped, so ``handle`` must refuse the same way. Default: no checks."""
        return None

    async def prepare(self, args: str, settings: Settings, now: datetime) -> object:
        """Slow work done outside the database transaction; the result is ``ctx.prepared``.
        Runs only for bound people allowed to use the command. Return an exception to have
        it shown to the person instead of raising here."""
        return None

    @abstractmethod
    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        """Do the command; return the replies (and notifications to others).

        Raises:
            InputError: malformed arguments; the dispatcher shows the usage line.
            DutybotError: a refusal whose message is shown to the person.
        """


@dataclass(frozen=True)
class DispatchResult:
    """What happened to one update (for logs, tests and the console)."""

    duplicate: bool = False
    command: str | None = None
    replies: int = 0
    error_id: str | None = None
    held: int = 0            # pictures and files held for the sender after this update
    # False: the database refused the update (disk full, database gone); it is not marked
    # processed, so a redelivery is handled; the caller apologises outside the database.
    stored: bool = True


UNBOUND_REPLY = ("您好，您还没有绑定身份，暂时不能使用本机器人。\n"
                 "请向管理员索取绑定码，然后发送：/bind 绑定码")
EXTERNAL_REPLY = "您好，您登记为外部联系人，不使用本机器人。如有疑问请联系本单位管理员。"


class Dispatcher:
    """Routes inbound updates to handlers; see the module docstring."""

    def __init__(
        self,
        *,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        calendar: WorkdayCalendar,
        profile: Profile,
        incident_policy: IncidentPolicy,
        handlers: Sequence[Handler],
        on_commit: Callable[[], None] | None = None,
        held: HeldMedia | None = None,
    ) -> None:
        self.engine, self.clock, self.settings = engine, clock, settings
        # Held pictures and files: ``<evidence_dir>/held`` unless given.
        self.held = held if held is not None else HeldMedia(
            settings.resolve(settings.incidents.evidence_dir) / HELD_FOLDER, clock)
        self.calendar, self.profile, self.incident_policy = calendar, profile, incident_policy
        self.handlers = tuple(handlers)
        self.on_commit = on_commit
        self._by_name: dict[str, Handler] = {}
        for handler in self.handlers:
            for name in (handler.command, *handler.aliases):
                if name in self._by_name:
                    raise ValueError(f"command or alias {name!r} registered twice")
                self._by_name[name] = handler

    def route(self, text: str) -> tuple[Handler | None, str, str | None]:
        """(handler, arguments, command word) for a message text."""
        text = text.strip()
        m = _COMMAND.match(text)
        if m:
            word = m.group(1).lower()
            return self._by_name.get(word), (m.group(2) or "").strip(), word
        first, _, rest = text.partition(" ")
        if first in self._by_name:
            return self._by_name[first], rest.strip(), first
        return None, text, None

    async def _prepare(self, inbound: Inbound) -> object:
        handler, args, word = self.route(inbound.text)
        if handler is None or not handler.needs_prepare(args) or len(inbound.text) > self.settings.bot.max_input_chars:
            return None
        with Session(self.engine) as session:
            found = identity_for(session=session, platform=inbound.platform, external_id=inbound.sender_id)
            person = found[1] if found and found[1].active else None
            if person is None or Role.external in person.role_set() or not handler.allowed(person):
                return None
            # The command's own checks (the item exists, is open, this person may act on it)
            # come before the slow work: a refused command fetches nothing (issue 16 item 2).
            now = self.clock.now()
            _, _, card = refs.card_route(session, inbound, now, handler, args, word, self.handlers)
            try:
                handler.check_prepare(args, card=card, session=session, person=person, now=now,
                                      policy=self.incident_policy)
            except DutybotError as exc:
                return exc
        try:
            return await handler.prepare(args, self.settings, self.clock.now())
        except DutybotError as exc:
            return exc

    def menu(self) -> list[CommandInfo]:
        """The command menu a platform shows (every command, with its /help line)."""
        return [CommandInfo(h.command, h.summary, h.private_only) for h in self.handlers]

    async def dispatch(self, inbound: Inbound) -> DispatchResult:
        """Handle one update exactly once; see the module docstring.

        A database failure while storing the update or its outcome (disk full, the
        database gone, a lock timeout) is caught here: it is logged with an error id and
        the result says ``stored=False`` — nothing was committed, the update is not marked
        processed, so the platform's redelivery (or the person's resend) is handled. The
        apology then has to go out without the database: :meth:`bot.app.App.handle`.

        Hidden characters (controls, zero-width, bidi overrides, lone surrogates) are
        removed from the text here, once, before anything is stored or sent.
        """
        inbound = dataclasses.replace(inbound, text=clean_text(inbound.text))
        prepared = await self._prepare(inbound)
        now = self.clock.now()
        try:
            return await self._dispatch(inbound, now, prepared)
        except SQLAlchemyError:
            error_id = uuid.uuid4().hex[:8]
            log.exception("error %s: update %s/%s from %s could not be stored; it is not "
                          "marked processed, a redelivery will be handled", error_id,
                          inbound.platform, inbound.update_id, inbound.sender_id)
            return DispatchResult(error_id=error_id, stored=False)

    async def _dispatch(self, inbound: Inbound, now: datetime, prepared: object) -> DispatchResult:
        with Session(self.engine, expire_on_commit=False) as session:
            watch = WriteWatch(session)   # a question's answer need not wait for the disk
            try:
                session.execute(_MARK_PROCESSED, {"platform": inbound.platform,
                                                  "update_id": inbound.update_id, "received_at": now})
            except IntegrityError:
                watch.close()
                session.rollback()
                log.info("ignoring redelivered update %s/%s", inbound.platform, inbound.update_id)
                return DispatchResult(duplicate=True)
            # Who is speaking: looked up once, for the handler and for where its replies go.
            found = identity_for(session=session, platform=inbound.platform, external_id=inbound.sender_id)
            taken: list[HeldItem] = []
            try:
                result, replies = await self._run(session, inbound, now, prepared, taken, found)
            except Exception:
                watch.close()
                session.rollback()
                error_id = uuid.uuid4().hex[:8]
                log.exception("error %s handling update %s/%s from %s: %r", error_id,
                              inbound.platform, inbound.update_id, inbound.sender_id,
                              inbound.text[:200])
                return self._apologize(inbound, now, error_id)
            self._write(session, inbound, now, replies, found)
            watch.commit()
        if taken:
            self._release(inbound, taken)
        if replies and self.on_commit:
            self.on_commit()
        return result

    def _release(self, inbound: Inbound, taken: list[HeldItem]) -> None:
        """Forget held items the committed command stored as evidence."""
        try:
            self.held.release(taken)
        except OSError:
            # Left on disk they would be attached again: say so loudly.
            log.exception("could not forget %d held item(s) of %s/%s after storing them",
                          len(taken), inbound.platform, inbound.sender_id)

    def _hold(self, inbound: Inbound, person: Person | None) -> tuple[DispatchResult, list[Outbound]]:
        """Pictures or files without a command: held for their sender, who is told what
        to send next. Group chatter is not for the bot; unknown people are refused."""
        if inbound.is_group:
            return DispatchResult(), []
        if person is None:
            log.info("unbound user %s/%s (%s) sent %d picture(s)/file(s)", inbound.platform,
                     inbound.sender_id, inbound.sender_name, len(inbound.attachments))
            return DispatchResult(), [Outbound(UNBOUND_REPLY)]
        if Role.external in person.role_set():
            return DispatchResult(), [Outbound(EXTERNAL_REPLY)]
        try:
            count = self.held.hold(sender_key(inbound.platform, inbound.sender_id),
                                   inbound.attachments)
        except OSError:
            log.exception("could not hold %d picture(s)/file(s) of %s/%s",
                          len(inbound.attachments), inbound.platform, inbound.sender_id)
            return DispatchResult(), [Outbound("抱歉，图片/文件暂时无法保存，请稍后重新发送。")]
        log.info("%d picture(s)/file(s) of %s/%s held for an evidence command (%d held)",
                 len(inbound.attachments), inbound.platform, inbound.sender_id, count)
        return DispatchResult(held=count), [Outbound(held_text(kind_of(inbound.attachments), count))]

    def _keep_on_refusal(self, inbound: Inbound, held: list[HeldItem]) -> int:
        """A refused command that takes held items: they stay held, and so do the pictures
        and files sent with it; how many are held for the sender now."""
        key = sender_key(inbound.platform, inbound.sender_id)
        own = inbound.attachments[len(held):]
        try:
            return self.held.hold(key, own) if own else self.held.count(key)
        except OSError:
            log.exception("could not hold the picture(s)/file(s) of a refused command of %s/%s",
                          inbound.platform, inbound.sender_id)
            return len(held)

    def _continue_prompt(self, session: Session, inbound: Inbound, now: datetime) -> str | None:
        """The pending question's command with this message appended (and the question
        cleared), or None when there is no live question or the message is a command."""
        prompt = session.exec(_PROMPT, params={"platform": inbound.platform, "chat_id": inbound.chat_id,
                                               "sender_id": inbound.sender_id}).first()
        if prompt is None:
            return None
        session.delete(prompt)
        text = inbound.text.strip()
        if prompt.expires_at <= now or inbound.is_button or self.route(text)[0] is not None:
            return None
        return f"{prompt.prefix} {text}"

    def _save_prompt(self, session: Session, inbound: Inbound, now: datetime, prefix: str) -> None:
        session.add(PendingPrompt(platform=inbound.platform, chat_id=inbound.chat_id,
                                  sender_id=inbound.sender_id, prefix=prefix[:500],
                                  expires_at=now + PROMPT_TTL))

    async def _run(self, session: Session, inbound: Inbound, now: datetime,
                   prepared: object = None, taken: list[HeldItem] | None = None,
                   found: Identity | None = None) -> tuple[DispatchResult, list[Outbound]]:
        limit = self.settings.bot.max_input_chars
        if len(inbound.text) > limit:
            return DispatchResult(), [Outbound(f"消息过长（{len(inbound.text)} 字，上限 {limit} 字），请精简后重新发送。")]
        text = inbound.text
        # Pictures or files without a command are held (a pending question stays open).
        media_only = bool(inbound.attachments) and not inbound.is_button and self.route(text)[0] is None
        continued = None if media_only else self._continue_prompt(session, inbound, now)
        if continued is not None:
            if inbound.text.strip() in CANCEL_WORDS:
                return DispatchResult(), [Outbound("已取消。")]
            text = continued
        handler, args, word = self.route(text)
        person = found[1] if found else None
        if found is not None and found[0].blocked_at is not None and not inbound.is_group:
            found[0].blocked_at = None  # they write to the bot again: they unblocked it
            session.add(found[0])
        if person is not None and not person.active:
            person = None
        if media_only:
            return self._hold(inbound, person)
        handler, args, card = refs.card_route(session, inbound, now, handler, args, word,
                                              self.handlers if person is not None else ())
        if handler is None:
            if inbound.is_group and word is None:
                return DispatchResult(), []   # ordinary group chatter is not for the bot
            if person is None:
                log.info("unbound user %s/%s sent a message of %d characters", inbound.platform,
                         inbound.sender_id, len(inbound.text))
                return DispatchResult(), [Outbound(UNBOUND_REPLY)]
            names = [n for h in self.handlers if h.allowed(person) for n in (h.command, *h.aliases)]
            return DispatchResult(), [Outbound(unknown_hint(word, text, names) + "发送 /help 查看您可以使用的命令。")]
        if handler.private_only and inbound.is_group:
            return DispatchResult(command=handler.command), [
                Outbound(f"/{handler.command} 请在与机器人的私聊中使用（在群里发送会让其他人看到）。")]
        if person is not None and Role.external in person.role_set():
            log.info("external contact %s tried /%s", person.name, handler.command)
            return DispatchResult(command=handler.command), [Outbound(EXTERNAL_REPLY)]
        if person is None and not handler.allow_unbound:
            log.info("unbound user %s/%s (%s) tried /%s", inbound.platform, inbound.sender_id,
                     inbound.sender_name, handler.command)
            return DispatchResult(command=handler.command), [Outbound(UNBOUND_REPLY)]
        if not handler.allowed(person):
            needed = "、".join(ROLE_ZH[r] for r in Role if r in handler.roles)
            return DispatchResult(command=handler.command), [
                Outbound(f"抱歉，/{handler.command} 需要以下角色之一：{needed}。如需开通请联系管理员。")]
        takes_held = handler.takes_held_media(args)
        held: list[HeldItem] = []
        if takes_held:
            held = self.held.items(sender_key(inbound.platform, inbound.sender_id))
            if held:
                log.info("update %s/%s carries %d held picture(s)/file(s)", inbound.platform,
                         inbound.update_id, len(held))
                inbound = dataclasses.replace(
                    inbound, attachments=tuple(item.attachment for item in held) + inbound.attachments)
        ctx = Context(session=session, now=now, inbound=inbound, person=person, args=args,
                      settings=self.settings, calendar=self.calendar, profile=self.profile,
                      incident_policy=self.incident_policy, handlers=self.handlers, prepared=prepared,
                      card=card)
        try:
            with session.begin_nested():
                replies = await handler.handle(inbound, ctx)
        except DutybotError as exc:
            if isinstance(exc, InputError):
                text = f"{exc.message}\n用法：{handler.usage_for(args)}"
            else:
                text = exc.message
            text = "\n".join([*ctx.notes, text])
            still = 0
            if takes_held and inbound.attachments:
                still = self._keep_on_refusal(inbound, held)
                if still:
                    text += "\n" + still_held_text(still)
            return DispatchResult(command=handler.command, held=still), [Outbound(text)]
        if taken is not None:
            taken.extend(held)
        replies = refs.with_notes(ctx.notes, replies)   # e.g. which item a short reference meant
        if ctx.follow_up is not None:
            self._save_prompt(session, inbound, now, ctx.follow_up)
        return DispatchResult(command=handler.command, replies=len(replies)), replies

    def _write(self, session: Session, inbound: Inbound, now: datetime,
               replies: list[Outbound], found: Identity | None = None) -> None:
        """Queue ``replies``; ``found``: the sender's identity as the update found it (a
        handler cannot move an account to another person; one that was unbound is looked
        up again here, after ``/bind``)."""
        if found is None:
            found = identity_for(session=session, platform=inbound.platform, external_id=inbound.sender_id)
        queued: list[tuple[Outbound, str, str | None]] = []
        for index, reply in enumerate(replies):
            key = reply.event_key or f"update:{inbound.platform}:{inbound.update_id}:{index}"
            if reply.person_id is None and reply.chat_id is None:
                if found is not None and not inbound.is_group:
                    # A private reply to a bound person goes to the person (private limits).
                    reply = Outbound(reply.text, person_id=found[1].id, buttons=reply.buttons,
                                     card_key=reply.card_key)
                else:
                    reply = Outbound(reply.text, chat_id=inbound.chat_id, buttons=reply.buttons,
                                     card_key=reply.card_key)
            queued.append((reply, key, inbound.platform if reply.chat_id is not None else None))
        enqueue_each(session=session, items=queued, now=now)  # one INSERT, no look-up first

    def _apologize(self, inbound: Inbound, now: datetime, error_id: str) -> DispatchResult:
        text = f"抱歉，处理您的消息时出错了（错误编号 {error_id}）。请稍后重试；如一直出错，请把错误编号告诉管理员。"
        with Session(self.engine, expire_on_commit=False) as session:
            session.execute(_MARK_PROCESSED, {"platform": inbound.platform,
                                              "update_id": inbound.update_id, "received_at": now})
            self._write(session, inbound, now, [Outbound(text)])
            session.commit()
        if self.on_commit:
            self.on_commit()
        return DispatchResult(error_id=error_id)
