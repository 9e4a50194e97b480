"""People: adding, importing, listing, inviting and binding chat identities.

A person is added once: a name already registered (active or not) or a mobile number
already given to someone else is refused with the existing entry shown
(:mod:`people.duplicates`). Phone numbers are checked and
normalised by :mod:`people.phones`. The last active admin cannot be deactivated (nobody
could manage people any more). Edits of roles and unit, and reactivation, are in
:mod:`people.edits`.

Functions take their dependencies as keyword arguments and never commit: the caller's
transaction holds the change together with its audit events and messages.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from core import audit
from core.clock import check_year_range, local
from core.errors import InputError
from core.outbox import release_waiting
from core.text import check_name, clean_text
from people.duplicates import check_new, phone_taken, same_phone
from people.errors import DuplicatePerson, ImportFailed, InviteInvalid, PersonNotFound
from people.models import ROLE_FROM_ZH, ROLE_ZH, ChatIdentity, InviteCode, Person, Role
from people.phones import HINT as PHONE_HINT
from people.phones import is_mobile, normalize_phone, phone_key

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"   # no 0/O, 1/I: read aloud on the phone
CODE_LENGTH = 8
_NAME = re.compile(r"^[^\s,，、/:：]{1,50}$")
_SPLIT = re.compile(r"[、,，;；\s]+")


@dataclass(frozen=True)
class NewPerson:
    """A validated person row, before it is stored."""

    name: str
    phone: str = ""
    unit: str = ""
    roles: frozenset[Role] = frozenset({Role.officer})
    organization: str = ""
    trained_on: date | None = None      # STAFF-1: the day of the person's training


def parse_roles(text: str) -> frozenset[Role]:
    """``值班员、带班领导`` or ``officer,leader`` → roles.

    Raises:
        InputError: an unknown role name.
    """
    roles = set()
    for token in _SPLIT.split(text.strip()):
        if not token:
            continue
        role = ROLE_FROM_ZH.get(token) or ROLE_FROM_ZH.get(token.lower())
        if role is None:
            raise InputError(f"无法识别的角色“{token}”（可用：{'、'.join(ROLE_ZH.values())}）")
        roles.add(role)
    if not roles:
        raise InputError(f"至少需要一个角色（可用：{'、'.join(ROLE_ZH.values())}）")
    if Role.external in roles and len(roles) > 1:
        raise InputError("外部联系人不能同时担任其他角色")
    return frozenset(roles)


def parse_training_day(text: str, today: date | None = None) -> date:
    """A training date ``YYYY-MM-DD``; not after ``today`` (training is recorded once it
    has taken place).

    Raises:
        InputError: not a date, or a day still to come.
    """
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"培训日期“{text.strip()}”无效：应为 YYYY-MM-DD，如 2026-11-20") from None
    check_year_range(day, "培训日期")
    if today is not None and day > today:
        raise InputError(f"培训日期 {day.isoformat()} 尚未到来：请在培训完成后登记")
    return day


def validate(name: str, phone: str = "", unit: str = "", roles: str = "值班员",
             organization: str = "", trained: str = "", today: date | None = None) -> NewPerson:
    """Check one person's fields (``trained``: the training date, ``YYYY-MM-DD`` or empty).

    Raises:
        InputError: with a Chinese message naming the bad field (a name, unit or
            organization with a control, zero-width or bidi character: :func:`core.text.check_name`).
    """
    name, unit = check_name(name, "姓名"), check_name(unit, "单位名称")
    phone, organization = phone.strip(), check_name(organization, "机构名称")
    if not _NAME.match(name):
        raise InputError(f"姓名“{name}”无效：1–50 个字，不能含空格或标点")
    phone = normalize_phone(phone) if phone else ""
    if len(unit) > 100 or len(organization) > 100:
        raise InputError("单位或机构名称过长（最多 100 字）")
    trained_on = parse_training_day(trained, today) if trained.strip() else None
    return NewPerson(name, phone, unit, parse_roles(roles), organization, trained_on)


def _store(session: Session, new: NewPerson, now: datetime, actor: str) -> Person:
    person = Person(name=new.name, phone=new.phone, unit=new.unit, organization=new.organization,
                    roles=",".join(r.value for r in Role if r in new.roles), created_at=now,
                    trained_on=new.trained_on)
    session.add(person)
    session.flush()
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0,
                 action="created", actor=actor, roles=person.roles, unit=person.unit,
                 trained_on=new.trained_on.isoformat() if new.trained_on else None)
    return person


def add_person(*, session: Session, new: NewPerson, now: datetime, actor: str) -> Person:
    """Store a new person.

    Raises:
        DuplicatePerson: a person (active or not) with this name or mobile number exists.
    """
    check_new(session=session, name=new.name, phone=new.phone, unit=new.unit)
    return _store(session, new, now, actor)


def import_people(*, session: Session, rows: Iterable[Mapping[str, str]], now: datetime,
                  actor: str) -> list[Person]:
    """Import people from table rows (columns 姓名, 电话, 单位, 角色, 机构, 培训日期); all or nothing.

    Raises:
        ImportFailed: one line per bad row; nothing is stored.
    """
    problems: list[str] = []
    valid: list[NewPerson] = []
    names: dict[str, int] = {}      # name → the row that brought it
    phones: dict[str, int] = {}     # mobile number → the row that brought it
    for number, row in enumerate(rows, start=2):   # row 1 is the header
        if not any((v or "").strip() for v in row.values()):
            continue
        try:
            new = validate(row.get("姓名") or "", row.get("电话") or "", row.get("单位") or "",
                           row.get("角色") or "值班员", row.get("机构") or "", row.get("培训日期") or "",
                           today=local(now).date())
        except InputError as exc:
            problems.append(f"第{number}行：{exc.message}")
            continue
        key = phone_key(new.phone) if is_mobile(new.phone) else ""
        if new.name in names:
            problems.append(f"第{number}行：姓名“{new.name}”与第{names[new.name]}行重复")
            continue
        if key and key in phones:
            problems.append(f"第{number}行：电话 {new.phone} 与第{phones[key]}行重复")
            continue
        try:
            check_new(session=session, name=new.name, phone=new.phone, unit=new.unit)
        except DuplicatePerson as exc:
            problems.append(f"第{number}行：{exc.message}")
            continue
        names[new.name] = number
        if key:
            phones[key] = number
        valid.append(new)
    if problems:
        raise ImportFailed(problems)
    if not valid:
        raise ImportFailed(["文件中没有人员数据（需要表头：姓名、电话、单位、角色）"])
    return [_store(session, new, now, actor) for new in valid]


def list_people(*, session: Session, include_inactive: bool = False) -> list[Person]:
    """People ordered by unit and name."""
    stmt = select(Person).order_by(col(Person.unit), col(Person.name))
    if not include_inactive:
        stmt = stmt.where(Person.active == True)  # noqa: E712
    return list(session.exec(stmt))


def find_person(*, session: Session, name: str, inactive: bool = False) -> Person:
    """The active person called ``name`` (with ``inactive``: the deactivated one).

    Raises:
        PersonNotFound: nobody active (inactive) has that name.
    """
    person = session.exec(select(Person).where(Person.name == name.strip(),
                                               Person.active == (not inactive))).first()
    if person is None:
        raise PersonNotFound(name.strip(), inactive=inactive)
    return person


def active_admins(*, session: Session) -> list[Person]:
    """The active admins, in id order."""
    return sorted(people_with_role(session=session, role=Role.admin), key=lambda p: p.id or 0)


def require_other_admin(*, session: Session, person: Person, what: str) -> None:
    """Refuse ``what`` (停用, 取消管理员角色) for the last active admin.

    Raises:
        InputError: ``person`` is the only active admin.
    """
    admins = active_admins(session=session)
    if person.active and Role.admin in person.role_set() and all(a.id == person.id for a in admins):
        raise InputError(f"不能{what}“{person.name}”：其是唯一的管理员，{what}后将无人能管理人员。"
                         f"请先为另一人设置管理员角色（/people role 姓名 管理员）。")


def deactivate_person(*, session: Session, person: Person, now: datetime, actor: str) -> Person:
    """Stop ``person`` (they leave the lists, the roster's candidates and the ladders); their
    unused binding codes stop working.

    Future shifts and open work are handed over by the caller (``bot.staffing``), which
    calls this first.

    Raises:
        InputError: already deactivated, or the last admin.
    """
    if not person.active:
        raise InputError(f"“{person.name}”已停用")
    require_other_admin(session=session, person=person, what="停用")
    person.active = False
    session.add(person)
    for old in session.exec(select(InviteCode).where(InviteCode.person_id == person.id,
                                                     col(InviteCode.used_at).is_(None))):
        old.expires_at = min(old.expires_at, now)
        session.add(old)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0,
                 action="deactivated", actor=actor, from_state="active", to_state="inactive",
                 zh=f"停用人员：{person.name}（{person.roles_zh()}）")
    return person


def set_phone(*, session: Session, person: Person, phone: str, now: datetime, actor: str) -> str:
    """Change ``person``'s phone; returns the old number.

    Raises:
        InputError: not a phone number (see :mod:`people.phones`), or the same number.
        DuplicatePerson: someone else has this mobile number.
    """
    if not phone.strip():
        raise InputError(f"请给出新的电话号码：{PHONE_HINT}")
    phone = normalize_phone(phone)
    old = person.phone
    if phone == old:
        raise InputError(f"{person.name} 的电话已是 {phone}")
    other = same_phone(session, phone, other_than=person.id)
    if other is not None:
        raise DuplicatePerson(phone_taken(other, phone), other)
    person.phone = phone
    session.add(person)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0,
                 action="phone_changed", actor=actor, zh=f"{person.name} 电话：{old or '（无）'} → {phone}",
                 old=old, new=phone)
    return old


def record_training(*, session: Session, person: Person, day: date, now: datetime, actor: str) -> Person:
    """Record that ``person`` was trained on ``day`` (STAFF-1: 先培训后上岗).

    Raises:
        InputError: ``day`` is after today.
    """
    if day > local(now).date():
        raise InputError(f"培训日期 {day.isoformat()} 尚未到来：请在培训完成后登记")
    before = person.trained_on
    person.trained_on = day
    session.add(person)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0,
                 action="trained", actor=actor, zh=f"登记培训：{person.name} {day.isoformat()}",
                 trained_on=day.isoformat(), before=before.isoformat() if before else None)
    return person


# Active people whose roles mention a role (the roles are compared exactly after): for the
# ladders, which ask it for each rung of every new incident (issue 21), without reading
# everyone.
_WITH_ROLE = (select(Person).where(Person.active == True,  # noqa: E712
                                   col(Person.roles).contains(bindparam("role")))
              .order_by(col(Person.unit), col(Person.name)))


def people_with_role(*, session: Session, role: Role) -> list[Person]:
    """Active people holding ``role``, ordered by unit and name."""
    return [p for p in session.exec(_WITH_ROLE, params={"role": role.value}) if role in p.role_set()]


def support_of_unit(*, session: Session, unit: str) -> list[Person]:
    """The 技术保障 people of ``unit``; when it has none, those registered without a unit
    (a vendor serving every unit). Never another unit's."""
    people = people_with_role(session=session, role=Role.support)
    own = [p for p in people if unit and p.unit == unit]
    return own or [p for p in people if not p.unit]


def reachable(*, session: Session, people: Iterable[Person]) -> set[int]:
    """Ids of ``people`` the bot can write to: a bound chat account that has not blocked it."""
    ids = [p.id for p in people if p.id is not None]
    if not ids:
        return set()
    rows = session.exec(select(ChatIdentity.person_id).where(col(ChatIdentity.person_id).in_(ids),
                                                             col(ChatIdentity.blocked_at).is_(None)))
    return set(rows)


def create_invite(*, session: Session, person: Person, now: datetime, ttl: timedelta,
                  actor: str) -> InviteCode:
    """A new one-time binding code for ``person``; earlier unused codes stop working.

    Raises:
        InputError: the person is an external contact (they do not use the bot).
    """
    if Role.external in person.role_set():
        raise InputError(f"“{person.name}”是外部联系人，不使用机器人，无需绑定")
    for old in session.exec(select(InviteCode).where(InviteCode.person_id == person.id,
                                                     col(InviteCode.used_at).is_(None))):
        old.expires_at = min(old.expires_at, now)
        session.add(old)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    assert person.id is not None
    invite = InviteCode(code=code, person_id=person.id, created_at=now, expires_at=now + ttl,
                        created_by=actor)
    session.add(invite)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id,
                 action="invited", actor=actor, expires_at=invite.expires_at.isoformat())
    return invite


