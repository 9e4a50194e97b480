"""Lookups the escalation processor shares across the due items of one transaction (issue 21).

The scheduler runs due items in chunks: one transaction per chunk, a savepoint per item,
and the session emptied after each item. An escalation read the same rows again for
every item: the people of the snapshotted rung (and the reporter and owner named on the
card), every person to find those holding a role. :class:`Lookups` keeps them for the
rest of the transaction — the chunk — and no longer:

* it belongs to the session's root transaction: the next chunk (a new transaction, a
  new tick) reads afresh, so a roster change between ticks is always seen;
* a flush that writes a row of ``people`` or ``roster`` (a person, a chat identity, a
  duty roster), pending changes to such rows, or any rollback (an item's savepoint
  included) drop it, so a change made earlier in the same transaction is seen too.

Only :class:`incidents.escalation.Escalator` starts one (:func:`begin`); everywhere else
the functions below query as before. A change written with a bulk SQL statement (not
through the session's objects) is not noticed; nothing in the processors does that.

:func:`incident_with_steps` reads an incident and its steps in one statement.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from incidents.models import Incident, IncidentStep
from incidents.service import IncidentNotFound
from people.models import Person, Role
from people.service import people_with_role

_INFO_KEY = "incidents.escalation_batch"
_WATCHED_MODULES = ("people.", "roster.")   # modules whose rows the lookups depend on


@dataclass
class Lookups:
    """What one transaction has read so far: people by id (None: no such person), and
    the active people holding a role."""

    transaction: SessionTransaction
    people: dict[int, Person | None] = field(default_factory=dict)
    with_role: dict[Role, list[Person]] = field(default_factory=dict)
    #: Incidents and their steps by number, read ahead by :func:`prefetch` (only when the
    #: session keeps its objects for the whole transaction: the scheduler's at-once chunk).
    incidents: dict[str, tuple[Incident, list[IncidentStep]]] = field(default_factory=dict)


_WATCHED, _STEPS = 1, 2                  # what an object's class is, as flags
_KINDS: dict[type, int] = {}             # by class


def _kinds(objects: Iterable[Any], enough: int) -> int:
    """The flags of ``objects``' classes, or'ed; stops once it has ``enough``. Called for
    every lookup, on every pending object of a chunk: a dict hit per object."""
    flags = 0
    for obj in objects:
        cls = type(obj)
        kind = _KINDS.get(cls)
        if kind is None:
            kind = _KINDS[cls] = ((_WATCHED if cls.__module__.startswith(_WATCHED_MODULES) else 0)
                                  | (_STEPS if issubclass(cls, (Incident, IncidentStep)) else 0))
        flags |= kind
        if flags & enough == enough:
            break
    return flags


def current(session: Session) -> Lookups | None:
    """The lookups of the session's current transaction, if the processor began them and
    nothing has made them stale."""
    found: Lookups | None = session.info.get(_INFO_KEY)
    if found is None:
        return None
    changed = _kinds(session.new, _WATCHED | _STEPS) | _kinds(session.deleted, _WATCHED | _STEPS)
    if (found.transaction is not session.get_transaction()
            or changed & _WATCHED or _kinds(session.dirty, _WATCHED) & _WATCHED):
        session.info.pop(_INFO_KEY, None)
        return None
    if found.incidents and changed & _STEPS:
        found.incidents.clear()   # a step added or removed: the lists read ahead are stale
    return found


def begin(session: Session) -> Lookups:
    """The lookups of the session's current transaction, started if need be."""
    found = current(session)
    if found is None:
        if session.get_transaction() is None:
            session.connection()   # begins the transaction the lookups belong to
        transaction = session.get_transaction()
        assert transaction is not None
        found = Lookups(transaction)
        session.info[_INFO_KEY] = found
    return found


@event.listens_for(OrmSession, "after_flush")
def _after_flush(session: OrmSession, _context: object) -> None:
    if _INFO_KEY in session.info and any(_kinds(objects, _WATCHED) & _WATCHED for objects in
                                         (session.new, session.dirty, session.deleted)):
        session.info.pop(_INFO_KEY, None)


@event.listens_for(OrmSession, "after_soft_rollback")
def _after_rollback(session: OrmSession, _previous: object) -> None:
    session.info.pop(_INFO_KEY, None)


