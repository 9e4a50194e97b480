"""Incidents: the queries and rules (DOMAIN §2–5): parsing, lookups, who is on each rung
of the ladder, who may act, deadlines as text. State changes (open, acknowledge, take,
do steps, grade, close) are in ``incidents.actions``.

Every function works in the caller's transaction and raises a domain error (Chinese
message) when the action is refused; the messages it causes are queued through
``incidents.escalation`` in the same transaction. The timeline is the audit log: every
change appends an ``audit_event`` (through :func:`record`) whose ``zh`` detail is the
Chinese line the timeline and the report show.

The roster is not read here: who is on duty comes from :attr:`IncidentPolicy.on_duty`,
which the composition root fills with the roster's answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from core import audit
from core.audit import AuditEvent
from core.clock import fmt_short_zh, local
from core.errors import DutybotError, InputError, NotFound, PermissionDenied
from core.office_hours import OfficeHours
from core.profiles import Profile, Quantity
from incidents.models import (
    ENDED_STATUSES,
    GRADE_ALIASES,
    OPEN_STATUSES,
    STATUS_ZH,
    TYPE_ALIASES,
    TYPE_ZH,
    Evidence,
    Grade,
    Incident,
    IncidentStatus,
    IncidentStep,
    IncidentType,
    Source,
    StepStatus,
)
from incidents.paging_models import PagingPolicy
from incidents.playbooks import ROLE_LABEL, load_ladders, load_playbooks, step_timing
from people.models import Person, Role
from people.service import people_with_role, support_of_unit

MAX_DESCRIPTION = 1000
MAX_SITE = 200
MAX_URL = 1000
MAX_NOTE = 1000


class IncidentNotFound(NotFound):
    def __init__(self, number: str) -> None:
        super().__init__(f"没有找到事件 {number}（编号形如 INC-20261123-001，可用 /incident list 查看）。")


class DutyRoster(Protocol):
    """Who the published roster has on duty at an instant (``[]``: nobody rostered then).

    Incidents never import the roster: the composition root passes its answer in as
    :attr:`IncidentPolicy.on_duty` (the ``roster.service`` module fits this protocol).
    """

    def leaders_at(self, *, session: Session, at: datetime) -> list[Person]: ...

    def officers_at(self, *, session: Session, at: datetime) -> list[Person]: ...

    def people_at(self, *, session: Session, at: datetime) -> tuple[list[Person], list[Person]]:
        """``(officers_at, leaders_at)`` with one reading of the roster."""
        ...


class NoRoster:
    """No roster: nobody is on duty, so the ladder falls back to configured names and units."""

    def leaders_at(self, *, session: Session, at: datetime) -> list[Person]:
        return []

    def officers_at(self, *, session: Session, at: datetime) -> list[Person]:
        return []

    def people_at(self, *, session: Session, at: datetime) -> tuple[list[Person], list[Person]]:
        return [], []


@dataclass
class _AskedOnce:
    """A roster read once per instant: a ladder snapshot asks for the officers and the
    leaders at the same instant, in the same transaction, with nothing changed between."""

    roster: DutyRoster
    answers: dict[datetime, tuple[list[Person], list[Person]]] = field(default_factory=dict)

    def _at(self, session: Session, at: datetime) -> tuple[list[Person], list[Person]]:
        if at not in self.answers:
            self.answers[at] = self.roster.people_at(session=session, at=at)
        return self.answers[at]

    def leaders_at(self, *, session: Session, at: datetime) -> list[Person]:
        return list(self._at(session, at)[1])

    def officers_at(self, *, session: Session, at: datetime) -> list[Person]:
        return list(self._at(session, at)[0])

    def people_at(self, *, session: Session, at: datetime) -> tuple[list[Person], list[Person]]:
        officers, leaders = self._at(session, at)
        return list(officers), list(leaders)


NO_ROSTER: DutyRoster = NoRoster()


class SiteSupport(Protocol):
    """The 技术保障 set on the registered site an incident names (``[]``: none of its own).

    Incidents never import the site registry: the composition root passes it in as
    :attr:`IncidentPolicy.sites` (the ``roster.sites`` module fits this protocol).
    """

    def support_for(self, *, session: Session, site: str, url: str | None, unit: str) -> list[Person]: ...


class NoSites:
    """No site registry: only the unit's 技术保障 people are known."""

    def support_for(self, *, session: Session, site: str, url: str | None, unit: str) -> list[Person]:
        return []


