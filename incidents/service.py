"""Incidents: open, acknowledge, take, do steps, grade, escalate, close (DOMAIN §2–5).

Every function works in the caller's transaction and raises a domain error (Chinese
message) when the action is refused; the messages it causes are queued through
``incidents.escalation`` in the same transaction. The timeline is the audit log: every
change appends an ``audit_event`` whose ``zh`` detail is the Chinese line the timeline
and the report show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import audit
from core.clock import fmt_short_zh, local
from core.errors import DutybotError, InputError, NotFound, PermissionDenied
from core.numbering import next_number
from core.profiles import Profile, Quantity
from core.workdays import WorkdayCalendar
from incidents.models import (
    ENDED_STATUSES,
    GRADE_ALIASES,
    GRADE_ZH,
    OPEN_STATUSES,
    SOURCE_ZH,
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
from incidents.playbooks import ROLE_LABEL, due_from, load_ladders, load_playbooks, step_timing
from people.models import Person, Role
from people.service import people_with_role

MAX_DESCRIPTION = 1000
MAX_SITE = 200
MAX_URL = 1000
MAX_NOTE = 1000
METHODS = {"电话": "电话", "书面": "书面", "函": "书面", "公文": "书面", "系统": "系统", "平台": "系统",
           "当面": "当面", "短信": "短信", "邮件": "邮件", "传真": "传真", "微信": "即时通讯",
           "即时通讯": "即时通讯"}


class IncidentNotFound(NotFound):
    def __init__(self, number: str) -> None:
        super().__init__(f"没有找到事件 {number}（编号形如 INC-20261123-001，可用 /incident list 查看）。")


@dataclass(frozen=True)
class IncidentPolicy:
    """What the domain needs from ``[incidents]`` in the config."""

    at_once_minutes: int = 30
    remind_before: timedelta = timedelta(minutes=60)
    leaders_on_duty: tuple[str, ...] = ()
    district_office: tuple[str, ...] = ()


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


def in_district(person: Person | None, policy: IncidentPolicy) -> bool:
    return person is not None and person.name in policy.district_office


# -- the ladder ----------------------------------------------------------------------


def _by_names(session: Session, names: Sequence[str]) -> list[Person]:
    if not names:
        return []
    found = session.exec(select(Person).where(col(Person.name).in_(list(names)),
                                              Person.active == True)).all()  # noqa: E712
    return sorted(found, key=lambda p: list(names).index(p.name))


def _of_unit(session: Session, role: Role, unit: str) -> list[Person]:
    people = people_with_role(session=session, role=role)
    same = [p for p in people if unit and p.unit == unit]
    return same or people


def leaders_on_duty(session: Session, incident: Incident, policy: IncidentPolicy,
                    at: datetime | None = None) -> list[Person]:
    """The leader(s) on duty at ``at`` (default: when it was reported) per the published
    roster; where the roster has nobody: the configured names, else the unit's leaders."""
    from roster.service import leaders_at
    return (leaders_at(session=session, at=at or incident.reported_at)
            or _by_names(session, policy.leaders_on_duty) or _of_unit(session, Role.leader, incident.unit))


def officers_for(session: Session, incident: Incident, policy: IncidentPolicy,
                 at: datetime | None = None) -> list[Person]:
    """The duty officer rung: the owner, else the reporter when they are an officer of the
    unit, else the officers on duty at ``at`` per the roster, else the unit's officers."""
    from roster.service import officers_at
    for pid in (incident.owner_id, incident.reporter_id):
        person = session.get(Person, pid) if pid is not None else None
        if (person is not None and person.active and Role.officer in person.role_set()
                and not in_district(person, policy)):
            return [person]
    on_duty = [p for p in officers_at(session=session, at=at or incident.reported_at) if not in_district(p, policy)]
    return on_duty or [p for p in _of_unit(session, Role.officer, incident.unit) if not in_district(p, policy)]


