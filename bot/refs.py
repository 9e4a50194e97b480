"""Short references, and which item a card is about: the one place that decides what
``/incident show 3`` or a reply to a bot card means.

References (incidents ``INC-…``, reply items ``MSG-…``):

``3`` ``003`` ``#3``     today's (Asia/Shanghai) ``INC-<yyyymmdd>-003``. When today has no
                         number 3 but exactly one open item of the last
                         :data:`RECENT_DAYS` days ends in ``-003``, that one — and the
                         reply says which (a card read after midnight still works); with
                         several, the person is asked for the full id.
``20261122-3``           that day's number 3.
``INC-20261122-003``     the full id, in any case (``inc-20261122-3`` too).

Cards: a message that replies to (quotes) a message the bot sent carries the platform's
message id (``Inbound.reply_to_message_id``, Telegram only so far); the outbox row with
that ``platform_message_id`` says which item the card was about (its ``card_key`` or
``event_key``, else the one id in its text). A plain message in a private chat without a
quote — WeCom and DingTalk callbacks carry none — is read against the newest message the
bot sent to that chat within :data:`LATEST_CARD_HOURS`, when that message is about an
incident or a reply item.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlmodel import Session, col, select

from core.clock import local
from core.errors import NotFound
from core.messages import Inbound, Outbound
from core.outbox import OutboxMessage, OutboxStatus
from incidents.models import ENDED_STATUSES, Incident
from incidents.service import IncidentNotFound
from replies.models import ReplyItem, ReplyStatus
from replies.service import ReplyNotFound

RECENT_DAYS = 14
LATEST_CARD_HOURS = 24
PREFIX = {"incident": "INC", "reply": "MSG"}
_SHORT = re.compile(r"^[#＃]?(\d{1,3})$")
_DAY_SEQ = re.compile(r"^(?:(INC|MSG)-)?(\d{8})-(\d{1,3})$", re.IGNORECASE)
_IN_KEY = re.compile(r"^(incident|reply):((?:INC|MSG)-\d{8}-\d{3,})")
_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])(INC|MSG)-\d{8}-\d{3,}(?!\d)")
_NOUN = {"incident": "事件", "reply": "留言"}

class CardCommand(Protocol):
    """What :func:`card_route` needs of a handler (``bot.dispatcher.Handler``)."""

    @property
    def card_kind(self) -> str | None: ...

    def understands(self, word: str) -> bool: ...


H = TypeVar("H", bound=CardCommand)


@dataclass(frozen=True)
class CardRef:
    """The item a card is about: ``kind`` is ``incident`` or ``reply``."""

    kind: str
    number: str


def is_explicit(token: str, kind: str) -> bool:
    """Whether ``token`` names an item on its own even in a reply to a card: a full id
    (``INC-20261123-003``, ``20261123-3``) or ``#3``. A bare ``3`` then is an argument
    (a step number), not an item."""
    token = token.strip()
    m = _DAY_SEQ.match(token)
    if m:
        return m.group(1) is None or m.group(1).upper() == PREFIX[kind]
    return token[:1] in "#＃" and bool(_SHORT.match(token))


def with_card(rest: str, card: CardRef | None, kind: str) -> str:
    """``rest`` with the card's item put first when the person replied to a card of this
    ``kind`` without naming an item explicitly (:func:`is_explicit`)."""
    if card is None or card.kind != kind:
        return rest
    first = rest.split(maxsplit=1)[0] if rest.strip() else ""
    return rest if first and is_explicit(first, kind) else f"{card.number} {rest}".strip()


def _model(kind: str) -> tuple[Any, Callable[[Any], bool], Callable[[str], NotFound]]:
    if kind == "incident":
        return Incident, lambda i: i.status not in ENDED_STATUSES, IncidentNotFound
    return ReplyItem, lambda r: r.status == ReplyStatus.open, ReplyNotFound


def _get(session: Session, model: Any, number: str) -> Any:
    return session.exec(select(model).where(model.number == number)).first()


def resolve(session: Session, kind: str, text: str, now: datetime) -> tuple[Any, str | None]:
    """The item ``text`` names and, when it was not today's, the line saying which one was
    used (else None); see the module docstring.

    Raises:
        NotFound: no such item (a domain ``…NotFound``), or a short number that fits
            several recent open items.
    """
    model, is_open, not_found = _model(kind)
    token = text.strip().split(maxsplit=1)[0] if text.strip() else ""
    prefix, today = PREFIX[kind], local(now).date()
    m = _DAY_SEQ.match(token)
    if m and (m.group(1) is None or m.group(1).upper() == prefix):
        number = f"{prefix}-{m.group(2)}-{int(m.group(3)):03d}"
        found = _get(session, model, number)
        if found is None:
            raise not_found(number)
        return found, None
    short = _SHORT.match(token)
    if short is None:
        found = _get(session, model, token.upper())   # an old or odd id, as typed
        if found is None:
            raise not_found(token)
        return found, None
    seq = f"{int(short.group(1)):03d}"
    number = f"{prefix}-{today:%Y%m%d}-{seq}"
    found = _get(session, model, number)
    if found is not None:
        return found, None
    since = f"{prefix}-{today - timedelta(days=RECENT_DAYS):%Y%m%d}-"
    recent = [item for item in session.exec(
        select(model).where(col(model.number) >= since, col(model.number) < f"{prefix}-~")
        .order_by(col(model.number).desc()))
        if item.number.endswith(f"-{seq}") and is_open(item)]
    noun = _NOUN[kind]
    if len(recent) == 1:
        return recent[0], f"（今天没有 {int(seq)} 号{noun}，已按最近未结的 {recent[0].number} 处理。）"
    if recent:
        listed = "、".join(item.number for item in recent[:5])
        raise NotFound(f"今天没有 {number}；近{RECENT_DAYS}天未结的{noun}中 {listed} 都是 {int(seq)} 号，"
                       "请写完整编号。")
    raise NotFound(f"没有找到{noun} {number}（今天没有 {int(seq)} 号{noun}，近{RECENT_DAYS}天未结的{noun}中也没有）。"
                   f"请写完整编号，如 {prefix}-{today:%Y%m%d}-001；/{kind} list 可查看。")


def resolve_incident(session: Session, text: str, now: datetime) -> tuple[Incident, str | None]:
    """:func:`resolve` for incidents."""
    found, note = resolve(session, "incident", text, now)
    return found, note


def resolve_reply(session: Session, text: str, now: datetime) -> tuple[ReplyItem, str | None]:
    """:func:`resolve` for reply items."""
    found, note = resolve(session, "reply", text, now)
    return found, note


def _about(row: OutboxMessage) -> CardRef | None:
    for key in (row.card_key or "", row.event_key or ""):
        m = _IN_KEY.match(key)
        if m:
            return CardRef(m.group(1), m.group(2))
    found = {m.group(0) for m in _IN_TEXT.finditer(row.text)}
    if len(found) == 1:
        number = found.pop()
        return CardRef("incident" if number.startswith("INC") else "reply", number)
    return None


def card_for(session: Session, inbound: Inbound, now: datetime, *, latest: bool) -> CardRef | None:
    """The item of the bot message ``inbound`` replies to; with ``latest`` and no quote, in
    a private chat, the item of the newest message the bot sent there (if recent)."""
    base = select(OutboxMessage).where(OutboxMessage.platform == inbound.platform,
                                       OutboxMessage.chat_id == inbound.chat_id,
                                       OutboxMessage.status == OutboxStatus.sent)
    if inbound.reply_to_message_id:
        row = session.exec(base.where(OutboxMessage.platform_message_id == inbound.reply_to_message_id)
                           .order_by(col(OutboxMessage.id).desc()).limit(1)).first()
        return _about(row) if row is not None else None
    if not latest or inbound.is_group:
        return None
    row = session.exec(base.order_by(col(OutboxMessage.id).desc()).limit(1)).first()
    if row is None or row.sent_at is None or now - row.sent_at > timedelta(hours=LATEST_CARD_HOURS):
        return None
    return _about(row)


def card_route(session: Session, inbound: Inbound, now: datetime, handler: H | None, args: str,
               word: str | None, handlers: Sequence[H]) -> tuple[H | None, str, CardRef | None]:
    """(handler, arguments, card) for a message that may reply to a bot card: the card only
    for a handler of its kind; a plain word in reply to a card (``确认``, ``完成 2``) is the
    card's command without its name. ``handlers`` empty (an unknown person): no card."""
    if not handlers or (handler is not None and handler.card_kind is None):
        return handler, args, None
    plain = handler is None and word is None
    if not inbound.reply_to_message_id and not plain:
        return handler, args, None
    card = card_for(session, inbound, now, latest=plain)
    if card is None:
        return handler, args, None
    if plain:
        first = args.split(maxsplit=1)[0] if args.strip() else ""
        handler = next((h for h in handlers if h.card_kind == card.kind and h.understands(first)), None)
    return handler, args, card if handler is not None and handler.card_kind == card.kind else None


def with_notes(notes: list[str], replies: list[Outbound]) -> list[Outbound]:
    """``replies`` with ``notes`` put before the first reply to the sender (else as one)."""
    if not notes:
        return replies
    note = "\n".join(notes)
    first = next((i for i, r in enumerate(replies) if r.person_id is None and r.chat_id is None), None)
    if first is None:
        return [Outbound(note), *replies]
    out = list(replies)
    out[first] = dataclasses.replace(out[first], text=f"{note}\n{out[first].text}")
    return out