NO_SITES: SiteSupport = NoSites()


@dataclass(frozen=True)
class IncidentPolicy:
    """What the domain needs from outside: ``[incidents]`` in the config, who is on duty,
    who supports each site, the office hours routine pings wait for, and which pings also
    page by phone."""

    at_once_minutes: int = 30
    remind_before: timedelta = timedelta(minutes=60)
    leaders_on_duty: tuple[str, ...] = ()
    district_office: tuple[str, ...] = ()
    on_duty: DutyRoster = NO_ROSTER
    sites: SiteSupport = NO_SITES
    # Repeats after the top rung was told; then one closing note (``incidents.repeat_limit``).
    repeat_limit: int = 2
    # 一般-grade step reminders outside these wait for them; None: ping at any hour.
    office_hours: OfficeHours | None = None
    # Which pings also page by SMS or voice call (``[paging]``); None: chat only.
    paging: PagingPolicy | None = None


# -- parsing -------------------------------------------------------------------------


def parse_type(text: str) -> IncidentType:
    found = TYPE_ALIASES.get(text.strip())
    if found is None:
        raise InputError(f"无法识别的事件类型“{text}”（可用：{'、'.join(TYPE_ZH.values())}）。")
    return found


def parse_grade(text: str) -> Grade:
    found = GRADE_ALIASES.get(text.strip())
    if found is None:
        raise InputError(f"无法识别的等级“{text}”（可用：一般、重大、特级）。")
    return found


def split_target(text: str) -> tuple[str, str | None]:
    """(site, url) from a URL or a site/account name."""
    text = text.strip()
    if re.match(r"^https?://", text, re.IGNORECASE):
        if len(text) > MAX_URL:
            raise InputError(f"网址过长（上限 {MAX_URL} 字）。")
        host = urlsplit(text).hostname or text
        return host[:MAX_SITE], text
    if len(text) > MAX_SITE:
        raise InputError(f"网站或账号名称过长（上限 {MAX_SITE} 字）。")
    return text, None


# -- lookups -------------------------------------------------------------------------


def get_incident(*, session: Session, number: str) -> Incident:
    number = number.strip().upper()
    found = session.exec(select(Incident).where(Incident.number == number)).first()
    if found is None:
        raise IncidentNotFound(number)
    return found


def steps_of(*, session: Session, incident: Incident) -> list[IncidentStep]:
    return list(session.exec(select(IncidentStep).where(IncidentStep.incident_id == incident.id)
                             .order_by(col(IncidentStep.seq))))


def find_step(*, session: Session, incident: Incident, ref: str) -> IncidentStep:
    """A step by its number (``2``) or key (``delete``)."""
    ref = ref.strip()
    for step in steps_of(session=session, incident=incident):
        if ref == str(step.seq) or ref == step.key:
            return step
    raise InputError(f"{incident.number} 没有步骤“{ref}”（用步骤序号，如 1；/incident show {incident.number} 查看）。")


def evidence_count(*, session: Session, incident: Incident, preserved_only: bool = False) -> int:
    """How much evidence the incident has; ``preserved_only``: pages and files, not text notes."""
    stmt = select(func.count()).select_from(Evidence).where(Evidence.incident_id == incident.id)
    if preserved_only:
        stmt = stmt.where(Evidence.kind != "text")
    return session.exec(stmt).one()


def name_of(session: Session, person_id: int | None) -> str:
    if person_id is None:
        return "—"
    person = session.get(Person, person_id)
    return person.name if person else "—"


def reporter_name(session: Session, incident: Incident) -> str:
    """Who reported ``incident``: the person, or for an incident nobody's account opened (a
    monitoring alert, site watch) the name its "reported" event was recorded under."""
    if incident.reporter_id is not None:
        return name_of(session, incident.reporter_id)
    actor = session.exec(
        select(AuditEvent.actor).where(AuditEvent.entity_type == "incident",
                                       AuditEvent.entity_id == incident.number,
                                       AuditEvent.action == "reported")
        .order_by(col(AuditEvent.id))).first()
    return actor or "—"


