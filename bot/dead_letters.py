"""Dead letters: a message the outbox gave up on, and the notice every admin gets.

The notice is itself an outbox row (event ``outbox-dead:<row id>``); a notice about a
notice (this one, or those of :mod:`bot.waiting`) is never sent, so a broken platform
cannot loop.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import distinct, func, or_
from sqlmodel import Session, col, select

from core.messages import Outbound
from core.outbox import OutboxMessage, enqueue
from people.models import Person, Role
from people.service import people_with_role

log = logging.getLogger("dutybot.outbox")

DEAD_EVENT_PREFIX = "outbox-dead:"
UNBOUND_EVENT_PREFIX = "unbound:"           # bot.waiting: a person's messages wait
EXPIRED_EVENT_PREFIX = "unbound-expired:"   # bot.waiting: their wait ran out
NOTICE_PREFIXES = (DEAD_EVENT_PREFIX, UNBOUND_EVENT_PREFIX, EXPIRED_EVENT_PREFIX)
REASON_NOT_BOUND = "收件人未绑定账号"
REASON_BLOCKED = "收件人已屏蔽机器人"
REASON_GROUP_BLOCKED = "机器人已被移出该群或被禁止发言"
_M = OutboxMessage


def is_notice(event_key: str) -> bool:
    """True for the admins' notices about the outbox itself (never noticed in turn)."""
    return event_key.startswith(NOTICE_PREFIXES)


def snippet(text: str, n: int = 40) -> str:
    """The first ``n`` characters on one line, with an ellipsis when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[:n] + "……"


def tell_admins(session: Session, row: OutboxMessage, now: datetime) -> int:
    """Queue a Chinese notice about dead ``row`` to every active admin; returns how many."""
    admins = people_with_role(session=session, role=Role.admin)
    if not admins:
        log.error("outbox row %s is dead and there is no active admin to tell", row.id)
        return 0
    key = f"{DEAD_EVENT_PREFIX}{row.id}"
    deaths = session.exec(select(func.count(distinct(_M.event_key))).where(
        or_(_M.event_key == key, col(_M.event_key).startswith(key + ":")))).one()
    if deaths:  # dead again after `dutybot outbox retry`: a new event, so admins hear again
        key = f"{key}:{deaths + 1}"
    text = (f"【消息投递失败】一条消息未能送达，已停止重试。\n"
            f"收件人：{recipient_label(session, row)}\n内容：{snippet(row.text)}\n"
            f"已尝试：{row.attempts} 次\n原因：{row.last_error}\n"
            f"请在服务器上运行 dutybot outbox 查看；排除原因后可运行 "
            f"dutybot outbox retry {row.id} 重新投递。")
    for admin in admins:
        enqueue(session=session, message=Outbound(text=text, person_id=admin.id),
                now=now, event_key=key)
    return len(admins)


def recipient_label(session: Session, row: OutboxMessage) -> str:
    """The person's name, or ``群聊 <chat id>``."""
    if row.person_id is not None:
        person = session.get(Person, row.person_id)
        return person.name if person else f"人员#{row.person_id}"
    return f"群聊 {row.chat_id}"
