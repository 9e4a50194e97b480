"""Chats that moved: a platform gave a chat a new id (a Telegram group became a supergroup).

The old id may live on in the configuration (``briefing.group_chat_id``) and in queued
messages. :func:`record_move` remembers the move, re-addresses what is still queued and
tells the admins once; :func:`current_ids` is how the outbox sender finds where a chat
lives now.
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
from people.models import Person, Role

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
    for admin in session.exec(select(Person).where(col(Person.active).is_(True))):
        if Role.admin in admin.role_set():
            enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now,
                    event_key=f"chat-moved:{platform}:{old}:{new}")
    return True