def rung_people(session: Session, incident: Incident, role: str, policy: IncidentPolicy,
                at: datetime | None = None) -> list[Person]:
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
        raise DutybotError(f"{incident.number} 已{STATUS_ZH[IncidentStatus(incident.status)]}，不能再操作。")


def record(session: Session, incident: Incident, now: datetime, action: str, zh: str, *,
            person: Person | None, actor: str, from_state: str | None = None,
            to_state: str | None = None, **detail: object) -> None:
    audit.record(session=session, at=now, entity_type="incident", entity_id=incident.number,
                 action=action, actor=actor, actor_id=person.id if person else None,
                 from_state=from_state, to_state=to_state, zh=zh, **detail)


# -- opening -------------------------------------------------------------------------


def _set_step_due(step: IncidentStep, anchor: datetime, *, calendar: WorkdayCalendar,
                  policy: IncidentPolicy, quantity: Quantity) -> None:
    due = due_from(anchor, quantity, calendar=calendar, at_once_minutes=policy.at_once_minutes)
    step.due_at = due.at
    step.due_last_day = local(due.at - timedelta(microseconds=1)).date() if due.last_day_iso is None \
        else datetime.fromisoformat(due.last_day_iso).date()
    step.provisional = due.provisional


def quantity_for(incident: Incident, step: IncidentStep, profile: Profile,
                  policy: IncidentPolicy) -> Quantity | None:
    spec = next(s for s in load_playbooks()[IncidentType(incident.type)].steps_for(Source(incident.source))
                if s.key == step.key)
    return step_timing(spec, profile, policy.at_once_minutes).quantity


def open_incident(
    *,
    session: Session,
    calendar: WorkdayCalendar,
    profile: Profile,
    policy: IncidentPolicy,
    type_: IncidentType,
    target: str,
    description: str,
    reporter: Person,
    unit: str,
    source: Source,
    grade: Grade = Grade.general,
    now: datetime,
    actor: str,
) -> Incident:
    """Register an incident, its playbook steps with deadlines, and its ladder."""
    description = description.strip()
    if not description:
        raise InputError("请写明事件描述。")
    if len(description) > MAX_DESCRIPTION:
        raise InputError(f"事件描述过长（{len(description)} 字，上限 {MAX_DESCRIPTION} 字）。")
    site, url = split_target(target)
    spec = load_playbooks()[type_]
    incident = Incident(
        number=next_number(session=session, column=Incident.number, prefix="INC", day=local(now).date()),
        type=type_.value, grade=grade.value, source=source.value, site=site, url=url,
        description=description, unit=unit, reporter_id=reporter.id, playbook=spec.name,
        reported_at=now)
    session.add(incident)
    session.flush()
    snapshot_ladder(session, incident, policy)
    chosen = spec.steps_for(source)
    seq_of = {s.key: n for n, s in enumerate(chosen, start=1)}
    for seq, step_spec in enumerate(chosen, start=1):
        timing = step_timing(step_spec, profile, policy.at_once_minutes)
        step = IncidentStep(
            incident_id=incident.id, seq=seq, key=step_spec.key, title=step_spec.title,
            rule_id=step_spec.rule, citation=timing.citation, period_zh=timing.period_zh,
            owner_role=step_spec.owner, anchor="report" if step_spec.after == "report" else f"step:{step_spec.after}#{seq_of[step_spec.after]}",
            requires=json.dumps(list(step_spec.requires)), evidence_required=step_spec.evidence,
            external=step_spec.external, optional=step_spec.optional)
        if timing.quantity is not None and step_spec.after == "report":
            _set_step_due(step, now, calendar=calendar, policy=policy, quantity=timing.quantity)
        session.add(step)
    session.flush()
    where = f"{site}" + (f"（{url}）" if url and url != site else "")
    record(session, incident, now, "reported",
            f"登记事件：{TYPE_ZH[type_]}｜{GRADE_ZH[grade]}｜{SOURCE_ZH[source]}｜{where}｜{description[:100]}",
            person=reporter, actor=actor, to_state=IncidentStatus.reported)
    return incident


