"""Builders for test data."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from people.models import ChatIdentity, Person, Role

#: The training day people get by default: a working office's staff are trained (STAFF-1).
TRAINED = date(2025, 1, 6)


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
    trained_on: date | None = TRAINED,
) -> Person:
    """A person, bound on ``platform`` (chat id = external id = ``u-<name>``) unless None;
    trained on :data:`TRAINED` unless ``trained_on`` says otherwise (None: never)."""
    person = Person(name=name, phone=phone, unit=unit,
                    roles=",".join(r.value for r in roles), created_at=now, trained_on=trained_on)
    session.add(person)
    session.flush()
    if platform is not None:
        ext = external_id or f"u-{name}"
        assert person.id is not None
        session.add(ChatIdentity(person_id=person.id, platform=platform, external_id=ext,
                                 chat_id=ext, display_name=name, bound_at=now))
        session.flush()
    return person


def roster_days(session: Session, *, start: str, end: str, officers: list[str], leaders: list[str],
                now: datetime, calendar: object | None = None) -> None:
    """Published shifts for ``start``..``end`` (ISO dates) from the default patterns, with
    people taken in turn from ``officers`` and ``leaders`` (by name), shift by shift."""
    from datetime import date

    from sqlmodel import select

    from bot.config import load_settings
    from core.workdays import WorkdayCalendar
    from roster.models import DutyRole
    from roster.service import assign, ensure_shifts

    cal = calendar if isinstance(calendar, WorkdayCalendar) else WorkdayCalendar.from_dir(None)
    shifts = ensure_shifts(session=session, calendar=cal, patterns=load_settings(None, env={}).roster.patterns(),
                           start=date.fromisoformat(start), end=date.fromisoformat(end), now=now)
    people = {p.name: p for p in session.exec(select(Person))}
    for index, shift in enumerate(shifts):
        if officers:
            assign(session=session, shift=shift, person=people[officers[index % len(officers)]],
                   role=DutyRole.officer, source="manual", now=now, actor="test")
        if leaders:
            assign(session=session, shift=shift, person=people[leaders[index % len(leaders)]],
                   role=DutyRole.leader, source="manual", now=now, actor="test")