def in_district(person: Person | None, policy: IncidentPolicy) -> bool:
    return person is not None and person.name in policy.district_office


# -- the ladder ----------------------------------------------------------------------


_ACTIVE_BY_NAMES = select(Person).where(col(Person.name).in_(bindparam("names", expanding=True)),
                                         Person.active == True)  # noqa: E712


def _by_names(session: Session, names: Sequence[str]) -> list[Person]:
    if not names:
        return []
    found = session.exec(_ACTIVE_BY_NAMES, params={"names": list(names)}).all()
    return sorted(found, key=lambda p: list(names).index(p.name))


def _of_unit(session: Session, role: Role, unit: str) -> list[Person]:
    people = people_with_role(session=session, role=role)
    same = [p for p in people if unit and p.unit == unit]
    return same or people


def leaders_on_duty(session: Session, incident: Incident, policy: IncidentPolicy,
                    at: datetime | None = None) -> list[Person]:
    """The leader(s) on duty at ``at`` (default: when it was reported) per the published
    roster (``policy.on_duty``); where it has nobody: the configured names, else the
    unit's leaders."""
    return (policy.on_duty.leaders_at(session=session, at=at or incident.reported_at)
            or _by_names(session, policy.leaders_on_duty) or _of_unit(session, Role.leader, incident.unit))


def officers_for(session: Session, incident: Incident, policy: IncidentPolicy,
                 at: datetime | None = None) -> list[Person]:
    """The duty officer rung: the owner, else the reporter when they are an officer of the
    unit, else the officers on duty at ``at`` per the roster (``policy.on_duty``), else the
    unit's officers."""
    for pid in (incident.owner_id, incident.reporter_id):
        person = session.get(Person, pid) if pid is not None else None
        if (person is not None and person.active and Role.officer in person.role_set()
                and not in_district(person, policy)):
            return [person]
    on_duty = [p for p in policy.on_duty.officers_at(session=session, at=at or incident.reported_at)
               if not in_district(p, policy)]
    return on_duty or [p for p in _of_unit(session, Role.officer, incident.unit) if not in_district(p, policy)]


def support_for(session: Session, incident: Incident, policy: IncidentPolicy) -> list[Person]:
    """The 技术保障 of the incident: the registered site's own (``dutybot sites support``),
    else the unit's 技术保障 people, else those registered without a unit; never another
    unit's."""
    return (policy.sites.support_for(session=session, site=incident.site, url=incident.url, unit=incident.unit)
            or support_of_unit(session=session, unit=incident.unit))


def rung_people(session: Session, incident: Incident, role: str, policy: IncidentPolicy,
                at: datetime | None = None) -> list[Person]:
    if role == "support":
        return support_for(session, incident, policy)
    if role == "officer":
        return officers_for(session, incident, policy, at)
    if role == "leader":
        return leaders_on_duty(session, incident, policy, at)
    if role == "principal":
        return _of_unit(session, Role.principal, incident.unit)
    return _by_names(session, policy.district_office)


