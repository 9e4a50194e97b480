"""DingTalk (钉钉): an enterprise-internal app robot (企业内部应用机器人), two-way.

This module is the adapter, :class:`DingTalkAdapter`: receiving and the route each
message is sent by. Rendering is in :mod:`bot.adapters.dingtalk.render`; the API client
(token, sends, Stream registration), error mapping and log redaction are in
:mod:`bot.adapters.dingtalk.api`; the HTTP callbacks and their checks in
:mod:`bot.adapters.dingtalk.callback`; the session webhooks in
:mod:`bot.adapters.dingtalk.sessions`.

Receiving, one of (``[dingtalk] mode``):

* **stream** (default; no public URL): :class:`~bot.adapters.dingtalk.stream.StreamClient`
  keeps a WebSocket to DingTalk's Stream gateway subscribed to the bot-message topic
  ``/v1.0/im/bot/messages/get``; every frame is answered (ACK), callbacks once handled.
* **callback**: DingTalk posts each message to ``/dingtalk/callback`` on the HTTP
  service with the headers ``timestamp`` and ``sign``, checked with the app secret
  (:func:`bot.adapters.dingtalk.sign.verify_callback`): a forged or missing sign, a
  timestamp an hour or more away, or a ``(timestamp, sign)`` pair used before (by any
  worker on the database: a replay) is refused with 403. The request is answered
  ``200 {}`` at once and handled in the background.

With ``callback_token`` and ``callback_aes_key`` set, encrypted callbacks (事件订阅 HTTP
推送) are taken at ``/dingtalk/events`` too, in either mode. See
:mod:`bot.adapters.dingtalk.callback` for both routes.

Either way the message (``conversationType`` "1" private / "2" group, ``senderStaffId``,
``text.content`` …) becomes an :class:`~core.messages.Inbound`: a private chat's id is
the sender's staff id (so a bound person's chat id is their staffId), a group's is its
``conversationId`` (= ``openConversationId``). Group text starts after the @mention, so
leading whitespace is stripped. ``msgId`` is the update id: the dispatcher's ledger makes
a redelivered message (the gateway repeats unanswered callbacks) a no-op, and a copy
arriving while the first is still being handled is dropped here. Messages of one chat
are handled one at a time, in order.

Pictures and files (``msgtype`` ``picture``, ``file``, and the pictures of a ``richText``
message) are downloaded at once (:meth:`DingTalkApi.download
<bot.adapters.dingtalk.api.DingTalkApi.download>`, refused past ``max_media_bytes``) and
go to the bot as the message's attachments: with ``/incident evidence …`` written in the
same (rich-text) message they go with it; without a command the dispatcher holds them
(:mod:`bot.held_media`) for the sender's next evidence command and tells them so. A failed
or refused download is told to the sender in Chinese and logged; nothing is kept. A video
gets a hint that only pictures and files are kept.

Sending (``send``), by chat id:

* ``"robot"``: the custom robot (自定义机器人) webhook, signed (加签) with
  :func:`~bot.adapters.dingtalk.sign.robot_url` when a secret is set;
* a chat with a live ``sessionWebhook`` (remembered from its latest inbound message,
  until ``sessionWebhookExpiredTime`` less a minute, and only an https URL on
  DingTalk's own hosts: :mod:`bot.adapters.dingtalk.sessions`): that webhook;
* otherwise a group (an id seen as a group, or one starting with ``cid``):
  ``groupMessages/send``; a person (staff id): ``oToMessages/batchSend``, both through
  :class:`~bot.adapters.dingtalk.api.DingTalkApi` with the app's access token.

The message is rendered by :func:`~bot.adapters.dingtalk.render.render`: plain text, or an
ActionCard whose buttons make the DingTalk client send their command into the chat. A
press therefore arrives as ordinary text (``is_button`` False) and goes through the same
path as a typed command. Handlers always send plain text (``markdown`` is False).

Limits (enforced by the outbox sender, declared in :attr:`DingTalkAdapter.limits`):
20 calls/s for the whole bot (DingTalk's per-app, per-API QPS limit of a standard
organisation; beyond it ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``), and 20
messages a minute per group (the custom robot's documented 20/min, applied to every group
to be safe: the rate limiter's ``group`` scope cannot single out the robot). Failures are
:class:`~core.errors.AdapterError`, mapped in :mod:`bot.adapters.dingtalk.api`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.routing import BaseRoute, Route

from bot.adapters.base import Adapter, Capabilities, InboundHandler, RateWindow, UpdateNotStored
from bot.adapters.dingtalk.api import DingTalkApi
from bot.adapters.dingtalk.callback import (
    CALLBACK_PATH,
    EVENTS_PATH,
    CallbackRoutes,
    MemoryClaims,
    crypto_from_settings,
)
from bot.adapters.dingtalk.content import UNSUPPORTED_MEDIA, media_refs, message_text
from bot.adapters.dingtalk.downloads import download_media
from bot.adapters.dingtalk.render import MAX_TEXT, api_payload, render, webhook_payload
from bot.adapters.dingtalk.sessions import SessionWebhooks
from bot.adapters.dingtalk.sign import robot_url
from bot.adapters.dingtalk.stream import BOT_MESSAGE_TOPIC, StreamClient
from bot.adapters.media import UNSUPPORTED_TEXT
from bot.config import DingTalkSettings, IncidentsSettings
from core.clock import Clock, SystemClock
from core.errors import AdapterError
from core.messages import Attachment, Inbound, Outbound

log = logging.getLogger("dutybot.dingtalk")

__all__ = ["CALLBACK_PATH", "EVENTS_PATH", "ROBOT_CHAT_ID", "DingTalkAdapter"]

ROBOT_CHAT_ID = "robot"

STOP_GRACE_SECONDS = 1.0
MAX_REMEMBERED_CHATS = 5000
#: The evidence size limit when none is given: ``[incidents] fetch_max_bytes``'s default.
DEFAULT_MAX_MEDIA_BYTES: int = IncidentsSettings.model_fields["fetch_max_bytes"].default
#: How many media message ids are remembered, so a redelivered one is not downloaded twice.
MEDIA_MEMORY = 512


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


class DingTalkAdapter(Adapter):
    """A DingTalk enterprise-internal app robot.

    Args:
        settings: ``[dingtalk]`` (mode, credentials, robot code, API root, custom robot).
        clock: the current time (token and session expiry, callback and robot
            signatures); the system clock by default.
        http: a shared HTTP client (tests); by default the adapter makes its own.
        retry_base_seconds: the first wait after a failed Stream connection.
        stop_grace_seconds: how long :meth:`stop` lets messages in hand finish.
        max_media_bytes: the largest picture or file kept as evidence (pass
            ``[incidents] fetch_max_bytes``); bigger ones are refused without being read.

    Raises:
        AdapterError: the Client ID or Client Secret is not configured, or only one of
            ``callback_token`` and ``callback_aes_key`` is, or the aes_key is unusable
            (``retryable=False``, a Chinese message naming the variables).
    """

    platform = "dingtalk"
    capabilities = Capabilities(buttons=True, edit=False, mentions=False, markdown=False,
                                max_text=MAX_TEXT)
    limits = (RateWindow("global", 20, 1.0), RateWindow("group", 20, 60.0))

    def __init__(self, settings: DingTalkSettings, *, clock: Clock | None = None,
                 http: httpx.AsyncClient | None = None,
                 retry_base_seconds: float = 1.0,
                 stop_grace_seconds: float = STOP_GRACE_SECONDS,
                 max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES) -> None:
        secret = _secret(settings.client_secret)
        missing = [name for name, value in (("DUTYBOT_DINGTALK_CLIENT_ID", settings.client_id),
                                            ("DUTYBOT_DINGTALK_CLIENT_SECRET", secret))
                   if not value.strip()]
        if missing:
            raise AdapterError(
                "未配置钉钉应用凭证：请设置环境变量 " + " 和 ".join(missing)
                + "（或配置文件 [dingtalk] client_id、client_secret，"
                "即钉钉开发者后台应用的 Client ID 与 Client Secret）。", retryable=False)
        self.crypto = crypto_from_settings(settings)
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.api = DingTalkApi(client_id=settings.client_id.strip(), client_secret=secret,
                               robot_code=(settings.robot_code or settings.client_id).strip(),
                               api_base=settings.api_base, clock=self.clock, http=http)
        self._memory_claims = MemoryClaims(self.clock.now)
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        self.callbacks = CallbackRoutes(app_secret=secret, crypto=self.crypto,
                                        now_ms=self._now_ms, claim=self._claim,
                                        ready=lambda: self.handler is not None,
                                        accept=self._accept)
        self.stream: StreamClient | None = None
        if settings.mode == "stream":
            self.stream = StreamClient(
                open_connection=self._open_stream, on_callback=self._on_stream_callback,
                retry_base_seconds=retry_base_seconds, stop_grace_seconds=stop_grace_seconds)
        self.stop_grace = stop_grace_seconds
        self.handler: InboundHandler | None = None
        self.sessions = SessionWebhooks(settings.api_base)
        self._groups: dict[str, bool] = {}
        self._in_hand: set[str] = set()
        self._chat_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.max_media_bytes = max_media_bytes
        self._media_seen: dict[str, None] = {}

    # ------------------------------------------------------------ lifecycle

    async def start(self, handler: InboundHandler) -> None:
        """Begin receiving (stream: connect; callback: wait for DingTalk's posts).

        Raises:
            AdapterError: DingTalk refused the Client ID or Secret (``retryable=False``).
        """
        self.handler = handler
        self.api.reopen()
        try:
            if self.stream is not None:
                await self.stream.start()
                log.info("DingTalk adapter receiving in stream mode (app %s)",
                         self.api.client_id)
            else:
                try:
                    await self.api.token()
                except AdapterError as exc:
                    if not exc.retryable:
                        raise
                    log.warning("DingTalk is not reachable yet (%s); sending will retry",
                                exc.message)
                log.info("DingTalk adapter receiving callbacks at %s (app %s)", CALLBACK_PATH,
                         self.api.client_id)
        except AdapterError as exc:
            if exc.retryable:
                raise
            self.handler = None
            raise AdapterError(
                "钉钉拒绝了应用凭证：请检查 DUTYBOT_DINGTALK_CLIENT_ID 与 "
                "DUTYBOT_DINGTALK_CLIENT_SECRET 是否与开发者后台一致、应用是否已发布"
                f"（{exc.message}）。", retryable=False) from None

    async def open_for_sending(self) -> None:
        """A worker that does not lead: the API client for sending, no Stream socket (the
        leader holds it; bot.leader)."""
        self.api.reopen()

    async def stop(self) -> None:
        """Stop receiving, let messages in hand finish briefly, close connections."""
        if self.stream is not None:
            await self.stream.stop()
        if self._background:
            await asyncio.wait(set(self._background), timeout=self.stop_grace)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self.api.aclose()
        self.handler = None

    # ------------------------------------------------------------ receiving

    async def _open_stream(self) -> tuple[str, str]:
        return await self.api.open_stream([{"type": "CALLBACK", "topic": BOT_MESSAGE_TOPIC}])

    async def _on_stream_callback(self, topic: str, data: dict[str, Any]) -> None:
        if topic != BOT_MESSAGE_TOPIC:
            log.info("DingTalk Stream: ignoring callback topic %s", topic)
            return
        if not await self.deliver(data):
            # not stored (the person was told): answered 500, the gateway delivers it again
            raise UpdateNotStored(f"DingTalk message {data.get('msgId')} was not stored")

    def to_inbound(self, data: dict[str, Any]) -> Inbound | None:
        """The platform-neutral message (and the chat's session webhook remembered), or
        None when there is nothing for the bot in it."""
        msg_id = str(data.get("msgId") or "")
        sender = str(data.get("senderStaffId") or data.get("senderId") or "")
        is_group = str(data.get("conversationType", "1")) == "2"
        chat_id = str(data.get("conversationId") or "") if is_group else sender
        if not msg_id or not sender or not chat_id:
            log.warning("DingTalk message without msgId, sender or conversation; ignored")
            return None
        self._remember(chat_id, is_group, data)
        text = message_text(data).strip()
        if not text and not media_refs(data) and data.get("msgtype") not in UNSUPPORTED_MEDIA:
            log.info("DingTalk %s message %s has no text; ignored", data.get("msgtype"), msg_id)
            return None
        received_at = None
        created = data.get("createAt")
        if isinstance(created, int | float) and created > 0:
            received_at = datetime.fromtimestamp(created / 1000, UTC)
        return Inbound(platform=self.platform, chat_id=chat_id, sender_id=sender,
                       sender_name=str(data.get("senderNick") or ""), text=text,
                       update_id=msg_id, is_group=is_group, received_at=received_at, raw=data)

    def _remember(self, chat_id: str, is_group: bool, data: dict[str, Any]) -> None:
        if len(self._groups) >= MAX_REMEMBERED_CHATS and chat_id not in self._groups:
            self._forget_stale()
        self._groups[chat_id] = is_group
        self.sessions.remember(chat_id, data)

    def _forget_stale(self) -> None:
        self.sessions.prune(self._now_ms())
        if len(self._groups) >= MAX_REMEMBERED_CHATS:
            keep = list(self._groups.items())[-(MAX_REMEMBERED_CHATS // 2):]
            self._groups = dict(keep)

    async def deliver(self, data: dict[str, Any]) -> bool:
        """Hand one bot message to the bot: one at a time per chat, in arrival order;
        a copy of a message still in hand is dropped (the ledger catches later ones).
        Returns False when the bot could not store it (the platform should deliver it
        again), True otherwise.

        Raises:
            Exception: whatever the bot's handler raised (the frame is then not confirmed).
        """
        handler = self.handler
        if handler is None:
            raise RuntimeError("the DingTalk adapter is not started")
        inbound = self.to_inbound(data)
        if inbound is None:
            return True
        if inbound.update_id in self._in_hand:
            log.info("DingTalk message %s is already being handled; copy ignored",
                     inbound.update_id)
            return True
        self._in_hand.add(inbound.update_id)
        key = inbound.chat_id
        lock, users = self._chat_locks.get(key, (asyncio.Lock(), 0))
        self._chat_locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._handle(handler, inbound)
        finally:
            self._in_hand.discard(inbound.update_id)
            lock, users = self._chat_locks[key]
            if users <= 1:
                del self._chat_locks[key]
            else:
                self._chat_locks[key] = (lock, users - 1)

    async def _handle(self, handler: InboundHandler, inbound: Inbound) -> bool:
        """Download the message's pictures and files, then hand it to the bot with them
        as its attachments (the dispatcher holds those sent without a command); False
        when the bot could not store it."""
        data: dict[str, Any] = inbound.raw
        if data.get("msgtype") in UNSUPPORTED_MEDIA:
            log.info("DingTalk %s message %s is not kept (only pictures and files are)",
                     data.get("msgtype"), inbound.update_id)
            await self._tell(inbound, UNSUPPORTED_TEXT)
            return True
        refs = media_refs(data)
        downloaded: tuple[Attachment, ...] = ()
        if refs and self._first_media(inbound.update_id):
            got = await download_media(self.api, inbound, refs, max_bytes=self.max_media_bytes,
                                       tell=self._tell)
            if got is None:
                return True   # the sender was told why; nothing to store
            downloaded = got
        if downloaded:
            log.info("DingTalk message %s of %s carries %d picture(s)/file(s)",
                     inbound.update_id, inbound.sender_id, len(downloaded))
            inbound = dataclasses.replace(inbound, attachments=inbound.attachments + downloaded)
        if inbound.text.strip() or inbound.attachments:
            return getattr(await handler(inbound), "stored", True) is not False
        return True

    def _first_media(self, msg_id: str) -> bool:
        """False for a media message already downloaded (a redelivery)."""
        if msg_id in self._media_seen:
            log.info("DingTalk media message %s already received; not downloaded again", msg_id)
            return False
        self._media_seen[msg_id] = None
        while len(self._media_seen) > MEDIA_MEMORY:
            del self._media_seen[next(iter(self._media_seen))]
        return True

    async def _tell(self, inbound: Inbound, text: str) -> None:
        """A direct answer about a received picture or file (a failure is only logged)."""
        try:
            await self.send(inbound.chat_id, Outbound(text), is_group=inbound.is_group)
        except AdapterError as exc:
            log.warning("could not tell %s about their picture or file: %s",
                        inbound.sender_id, exc.message)
        except Exception:
            log.exception("telling %s about their picture or file failed", inbound.sender_id)

    # ------------------------------------------------------------ HTTP callbacks

    def http_routes(self) -> list[BaseRoute]:
        """``/dingtalk/callback`` in callback mode, ``/dingtalk/events`` when encrypted
        callbacks are configured (stream mode alone needs no HTTP service)."""
        routes: list[BaseRoute] = []
        if self.settings.mode == "callback":
            routes.append(Route(CALLBACK_PATH, self.callbacks.signed, methods=["POST"]))
        if self.crypto is not None:
            routes.append(Route(EVENTS_PATH, self.callbacks.encrypted, methods=["POST"]))
        return routes

    def _claim(self, key: str, keep: timedelta, bound: str) -> bool:
        """Claim a one-use key bound to a body: in the app's database, or in memory
        without an app."""
        claim = self.claim_once or self._memory_claims
        return claim(key, keep, bound)

    def _accept(self, data: dict[str, Any]) -> asyncio.Future[bool]:
        """Start handling a callback's message; the future says whether it was stored. A
        retry of a message still in hand joins the running attempt."""
        msg_id = str(data.get("msgId") or "")
        running = self._inflight.get(msg_id) if msg_id else None
        if running is not None:
            return running
        task = asyncio.create_task(self._deliver_logged(data), name="dingtalk-callback")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if msg_id:
            self._inflight[msg_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(msg_id, None))
        return task

    async def _deliver_logged(self, data: dict[str, Any]) -> bool:
        try:
            return await self.deliver(data)
        except Exception:
            log.exception("handling DingTalk message %s failed", data.get("msgId"))
            return False

    # ------------------------------------------------------------ sending

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def is_group_chat(self, chat_id: str) -> bool:
        """Whether ``chat_id`` is a group: as seen in its messages, else by the shape of
        DingTalk's conversation ids (``cid…``); anything else is a staff id."""
        known = self._groups.get(chat_id)
        return known if known is not None else chat_id.startswith("cid")

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        """Deliver ``message``; see the module docstring for the route taken.

        ``is_group`` is not trusted: the outbox also calls private chats of unbound
        people "groups"; the chat id decides.

        Returns:
            DingTalk's ``processQueryKey`` for API sends, ``""`` for webhooks.
        """
        if chat_id == ROBOT_CHAT_ID:
            await self._send_robot(message)
            return ""
        group = self.is_group_chat(chat_id)
        rendered = render(message, group=group)
        session = self.sessions.live(chat_id, self._now_ms())
        if session is not None:
            try:
                await self.api.post_webhook(session, webhook_payload(rendered),
                                            what="sessionWebhook")
                return ""
            except AdapterError as exc:
                if exc.retryable:
                    raise
                log.warning("DingTalk session webhook of chat %s refused (%s); sending through "
                            "the API instead", chat_id, exc.message)
                self.sessions.forget(chat_id)
        msg_key, msg_param = api_payload(rendered)
        if group:
            return await self.api.send_to_group(chat_id, msg_key, msg_param)
        return await self.api.send_to_user(chat_id, msg_key, msg_param)

    async def _send_robot(self, message: Outbound) -> None:
        webhook = _secret(self.settings.robot_webhook)
        if not webhook:
            raise AdapterError(
                "未配置钉钉自定义机器人：请设置 DUTYBOT_DINGTALK_ROBOT_WEBHOOK（及加签密钥 "
                "DUTYBOT_DINGTALK_ROBOT_SECRET），或把群聊改为机器人所在群的会话 ID。",
                retryable=False)
        secret = _secret(self.settings.robot_secret)
        url = robot_url(webhook, secret, self._now_ms()) if secret else webhook
        await self.api.post_webhook(url, webhook_payload(render(message, group=True)),
                                    what="custom robot")
