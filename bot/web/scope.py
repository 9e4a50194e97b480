"""Who sees what on the web board.

* Officers, leaders and principals see **their own unit** only: its incidents, reply
  items, its people on the roster, its sites. Someone without a unit sees no unit's data.
* The district office (``[incidents] district_office``) and admins see **every unit**.
* External contacts and 技术保障 people do not use the board (they are refused a link).
* Full phone numbers are shown to leaders, principals, admins and the district office;
  officers see their own number and the others masked (``138****0001``).

An incident, reply item or site of another unit is answered 404, exactly like one that
does not exist, so a changed URL does not even tell that it exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from people.models import Person, Role

BOARD_ROLES = frozenset({Role.officer, Role.leader, Role.principal, Role.admin})
FULL_PHONE_ROLES = frozenset({Role.leader, Role.principal, Role.admin})
REFUSED = "抱歉，值班看板只供值班员、带班领导、主要负责人、管理员和区政府办公室使用。"


def may_use_board(person: Person, district_office: Iterable[str]) -> bool:
    """Whether ``person`` may sign in to the board."""
    roles = person.role_set()
    if not person.active or Role.external in roles:
        return False
    return bool(roles & BOARD_ROLES) or person.name in tuple(district_office)


def mask_phone(phone: str) -> str:
    """``13800000001`` → ``138****0001``; ``023-67881234`` → ``023****1234``; short ones → ``****``."""
    digits = phone.strip()
    if len(digits) < 8:
        return "****" if digits else ""
    return f"{digits[:3]}****{digits[-4:]}"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person and what the board may show them."""

    person: Person
    district: bool          # the district office or an admin: every unit

    @classmethod
    def of(cls, person: Person, district_office: Iterable[str]) -> Viewer:
        return cls(person, Role.admin in person.role_set() or person.name in tuple(district_office))

    @property
    def unit(self) -> str:
        return self.person.unit

    def sees_unit(self, unit: str | None) -> bool:
        """Whether data of ``unit`` may be shown (never another unit's)."""
        if self.district:
            return True
        return bool(self.person.unit) and unit == self.person.unit

    def units_filter(self) -> list[str] | None:
        """The units a query is limited to (None: all)."""
        return None if self.district else [self.person.unit] if self.person.unit else []

    def phone(self, person: Person) -> str:
        """``person``'s phone as this viewer may see it."""
        if self.district or self.person.role_set() & FULL_PHONE_ROLES or person.id == self.person.id:
            return person.phone
        return mask_phone(person.phone)

    @property
    def scope_zh(self) -> str:
        return "全部单位" if self.district else (self.person.unit or "未登记单位")
