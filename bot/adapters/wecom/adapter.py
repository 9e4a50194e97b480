"""The WeCom adapter class: callbacks in, app and robot messages out.

What it does and why (receiving, exactly-once, sending, limits, errors) is described in
the package docstring, :mod:`bot.adapters.wecom`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.base import (
    Adapter,
    Capabilities,
    InboundHandler,
    RateWindow,
    text_with_commands,
)
from bot.adapters.media import (
    UNSUPPORTED_TEXT,
    MediaTooLarge,
    attachment_for,
    failed_text,
    filename_from,
    too_large_text,
)
from bot.adapters.wecom.api import (
    DEFAULT_TIMEOUT,
    MEMBER_PER_HOUR,
    MEMBER_PER_MINUTE,
    ROBOT_PER_MINUTE,
    WeComClient,
    WeComRobot,
)
from bot.adapters.wecom.cards import button_card, new_task_id
from bot.adapters.wecom.crypto import (
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    STALE_TIMESTAMP,
    WRONG_RECEIVE_ID,
    WeComCrypto,
    WeComCryptoError,
    parse_message,
)
from bot.adapters.wecom.support import (
    NO_BUTTONS,
    REQUIRED_SETTINGS,
    CardLayout,
    MemberBudget,
    card_layout,
    fit_bytes,
    ledger_id,
    missing_settings,
)
from bot.config import IncidentsSettings, WeComSettings
from bot.http import read_body
from core.clock import Clock, SystemClock
from core.errors import AdapterError
from core.messages import Inbound, Outbound

log = logging.getLogger("bot.adapters.wecom")  # the name it had as one module

CALLBACK_PATH = "/wecom/callback"
#: Messages to this chat id go to the group robot webhook.
ROBOT_CHAT_ID = "robot"

#: What a clicked card shows instead of its buttons.
CLICKED_LABEL = "已提交"
#: Overall pace for the whole app; far below WeCom's per-corp API limits.
GLOBAL_PER_MINUTE = 600
#: How many half-delivered long cards (text sent, card not) are remembered for a retry.
PARTIAL_MEMORY = 512
#: Pictures and files (``MediaId``) become evidence attachments of these kinds.
MEDIA_KINDS = {"image": "photo", "file": "file"}
#: Media types answered with a hint instead (not kept as evidence).
UNSUPPORTED_MEDIA = frozenset({"voice", "video"})
#: The evidence size limit when none is given: ``[incidents] fetch_max_bytes``'s default.
DEFAULT_MAX_MEDIA_BYTES: int = IncidentsSettings.model_fields["fetch_max_bytes"].default
#: How many media message ids are remembered, so a redelivered one is not downloaded twice.
MEDIA_MEMORY = 512
#: A callback is answered once its update is stored, or 503 after this long (WeCom waits
#: 5 s for an answer, then retries the callback up to three times).
ACK_DEADLINE_SECONDS = 4.0

_REFUSED_CODES = frozenset({BAD_SIGNATURE, BAD_TIMESTAMP, STALE_TIMESTAMP, WRONG_RECEIVE_ID})


class WeComAdapter(Adapter):
    """A WeCom self-built app (企业微信自建应用) and, optionally, a group robot.

    Args:
        settings: ``[wecom]``: corp id, agent id, secret, callback token and
            EncodingAESKey, API root, robot webhook.
        clock: for the callback timestamp check, the token cache and the member budget.
        http: a shared HTTP client (tests); by default the adapter makes one and closes
            it in :meth:`stop`.
        max_media_bytes: the largest picture or file kept as evidence (pass
            ``[incidents] fetch_max_bytes``); bigger ones are refused without being read.

    Raises:
        AdapterError: a required setting is missing or the EncodingAESKey is unusable
            (not retryable; the Chinese message names the environment variables).
    """

    platform = "wecom"
    #: A resend after a lost answer is dropped by WeCom's duplicate check (every outbox
    #: message is sent with it, keyed by recipient and event): the outbox need not count it.
    resend_is_safe = True
    capabilities = Capabilities(buttons=True, edit=False, mentions=False, markdown=False,
                                max_text=2000)
    limits = (
        RateWindow("global", GLOBAL_PER_MINUTE, 60.0),
        RateWindow("chat", MEMBER_PER_MINUTE, 60.0),
        RateWindow("chat", MEMBER_PER_HOUR, 3600.0),
        RateWindow("group", ROBOT_PER_MINUTE, 60.0),
    )

    def __init__(self, settings: WeComSettings, *, clock: Clock | None = None,
                 http: httpx.AsyncClient | None = None,
                 max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES,
                 ack_deadline: float = ACK_DEADLINE_SECONDS) -> None:
        missing = missing_settings(settings)
        if missing:
            keys = "、".join(field for field, env in REQUIRED_SETTINGS if env in missing)
            raise AdapterError(
                f"未配置企业微信应用：请设置环境变量 {'、'.join(missing)}"
                f"（或配置文件 [wecom] 中的 {keys}），可在企业微信管理后台的自建应用页面"
                "及其“接收消息”设置中找到。", retryable=False)
        assert settings.agent_id is not None
        assert settings.secret is not None and settings.token is not None
        assert settings.aes_key is not None
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        try:
            self.crypto = WeComCrypto(settings.token.get_secret_value(),
                                      settings.aes_key.get_secret_value(), settings.corp_id)
        except WeComCryptoError:
            raise AdapterError(
                "企业微信 EncodingAESKey 无效：请把环境变量 DUTYBOT_WECOM_AES_KEY 设为应用"
                "“接收消息”设置中的 43 位 EncodingAESKey。", retryable=False) from None
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.send_timeout_seconds, connect=DEFAULT_TIMEOUT.connect))
        self.client = WeComClient(corp_id=settings.corp_id,
                                  secret=settings.secret.get_secret_value(),
                                  agent_id=settings.agent_id, api_base=settings.api_base,
                                  clock=self.clock, http=self.http)
        webhook = settings.robot_webhook.get_secret_value() if settings.robot_webhook else ""
        self.robot = WeComRobot(webhook, http=self.http) if webhook else None
        self.budget = MemberBudget(self.clock)
        self.handler: InboundHandler | None = None
        self._accepting = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._partial: OrderedDict[str, None] = OrderedDict()
        # Updates being handled, by update id: a retry of one joins it (see _schedule).
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        #: How long a callback waits for its update to be stored before answering 503
        #: (WeCom gives up on an answer after 5 s and then retries).
        self.ack_deadline = ack_deadline
        self.max_media_bytes = max_media_bytes
        self._media_seen: OrderedDict[str, None] = OrderedDict()

    # ------------------------------------------------------------ lifecycle

    async def start(self, handler: InboundHandler) -> None:
        """Accept callbacks, after checking the app's credentials with ``gettoken``.

        Raises:
            AdapterError: WeCom refused the corp id or secret, or this server's IP is not
                trusted (nothing will work until that is fixed). An unreachable WeCom is
                only logged: the outbox retries sends later.
        """
        try:
            await self.client.token()
        except AdapterError as exc:
            if not exc.retryable:
                raise AdapterError(
                    "企业微信拒绝了应用凭据：请检查 DUTYBOT_WECOM_CORP_ID、DUTYBOT_WECOM_SECRET，"
                    f"以及本服务器 IP 是否在应用的企业可信 IP 中（{exc.message}）。",
                    retryable=False) from None
            log.warning("WeCom is not reachable yet (%s); sends will be retried", exc.message)
        self.handler = handler
        self._accepting = True
        log.info("WeCom app %s of corp %s ready; callbacks at %s", self.settings.agent_id,
                 self.settings.corp_id, CALLBACK_PATH)

    async def stop(self) -> None:
        """Refuse new callbacks, finish the ones being handled, close the HTTP client."""
        self._accepting = False
        await self.wait_idle()
        self.handler = None
        if self._own_http:
            await self.http.aclose()

    @property
    def pending(self) -> int:
        """How many received updates are still being handled."""
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Return once every received update has been handled (or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------ callbacks

    def http_routes(self) -> list[BaseRoute]:
        """``GET`` (URL verification) and ``POST`` (messages) on ``/wecom/callback``."""
        return [Route(CALLBACK_PATH, self._verify_url, methods=["GET"]),
                Route(CALLBACK_PATH, self._callback, methods=["POST"])]

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @staticmethod
    def _refuse(what: str, exc: WeComCryptoError, request: Request) -> Response:
        status = 403 if exc.code in _REFUSED_CODES else 400
        log.warning("refused a WeCom %s from %s: %s (%s)", what,
                    request.client.host if request.client else "?", exc.code, exc.message)
        return Response(status_code=status)

    async def _verify_url(self, request: Request) -> Response:
        query = request.query_params
        try:
            echo = self.crypto.verify_url(query.get("msg_signature", ""),
                                          query.get("timestamp", ""), query.get("nonce", ""),
                                          query.get("echostr", ""), now=self._now())
        except WeComCryptoError as exc:
            return self._refuse("URL verification", exc, request)
        log.info("WeCom callback URL verified")
        return PlainTextResponse(echo)

    async def _callback(self, request: Request) -> Response:
        body = await read_body(request)
        if body is None:
            log.warning("refused a WeCom callback larger than the body limit")
            return Response(status_code=413)
        query = request.query_params
        try:
            inner = self.crypto.decrypt_message(query.get("msg_signature", ""),
                                                query.get("timestamp", ""),
                                                query.get("nonce", ""), body, now=self._now())
            fields = parse_message(inner)
        except WeComCryptoError as exc:
            return self._refuse("callback", exc, request)
        if not self._accepting or self.handler is None:
            log.warning("a WeCom callback arrived while the adapter is not running; "
                        "answered 503 so that WeCom retries it")
            return Response(status_code=503)
        stored = self._receive(fields)
        if stored is None:
            return Response(status_code=200)  # empty body: WeCom expects nothing else
        # Stored first, answered after: WeCom retries a callback answered with anything but
        # 200 (or not within 5 s), so a 200 is given only once the update is committed.
        try:
            ok = await asyncio.wait_for(asyncio.shield(stored), timeout=self.ack_deadline)
        except TimeoutError:
            log.warning("a WeCom update is still being handled after %.1fs; answered 503 so "
                        "that WeCom asks again (the retry joins it, or is ignored once stored)",
                        self.ack_deadline)
            return Response(status_code=503)
        if not ok:
            return Response(status_code=500)  # not stored: WeCom retries it
        return Response(status_code=200)

    def process(self, fields: dict[str, str]) -> Inbound | None:
        """Turn a decrypted callback into an inbound update and schedule its handling.

        A picture or file is downloaded in the background instead (see
        :meth:`_receive_media`), after the sender's earlier updates.

        Returns:
            The scheduled update, or None when the callback is not for the bot or is a
            picture or file.
        """
        inbound = self.to_inbound(fields) if not self._is_media(fields) else None
        self._receive(fields)
        return inbound

    @staticmethod
    def _is_media(fields: dict[str, str]) -> bool:
        msg_type = fields.get("MsgType", "")
        return msg_type in MEDIA_KINDS or msg_type in UNSUPPORTED_MEDIA

    def _receive(self, fields: dict[str, str]) -> asyncio.Future[bool] | None:
        """Schedule a decrypted callback's handling; the future says whether the update
        was stored (None: nothing to store, or a picture or file handled in the background)."""
        if self._is_media(fields):
            user = self._sender(fields)
            if user is not None and self._first_media(fields, user):
                self._chain(user, f"wecom-media-{user}",
                            lambda previous: self._receive_media(user, fields, previous))
            return None
        inbound = self.to_inbound(fields)
        return self._schedule(inbound) if inbound is not None else None

    def _sender(self, fields: dict[str, str]) -> str | None:
        """The callback's sender, or None (logged) when it is not for this app."""
        user = fields.get("FromUserName", "").strip()
        msg_type = fields.get("MsgType", "")
        agent = fields.get("AgentID", "").strip()
        if not user:
            log.info("ignoring a WeCom %s callback without FromUserName", msg_type or "?")
            return None
        if agent and agent != str(self.settings.agent_id):
            log.warning("ignoring a WeCom callback for agent %s (this app is %s)", agent,
                        self.settings.agent_id)
            return None
        return user

    def _first_media(self, fields: dict[str, str], user: str) -> bool:
        """False for a media message already received (WeCom's retry of a callback)."""
        key = fields.get("MsgId", "").strip() or f"{user}:{fields.get('CreateTime', '')}:" \
            f"{fields.get('MediaId', '')}"
        if key in self._media_seen:
            log.info("WeCom media message %s of %s already received; copy ignored", key, user)
            return False
        self._media_seen[key] = None
        while len(self._media_seen) > MEDIA_MEMORY:
            self._media_seen.popitem(last=False)
        return True

    def to_inbound(self, fields: dict[str, str]) -> Inbound | None:
        """The platform-neutral update for a parsed callback, or None to ignore it
        (pictures and files too: :meth:`process` downloads them)."""
        user = self._sender(fields)
        if user is None:
            return None
        msg_type = fields.get("MsgType", "")
        created = fields.get("CreateTime", "").strip()
        received_at = None
        if created.isdigit():
            with contextlib.suppress(OverflowError, OSError, ValueError):
                received_at = datetime.fromtimestamp(int(created), UTC)
        if msg_type == "text":
            content = fields.get("Content", "")
            if not content.strip():
                return None
            msg_id = fields.get("MsgId", "").strip()
            if not msg_id:  # never seen in practice; keep redeliveries recognisable
                digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
                msg_id = f"{user}:{created}:{digest}"
            return Inbound(platform=self.platform, chat_id=user, sender_id=user,
                           sender_name=user, text=content, update_id=ledger_id(f"msg:{msg_id}"),
                           is_group=False, received_at=received_at, raw=fields)
        if msg_type == "event":
            event = fields.get("Event", "")
            if event == "template_card_event":
                key = fields.get("EventKey", "")
                if not key.strip():
                    log.info("ignoring a WeCom card click without a key from %s", user)
                    return None
                return Inbound(platform=self.platform, chat_id=user, sender_id=user,
                               sender_name=user, text=key,
                               update_id=ledger_id(f"evt:{user}:{created}:{key}"),
                               is_group=False, is_button=True,
                               callback_id=fields.get("ResponseCode") or None,
                               message_ref=fields.get("TaskId") or None,
                               received_at=received_at, raw=fields)
            log.info("ignoring WeCom event %r from %s", event, user)
            return None
        # Pictures and files go through process(); locations, links and the like are not
        # handled; nothing is replied.
        log.info("ignoring a WeCom %s message from %s (only text, card buttons, pictures "
                 "and files are handled)", msg_type or "untyped", user)
        return None

    def _schedule(self, inbound: Inbound) -> asyncio.Future[bool]:
        """Handle ``inbound`` in the background, after the same person's earlier updates.

        Returns:
            Resolves to whether the update was stored (handled, or found already handled).
            WeCom's retry of an update still being handled joins the first attempt.
        """
        running = self._inflight.get(inbound.update_id)
        if running is not None:
            return running
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[inbound.update_id] = stored
        stored.add_done_callback(lambda _: self._inflight.pop(inbound.update_id, None))
        self._chain(inbound.chat_id, f"wecom-{inbound.update_id}",
                    lambda previous: self._handle(inbound, previous, stored))
        return stored

    def _chain(self, chat_id: str, name: str,
               job: Callable[[asyncio.Task[None] | None], Coroutine[Any, Any, None]]) -> None:
        """Run ``job`` in the background once the chat's previous job is over."""
        previous = self._tails.get(chat_id)
        task = asyncio.create_task(job(previous), name=name)
        self._tails[chat_id] = task
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._finished, chat_id))

    def _finished(self, chat_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(chat_id) is task:
            del self._tails[chat_id]

    async def _handle(self, inbound: Inbound, previous: asyncio.Task[None] | None,
                      stored: asyncio.Future[bool]) -> None:
        try:
            await self._handle_once(inbound, previous, stored)
        finally:
            if not stored.done():
                stored.set_result(False)

    async def _handle_once(self, inbound: Inbound, previous: asyncio.Task[None] | None,
                           stored: asyncio.Future[bool]) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        handler = self.handler
        if handler is None:
            log.error("WeCom update %s from %s was not handled: the adapter stopped",
                      inbound.update_id, inbound.sender_id)
            return
        try:
            result = await handler(inbound)
        except Exception:
            log.exception("handling WeCom update %s from %s failed; answered 500 so that "
                          "WeCom redelivers it", inbound.update_id, inbound.sender_id)
            return
        ok = bool(getattr(result, "stored", True))
        stored.set_result(ok)
        if ok and inbound.is_button and not getattr(result, "duplicate", False):
            await self.answer_button(inbound)

    # ------------------------------------------------------------ pictures and files

    async def _receive_media(self, user: str, fields: dict[str, str],
                             previous: asyncio.Task[None] | None) -> None:
        """Download a picture or file and hand it to the bot as an update without text
        (the dispatcher holds it for the sender's evidence command and tells them); a
        failed download is told to the sender here (and logged with its reason)."""
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        msg_type = fields.get("MsgType", "")
        if msg_type in UNSUPPORTED_MEDIA:
            log.info("WeCom %s message from %s is not kept (only pictures and files are)",
                     msg_type, user)
            await self._tell(user, UNSUPPORTED_TEXT)
            return
        kind = MEDIA_KINDS[msg_type]
        media_id = fields.get("MediaId", "").strip()
        msg_id = fields.get("MsgId", "").strip() or fields.get("CreateTime", "").strip()
        if not media_id:
            log.warning("WeCom %s message %s from %s has no MediaId", msg_type, msg_id, user)
            await self._tell(user, failed_text(kind, "消息中没有文件"))
            return
        try:
            media = await self.client.download_media(media_id, max_bytes=self.max_media_bytes)
        except MediaTooLarge as exc:
            log.warning("WeCom %s %s from %s refused: %s", msg_type, msg_id, user, exc.message)
            await self._tell(user, too_large_text(kind, exc.limit))
            return
        except AdapterError as exc:
            log.warning("downloading WeCom %s %s from %s failed: %s", msg_type, msg_id, user,
                        exc.message)
            reason = "网络或企业微信暂时不可用" if exc.retryable else "文件无效或已过期"
            await self._tell(user, failed_text(kind, reason))
            return
        except Exception:
            log.exception("downloading WeCom %s %s from %s failed", msg_type, msg_id, user)
            await self._tell(user, failed_text(kind, "处理出错"))
            return
        if not media.data:
            log.warning("WeCom %s %s from %s is empty", msg_type, msg_id, user)
            await self._tell(user, failed_text(kind, "文件是空的"))
            return
        name = fields.get("FileName", "").strip() or filename_from(media.disposition)
        attachment = attachment_for(media.data, kind=kind, content_type=media.content_type,
                                    filename=name,
                                    fallback_stem=f"{'image' if kind == 'photo' else 'file'}-"
                                                  f"{msg_id or media_id[:16]}")
        log.info("WeCom %s %s from %s downloaded (%d bytes)", msg_type, msg_id, user,
                 len(media.data))
        created = fields.get("CreateTime", "").strip()
        received_at = None
        if created.isdigit():
            with contextlib.suppress(OverflowError, OSError, ValueError):
                received_at = datetime.fromtimestamp(int(created), UTC)
        ref = fields.get("MsgId", "").strip() or f"{user}:{created}:{media_id}"
        inbound = Inbound(platform=self.platform, chat_id=user, sender_id=user, sender_name=user,
                          text="", update_id=ledger_id(f"msg:{ref}"), is_group=False,
                          received_at=received_at, attachments=(attachment,), raw=fields)
        handler = self.handler
        if handler is None:
            log.error("WeCom %s %s from %s was not handled: the adapter stopped", msg_type,
                      msg_id, user)
            return
        try:
            await handler(inbound)
        except Exception:
            log.exception("handling WeCom %s %s from %s failed; WeCom will not redeliver it",
                          msg_type, msg_id, user)

    async def _tell(self, user: str, text: str) -> None:
        """A direct answer about a received picture or file (a failure is only logged)."""
        try:
            await self.send(user, Outbound(text), is_group=False)
        except AdapterError as exc:
            log.warning("could not tell %s about their picture or file: %s", user, exc.message)
        except Exception:
            log.exception("telling %s about their picture or file failed", user)

    async def answer_button(self, inbound: Inbound, notice: str | None = None) -> None:
        """Replace the clicked card's buttons with a disabled ``已提交`` (or ``notice``)
        for the person who clicked; a failure is only logged."""
        if not inbound.callback_id:
            return
        try:
            await self.client.update_template_card([inbound.sender_id], inbound.callback_id,
                                                   (notice or CLICKED_LABEL)[:10])
        except AdapterError as exc:
            log.info("could not mark the WeCom card %s of %s as handled: %s",
                     inbound.message_ref, inbound.sender_id, exc.message)
        except Exception:  # never let a cosmetic update fail the handled update
            log.exception("marking the WeCom card %s of %s as handled failed",
                          inbound.message_ref, inbound.sender_id)

    # ------------------------------------------------------------ sending

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        """Deliver ``message`` to a member's userid, or to the group robot for ``robot``.

        Returns:
            WeCom's ``msgid`` (of the card, when text and card were sent); a local id for
            robot messages, which have none.

        Raises:
            AdapterError: from the API client (``blocked`` when the member cannot be
                reached), or retryable with ``retry_after`` when the member's WeCom budget
                is spent.
        """
        if chat_id == ROBOT_CHAT_ID:
            return await self._send_robot(message)
        layout = card_layout(message)
        if layout is None:
            self._require_room(chat_id)
            text = fit_bytes(text_with_commands(message, NO_BUTTONS))
            result = await self.client.send_text(chat_id, text, **self._dedupe(self._key(chat_id, message)))
            self.budget.record(chat_id)
            return result.msgid
        return await self._send_card(chat_id, message, layout)

    def _require_room(self, member: str) -> int:
        """How many messages ``member`` may still get now (at least one).

        Raises:
            AdapterError: retryable, with ``retry_after``, when not even one may be sent.
        """
        room, wait = self.budget.room(member)
        if room <= 0:
            raise AdapterError(
                f"WeCom: member {member} reached the per-member message limit; "
                f"retry in {wait:.0f}s", retryable=True, retry_after=max(wait, 1.0))
        return room

    async def _send_card(self, member: str, message: Outbound, layout: CardLayout) -> str:
        memo = self._memo_key(member, message)
        body = layout.body
        if layout.lead_text is not None and memo not in self._partial:
            if self._require_room(member) >= 2:
                key = self._key(member, message)
                await self.client.send_text(member, layout.lead_text,
                                            **self._dedupe(f"{key}:lead" if key else None))
                self.budget.record(member)
                self._remember(memo)
            else:
                log.info("WeCom: sending the card to %s without its full text: the member's "
                         "message budget has room for one message", member)
                body = layout.single_body
        else:
            self._require_room(member)
        key = self._key(member, message)
        # A retry of the same message carries the same task_id, so that it is the same
        # request and WeCom's duplicate check drops it if the first one arrived.
        task_id = (f"db{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}" if key
                   else new_task_id("db"))
        card = button_card(layout.title, body, [(b.label, b.command) for b in layout.buttons],
                           task_id)
        result = await self.client.send_template_card(member, card, **self._dedupe(key))
        self.budget.record(member)
        self._partial.pop(memo, None)
        return result.msgid

    @staticmethod
    def _key(member: str, message: Outbound) -> str | None:
        """What makes a retry recognisable: the recipient and the outbox event (a message
        without an event key, such as a direct answer, gets no duplicate check)."""
        return f"{member}:{message.event_key}" if message.event_key else None

    @staticmethod
    def _dedupe(key: str | None) -> dict[str, str]:
        return {"dedupe_key": key} if key else {}

    @staticmethod
    def _memo_key(member: str, message: Outbound) -> str:
        parts = [member, message.text, *(f"{b.label}\x00{b.command}" for b in message.buttons)]
        return hashlib.sha256("\x01".join(parts).encode("utf-8")).hexdigest()

    def _remember(self, memo: str) -> None:
        """The text part of a long card was delivered: a retry sends only the card."""
        self._partial[memo] = None
        while len(self._partial) > PARTIAL_MEMORY:
            self._partial.popitem(last=False)

    async def _send_robot(self, message: Outbound) -> str:
        if self.robot is None:
            raise AdapterError(
                "企业微信群机器人未配置：请设置环境变量 DUTYBOT_WECOM_ROBOT_WEBHOOK"
                "（或配置文件 [wecom] robot_webhook）。", retryable=False)
        await self.robot.send_text(fit_bytes(text_with_commands(message, NO_BUTTONS)))
        return f"robot-{uuid.uuid4().hex[:16]}"
