"""Incidents: the state changes (DOMAIN §2–5): open, acknowledge, take, do or skip steps,
note, grade, close, withdraw. Queries, the ladder and permissions are in
``incidents.service``.

Every function works in the caller's transaction and raises a domain error (Chinese
message) when the action is refused; the messages it causes are queued through
``incidents.escalation`` in the same transaction. Every change appends an
``audit_event`` (``incidents.service.record``): the timeline is the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from core.clock import local
from core.errors import DutybotError, InputError, PermissionDenied
from core.messages import duration_zh
from core.numbering import next_number
from core.profiles import Profile, Quantity
from core.workdays import WorkdayCalendar
from incidents.grades import grade_names
from incidents.models import (
    SOURCE_ZH,
    TYPE_ZH,
    Grade,
    Incident,
    IncidentStatus,
    IncidentStep,
    IncidentType,
    Source,
    StepStatus,
)
from incidents.playbooks import due_from, evidence_basis, load_playbooks, resolve_steps
from incidents.service import (
    MAX_DESCRIPTION,
    MAX_NOTE,
    IncidentPolicy,
    evidence_count,
    name_of,
    quantity_for,
    record,
    require_manage,
    require_open,
    snapshot_ladder,
    split_target,
    steps_of,
)
from incidents.signoff import dump, format_signoffs, signoff_rule
from people.models import Person, Role

METHODS = {"电话": "电话", "书面": "书面", "函": "书面", "公文": "书面", "系统": "系统", "平台": "系统",
           "当面": "当面", "短信": "短信", "邮件": "邮件", "传真": "传真", "微信": "即时通讯",
           "即时通讯": "即时通讯"}


# -- opening -------------------------------------------------------------------------


def _set_step_due(step: IncidentStep, anchor: datetime, *, calendar: WorkdayCalendar,
                  policy: IncidentPolicy, quantity: Quantity) -> None:
    due = due_from(anchor, quantity, calendar=calendar, at_once_minutes=policy.at_once_minutes)
    step.due_at = due.at
    step.due_last_day = local(due.at - timedelta(microseconds=1)).date() if due.last_day_iso is None \
        else datetime.fromisoformat(due.last_day_iso).date()
    step.provisional = due.provisional


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
    steps_into: list[IncidentStep] | None = None,
) -> Incident:
    """Register an incident, its playbook steps with deadlines, and its ladder.
    ``steps_into`` gets the steps, in order (the caller need not read them back)."""
    description = description.strip()
    if not description:
        raise InputError("请写明事件描述。")
    if len(description) > MAX_DESCRIPTION:
        raise InputError(f"事件描述过长（{len(description)} 字，上限 {MAX_DESCRIPTION} 字）。")
    site, url = split_target(target)
    spec = load_playbooks()[type_]
    grades = grade_names(profile)
    grades.require(grade)    # 古丈办法第十条 has no 特级
    incident = Incident(
        number=next_number(session=session, column=Incident.number, prefix="INC", day=local(now).date()),
        type=type_.value, grade=grade.value, grade_name=grades.recorded(grade), source=source.value,
        site=site, url=url,
        description=description, unit=unit, reporter_id=reporter.id, playbook=spec.name,
        reported_at=now)
    snapshot_ladder(session, incident, policy)   # before the INSERT: written with it
    session.add(incident)
    session.flush()
    assert incident.id is not None
    # The steps as the office's own rules have them (who is reported to, what is
    # mandatory, what waits for evidence): see incidents.playbooks.resolve_steps.
    chosen = resolve_steps(spec, source, profile, policy.at_once_minutes)
    seq_of = {r.spec.key: n for n, r in enumerate(chosen, start=1)}
    for seq, resolved in enumerate(chosen, start=1):
        step_spec, timing = resolved.spec, resolved.timing
        step = IncidentStep(
            incident_id=incident.id, seq=seq, key=step_spec.key, title=resolved.title,
            rule_id=step_spec.rule, citation=resolved.reports_citation or timing.citation,
            period_zh=timing.period_zh, owner_role=step_spec.owner,
            anchor="report" if resolved.after == "report" else f"step:{resolved.after}#{seq_of[resolved.after]}",
            requires=json.dumps(list(step_spec.requires)), evidence_required=resolved.evidence_first,
            signoff_required=step_spec.signoff,
            external=resolved.external, optional=not resolved.mandatory)
        if timing.quantity is not None and resolved.after == "report":
            _set_step_due(step, now, calendar=calendar, policy=policy, quantity=timing.quantity)
        session.add(step)
        if steps_into is not None:
            steps_into.append(step)
    session.flush()
    where = f"{site}" + (f"（{url}）" if url and url != site else "")
    record(session, incident, now, "reported",
            f"登记事件：{TYPE_ZH[type_]}｜{incident.grade_label}｜{SOURCE_ZH[source]}｜{where}｜{description[:100]}",
            person=reporter, actor=actor, to_state=IncidentStatus.reported)
    return incident


def _evidence_basis(incident: Incident, step: IncidentStep, profile: Profile) -> str:
    """Why this step waits for evidence: the office's article, or the working practice."""
    spec = next((s for s in load_playbooks()[IncidentType(incident.type)].steps if s.key == step.key), None)
    reason = evidence_basis(spec, profile)[1] if spec is not None else None
    return f"依据：{reason}" if reason and not reason.startswith("工作要求") else (reason or "工作要求")


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
    record(session, incident, now, "acknowledged",
            f"确认收到（报告后{duration_zh(now - incident.reported_at)}）" + ("，随首个处置动作自动确认" if implicit else ""),
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
        DutybotError: prerequisites not done, evidence missing, the external report's
            contact details missing, or — for a republishing step — the names of who did
            each 审 and 校 that the office's document requires (``incidents.signoff``).
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
            f"步骤{step.seq}“{step.title}”须先保全证据（网页存档、截图或文件；{_evidence_basis(incident, step, profile)}）。\n"
            f"请发送：/incident evidence {incident.number} 网址（自动抓取网页存档），或发送截图/文件并附上该命令；"
            "文字记录不能代替网页存档或截图。")
    contact: ExternalContact | None = None
    signoffs: list[dict[str, str]] = []
    if step.signoff_required:
        # Republishing: who did each 审 and 校, as many as the office's document requires.
        signoffs, note = signoff_rule(profile).collect(note, number=incident.number, seq=step.seq,
                                                       title=step.title)
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
    step.signoffs = dump(signoffs) if signoffs else None
    late = step.due_at is not None and now > step.due_at
    text = f"完成步骤{step.seq}：{step.title}" + ("（超期完成）" if late else "")
    if contact is not None:
        step.method, step.contact, step.contact_ref = contact.method, contact.contact, contact.ref
        text += f"；向{step.external}报告：方式 {contact.method}，联系人 {contact.contact}" + (
            f"，编号 {contact.ref}" if contact.ref else "")
    if signoffs:
        text += f"；审校：{format_signoffs(signoffs)}"
    if note:
        text += f"；备注：{note[:200]}"
    session.add(step)
    detail: dict[str, Any] = {"signoffs": signoffs} if signoffs else {}   # structured, for the record
    record(session, incident, now, "step_done", text, person=person, actor=actor, step=step.key, **detail)
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
                 policy: IncidentPolicy, profile: Profile, now: datetime, actor: str) -> Grade:
    """Set the grade (named as ``profile``'s document names it) and re-snapshot the
    ladder; returns the previous grade.

    Raises:
        DutybotError: the same grade, or one the document does not have (古丈: 特级).
    """
    require_open(incident)
    grades = grade_names(profile)
    before, before_zh = Grade(incident.grade), incident.grade_label
    if before == grade:
        raise DutybotError(f"{incident.number} 已是{before_zh}事件。")
    grades.require(grade)
    incident.grade, incident.grade_name = grade.value, grades.recorded(grade)
    snapshot_ladder(session, incident, policy, now)
    incident.escalation_level = 0
    session.add(incident)
    record(session, incident, now, "graded", f"等级调整：{before_zh} → {incident.grade_label}",
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
    require_manage(person, incident, policy, "撤销" if not false_alarm else "标记为误报")
    if person.id != incident.reporter_id and not person.role_set() & {Role.leader, Role.principal, Role.admin}:
        raise PermissionDenied("只有报告人、带班领导、主要负责人或管理员可以撤销事件或标记为误报。")
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