# Built once: every inbound update asks it (twice before issue 21), and building a
# statement and its cache key costs more than running it on an indexed table.
_IDENTITY = (select(ChatIdentity, Person)
             .join(Person, col(Person.id) == ChatIdentity.person_id)
             .where(ChatIdentity.platform == bindparam("platform"),
                    ChatIdentity.external_id == bindparam("external_id")))


def identity_for(*, session: Session, platform: str, external_id: str) -> tuple[ChatIdentity, Person] | None:
    """The bound identity and its person, or None for an unknown user."""
    row = session.exec(_IDENTITY, params={"platform": platform, "external_id": external_id}).first()
    return None if row is None else (row[0], row[1])


def bind(*, session: Session, code: str, platform: str, external_id: str, chat_id: str,
         display_name: str, now: datetime) -> Person:
    """Bind a chat account to the person the code was issued for. Messages that waited
    for the person to bind go back in the queue in this transaction, ahead of anything
    queued after it.

    Raises:
        InviteInvalid: unknown, used or expired code, or an account bound to someone else.
    """
    code = code.strip().upper()
    invite = session.exec(select(InviteCode).where(InviteCode.code == code)).first()
    if invite is None:
        raise InviteInvalid("绑定码无效，请核对后重新发送（绑定码为 8 位字母和数字）。", code)
    if invite.used_at is not None:
        raise InviteInvalid("该绑定码已经使用过。如需重新绑定，请向管理员索取新的绑定码。", code)
    if invite.expires_at <= now:
        raise InviteInvalid("该绑定码已过期，请向管理员索取新的绑定码。", code)
    person = session.get(Person, invite.person_id)
    if person is None or not person.active:
        raise InviteInvalid("该绑定码对应的人员已停用，请联系管理员。", code)
    existing = identity_for(session=session, platform=platform, external_id=external_id)
    if existing is not None and existing[1].id != person.id:
        raise InviteInvalid(f"此账号已绑定为“{existing[1].name}”，如需更换请联系管理员。", code)
    # A person has one account per platform: a new phone or account replaces the old one.
    for old in session.exec(select(ChatIdentity).where(ChatIdentity.person_id == person.id,
                                                       ChatIdentity.platform == platform)):
        session.delete(old)
    session.flush()
    assert person.id is not None
    session.add(ChatIdentity(person_id=person.id, platform=platform, external_id=external_id,
                             chat_id=chat_id, display_name=clean_text(display_name)[:100], bound_at=now))
    invite.used_at = now
    session.add(invite)
    released = release_waiting(session=session, person_id=person.id, now=now)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id,
                 action="bound", actor=person.name, actor_id=person.id, platform=platform,
                 external_id=external_id, released_messages=released)
    return person


def ensure_identity(*, session: Session, person: Person, platform: str, external_id: str,
                    now: datetime) -> ChatIdentity:
    """Bind ``person`` on a local platform (console) without a code: the operator of the
    machine is trusted there. Messages waiting for them to bind go back to the queue."""
    found = identity_for(session=session, platform=platform, external_id=external_id)
    if found is not None:
        return found[0]
    assert person.id is not None
    ident = ChatIdentity(person_id=person.id, platform=platform, external_id=external_id,
                         chat_id=external_id, display_name=person.name, bound_at=now)
    session.add(ident)
    session.flush()
    release_waiting(session=session, person_id=person.id, now=now)
    return ident