def people_by_id(session: Session, ids: Iterable[int]) -> dict[int, Person]:
    """The people with these ids (active or not), from the transaction's lookups where
    there are some; those not found are left out."""
    wanted = list(dict.fromkeys(ids))
    loaded = _loaded(session, wanted)
    lookups = current(session)
    if lookups is None:
        rest = [i for i in wanted if i not in loaded]
        found = session.exec(select(Person).where(col(Person.id).in_(rest))).all() if rest else []
        loaded.update((p.id, p) for p in found if p.id is not None)
        return {i: loaded[i] for i in wanted if i in loaded}
    lookups.people.update(loaded)
    missing = [i for i in wanted if i not in lookups.people]
    for start in range(0, len(missing), 500):   # SQLite's parameter limit, with room
        part = missing[start:start + 500]
        for person in session.exec(select(Person).where(col(Person.id).in_(part))).all():
            if person.id is not None:
                lookups.people[person.id] = person
        for i in part:
            lookups.people.setdefault(i, None)
    return {i: p for i in wanted if (p := lookups.people[i]) is not None}


def _loaded(session: Session, ids: list[int]) -> dict[int, Person]:
    """Those of ``ids`` the session holds already, loaded in this transaction: what a query
    would return for them (it returns the session's own objects, unchanged). An object
    expired (by a commit or a rolled-back savepoint) or to be deleted is left out, for
    the query to decide (its row may be gone: a refresh would raise, a query skips it)."""
    found: dict[int, Person] = {}
    if not ids:
        return found
    deleted = session.deleted
    for i in ids:
        person: Person | None = session.identity_map.get(identity_key(Person, i))
        if person is None or person in deleted:
            continue
        state = instance_state(person)
        if not state.expired_attributes and not state.deleted and not state.detached:
            found[i] = person
    return found


def name_of(session: Session, person_id: int | None) -> str:
    """The person's name, ``—`` for nobody (as ``incidents.service.name_of``)."""
    if person_id is None:
        return "—"
    person = people_by_id(session, [person_id]).get(person_id)
    return person.name if person else "—"


def with_role(session: Session, role: Role) -> list[Person]:
    """Active people holding ``role`` (``people.service.people_with_role``)."""
    lookups = current(session)
    if lookups is None:
        return people_with_role(session=session, role=role)
    if role not in lookups.with_role:
        lookups.with_role[role] = people_with_role(session=session, role=role)
    return list(lookups.with_role[role])


@functools.cache
def _incident_with_steps() -> Select[Incident, IncidentStep]:
    # Built once: the statement is the same for every incident (the number is a parameter).
    return (select(Incident, IncidentStep)
            .outerjoin(IncidentStep, col(IncidentStep.incident_id) == col(Incident.id))
            .where(col(Incident.number) == bindparam("number")).order_by(col(IncidentStep.seq)))


def incident_with_steps(session: Session, number: str) -> tuple[Incident, list[IncidentStep]]:
    """The incident numbered ``number`` and its steps in order, in one statement (or
    none, when :func:`prefetch` read it ahead in this transaction).

    Raises:
        IncidentNotFound: no such incident.
    """
    number = number.strip().upper()
    lookups = current(session)
    if lookups is not None and (ahead := lookups.incidents.get(number)) is not None and ahead[0] in session:
        return ahead[0], list(ahead[1])
    rows = session.exec(_incident_with_steps(), params={"number": number}).all()
    if not rows:
        raise IncidentNotFound(number)
    # An incident without steps comes back once, with no step (an outer join).
    steps: list[IncidentStep | None] = [step for _, step in rows]
    return rows[0][0], [step for step in steps if step is not None]


@functools.cache
def _incidents_with_steps() -> Select[Incident, IncidentStep]:
    return (select(Incident, IncidentStep)
            .outerjoin(IncidentStep, col(IncidentStep.incident_id) == col(Incident.id))
            .where(col(Incident.number).in_(bindparam("numbers", expanding=True)))
            .order_by(col(Incident.id), col(IncidentStep.seq)))


def prefetch(session: Session, numbers: Iterable[str]) -> None:
    """Read the incidents numbered ``numbers`` and their steps with one statement, for
    :func:`incident_with_steps` to answer from during the rest of the transaction.

    Only for a session that keeps what it read until the transaction ends (the
    scheduler's at-once chunk): the answers are the session's own objects, so what an
    earlier item changed on them is seen; a step added or deleted in the session drops
    them all (they are read again, one by one).
    """
    lookups = begin(session)
    wanted = sorted({n.strip().upper() for n in numbers} - lookups.incidents.keys())
    found: dict[str, tuple[Incident, list[IncidentStep]]] = {}
    for start in range(0, len(wanted), 500):   # SQLite's parameter limit, with room
        for incident, step in session.exec(_incidents_with_steps(), params={"numbers": wanted[start:start + 500]}):
            steps = found.setdefault(incident.number, (incident, []))[1]
            if step is not None:
                steps.append(step)
    lookups.incidents.update(found)
    # ... and the people their cards and rungs name, with one more.
    people: set[int] = set()
    for incident, _ in found.values():
        people.update(i for i in (incident.reporter_id, incident.owner_id) if i is not None)
        for rung in incident.ladder_rungs():
            people.update(rung["person_ids"])
    people_by_id(session, people)
