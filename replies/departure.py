"""Open reply items of a person who leaves (deactivated), and handing them to a named person.

The receiver becomes the assignee; the deadline does not change (REPLY-4's ceiling holds
whatever happens), and the reminders reach the new assignee (they read it when they fire).
Each handover is audited (entity ``reply``, action ``handed_over``).

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from core import audit
from people.models import Person
from replies.flows import deadline_zh
from replies.models import CATEGORY_ZH, ReplyCategory, ReplyItem, ReplyStatus


def assigned_open(*, session: Session, person: Person) -> list[ReplyItem]:
    """The open items assigned to ``person``, earliest deadline first."""
    return list(session.exec(select(ReplyItem).where(ReplyItem.assignee_id == person.id,
                                                     ReplyItem.status == ReplyStatus.open)
                             .order_by(col(ReplyItem.due_at), col(ReplyItem.id))))


def line(item: ReplyItem) -> str:
    """``MSG-20261123-001｜咨询｜截止 11月26日 24:00｜摘要``."""
    return f"{item.number}｜{CATEGORY_ZH[ReplyCategory(item.category)]}｜截止 {deadline_zh(item)}｜{item.summary[:24]}"


def hand_over(*, session: Session, item: ReplyItem, leaving: Person, receiver: Person, now: datetime,
              actor: str) -> None:
    """Make ``receiver`` the assignee of ``leaving``'s item."""
    item.assignee_id = receiver.id
    session.add(item)
    audit.record(session=session, at=now, entity_type="reply", entity_id=item.number, action="handed_over",
                 actor=actor, zh=f"工作交接：{leaving.name} 已停用，改由 {receiver.name} 答复",
                 previous=leaving.name, assignee=receiver.name)