# -- actions -------------------------------------------------------------------------


def acknowledge(*, session: Session, incident: Incident, person: Person, now: datetime,
                actor: str, implicit: bool = False) -> bool:
    """Mark it acknowledged; False when it already was."""
    require_open(incident)
    if incident.acknowledged_at is not None:
        return False
    before = incident.status
    incident.acknowledged_at, incident.acknowledged_by_id = now, person.id
    if incident.status == IncidentStatus.reported:
        incident.status = IncidentStatus.acknowledged
    session.add(incident)
    minutes = int((now - incident.reported_at).total_seconds() // 60)
    record(session, incident, now, "acknowledged",
            f"确认收到（报告后 {minutes} 分钟）" + ("，随首个处置动作自动确认" if implicit else ""),
            person=person, actor=actor, from_state=before, to_state=incident.status)
    return True


def take(*, session: Session, incident: Incident, person: Person, now: datetime, actor: str) -> None:
    """``person`` becomes the owner; the incident is being handled."""
    require_open(incident)
    acknowledge(session=session, incident=incident, person=person, now=now, actor=actor, implicit=True)
    before, previous = incident.status, incident.owner_id
    incident.owner_id = person.id
    if incident.status in (IncidentStatus.reported, IncidentStatus.acknowledged):
        incident.status = IncidentStatus.handling
    session.add(incident)
    note = f"（原负责人：{name_of(session, previous)}）" if previous and previous != person.id else ""
    record(session, incident, now, "taken", f"接手处置，负责人：{person.name}{note}",
            person=person, actor=actor, from_state=before, to_state=incident.status)


@dataclass(frozen=True)
class ExternalContact:
    method: str
    contact: str
    ref: str | None


def parse_external(text: str) -> ExternalContact:
    """``电话 区网信办张科长 [编号…]``."""
    parts = text.split()
    if len(parts) < 2 or parts[0] not in METHODS:
        raise InputError("对外报告请写明方式和联系人，如：电话 区网信办张科长 [登记编号]"
                         f"（方式：{'、'.join(dict.fromkeys(METHODS.values()))}）。")
    ref = " ".join(parts[2:]) or None
    if len(parts[1]) > 100 or (ref and len(ref) > 100):
        raise InputError("联系人或编号过长（各不超过 100 字）。")
    return ExternalContact(METHODS[parts[0]], parts[1], ref)


def complete_step(*, session: Session, calendar: WorkdayCalendar, profile: Profile,
                  policy: IncidentPolicy, incident: Incident, step: IncidentStep, person: Person,
                  now: datetime, actor: str, note: str = "") -> list[IncidentStep]:
    """Mark ``step`` done; returns the steps whose deadlines started counting now.

    Raises:
        DutybotError: prerequisites not done, evidence missing, or the external report's
            contact details missing.
    """
    require_open(incident)
    if not step.is_pending:
        raise DutybotError(f"步骤{step.seq}“{step.title}”已{ '完成' if step.status == StepStatus.done else '标记为不适用'}。")
    steps = steps_of(session=session, incident=incident)
    by_key = {s.key: s for s in steps}
    missing = [by_key[k] for k in step.required_keys() if k in by_key and by_key[k].status != StepStatus.done]
    if missing:
        names = "、".join(f"步骤{s.seq}“{s.title}”" for s in missing)
        raise DutybotError(f"请先完成{names}，再做步骤{step.seq}。")
    if step.evidence_required and evidence_count(session=session, incident=incident, preserved_only=True) == 0:
        raise DutybotError(
            f"步骤{step.seq}“{step.title}”须先保全证据（网页存档、截图或文件；依据：{step.citation}）。\n"
            f"请发送：/incident evidence {incident.number} 网址（自动抓取网页存档），或发送截图/文件并附上该命令；"
            "文字记录不能代替网页存档或截图。")
    contact: ExternalContact | None = None
    if step.external:
        contact = parse_external(note)
        note = ""
    elif len(note) > MAX_NOTE:
        raise InputError(f"备注过长（上限 {MAX_NOTE} 字）。")
    acknowledge(session=session, incident=incident, person=person, now=now, actor=actor, implicit=True)
    if incident.owner_id is None:
        take(session=session, incident=incident, person=person, now=now, actor=actor)
    step.status, step.done_at, step.done_by_id = StepStatus.done, now, person.id
    step.note = note or None
    late = step.due_at is not None and now > step.due_at
    text = f"完成步骤{step.seq}：{step.title}" + ("（超期完成）" if late else "")
    if contact is not None:
        step.method, step.contact, step.contact_ref = contact.method, contact.contact, contact.ref
        text += f"；向{step.external}报告：方式 {contact.method}，联系人 {contact.contact}" + (
            f"，编号 {contact.ref}" if contact.ref else "")
    if note:
        text += f"；备注：{note[:200]}"
    session.add(step)
    record(session, incident, now, "step_done", text, person=person, actor=actor, step=step.key)
    started = _start_dependents(session=session, calendar=calendar, profile=profile, policy=policy,
                                incident=incident, steps=steps, done=step, now=now)
    _maybe_resolve(session=session, incident=incident, steps=steps, person=person, now=now, actor=actor)
    return started


def skip_step(*, session: Session, calendar: WorkdayCalendar, profile: Profile,
              policy: IncidentPolicy, incident: Incident, step: IncidentStep, person: Person,
              reason: str, now: datetime, actor: str) -> list[IncidentStep]:
    """Mark a step not applicable. Required steps only by leaders, principals, admins."""
    require_open(incident)
    if not step.is_pending:
        raise DutybotError(f"步骤{step.seq}已处理，不能再标记。")
    if not reason.strip():
        raise InputError("请写明不适用的理由。")
    if not step.optional and not person.role_set() & {Role.leader, Role.principal, Role.admin}:
        raise PermissionDenied(f"步骤{step.seq}“{step.title}”是必做步骤，只有带班领导、主要负责人或管理员可以标记为不适用。")
    step.status, step.done_at, step.done_by_id, step.note = StepStatus.skipped, now, person.id, reason.strip()[:MAX_NOTE]
    session.add(step)
    record(session, incident, now, "step_skipped", f"步骤{step.seq}“{step.title}”标记为不适用：{reason.strip()[:200]}",
            person=person, actor=actor, step=step.key)
    steps = steps_of(session=session, incident=incident)
    started = _start_dependents(session=session, calendar=calendar, profile=profile, policy=policy,
                                incident=incident, steps=steps, done=step, now=now)
    _maybe_resolve(session=session, incident=incident, steps=steps, person=person, now=now, actor=actor)
    return started


def _start_dependents(*, session: Session, calendar: WorkdayCalendar, profile: Profile,
                      policy: IncidentPolicy, incident: Incident, steps: list[IncidentStep],
                      done: IncidentStep, now: datetime) -> list[IncidentStep]:
    started = []
    for other in steps:
        if other.anchor.partition("#")[0] == f"step:{done.key}" and other.is_pending and other.due_at is None:
            quantity = quantity_for(incident, other, profile, policy)
            if quantity is not None:
                _set_step_due(other, now, calendar=calendar, policy=policy, quantity=quantity)
                session.add(other)
                started.append(other)
    return started


def _maybe_resolve(*, session: Session, incident: Incident, steps: list[IncidentStep],
                   person: Person, now: datetime, actor: str) -> None:
    if incident.resolved_at is not None:
        return
    if all(s.status != StepStatus.pending for s in steps if not s.optional):
        before = incident.status
        incident.status, incident.resolved_at = IncidentStatus.resolved, now
        session.add(incident)
        record(session, incident, now, "resolved", "必做步骤已全部完成，待结案",
                person=None, actor="system", from_state=before, to_state=incident.status)


def add_note(*, session: Session, incident: Incident, person: Person, text: str, now: datetime,
             actor: str) -> None:
    text = text.strip()
    if not text:
        raise InputError("请写明记录内容。")
    if len(text) > MAX_NOTE:
        raise InputError(f"记录过长（上限 {MAX_NOTE} 字）。")
    record(session, incident, now, "note", f"记录：{text}", person=person, actor=actor)


def change_grade(*, session: Session, incident: Incident, grade: Grade, person: Person,
                 policy: IncidentPolicy, now: datetime, actor: str) -> Grade:
    """Set the grade and re-snapshot the ladder; returns the previous grade."""
    require_open(incident)
    before = Grade(incident.grade)
    if before == grade:
        raise DutybotError(f"{incident.number} 已是{GRADE_ZH[grade]}事件。")
    incident.grade = grade.value
    snapshot_ladder(session, incident, policy, now)
    incident.escalation_level = 0
    session.add(incident)
    record(session, incident, now, "graded", f"等级调整：{GRADE_ZH[before]} → {GRADE_ZH[grade]}",
            person=person, actor=actor, from_state=before, to_state=grade)
    return before


def close(*, session: Session, incident: Incident, person: Person, conclusion: str, now: datetime,
          actor: str, policy: IncidentPolicy) -> None:
    """Close with a conclusion; refused while required steps are pending."""
    require_open(incident)
    require_manage(person, incident, policy, "结案")
    conclusion = conclusion.strip()
    if not conclusion:
        raise InputError("请写明结案结论。")
    if len(conclusion) > MAX_NOTE:
        raise InputError(f"结论过长（上限 {MAX_NOTE} 字）。")
    pending = [s for s in steps_of(session=session, incident=incident)
               if s.status == StepStatus.pending and not s.optional]
    if pending:
        names = "\n".join(f"  {s.seq}. {s.title}" for s in pending)
        raise DutybotError(f"{incident.number} 还有必做步骤未完成，不能结案：\n{names}\n"
                           f"如确不适用，请带班领导发送：/incident skip {incident.number} 序号 理由")
    before = incident.status
    incident.status, incident.closed_at, incident.closed_by_id = IncidentStatus.closed, now, person.id
    incident.conclusion = conclusion
    if incident.resolved_at is None:
        incident.resolved_at = now
    session.add(incident)
    record(session, incident, now, "closed", f"结案：{conclusion}", person=person, actor=actor,
            from_state=before, to_state=incident.status)


def withdraw(*, session: Session, incident: Incident, person: Person, reason: str,
             false_alarm: bool, now: datetime, actor: str, policy: IncidentPolicy) -> None:
    """Cancel it or mark it a false alarm, with a reason."""
    require_open(incident)
    require_manage(person, incident, policy, "撤销" if not false_alarm else "标记误报")
    if person.id != incident.reporter_id and not person.role_set() & {Role.leader, Role.principal, Role.admin}:
        raise PermissionDenied("只有报告人、带班领导、主要负责人或管理员可以撤销事件或标记误报。")
    reason = reason.strip()
    if not reason:
        raise InputError("请写明理由。")
    before = incident.status
    incident.status = IncidentStatus.false_alarm if false_alarm else IncidentStatus.cancelled
    incident.status_reason, incident.closed_at, incident.closed_by_id = reason[:MAX_NOTE], now, person.id
    session.add(incident)
    record(session, incident, now, "false_alarm" if false_alarm else "cancelled",
            ("标记为误报：" if false_alarm else "撤销事件：") + reason[:200],
            person=person, actor=actor, from_state=before, to_state=incident.status)


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
