"""Chats that moved or shut the bot out.

A platform may give a chat a new id (a Telegram group became a supergroup). The old id
may live on in the configuration (``briefing.group_chat_id``) and in queued messages.
:func:`record_move` remembers the move, re-addresses what is still queued and tells the
admins once; :func:`current_ids` is how the outbox sender finds where a chat lives now.

A person may block the bot, or the bot may be removed from a group. Platforms that say so
at once (Telegram's ``my_chat_member``) let :func:`record_reachability` mark the person's
account and tell the admins before an escalation fails on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from bot.models import ChatAlias
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from people.models import ChatIdentity, Person, Role
from people.service import people_with_role

log = logging.getLogger(__name__)


def current_ids(session: Session, platform: str, chat_ids: Iterable[str]) -> dict[str, str]:
    """``{old id: new id}`` for those of ``chat_ids`` that moved on ``platform``."""
    wanted = set(chat_ids)
    if not wanted:
        return {}
    rows = session.exec(select(ChatAlias).where(
        ChatAlias.platform == platform, col(ChatAlias.old_chat_id).in_(wanted)))
    return {row.old_chat_id: row.new_chat_id for row in rows}


def record_move(session: Session, *, platform: str, old: str, new: str, now: datetime) -> bool:
    """Remember that chat ``old`` is now ``new`` (in the caller's transaction).

    Earlier moves that ended at ``old`` now end at ``new``; queued messages to ``old``
    are re-addressed. Returns False when the move was already known.
    """
    if old == new:
        return False
    known = session.exec(select(ChatAlias).where(
        ChatAlias.platform == platform, ChatAlias.old_chat_id == old)).first()
    if known is not None and known.new_chat_id == new:
        return False
    if known is None:
        session.add(ChatAlias(platform=platform, old_chat_id=old, new_chat_id=new, migrated_at=now))
    else:
        known.new_chat_id, known.migrated_at = new, now
        session.add(known)
    for earlier in session.exec(select(ChatAlias).where(
            ChatAlias.platform == platform, ChatAlias.new_chat_id == old)):
        earlier.new_chat_id = new
        session.add(earlier)
    moved = 0
    for row in session.exec(select(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.pending, col(OutboxMessage.person_id).is_(None),
            OutboxMessage.chat_id == old,
            or_(col(OutboxMessage.platform).is_(None), OutboxMessage.platform == platform))):
        row.chat_id, row.claimed_until = new, None
        session.add(row)
        moved += 1
    log.warning("%s chat %s moved to %s; %d queued message(s) re-addressed", platform, old, new, moved)
    text = (f"【群聊已升级】群聊 {old} 已升级，新的群聊 ID 为 {new}。\n"
            f"机器人已自动改发到新的群聊；请在配置文件中把该群聊 ID（如 briefing.group_chat_id）"
            f"改为 {new}。")
    _tell_admins(session, text, event=f"chat-moved:{platform}:{old}:{new}", now=now)
    return True


def record_reachability(session: Session, *, platform: str, chat_id: str, is_group: bool,
                        reachable: bool, now: datetime) -> bool:
    """The bot was shut out of ``chat_id`` (blocked by a person, removed from a group) or
    let back in. Marks the person's account and tells the admins when it is shut out.

    Returns:
        Whether anything changed.
    """
    if is_group:
        if reachable:
            log.info("%s: the bot may write to group %s again", platform, chat_id)
            return False
        _tell_admins(session, f"【机器人已被移出群聊】机器人已被移出群聊 {chat_id} 或被禁止发言，"
                     f"发往该群的通知（如每日简报）将无法送达。请把机器人重新加入该群，"
                     f"或在配置中更换群聊 ID。", event=f"chat-shut:{platform}:{chat_id}:{now.isoformat()}",
                     now=now)
        log.warning("%s: the bot was removed from group %s", platform, chat_id)
        return True
    ident = session.exec(select(ChatIdentity).where(
        ChatIdentity.platform == platform, ChatIdentity.chat_id == chat_id)
        .order_by(col(ChatIdentity.id).desc())).first()
    if ident is None or (ident.blocked_at is not None) == (not reachable):
        return False
    ident.blocked_at = None if reachable else now
    session.add(ident)
    person = session.get(Person, ident.person_id)
    name = person.name if person else f"人员#{ident.person_id}"
    if not reachable:
        _tell_admins(session, f"【账号已屏蔽机器人】{name} 已屏蔽机器人，今后发给 {name} 的提醒和升级通知"
                     f"将无法送达。请联系本人解除屏蔽（重新给机器人发一条消息即可）。",
                     event=f"chat-blocked:{platform}:{chat_id}:{now.isoformat()}", now=now)
    log.warning("%s: %s %s the bot", platform, name, "unblocked" if reachable else "blocked")
    return True


def _tell_admins(session: Session, text: str, *, event: str, now: datetime) -> None:
    for admin in people_with_role(session=session, role=Role.admin):
        enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now,
                event_key=event)
