"""Early handover (交班, DUTY-1): ``/handover`` well before the shift ends asks first.

A handover more than ``[roster] handover_early_minutes`` (default 30; 0: never asked)
before the shift's end is not done at once: the officer is told how long is left and asked to confirm
(``/handover 确认``, or the button) — an early handover tells the next shift and the
leaders, and is more often a slip than a plan. The ask is recorded in the audit log
(entity ``shift``, action :data:`ASKED`) with the note given, and a confirmation without a
note within :data:`CONFIRM_WITHIN` uses that note. A shift already handed over (an update
of its handover) is not asked about again; the actual handover is ``roster.lifecycle``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core import audit
from core.audit import AuditEvent
from core.errors import InputError
from people.models import Person
from roster.lifecycle import MAX_NOTE
from roster.models import Handover, Shift
from roster.service import label

ASKED = "handover_early_asked"
CONFIRM_WORDS = frozenset({"确认", "confirm", "确定"})
CONFIRM_WITHIN = timedelta(minutes=30)


def time_left(shift: Shift, now: datetime, early: timedelta) -> timedelta | None:
    """How long until ``shift`` ends when a handover now is early (more than ``early``
    before the end); else None, and always None when ``early`` is zero (never asked)."""
    left = shift.ends_at - now
    return left if early and left > early else None


def handed_over(session: Session, shift: Shift) -> bool:
    """Whether ``shift`` already has a handover."""
    return session.exec(select(Handover.id).where(Handover.shift_id == shift.id)).first() is not None


def ask(session: Session, *, shift: Shift, person: Person, note: str, left: timedelta, now: datetime,
        actor: str) -> None:
    """Record that ``person`` was asked to confirm an early handover, keeping ``note``.

    Raises:
        InputError: the note is too long.
    """
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise InputError(f"备注过长（{len(note)} 字，上限 {MAX_NOTE} 字）。")
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id or 0, action=ASKED, actor=actor,
                 actor_id=person.id, note=note, left_minutes=int(left.total_seconds() // 60),
                 zh=f"{label(shift)}：{person.name} 提前交班，待确认")


def asked_note(session: Session, *, shift: Shift, person: Person, now: datetime) -> str:
    """The note of ``person``'s latest early-handover ask on ``shift`` within
    :data:`CONFIRM_WITHIN` ('' when none)."""
    event = session.exec(select(AuditEvent).where(
        AuditEvent.entity_type == "shift", AuditEvent.entity_id == str(shift.id), AuditEvent.action == ASKED,
        AuditEvent.actor_id == person.id, col(AuditEvent.at) >= now - CONFIRM_WITHIN)
        .order_by(col(AuditEvent.id).desc())).first()
    return str(event.details().get("note", "")) if event is not None else ""
