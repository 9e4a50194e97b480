"""Changing a person over their working life: roles, unit, coming back (reactivation).

The phone and deactivation are in :mod:`people.service`; handing over a leaving person's
shifts and open work is composed above the domains (``bot.staffing``). Every change is
recorded in the audit log (entity ``person``, who, when, from → to); filing the change
with the district office where STAFF-2 applies is the caller's (:mod:`people.filings`).

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from core import audit
from core.errors import InputError
from core.text import check_name
from people.models import Person, Role
from people.service import require_other_admin

MAX_UNIT = 100
#: What clears a unit (a 技术保障 without a unit serves every unit).
NO_UNIT = frozenset({"-", "—", "无", "（无）", "空"})


def _roles_value(roles: frozenset[Role]) -> str:
    return ",".join(r.value for r in Role if r in roles)


def set_roles(*, session: Session, person: Person, roles: frozenset[Role], now: datetime, actor: str) -> str:
    """Give ``person`` exactly ``roles`` (see :func:`people.service.parse_roles`); returns
    the former roles in Chinese.

    Raises:
        InputError: the same roles, or the admin role taken from the last admin.
    """
    before = person.role_set()
    if roles == before:
        raise InputError(f"{person.name} 的角色已是 {person.roles_zh()}")
    if Role.admin in before and Role.admin not in roles:
        require_other_admin(session=session, person=person, what="取消管理员角色")
    old_zh, old_value = person.roles_zh(), person.roles
    person.roles = _roles_value(roles)
    session.add(person)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0,
                 action="roles_changed", actor=actor, from_state=old_value, to_state=person.roles,
                 zh=f"{person.name} 角色：{old_zh} → {person.roles_zh()}")
    return old_zh


def parse_unit(text: str) -> str:
    """A unit name as typed (``无`` or ``-`` clears it).

    Raises:
        InputError: too long, on several lines, or with a control, zero-width or bidi character.
    """
    unit = check_name(text, "单位名称")
    if unit in NO_UNIT:
        return ""
    if len(unit) > MAX_UNIT or "\n" in unit:
        raise InputError(f"单位名称无效：最多 {MAX_UNIT} 字，且不能换行")
    return unit


def set_unit(*, session: Session, person: Person, unit: str, now: datetime, actor: str) -> str:
    """Move ``person`` to ``unit`` (already parsed by :func:`parse_unit`); returns the former unit.

    Raises:
        InputError: the same unit.
    """
    old = person.unit
    if unit == old:
        raise InputError(f"{person.name} 的单位已是 {unit or '（未登记）'}")
    person.unit = unit
    session.add(person)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0,
                 action="unit_changed", actor=actor, from_state=old or None, to_state=unit or None,
                 zh=f"{person.name} 单位：{old or '（无）'} → {unit or '（无）'}")
    return old


def reactivate_person(*, session: Session, person: Person, now: datetime, actor: str) -> Person:
    """Bring a deactivated person back: they are in the lists, the roster's candidates and
    the ladders again. Their former shifts and handed-over work stay where they went; a
    chat account they had bound works again.

    Raises:
        InputError: the person is active.
    """
    if person.active:
        raise InputError(f"“{person.name}”在岗，无需恢复")
    person.active = True
    session.add(person)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0,
                 action="reactivated", actor=actor, from_state="inactive", to_state="active",
                 zh=f"恢复人员：{person.name}（{person.roles_zh()}）")
    return person
