"""Alert intake's rules (incidents.alerts): one incident per alert, repeats change nothing,
a resolution is noted and told, a firing after a resolution re-activates the same open
incident or opens a new one when it ended; the clock is moved, never slept."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit
from core.clock import SHANGHAI, FakeClock
from core.outbox import OutboxMessage
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from incidents.actions import open_incident
from incidents.alert_models import AlertState, IncidentAlert
from incidents.alerts import AlertEvent, AlertSource, AlertWorkflow, Outcome, Received, receive
from incidents.models import Grade, Incident, IncidentStatus, IncidentType, Source
from incidents.service import IncidentPolicy
from people.models import Person, Role
from tests.factories import make_person

URL = "https://www.example.gov.cn/"
SOURCE = AlertSource(name="prom", type_=IncidentType.site_down, unit="区政府办", site="区政府门户网站")


@pytest.fixture
def workflow() -> AlertWorkflow:
    return AlertWorkflow(calendar=WorkdayCalendar.from_dir(None), profile=load_profile("default"),
                         policy=IncidentPolicy())


@pytest.fixture
def people(engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        make_person(session, "李强", roles=(Role.leader,), now=clock.now())
        make_person(session, "张伟", roles=(Role.admin,), now=clock.now())
        session.commit()


def fire(fingerprint: str = "fp-1", *, title: str = "门户网站无法访问", url: str | None = URL,
         firing: bool = True, at_minute: int | None = None) -> AlertEvent:
    at = None if at_minute is None else datetime(2026, 11, 23, 9, at_minute, tzinfo=SHANGHAI)
    return AlertEvent(fingerprint=fingerprint, firing=firing, title=title, detail="HTTP 502", url=url, at=at)


def run(engine: Engine, clock: FakeClock, workflow: AlertWorkflow, *events: AlertEvent,
        source: AlertSource = SOURCE) -> list[Received]:
    with Session(engine) as session:
        done = receive(session=session, source=source, events=events, workflow=workflow, now=clock.now())
        session.commit()
    return done


def incidents(engine: Engine) -> list[Incident]:
    with Session(engine) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.id))))


def the_alert(engine: Engine, fingerprint: str = "fp-1") -> IncidentAlert:
    with Session(engine) as session:
        return session.exec(select(IncidentAlert).where(IncidentAlert.fingerprint == fingerprint)).one()


def timeline(engine: Engine, number: str) -> list[str]:
    with Session(engine) as session:
        return [str(e.details().get("zh")) for e in audit.history(session=session, entity_type="incident",
                                                                  entity_id=number)]


def messages(engine: Engine, name: str) -> list[str]:
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        return [m.text for m in session.exec(select(OutboxMessage).where(OutboxMessage.person_id == person.id)
                                             .order_by(col(OutboxMessage.id)))]


@pytest.mark.usefixtures("people")
def test_a_firing_alert_opens_one_incident_and_its_repeats_open_none(
        engine: Engine, clock: FakeClock, workflow: AlertWorkflow) -> None:
    [first] = run(engine, clock, workflow, fire())
    assert first.outcome == Outcome.opened
    [incident] = incidents(engine)
    assert first.incident_number == incident.number
    assert (incident.type, incident.unit, incident.site, incident.url) == ("site_down", "区政府办", "www.example.gov.cn", URL)
    assert incident.reporter_id is None and incident.status == IncidentStatus.reported
    assert incident.description.startswith("告警（prom）：门户网站无法访问｜HTTP 502")
    with Session(engine) as session:
        reported = audit.history(session=session, entity_type="incident", entity_id=incident.number)[0]
    assert reported.actor == "告警：prom"
    told = messages(engine, "王芳")
    assert len(told) == 1 and told[0].startswith("【新事件】")
    assert "报告：告警：prom" in told[0]      # the card names the source, not "—"

    clock.advance(timedelta(hours=4))     # Alertmanager's repeat_interval
    again, twice = run(engine, clock, workflow, fire(), fire())   # twice in one notification, too
    assert again.outcome == twice.outcome == Outcome.repeated and again.incident_number == incident.number
    assert len(incidents(engine)) == 1
    alert = the_alert(engine)
    assert alert.state == AlertState.active and alert.fire_count == 1
    assert alert.last_seen == clock.now() and alert.first_seen == clock.now() - timedelta(hours=4)
    assert messages(engine, "王芳") == told            # a repeat tells nobody


@pytest.mark.usefixtures("people")
def test_a_resolution_is_noted_once_and_told_and_the_incident_stays_for_people(
        engine: Engine, clock: FakeClock, workflow: AlertWorkflow) -> None:
    [opened] = run(engine, clock, workflow, fire())
    clock.advance(timedelta(minutes=25))
    [done] = run(engine, clock, workflow, fire(firing=False, at_minute=20))
    assert done.outcome == Outcome.resolved and done.incident_number == opened.incident_number
    alert = the_alert(engine)
    assert alert.state == AlertState.resolved and alert.resolved_at == clock.now() - timedelta(minutes=5)
    number = opened.incident_number
    assert number is not None
    notes = [t for t in timeline(engine, number) if t.startswith("告警已恢复")]
    assert notes == ["告警已恢复（11月23日 09:20，来源：prom）：门户网站无法访问"]
    [incident] = incidents(engine)
    assert incident.status == IncidentStatus.reported          # people close it, not the alert
    assert messages(engine, "王芳")[-1].startswith(f"【告警恢复】{number}")

    [repeat] = run(engine, clock, workflow, fire(firing=False))
    assert repeat.outcome == Outcome.already_resolved
    assert [t for t in timeline(engine, number) if t.startswith("告警已恢复")] == notes
    assert len([m for m in messages(engine, "王芳") if m.startswith("【告警恢复】")]) == 1


@pytest.mark.usefixtures("people")
def test_a_firing_after_a_resolution_reactivates_the_open_incident(
        engine: Engine, clock: FakeClock, workflow: AlertWorkflow) -> None:
    [opened] = run(engine, clock, workflow, fire())
    run(engine, clock, workflow, fire(firing=False))
    clock.advance(timedelta(minutes=10))
    [again] = run(engine, clock, workflow, fire())
    assert again.outcome == Outcome.reactivated and again.incident_number == opened.incident_number
    assert len(incidents(engine)) == 1
    alert = the_alert(engine)
    assert alert.state == AlertState.active and alert.fire_count == 2 and alert.resolved_at is None
    assert opened.incident_number is not None
    assert any(t.startswith("告警再次触发（11月23日 09:10") for t in timeline(engine, opened.incident_number))
    assert messages(engine, "王芳")[-1].startswith(f"【告警再次触发】{opened.incident_number}")
    # Its second resolution is told again: a new episode, a new event.
    run(engine, clock, workflow, fire(firing=False))
    assert len([m for m in messages(engine, "王芳") if m.startswith("【告警恢复】")]) == 2


@pytest.mark.usefixtures("people")
def test_a_firing_after_its_incident_ended_opens_a_new_one_that_the_alert_follows(
        engine: Engine, clock: FakeClock, workflow: AlertWorkflow) -> None:
    [opened] = run(engine, clock, workflow, fire())
    run(engine, clock, workflow, fire(firing=False))
    with Session(engine) as session:
        incident = session.exec(select(Incident)).one()
        incident.status = IncidentStatus.closed
        session.add(incident)
        session.commit()
    clock.advance(timedelta(days=1))
    [again] = run(engine, clock, workflow, fire())
    assert again.outcome == Outcome.reopened
    assert again.incident_number not in (None, opened.incident_number)
    assert len(incidents(engine)) == 2
    alert = the_alert(engine)
    assert (alert.incident_number, alert.state, alert.fire_count) == (again.incident_number, AlertState.active, 2)
    assert alert.first_seen == clock.now()


@pytest.mark.usefixtures("people")
def test_a_resolution_of_an_alert_never_seen_stores_nothing(
        engine: Engine, clock: FakeClock, workflow: AlertWorkflow) -> None:
    [done] = run(engine, clock, workflow, fire("never", firing=False))
    assert done == Received("never", Outcome.unknown)
    assert incidents(engine) == []
    with Session(engine) as session:
        assert session.exec(select(IncidentAlert)).all() == []


@pytest.mark.usefixtures("people")
def test_an_alert_about_an_address_already_reported_joins_that_incident(
        engine: Engine, clock: FakeClock, workflow: AlertWorkflow) -> None:
    with Session(engine) as session:
        wang = session.exec(select(Person).where(Person.name == "王芳")).one()
        reported = open_incident(session=session, calendar=workflow.calendar, profile=workflow.profile,
                                 policy=workflow.policy, type_=IncidentType.site_down, target=URL + "index.html",
                                 description="首页打不开", reporter=wang, unit="区政府办", source=Source.self_found,
                                 now=clock.now(), actor="王芳")
        number = reported.number
        session.commit()
    [joined] = run(engine, clock, workflow, fire(url=URL + "index.html/"))
    assert (joined.outcome, joined.incident_number) == (Outcome.joined, number)
    assert len(incidents(engine)) == 1
    assert any(t.startswith("告警接入（来源：prom，指纹：fp-1）") for t in timeline(engine, number))
    # Another type about the same address is another incident.
    tamper = AlertSource(name="prom", type_=IncidentType.tamper, unit="区政府办")
    [other] = run(engine, clock, workflow, fire("fp-2", url=URL + "index.html"), source=tamper)
    assert other.outcome == Outcome.opened and other.incident_number != number


@pytest.mark.usefixtures("people")
def test_the_configured_grade_a_long_fingerprint_and_a_sender_clock_ahead(
        engine: Engine, clock: FakeClock, workflow: AlertWorkflow) -> None:
    major = AlertSource(name="kuma", type_=IncidentType.site_down, grade=Grade.major, site="区政府门户网站")
    long = "x" * 500
    [opened] = run(engine, clock, workflow, fire(long, url=None), source=major)
    [incident] = incidents(engine)
    assert (incident.grade, incident.site, incident.url) == ("major", "区政府门户网站", None)
    assert opened.fingerprint.startswith("sha256:") and len(opened.fingerprint) == 71
    [again] = run(engine, clock, workflow, fire(long, url=None), source=major)
    assert again.outcome == Outcome.repeated
    # The same fingerprint from another source is another alert.
    [other] = run(engine, clock, workflow, fire(long, url=None))
    assert other.outcome == Outcome.opened
    # A resolution dated an hour ahead is noted at the time it arrived.
    clock.advance(timedelta(minutes=3))
    later = AlertEvent(fingerprint=long, firing=False, title="", at=clock.now() + timedelta(hours=1))
    run(engine, clock, workflow, later, source=major)
    assert incident.number in [i.number for i in incidents(engine)]
    assert any(t.startswith("告警已恢复（11月23日 09:03") for t in timeline(engine, incident.number))


def test_a_grade_the_profile_lacks_falls_back_to_general(engine: Engine, clock: FakeClock) -> None:
    guzhang = AlertWorkflow(calendar=WorkdayCalendar.from_dir(None), profile=load_profile("guzhang"),
                            policy=IncidentPolicy())
    special = AlertSource(name="prom", type_=IncidentType.hack, grade=Grade.special)
    run(engine, clock, guzhang, fire(), source=special)
    [incident] = incidents(engine)
    assert incident.grade == "general"
