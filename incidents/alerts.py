"""Alert intake (issue 19): alerts from the office's monitoring open and follow incidents.

A monitoring system (Prometheus Alertmanager, Uptime Kuma, anything that posts the
generic shape) is a *source*; each of its alerts is known by its fingerprint. The chat
layer (``bot.alerts_http``) turns a webhook into :class:`AlertEvent` values and hands them
to :func:`receive`, which applies these rules, per alert, in order:

- **A new firing alert** opens an incident of the source's type, unit and grade, with
  its playbook (reporter ``告警：<source>``, nobody's account), and the people on duty
  are told as for any new incident (``incidents.escalation.announce_new``). When the
  alert names an address that an open incident of the same type already has (a person's
  report, site watch's), it joins that incident instead: a timeline note, no second
  announcement.
- **A repeat of a firing alert** (Alertmanager repeats every ``repeat_interval``, and
  sends a group's firing alerts with each change of the group) only updates
  ``last_seen`` and the summary. It opens nothing, even when people closed the incident
  while the alert still fires: they decided about it, and a repeat is no new event.
- **A resolution** marks the alert resolved, notes ``告警已恢复`` with the sender's time on
  the incident's timeline and tells who handles it (the owner, else the first rung). The
  incident stays as it is: people check and close it. A repeated resolution changes
  nothing but ``last_seen``. A resolution of an alert never seen stores nothing.
- **A firing after a resolution** re-activates the same incident while it is open (a
  note ``告警再次触发``, who handles it told); when its incident has ended (closed,
  withdrawn, a false alarm) it opens a new incident, and the alert follows the new one.
  A site that flaps therefore stays one incident until people close it.

Every function works in the caller's transaction and commits nothing; the messages are
queued (``core.outbox``) in it, with one event key per incident and firing, so a webhook
that is retried after a failed commit never tells anyone twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from core.clock import fmt_short_zh
from core.errors import InputError
from core.profiles import Profile
from core.workdays import WorkdayCalendar
from incidents import escalation
from incidents.actions import open_incident
from incidents.address import address_key
from incidents.alert_models import (
    MAX_FINGERPRINT,
    MAX_SUMMARY,
    MAX_TITLE,
    AlertState,
    IncidentAlert,
)
from incidents.duplicates import normalize_url
from incidents.grades import grade_names
from incidents.models import OPEN_STATUSES, TYPE_ZH, Grade, Incident, IncidentType, Source
from incidents.service import MAX_DESCRIPTION, MAX_URL, IncidentPolicy, default_grade, record
from people.models import Person, Role
from people.service import people_with_role

#: A sender's clock may run ahead a little; a time further in the future is not believed.
CLOCK_SLACK = timedelta(minutes=5)
_HTTP = re.compile(r"^https?://", re.IGNORECASE)


@dataclass(frozen=True)
class AlertEvent:
    """One alert as its sender reported it.

    Attributes:
        fingerprint: the sender's id of the alert (stable across its notifications).
        firing: True while it fires, False when the sender says it is resolved.
        title: one line saying what is wrong.
        detail: more text (description, the check's message).
        url: the address concerned, when the sender names one.
        at: when the sender says it started (firing) or ended (resolved); None: unknown.
    """

    fingerprint: str
    firing: bool
    title: str
    detail: str = ""
    url: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class AlertSource:
    """A configured sender (``[alerts.sources.<name>]``): what its alerts open."""

    name: str
    type_: IncidentType
    unit: str = ""
    grade: Grade | None = None       # None: the incident type's default grade
    site: str = ""                   # what incidents name when an alert has no address

    @property
    def actor(self) -> str:
        """Who the timeline says acted, and the reporter's name on its incidents."""
        return f"告警：{self.name}"


@dataclass(frozen=True)
class AlertWorkflow:
    """What opening incidents needs: the calendar and rule profile that time the steps,
    and the incidents policy (who is on duty, who supports a site)."""

    calendar: WorkdayCalendar
    profile: Profile
    policy: IncidentPolicy


class Outcome(StrEnum):
    opened = "opened"                    # a new incident
    joined = "joined"                    # an open incident about the same address
    repeated = "repeated"                # still firing: last_seen only
    resolved = "resolved"                # the sender resolved it: noted, told
    already_resolved = "already_resolved"
    reactivated = "reactivated"          # fired again; its incident is still open
    reopened = "reopened"                # fired again; its incident had ended: a new one
    unknown = "unknown"                  # a resolution of an alert never seen: nothing stored


@dataclass(frozen=True)
class Received:
    """What :func:`receive` did with one alert."""

    fingerprint: str
    outcome: Outcome
    incident_number: str | None = None


def fingerprint_key(fingerprint: str) -> str:
    """The fingerprint as stored: as sent, or ``sha256:…`` of a longer one.

    Raises:
        InputError: it is empty.
    """
    text = fingerprint.strip()
    if not text:
        raise InputError("告警缺少指纹（fingerprint）。")
    if len(text) > MAX_FINGERPRINT:
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _title(event: AlertEvent) -> str:
    return _short(event.title, MAX_TITLE) or f"告警 {_short(event.fingerprint, 60)}"


def _when(event: AlertEvent, now: datetime) -> datetime:
    """The sender's time of the event when believable, else when it arrived."""
    at = event.at
    if at is None or at.tzinfo is None or at.year < 2000 or at > now + CLOCK_SLACK:
        return now
    return at


def _url(event: AlertEvent) -> str | None:
    url = (event.url or "").strip()
    return url if _HTTP.match(url) and len(url) <= MAX_URL and normalize_url(url) else None


def _summary(event: AlertEvent) -> str:
    state = "告警" if event.firing else "恢复"
    return _short(f"{state}｜{_title(event)}" + (f"｜{event.detail}" if event.detail else ""), MAX_SUMMARY)


def _grade(source: AlertSource, profile: Profile) -> Grade:
    grade = source.grade or default_grade(source.type_)
    return grade if grade in grade_names(profile).allowed else Grade.general


def _open_incident_about(session: Session, type_: IncidentType, url: str) -> Incident | None:
    """The newest open incident of ``type_`` about the address ``url``."""
    key = normalize_url(url)
    stmt = (select(Incident).where(Incident.type == type_.value, col(Incident.status).in_(list(OPEN_STATUSES)),
                                   col(Incident.address_key) == address_key(url),
                                   col(Incident.url).is_not(None))
            .order_by(col(Incident.reported_at).desc(), col(Incident.id).desc()))
    # The indexed key finds the candidates; the exact comparison rules out a digest collision.
    return next((i for i in session.exec(stmt) if i.url and normalize_url(i.url) == key), None)


def _handlers(session: Session, incident: Incident) -> list[Person]:
    """Who hears that an alert changed: the owner, else the first rung, else the admins."""
    if incident.owner_id is not None:
        owner = session.get(Person, incident.owner_id)
        if owner is not None and owner.active:
            return [owner]
    return escalation.rung_people(session, incident, 0) or people_with_role(session=session, role=Role.admin)


def _where(incident: Incident) -> str:
    return f"{TYPE_ZH[IncidentType(incident.type)]}｜{incident.site}"


def _start(session: Session, source: AlertSource, event: AlertEvent, workflow: AlertWorkflow,
           now: datetime) -> tuple[Incident, Outcome]:
    """Open the alert's incident, or join the open one about its address."""
    title, url = _title(event), _url(event)
    linked = f"告警接入（来源：{source.name}，指纹：{_short(event.fingerprint, 60)}）：{title}"
    existing = _open_incident_about(session, source.type_, url) if url else None
    if existing is not None:
        record(session, existing, now, "note", linked, person=None, actor=source.actor,
               alert_source=source.name, fingerprint=event.fingerprint)
        return existing, Outcome.joined
    description = _short(f"告警（{source.name}）：{title}" + (f"｜{event.detail}" if event.detail else ""),
                         MAX_DESCRIPTION)
    incident = open_incident(
        session=session, calendar=workflow.calendar, profile=workflow.profile, policy=workflow.policy,
        type_=source.type_, target=url or source.site or f"告警来源 {source.name}", description=description,
        reporter=Person(name=source.actor, roles="", created_at=now), unit=source.unit,
        source=Source.self_found, grade=_grade(source, workflow.profile), now=now, actor=source.actor)
    record(session, incident, now, "note", linked, person=None, actor=source.actor,
           alert_source=source.name, fingerprint=event.fingerprint)
    escalation.announce_new(session, incident, profile=workflow.profile, policy=workflow.policy, now=now)
    return incident, Outcome.opened


def _resolve(session: Session, source: AlertSource, alert: IncidentAlert, event: AlertEvent,
             now: datetime) -> None:
    at = _when(event, now)
    alert.state, alert.resolved_at = AlertState.resolved, at
    incident = session.exec(select(Incident).where(Incident.number == alert.incident_number)).first()
    if incident is None:
        return
    record(session, incident, now, "note", f"告警已恢复（{fmt_short_zh(at)}，来源：{source.name}）：{alert.title}",
           person=None, actor=source.actor, alert_source=source.name, fingerprint=alert.fingerprint)
    if not incident.is_open:
        return
    text = (f"【告警恢复】{incident.number}（{_where(incident)}）\n{alert.title}\n"
            f"告警来源 {source.name} 报告已于 {fmt_short_zh(at)} 恢复。事件仍未办结："
            f"请核实后完成剩余步骤或结案：/incident show {incident.number}")
    escalation.notify(session, _handlers(session, incident), text, now=now,
                      event=f"{escalation.ref_of(incident)}:alert:{alert.id}:resolved:{alert.fire_count}")


def _reactivate(session: Session, source: AlertSource, alert: IncidentAlert, incident: Incident,
                event: AlertEvent, now: datetime) -> None:
    at = _when(event, now)
    alert.state, alert.resolved_at, alert.fire_count = AlertState.active, None, alert.fire_count + 1
    record(session, incident, now, "note", f"告警再次触发（{fmt_short_zh(at)}，来源：{source.name}）：{alert.title}",
           person=None, actor=source.actor, alert_source=source.name, fingerprint=alert.fingerprint)
    text = (f"【告警再次触发】{incident.number}（{_where(incident)}）\n{alert.title}\n"
            f"告警来源 {source.name} 报告 {fmt_short_zh(at)} 再次告警，事件仍在处置中：/incident show {incident.number}")
    buttons = escalation.ack_buttons(incident) if incident.acknowledged_at is None else ()
    escalation.notify(session, _handlers(session, incident), text, now=now, buttons=buttons,
                      event=f"{escalation.ref_of(incident)}:alert:{alert.id}:fired:{alert.fire_count}")


def _one(session: Session, source: AlertSource, event: AlertEvent, workflow: AlertWorkflow,
         now: datetime) -> Received:
    key = fingerprint_key(event.fingerprint)
    event = AlertEvent(fingerprint=key, firing=event.firing, title=event.title, detail=event.detail,
                       url=event.url, at=event.at)
    alert = session.exec(select(IncidentAlert).where(IncidentAlert.source == source.name,
                                                     IncidentAlert.fingerprint == key)).first()
    if alert is None:
        if not event.firing:
            return Received(key, Outcome.unknown)
        incident, outcome = _start(session, source, event, workflow, now)
        session.add(IncidentAlert(source=source.name, fingerprint=key, incident_number=incident.number,
                                  title=_title(event), summary=_summary(event), first_seen=now, last_seen=now))
        session.flush()
        return Received(key, outcome, incident.number)
    alert.last_seen, alert.summary = now, _summary(event)
    session.add(alert)
    number: str | None = alert.incident_number
    if not event.firing:
        outcome = Outcome.already_resolved
        if alert.is_active:
            _resolve(session, source, alert, event, now)
            outcome = Outcome.resolved
    elif alert.is_active:
        outcome = Outcome.repeated
    else:
        earlier = session.exec(select(Incident).where(Incident.number == alert.incident_number)).first()
        alert.title = _title(event)
        if earlier is not None and earlier.is_open:
            _reactivate(session, source, alert, earlier, event, now)
            outcome = Outcome.reactivated
        else:
            incident, _ = _start(session, source, event, workflow, now)
            alert.incident_number = number = incident.number
            alert.state, alert.resolved_at, alert.first_seen = AlertState.active, None, now
            alert.fire_count += 1
            outcome = Outcome.reopened
    session.flush()
    return Received(key, outcome, number)


def receive(*, session: Session, source: AlertSource, events: Sequence[AlertEvent],
            workflow: AlertWorkflow, now: datetime) -> list[Received]:
    """Apply one notification's alerts, in order (see the module's rules).

    Args:
        session: the caller's; nothing is committed here.
        source: the configured sender the notification came from.
        events: its alerts (several of the same fingerprint are applied one after another).
        workflow: calendar, profile and incidents policy for opening incidents.
        now: when the notification arrived.

    Returns:
        What happened to each alert, in order.

    Raises:
        InputError: an alert has an empty fingerprint (nothing of the notification should
            be kept: the caller rolls back).
    """
    return [_one(session, source, event, workflow, now) for event in events]
