"""Builders for test data."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from people.models import ChatIdentity, Person, Role


def make_person(
    session: Session,
    name: str,
    *,
    roles: tuple[Role, ...] = (Role.officer,),
    now: datetime,
    phone: str = "13800000000",
    unit: str = "区政府办",
    platform: str | None = "memory",
    external_id: str | None = None,
) -> Person:
    """A person, bound on ``platform`` (chat id = external id = ``u-<name>``) unless None."""
    person = Person(name=name, phone=phone, unit=unit,
                    roles=",".join(r.value for r in roles), created_at=now)
    session.add(person)
    session.flush()
    if platform is not None:
        ext = external_id or f"u-{name}"
        assert person.id is not None
        session.add(ChatIdentity(person_id=person.id, platform=platform, external_id=ext,
                                 chat_id=ext, display_name=name, bound_at=now))
        session.flush()
    return person