def snapshot_ladder(session: Session, incident: Incident, policy: IncidentPolicy,
                    at: datetime | None = None) -> None:
    """Freeze who is on each rung for this incident's grade (Grafana OnCall-style), as
    the roster stands at ``at`` (default: when it was reported)."""
    spec = load_ladders().for_grade(Grade(incident.grade))
    policy = replace(policy, on_duty=_AskedOnce(policy.on_duty))   # officers and leaders: one reading
    rungs = []
    for level, (rung, offset) in enumerate(zip(spec.rungs, spec.offsets(), strict=True)):
        people = rung_people(session, incident, rung.role, policy, at)
        rungs.append({"level": level, "role": rung.role, "label": ROLE_LABEL[rung.role],
                      "person_ids": [p.id for p in people], "offset_minutes": offset.total_seconds() // 60})
    incident.ladder = json.dumps(rungs, ensure_ascii=False)


# -- permissions ---------------------------------------------------------------------


def may_manage(person: Person, incident: Incident, policy: IncidentPolicy) -> bool:
    """Admins, the district office and principals act on any incident; others on their
    own unit's (and on incidents they reported or own)."""
    roles = person.role_set()
    if Role.admin in roles or in_district(person, policy):
        return True
    if person.id in (incident.owner_id, incident.reporter_id):
        return True
    return not incident.unit or person.unit == incident.unit


def require_manage(person: Person, incident: Incident, policy: IncidentPolicy, what: str) -> None:
    if not may_manage(person, incident, policy):
        raise PermissionDenied(f"抱歉，{incident.number} 属于{incident.unit}，您（{person.unit or '未登记单位'}）"
                               f"不能{what}。请联系该单位或管理员。")


def require_open(incident: Incident) -> None:
    if not incident.is_open:
        raise DutybotError(f"{incident.number} {STATUS_ZH[IncidentStatus(incident.status)]}，不能再操作。")


def record(session: Session, incident: Incident, now: datetime, action: str, zh: str, *,
            person: Person | None, actor: str, from_state: str | None = None,
            to_state: str | None = None, **detail: object) -> None:
    audit.record(session=session, at=now, entity_type="incident", entity_id=incident.number,
                 action=action, actor=actor, actor_id=person.id if person else None,
                 from_state=from_state, to_state=to_state, zh=zh, **detail)


# -- rules and queries ---------------------------------------------------------------


def default_grade(type_: IncidentType) -> Grade:
    """The grade of a new incident of ``type_`` when the reporter names none."""
    return load_playbooks()[type_].default_grade


def quantity_for(incident: Incident, step: IncidentStep, profile: Profile,
                  policy: IncidentPolicy) -> Quantity | None:
    spec = next((s for s in load_playbooks()[IncidentType(incident.type)].steps_for(Source(incident.source))
                 if s.key == step.key), None)
    if spec is None:
        return None   # a step of an older playbook version the current one no longer has
    return step_timing(spec, profile, policy.at_once_minutes).quantity


def list_incidents(*, session: Session, which: str, now: datetime, person: Person | None,
                   limit: int = 200) -> list[Incident]:
    """``open`` (default), ``mine`` (owner or reporter), ``overdue`` (a step past its deadline)."""
    stmt = select(Incident).where(col(Incident.status).in_([s.value for s in OPEN_STATUSES]))
    if which == "mine":
        pid = person.id if person else -1
        stmt = stmt.where((Incident.owner_id == pid) | (Incident.reporter_id == pid))
    elif which == "overdue":
        late = (select(IncidentStep.incident_id)
                .where(IncidentStep.status == StepStatus.pending, IncidentStep.optional == False,  # noqa: E712
                       col(IncidentStep.due_at) < now))
        stmt = stmt.where(col(Incident.id).in_(late))
    return list(session.exec(stmt.order_by(col(Incident.reported_at).desc()).limit(limit)))


def next_step(steps: list[IncidentStep]) -> IncidentStep | None:
    """The pending step with the nearest deadline (steps without one last)."""
    pending = [s for s in steps if s.is_pending]
    if not pending:
        return None
    return min(pending, key=lambda s: (s.due_at is None, s.due_at.timestamp() if s.due_at else 0.0, s.seq))


def step_due_zh(step: IncidentStep) -> str:
    """``10月8日 24:00`` / ``11月23日 09:30`` / ``前一步完成后起算`` / ``无时限``."""
    if step.due_at is None:
        if step.anchor.startswith("step:") and step.period_zh != "无时限":
            return f"步骤{step.anchor.partition('#')[2]}完成后起算"
        return "无时限"
    due_local = local(step.due_at)
    if due_local.hour == 0 and due_local.minute == 0 and step.due_last_day and step.due_last_day != due_local.date():
        text = f"{step.due_last_day.month}月{step.due_last_day.day}日 24:00"
    else:
        text = fmt_short_zh(step.due_at)
    return text + ("（暂定）" if step.provisional else "")


def is_ended(incident: Incident) -> bool:
    return incident.status in ENDED_STATUSES
