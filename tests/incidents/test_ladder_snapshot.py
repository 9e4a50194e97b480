"""The ladder a new incident freezes names the roster's officer and leader on duty, reads
the roster once for both, and is written with the incident's own INSERT (issue 21: a
report is answered within milliseconds)."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.config import load_settings
from core.clock import parse_local
from core.workdays import WorkdayCalendar
from incidents.actions import open_incident
from incidents.models import Grade, IncidentType, Source
from people.models import Person, Role
from roster import service as roster_service
from tests.factories import make_person, roster_days

NOW = parse_local("2026-11-23T10:00")   # a Monday: 白班 王芳 / 李强


def test_the_snapshot_names_the_roster_people_and_reads_the_roster_once(engine: Engine) -> None:
    settings = load_settings(None, env={})
    with Session(engine) as session:
        for name, role in (("王芳", Role.officer), ("陈晨", Role.officer), ("李强", Role.leader),
                           ("周明", Role.leader), ("赵敏", Role.principal), ("张伟", Role.admin)):
            make_person(session, name, roles=(role,), now=NOW, unit="区政府办")
        roster_days(session, start="2026-11-23", end="2026-11-23", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=NOW)
        session.commit()
    shift_reads: list[str] = []
    incident_writes: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().startswith("SELECT") and "shift" in statement:
            shift_reads.append(statement.split("FROM")[1].split()[0])   # the table read
        if statement.lstrip().startswith(("INSERT INTO incident ", "UPDATE incident ")):
            incident_writes.append(statement.split()[0])

    with Session(engine) as session:
        reporter = session.exec(select(Person).where(Person.name == "张伟")).one()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            incident = open_incident(
                session=session, calendar=WorkdayCalendar(), profile=settings.profile(),
                policy=settings.incidents.policy(on_duty=roster_service), type_=IncidentType.site_down,
                target="https://www.example.gov.cn", description="首页502", reporter=reporter, unit="区政府办",
                source=Source.self_found, grade=Grade.general, now=NOW, actor="张伟")
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        names = {p.id: p.name for p in session.exec(select(Person))}
        rungs = {r["role"]: [names[i] for i in r["person_ids"]] for r in incident.ladder_rungs()}
    assert rungs["officer"] == ["王芳"]          # the roster's, not 陈晨 of the night shift
    assert rungs["leader"] == ["李强"]           # nor 周明
    assert shift_reads == ["shift", "shift_assignment"]   # the shift on duty and its people, once
    assert incident_writes == ["INSERT"]        # the ladder is written with the incident
