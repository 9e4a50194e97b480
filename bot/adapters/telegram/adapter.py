"""The Telegram adapter class: receiving (polling, webhook), sending and editing; see the
package docstring."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    CallbackQuery,
    ChatMemberUpdated,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    InvalidToken,
    TelegramError,
)
from telegram.request import HTTPXRequest

from bot.adapters.base import (
    Adapter,
    Capabilities,
    InboundHandler,
    RateWindow,
    stored_or_raise,
    text_with_commands,
)
from bot.adapters.redact import install as install_log_redaction
from bot.adapters.telegram.convert import adapter_error, api_urls, keyboard
from bot.config import TelegramSettings
from bot.http import read_body
from core.errors import AdapterError
from core.messages import Attachment, Inbound, Outbound

log = logging.getLogger("bot.adapters.telegram")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
# A bot with one of these statuses in a chat can write there.
PRESENT = frozenset({"member", "administrator", "creator"})
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


class TelegramAdapter(Adapter):
    """Telegram Bot API.

    Args:
        settings: ``[telegram]`` (token, base URL, mode, webhook, proxy).
        retry_base_seconds: the first wait after a failed poll (doubling to a minute).
    """

    platform = "telegram"
    capabilities = Capabilities(buttons=True, edit=True, mentions=True, markdown=False,
                                max_text=4096)
    limits = (RateWindow("global", 30, 1.0), RateWindow("chat", 1, 1.0),
              RateWindow("group", 20, 60.0))

    def __init__(self, settings: TelegramSettings, *,
                 retry_base_seconds: float = RETRY_BASE_SECONDS) -> None:
        if settings.token is None or not settings.token.get_secret_value():
            raise AdapterError("未配置 Telegram 机器人令牌：请设置环境变量 DUTYBOT_TELEGRAM_TOKEN"
                               "（或配置文件 [telegram] token）。", retryable=False)
        self.settings = settings
        self.retry_base = retry_base_seconds
        install_log_redaction()  # httpx logs request URLs, and ours hold the token
        api, files = api_urls(settings.base_url)
        timeout = settings.poll_timeout
        self.bot = Bot(
            settings.token.get_secret_value(), base_url=api, base_file_url=files,
            request=HTTPXRequest(connection_pool_size=64, proxy=settings.proxy,
                                 read_timeout=settings.send_timeout_seconds,
                                 write_timeout=settings.send_timeout_seconds, connect_timeout=10,
                                 pool_timeout=10),
            get_updates_request=HTTPXRequest(connection_pool_size=2, proxy=settings.proxy,
                                             read_timeout=timeout + 10, connect_timeout=10))
        secret = settings.webhook_secret
        self.webhook_secret = secret.get_secret_value() if secret else secrets.token_urlsafe(32)
        self.handler: InboundHandler | None = None
        self.username = ""
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._ready = False

    # ------------------------------------------------------------ lifecycle

    async def start(self, handler: InboundHandler) -> None:
        """Connect and begin receiving.

        Raises:
            AdapterError: the token is refused (nothing will work until it is fixed).
        """
        self.handler = handler
        self._stopping.clear()
        try:
            await self._connect()
        except InvalidToken:
            raise AdapterError("Telegram 拒绝了机器人令牌（DUTYBOT_TELEGRAM_TOKEN）：请检查令牌是否正确、"
                               "是否已被撤销。", retryable=False) from None
        except TelegramError as exc:
            log.warning("Telegram is not reachable yet (%s); retrying in the background", exc)
        self._task = asyncio.create_task(self._background(), name="telegram-receive")

    async def open_for_sending(self) -> None:
        """A worker that does not lead: the HTTP client for sending, no polling (the
        leader polls; bot.leader). Telegram unreachable now: sending retries anyway."""
        try:
            await self.bot.initialize()
        except InvalidToken:
            raise AdapterError("Telegram 拒绝了机器人令牌（DUTYBOT_TELEGRAM_TOKEN）：请检查令牌是否正确、"
                               "是否已被撤销。", retryable=False) from None
        except TelegramError as exc:
            log.warning("Telegram is not reachable yet (%s); sending will retry", exc)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TelegramError, RuntimeError):
            await self.bot.shutdown()
        self.handler = None

    async def _connect(self) -> None:
        """getMe, the command menu, and the webhook set (or removed, for polling)."""
        await self.bot.initialize()
        self.username = self.bot.username or ""
        await self.publish_commands()
        if self.settings.mode == "webhook":
            await self.bot.set_webhook(url=self.settings.webhook_url or "",
                                       secret_token=self.webhook_secret,
                                       allowed_updates=list(ALLOWED_UPDATES))
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
        self._ready = True
        log.info("connected to Telegram as @%s (%s mode)", self.username, self.settings.mode)

    async def _background(self) -> None:
        delay = self.retry_base
        while not self._ready and not self._stopping.is_set():
            await self._pause(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            try:
                await self._connect()
            except TelegramError as exc:
                log.warning("Telegram still not reachable: %s", exc)
        if self.settings.mode == "polling":
            await self._poll()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def publish_commands(self) -> None:
        """The command menu: every command in private chats, the group-safe ones in groups."""
        private = [BotCommand(c.command, c.description[:256]) for c in self.commands]
        group = [BotCommand(c.command, c.description[:256]) for c in self.commands
                 if not c.private_only]
        if private:
            await self.bot.set_my_commands(private, scope=BotCommandScopeAllPrivateChats())
        if group:
            await self.bot.set_my_commands(group, scope=BotCommandScopeAllGroupChats())

    # ------------------------------------------------------------ receiving

    async def _poll(self) -> None:
        offset: int | None = None
        delay = self.retry_base
        while not self._stopping.is_set():
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=self.settings.poll_timeout,
                                                     allowed_updates=list(ALLOWED_UPDATES))
            except Conflict as exc:
                # A second dutybot run on the same database is refused at start (the
                # receiver lock, bot.instance_lock); this is one on another database, or
                # another program using the token.
                log.error("another getUpdates or a webhook is active for this bot (%s); is "
                          "another program, or a dutybot on another database, using the "
                          "same token?", exc.message)
                await self._pause(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            except TelegramError as exc:
                log.warning("getUpdates failed: %s; retrying in %.0fs", exc, delay)
                await self._pause(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            except Exception:  # e.g. an update this library version cannot read
                log.exception("getUpdates returned something unreadable; retrying in %.0fs", delay)
                await self._pause(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if not updates:
                delay = self.retry_base
                continue
            failed = await self._process_batch(updates)
            if failed is None:
                offset = updates[-1].update_id + 1
                delay = self.retry_base
            else:
                offset = failed  # ask for it again; the ledger skips those already done
                await self._pause(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _process_batch(self, updates: Sequence[Update]) -> int | None:
        """Handle a batch, chat by chat in order; the lowest update id that failed, if any."""
        chains: dict[str, list[Update]] = {}
        for update in updates:
            chat = update.effective_chat
            chains.setdefault(str(chat.id) if chat else f"u{update.update_id}", []).append(update)

        async def run(chain: list[Update]) -> int | None:
            for update in chain:
                try:
                    await self.process(update)
                except Exception:
                    log.exception("handling Telegram update %s failed; it will be retried",
                                  update.update_id)
                    return update.update_id
            return None

        failed = [f for f in await asyncio.gather(*(run(c) for c in chains.values())) if f is not None]
        return min(failed) if failed else None

    async def process(self, update: Update) -> None:
        """Hand one update to the bot (raises when the bot could not handle it)."""
        if self.handler is None:
            raise RuntimeError("the Telegram adapter is not started")
        if update.callback_query is not None:
            await self._process_button(update, update.callback_query)
            return
        if update.my_chat_member is not None:
            await self._membership(update.my_chat_member)
            return
        message = update.message
        if message is None:
            return
        if message.migrate_to_chat_id or message.migrate_from_chat_id:
            await self._chat_moved(message)
            return
        inbound = await self.to_inbound(update, message)
        if inbound is not None:
            stored_or_raise(await self.handler(inbound), update.update_id)

    async def _process_button(self, update: Update, query: CallbackQuery) -> None:
        assert self.handler is not None
        message = query.message
        notice: str | None = None
        try:
            if message is None or not query.data:
                notice = "该按钮已失效，请直接发送命令。"
                return
            chat = message.chat
            result = await self.handler(Inbound(
                platform=self.platform, chat_id=str(chat.id), sender_id=str(query.from_user.id),
                sender_name=query.from_user.full_name, text=query.data,
                update_id=str(update.update_id), is_group=chat.type in ("group", "supergroup"),
                is_button=True, callback_id=query.id, message_ref=str(message.message_id),
                raw=update))
            stored_or_raise(result, update.update_id)
        except Exception:
            notice = "处理出错，请稍后重试。"
            raise
        finally:
            await self._answer(query.id, notice)

    async def _answer(self, query_id: str, notice: str | None) -> None:
        try:
            await self.bot.answer_callback_query(query_id, text=notice)
        except TelegramError as exc:  # too old (a redelivery), or the network: nothing to redo
            log.info("answering button press %s failed: %s", query_id, exc)

    async def _membership(self, change: ChatMemberUpdated) -> None:
        """A person blocked (or unblocked) the bot, or the bot left or joined a group."""
        member = change.new_chat_member
        reachable = member.status in PRESENT or (
            member.status == "restricted" and bool(getattr(member, "can_send_messages", False)))
        is_group = change.chat.type in ("group", "supergroup")
        log.info("Telegram: the bot is now %s in %s chat %s", member.status,
                 change.chat.type, change.chat.id)
        if self.on_reachability is not None:
            await self.on_reachability(str(change.chat.id), is_group, reachable)

    async def _chat_moved(self, message: Message) -> None:
        if message.migrate_to_chat_id:
            old, new = str(message.chat.id), str(message.migrate_to_chat_id)
        else:
            old, new = str(message.migrate_from_chat_id), str(message.chat.id)
        log.warning("Telegram group %s became supergroup %s", old, new)
        if self.on_chat_moved is not None:
            await self.on_chat_moved(old, new)

    async def to_inbound(self, update: Update, message: Message) -> Inbound | None:
        """The platform-neutral message, or None when it is not for this bot."""
        text = message.text or message.caption or ""
        sender = message.from_user
        if sender is None or sender.is_bot:
            return None
        is_group = message.chat.type in ("group", "supergroup")
        first = text.split(maxsplit=1)[0] if text.strip() else ""
        if first.startswith("/") and "@" in first:
            addressed = first.split("@", 1)[1]
            if addressed.lower() != self.username.lower():
                return None  # a command for another bot in the same group
        attachments = await self._attachments(message)
        if not text and not attachments:
            return None  # stickers, joins and other service messages
        quoted = message.reply_to_message   # a reply to a bot card acts on its item
        return Inbound(platform=self.platform, chat_id=str(message.chat.id),
                       sender_id=str(sender.id), sender_name=sender.full_name, text=text,
                       update_id=str(update.update_id), is_group=is_group,
                       received_at=message.date, attachments=attachments, raw=update,
                       reply_to_message_id=str(quoted.message_id) if quoted is not None else None)

    async def _attachments(self, message: Message) -> tuple[Attachment, ...]:
        found: list[tuple[str, str, str, str, int | None]] = []
        if message.photo:
            best = message.photo[-1]  # the largest size
            found.append((best.file_id, f"photo-{best.file_unique_id}.jpg", "image/jpeg", "photo",
                          best.file_size))
        if message.document is not None:
            doc = message.document
            found.append((doc.file_id, doc.file_name or f"file-{doc.file_unique_id}",
                          doc.mime_type or "application/octet-stream", "file", doc.file_size))
        out = []
        for file_id, name, mime, kind, size in found:
            if size is not None and size > MAX_DOWNLOAD_BYTES:
                log.warning("attachment %s is %d bytes, over the Bot API's 20 MB; skipped", name, size)
                continue
            file = await self.bot.get_file(file_id)
            data = bytes(await file.download_as_bytearray())
            out.append(Attachment(filename=name, data=data, content_type=mime, kind=kind))
        return tuple(out)

    # ------------------------------------------------------------ webhook

    def http_routes(self) -> list[BaseRoute]:
        """The webhook route, in webhook mode (polling needs no HTTP service)."""
        if self.settings.mode != "webhook":
            return []
        return [Route(WEBHOOK_PATH, self._webhook, methods=["POST"])]

    async def _webhook(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            log.warning("refused a webhook request with a wrong or missing secret token from %s",
                        request.client.host if request.client else "?")
            return Response(status_code=403)
        body = await read_body(request)
        if body is None:
            return Response(status_code=413)
        try:
            data: Any = json.loads(body)
            update = Update.de_json(data, self.bot)
        except Exception:
            log.warning("refused a webhook request whose body is not an update")
            return Response(status_code=400)
        try:
            await self.process(update)
        except Exception:
            log.exception("handling Telegram update %s failed; Telegram will redeliver it",
                          update.update_id)
            return Response(status_code=500)
        return Response(status_code=200)

    # ------------------------------------------------------------ sending

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        markup, typed = keyboard(message.buttons)
        text = text_with_commands(Outbound(message.text, buttons=typed), self.capabilities)
        try:
            sent = await self.bot.send_message(
                chat_id=int(chat_id), text=text, reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True))
        except TelegramError as exc:
            raise adapter_error(exc) from exc
        return str(sent.message_id)

    async def edit(self, chat_id: str, message_ref: str, message: Outbound) -> None:
        markup, typed = keyboard(message.buttons)
        text = text_with_commands(Outbound(message.text, buttons=typed), self.capabilities)
        try:
            await self.bot.edit_message_text(
                chat_id=int(chat_id), message_id=int(message_ref), text=text,
                reply_markup=markup, link_preview_options=LinkPreviewOptions(is_disabled=True))
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return  # the card already says this
            raise adapter_error(exc) from exc
        except TelegramError as exc:
            raise adapter_error(exc) from exc
