"""Substitutions by admins: replacing a person on a published shift at once (DUTY-1).

A substitution (``/substitute``, admins only) replaces a person at once (source
``substitute``), even during the shift, and cancels the open swaps it makes stale
(``roster.changes``). One that breaks a rest rule (``roster.rest``) is refused unless
the admin gives a reason (``理由：…``), which the audit log keeps. It works in the
caller's transaction and is audited (entity ``shift``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, or_, select

from core import audit
from people.models import Person
from roster.changes import OPEN, cancel
from roster.holders import PERSON_ROLE, SwapRefused, conflict, holder_role, roles_on
from roster.models import DUTY_ROLE_ZH, DutyRole, Shift, SwapRequest
from roster.rest import NO_RULES, Change, Override, RestRules, RestViolation, enforce
from roster.service import assign, label, unassign


@dataclass(frozen=True)
class Substitution:
    """A person replaced on a shift, and the swaps that became stale."""

    shift: Shift
    role: DutyRole
    old: Person
    new: Person
    cancelled: list[SwapRequest] = field(default_factory=list)
    overridden: list[RestViolation] = field(default_factory=list)   # rest rules broken on an admin's word


def substitute(*, session: Session, shift: Shift, old: Person, new: Person, reason: str,
               now: datetime, actor: str, rest: RestRules = NO_RULES, override: Override | None = None,
               hint: str = "") -> Substitution:
    """Replace ``old`` with ``new`` on ``shift`` at once (an admin's decision).

    Raises:
        SwapRefused: the shift has ended, ``old`` holds it in no or both roles, ``new``
            has another role, is already on it, or is not free.
        RestRefused: ``new`` would break a rest rule and there is no ``override``
            (``hint`` says how to give one).
    """
    if shift.ends_at <= now:
        raise SwapRefused(f"{label(shift)}已经结束，不能再替班。")
    if old.id == new.id:
        raise SwapRefused("原人员和新人员是同一个人。")
    role = holder_role(session, shift, old, who=old.name)
    role_zh = DUTY_ROLE_ZH[role]
    if not new.active or PERSON_ROLE[role] not in new.role_set():
        raise SwapRefused(f"{new.name} 不是{role_zh}，不能替{role_zh}的班。")
    if roles_on(session, shift, new):
        raise SwapRefused(f"{new.name} 已在{label(shift)}值班。")
    busy = conflict(session, person=new, shift=shift)
    if busy:
        raise SwapRefused(busy[0] + "。")
    overridden = enforce(session, [Change(new, (shift,))], rules=rest, override=override, now=now, actor=actor,
                         how="替班", hint=hint)
    why = f"替班：{reason.strip()}" if reason.strip() else "替班"
    unassign(session=session, shift=shift, person=old, role=role, now=now, actor=actor, why=why)
    assign(session=session, shift=shift, person=new, role=role, source="substitute", now=now, actor=actor)
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id or 0, action="substituted",
                 actor=actor, zh=f"{label(shift)}：{role_zh} {old.name} 由 {new.name} 替班"
                 + (f"（{reason.strip()}）" if reason.strip() else ""),
                 old=old.name, new=new.name, role=role.value)
    stale = session.exec(select(SwapRequest).where(
        col(SwapRequest.status).in_(list(OPEN)),
        or_(SwapRequest.shift_id == shift.id, SwapRequest.back_shift_id == shift.id))).all()
    cancelled = []
    for swap in stale:
        if old.id in (swap.requester_id, swap.target_id):
            cancel(session=session, swap=swap, why=f"管理员已安排 {new.name} 替班 {label(shift)}", now=now,
                   actor=actor)
            cancelled.append(swap)
    return Substitution(shift, role, old, new, cancelled, overridden)


def substitution_text(sub: Substitution, reason: str, actor: str) -> str:
    """The message everyone affected by a substitution receives."""
    text = f"【替班】{label(sub.shift)}\n{DUTY_ROLE_ZH[sub.role]}：{sub.old.name} → {sub.new.name}"
    if reason.strip():
        text += f"\n理由：{reason.strip()}"
    return text + f"\n安排人：{actor}"
