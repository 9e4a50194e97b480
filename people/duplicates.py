"""People registered twice: the same name (active or not) or the same mobile number.

A refusal shows the existing entry (``已有人员：王芳（值班员，区政府办，13812345678）``) and, for
someone deactivated, suggests reactivating them. Mobile numbers are compared whatever
their spelling (:func:`people.phones.phone_key`); a landline may be an office's shared
duty phone, so it is not compared.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from people.errors import DuplicatePerson
from people.models import Person
from people.phones import is_mobile, phone_key


def summary_of(person: Person) -> str:
    """``王芳（值班员，区政府办，13812345678）``, with ``，已停用`` for someone inactive."""
    parts = [person.roles_zh(), person.unit or "未登记单位", person.phone or "无电话"]
    return f"{person.name}（{'，'.join(parts)}{'，已停用' if not person.active else ''}）"


def same_phone(session: Session, phone: str, *, other_than: int | None = None) -> Person | None:
    """Someone else (active or not) with this mobile number; landlines are not compared."""
    if not phone or not is_mobile(phone):
        return None
    key = phone_key(phone)
    for person in session.exec(select(Person).where(Person.phone != "").order_by(col(Person.id))):
        if person.id != other_than and phone_key(person.phone) == key:
            return person
    return None


def _reactivate_hint(person: Person) -> str:
    return (f"如是同一人返岗，请用 /people reactivate {person.name}（或 dutybot people reactivate "
            f"{person.name}）恢复；" if not person.active else "")


def name_taken(existing: Person, new_unit: str = "") -> str:
    """The refusal for a name already registered, showing the existing entry."""
    tag = new_unit if new_unit and new_unit != existing.unit else "网信科"
    return (f"已有人员：{summary_of(existing)}。{_reactivate_hint(existing)}"
            f"如为同名不同人，请在姓名后加区分，如 {existing.name}（{tag}）。")


def phone_taken(existing: Person, phone: str) -> str:
    """The refusal for a mobile number already given to someone else."""
    return (f"电话 {phone} 已登记给：{summary_of(existing)}。{_reactivate_hint(existing)}"
            "一个手机号码只能登记给一人，请核对号码。")


def check_new(*, session: Session, name: str, phone: str, unit: str = "") -> None:
    """Refuse a person already registered: the same name, or the same mobile number.

    Raises:
        DuplicatePerson: with the existing entry shown.
    """
    same = session.exec(select(Person).where(Person.name == name)).first()
    if same is not None:
        raise DuplicatePerson(name_taken(same, unit), same)
    other = same_phone(session, phone)
    if other is not None:
        raise DuplicatePerson(phone_taken(other, phone), other)
