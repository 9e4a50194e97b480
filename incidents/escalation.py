"""Who hears about an incident, and when: notifications, reminders and escalation
ladders (GRADE-2), all as due items and outbox rows in the caller's transaction.

Two kinds of ladder run climb the incident's snapshotted ladder:

``ack``    from the report until someone acknowledges (or acts): rung *n* is pinged
           ``offset(n)`` after the report. Rungs whose offset is 0 hear at once (特级:
           every rung). Never waits for office hours.
``step``   from a step's deadline until it is done: the step's owners at the deadline,
           then each rung above the owner's. For a 一般 incident its reminders, breach
           ladder and repeats wait for office hours (``IncidentPolicy.office_hours``).

Once the top rung was told, both runs repeat after growing intervals
(``repeat_first_minutes`` × ``repeat_factor``ⁿ, at most ``repeat_max_minutes`` and never
more than :data:`MAX_REPEAT_INTERVAL`, 24 hours) — to the
incident unit's own leader on duty and principal, never to the reporter unless they are
the only leader (:func:`repeat_people`) — at most ``IncidentPolicy.repeat_limit`` times;
then one closing note 已通知全部层级，停止重复提醒 to the leader, and nothing more. The
acknowledgement run does not ping the reporter about their own report either, unless
they are alone on the rung (a district officer who reported hears that nobody acted).

Every due item is keyed ``incident:<number>:<run>:<step>:<grade>:<level>:<repeat>``; a
re-grade cancels the runs of the old grade and starts new ones. Every message names the
deadline, the rule and its article.

Beside each chat ping of a rung, :func:`incidents.paging.page_ping` queues the SMS and
voice calls the paging policy (``IncidentPolicy.paging``) asks for, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from sqlmodel import Session, select

from core import audit, schedule
from core.clock import SHANGHAI, fmt_short_zh, local
from core.messages import Button, Outbound, duration_zh
from core.numbering import short_form
from core.outbox import enqueue_all
from core.profiles import Profile
from core.schedule import Due, DueItem, DueStatus
from incidents import cards
from incidents import escalation_batch as batch
from incidents.grades import grade_names
from incidents.models import (
    STATUS_ZH,
    TYPE_ZH,
    Grade,
    Incident,
    IncidentStatus,
    IncidentStep,
    IncidentType,
    StepStatus,
)
from incidents.paging import page_ping
from incidents.playbooks import OWNER_ZH, LadderSpec, load_ladders, load_playbooks
from incidents.service import (
    IncidentPolicy,
    leaders_on_duty,
    name_of,
    officers_for,
    record,
    steps_of,
    support_for,
)
from people.models import Person, Role
from people.service import reachable

KIND = "incident.escalate"
#: Told each time a ladder rung fires: ``(session, run, level)`` with run ``ack`` (nobody
#: acknowledged), ``step`` (a step is overdue) or ``repeat`` (a repeat after the top rung),
#: inside the transaction that queues the pings (a hook that counts should count on commit).
EscalationHook = Callable[[Session, str, int], None]
#: The longest wait between two repeats, whatever a ladder file says: a repeat that
#: waits days is no longer a reminder (and the interval never grows without bound).
MAX_REPEAT_INTERVAL = timedelta(hours=24)
# A "support" step that the bot could not do itself falls to the duty officer.
OWNER_LEVEL = {"officer": 0, "leader": 1, "principal": 2, "support": 0}
# What the 技术保障 is asked to do, per incident type (DUTY-2: 立即通知相关人员处理).
SUPPORT_ASK = {
    IncidentType.site_down: "请立即排查故障、恢复访问",
    IncidentType.content_error: "请立即核对并更正错误内容（更正后按规定审核校对再发布）",
    IncidentType.tamper: "请立即协助核实篡改/挂马情况，下线被篡改页面或恢复备份、清除挂马，并保留日志",
}
SUPPORT_ACTIONS = ("support_notified", "support_unreachable", "support_missing")


def ref_of(incident: Incident) -> str:
    return f"incident:{incident.number}"


def card_key(incident: Incident) -> str:
    return f"incident:{incident.number}"


def card(session: Session, incident: Incident, steps: list[IncidentStep] | None = None, *,
         now: datetime | None = None, head: str = "", action: str | None = None,
         step: IncidentStep | None = None) -> str:
    """The card every message about an incident carries: WHAT, BY WHEN and WHAT TO PRESS
    first (about ``step`` if given, else the next step), then the details (``incidents.cards``)."""
    steps = steps if steps is not None else steps_of(session=session, incident=incident)
    return cards.render(session, incident, steps, now=now, head=head, action=action, step=step)


def ack_buttons(incident: Incident) -> tuple[Button, ...]:
    return (Button("确认收到", f"/incident ack {incident.number}"),
            Button("我来处置", f"/incident take {incident.number}"))


def ack_hint(incident: Incident) -> str:
    """``15分钟内无人确认或接手，将提醒带班领导`` for the first rung that is not told at once."""
    spec = load_ladders().for_grade(Grade(incident.grade))
    rungs = incident.ladder_rungs()
    for level, offset in enumerate(spec.offsets()):
        if offset > timedelta(0):
            return f"{duration_zh(offset)}内无人确认或接手，将提醒{rungs[level]['label']}。"
    return "各级已同时通知；无人确认将持续提醒。"


def notify(session: Session, people: list[Person], text: str, *, event: str, now: datetime,
           buttons: tuple[Button, ...] = (), card: str | None = None,
           skip: int | None = None) -> list[Person]:
    """Queue ``text`` for each person once (in the caller's transaction), in one statement."""
    sent = [person for person in people if person.id != skip]
    enqueue_all(session=session, now=now, event_key=event,
                messages=[Outbound(text, person_id=p.id, buttons=buttons, card_key=card) for p in sent])
    return sent


def rung_people(session: Session, incident: Incident, level: int) -> list[Person]:
    """The snapshotted people of rung ``level`` who are still active."""
    rungs = incident.ladder_rungs()
    if level >= len(rungs):
        return []
    ids = rungs[level]["person_ids"]
    if not ids:
        return []
    found = batch.people_by_id(session, ids)   # the transaction's lookups, when the processor runs
    return [p for i in dict.fromkeys(ids) if (p := found.get(i)) is not None and p.active]


def reachable_rung(session: Session, incident: Incident, level: int) -> tuple[int, list[Person]]:
    """Rung ``level``, or the nearest rung below it that has anyone (a deployment without a
    district office escalates to the principal); the admins when no rung has anyone."""
    for candidate in range(level, 0, -1):
        people = rung_people(session, incident, candidate)
        if people:
            return candidate, people
    return level, batch.with_role(session, Role.admin)


def _everyone_or_admins(session: Session, people: list[Person]) -> list[Person]:
    return people or batch.with_role(session, Role.admin)


def step_owners(session: Session, incident: Incident, step: IncidentStep, policy: IncidentPolicy,
                at: datetime | None = None) -> list[Person]:
    """Who must do ``step``: the officer (owner), or the leader on duty at ``at``, or the
    principal; a 技术保障 step the bot could not do itself falls to the officer."""
    if step.owner_role == "leader":
        people = leaders_on_duty(session, incident, policy, at)
    elif step.owner_role == "principal":
        people = rung_people(session, incident, 2)
    else:
        people = officers_for(session, incident, policy, at)
    return _everyone_or_admins(session, people)


def _basis(profile: Profile) -> str:
    return f"依据：{profile.cited('DUTY-3')}；{profile.cited('GRADE-2')}"


# -- 技术保障 (DUTY-2) -----------------------------------------------------------------


def _with_phone(people: list[Person]) -> str:
    return "、".join(p.name + (f"（{p.phone}）" if p.phone else "") for p in people)


def ping_support(session: Session, incident: Incident, step: IncidentStep, *, policy: IncidentPolicy,
                 now: datetime) -> tuple[str, list[Person]]:
    """Ask the incident's 技术保障 to fix it (DUTY-2: 立即通知相关人员处理).

    Those the bot can write to get the card and the ask; the step is then done (by the
    bot). Those without a bound chat account are named, with their phone, for the duty
    officer to call; with nobody the bot can reach, or nobody set at all, the step stays
    with the officer and the notice says how an admin sets a 技术保障. Every outcome is
    written to the timeline.

    Returns:
        The line for the duty officer, and who was pinged.
    """
    people = support_for(session, incident, policy)
    ids = reachable(session=session, people=people)
    pinged = [p for p in people if p.id in ids]
    by_phone = [p for p in people if p.id not in ids]
    ask = SUPPORT_ASK.get(IncidentType(incident.type), "请立即协助处理")
    where = incident.site + (f"（{incident.unit}）" if incident.unit else "")
    finish = f"电话通知后请发送：/incident done {incident.number} {step.seq}"
    if pinged:
        names = "、".join(p.name for p in pinged)
        officers = officers_for(session, incident, policy, now)
        contact = _with_phone(officers) or "本单位值班员"
        step.status, step.done_at, step.done_by_id = StepStatus.done, now, None
        step.note = f"机器人已通知技术保障：{names}"
        session.add(step)
        notify(session, pinged,
               card(session, incident, now=now, head=f"【技术保障·请处理】{ask}",
                    action=f"处理进展或恢复后请告知值班员：{contact}")
               + f"\n依据：{step.citation}（发现异常立即通知相关人员处理）",
               event=f"{ref_of(incident)}:support:{step.key}", now=now, card=card_key(incident))
        notice = f"已通知技术保障：{names}（{ask}）"
        if by_phone:
            notice += f"；{_with_phone(by_phone)} 未绑定机器人，请电话通知"
        record(session, incident, now, "support_notified",
               f"通知技术保障：{names}——{ask}；步骤{step.seq}“{step.title}”由系统完成"
               + (f"（另需电话通知：{_with_phone(by_phone)}）" if by_phone else ""),
               person=None, actor="system", step=step.key, notice=notice,
               support=[p.id for p in pinged], by_phone=[p.id for p in by_phone])
        return notice, pinged
    if by_phone:
        notice = (f"注意：技术保障 {_with_phone(by_phone)} 未绑定机器人，机器人无法代为通知。"
                  f"请立即电话通知（{ask}）；{finish}。")
        record(session, incident, now, "support_unreachable",
               f"技术保障 {_with_phone(by_phone)} 未绑定机器人，已提示值班员电话通知",
               person=None, actor="system", step=step.key, notice=notice, by_phone=[p.id for p in by_phone])
        return notice, []
    unit = incident.unit or "单位名称"
    notice = (f"注意：未设置技术保障——{where}没有登记技术保障人员，机器人无法代为通知。"
              f"请立即电话通知技术保障人员处理；{finish}。\n"
              f"设置方法（管理员）：本单位的技术保障 /people add 姓名 电话 技术保障 {unit}；"
              f"单个网站的技术保障 /sites support {incident.site} 姓名"
              "（命令行：dutybot people add、dutybot sites support）。")
    record(session, incident, now, "support_missing", f"未设置技术保障（{where}），已提示值班员电话通知并设置",
           person=None, actor="system", step=step.key, notice=notice)
    return notice, []


def support_notice(session: Session, incident: Incident) -> str | None:
    """The latest 技术保障 line of ``incident`` (what :func:`ping_support` told the officer)."""
    for event in reversed(audit.history(session=session, entity_type="incident", entity_id=incident.number)):
        if event.action in SUPPORT_ACTIONS:
            notice = event.details().get("notice")
            return str(notice) if notice else None
    return None


# -- who hears repeats -------------------------------------------------------------------


def repeat_people(session: Session, incident: Incident, policy: IncidentPolicy, at: datetime, *,
                  leaders_only: bool = False) -> list[Person]:
    """Who hears the repeats after the top rung was told: the incident unit's own
    leader(s) on duty at ``at`` (else the unit's leaders) and its principal(s); never the
    person who reported it — unless they are the only leader, who then keeps hearing
    (someone in charge must, and reporting is not acknowledging). Nobody in the unit: the
    top rung as snapshotted (else the admins)."""
    unit = incident.unit
    on_duty = leaders_on_duty(session, incident, policy, at)
    leaders = [p for p in on_duty if not unit or p.unit == unit] or [
        p for p in batch.with_role(session, Role.leader) if unit and p.unit == unit] or on_duty
    leaders = [p for p in leaders if p.id != incident.reporter_id] or leaders
    if leaders_only and leaders:
        return leaders
    principals = [p for p in batch.with_role(session, Role.principal) if p.unit == unit] \
        or batch.with_role(session, Role.principal)
    principals = [p for p in principals if p.id != incident.reporter_id]
    people = list({p.id: p for p in (leaders if not leaders_only else []) + principals}.values())
    return people or reachable_rung(session, incident, len(incident.ladder_rungs()) - 1)[1]


def repeat_interval(spec: LadderSpec, n: int) -> timedelta:
    """The wait before the n-th repeat: the ladder's growing interval, at most
    :data:`MAX_REPEAT_INTERVAL`."""
    return min(spec.repeat_after(n), MAX_REPEAT_INTERVAL)


def _key(incident: Incident, run: str, step: str, level: int, repeat: int) -> str:
    return f"{ref_of(incident)}:{run}:{step}:{incident.grade}:{level}:{repeat}"


def is_routine(incident: Incident) -> bool:
    """一般 incidents are routine: their step reminders wait for office hours. 重大 and 特级
    ping at any hour."""
    return Grade(incident.grade) == Grade.general


def office_time(incident: Incident, policy: IncidentPolicy | None, at: datetime) -> datetime:
    """``at``; for a routine incident outside office hours, the start of the next working
    period (``incidents.office_hours``)."""
    if policy is None or policy.office_hours is None or not is_routine(incident):
        return at
    return policy.office_hours.next_open(at)


def _schedule(session: Session, incident: Incident, *, run: str, step: str, level: int,
              repeat: int, at: datetime, now: datetime, policy: IncidentPolicy | None = None,
              into: list[Due] | None = None) -> None:
    """One ladder ping; a step run's (reminders, breach ladder, repeats) waits for office
    hours when the incident is routine. The acknowledgement run never waits: nobody has
    read the report yet. With ``into``, the ping is appended there, for the caller to
    register with :func:`core.schedule.schedule_many`."""
    due_at = max(at, now)
    if run == "step":
        due_at = office_time(incident, policy, due_at)
    due = Due(_key(incident, run, step, level, repeat), KIND, ref_of(incident), due_at,
              {"run": run, "step": step, "level": level, "repeat": repeat, "grade": incident.grade})
    if into is not None:
        into.append(due)
    else:
        # One at a time through the session: a chunk of escalations flushes its repeats
        # together (PostgreSQL inserts them with one statement).
        schedule.schedule(session=session, key=due.key, kind=due.kind, ref=due.ref, due_at=due.due_at,
                          now=now, payload=due.payload)


def cancel_runs(session: Session, incident: Incident, prefix: str = "") -> int:
    """Cancel pending due items of ``incident`` whose key continues with ``prefix``."""
    start = f"{ref_of(incident)}:{prefix}"
    items = session.exec(select(DueItem).where(DueItem.ref == ref_of(incident),
                                               DueItem.status == DueStatus.pending)).all()
    count = 0
    for item in items:
        if item.key.startswith(start):
            item.status = DueStatus.cancelled
            session.add(item)
            count += 1
    return count


# -- scheduling ----------------------------------------------------------------------


def start_ack_run(session: Session, incident: Incident, *, since: datetime, now: datetime,
                  into: list[Due] | None = None) -> None:
    """Schedule the rungs of the unacknowledged-incident ladder counted from ``since``
    (with ``into``: append them there, see :func:`_schedule`)."""
    spec = load_ladders().for_grade(Grade(incident.grade))
    offsets = spec.offsets()
    top = len(offsets) - 1
    for level, offset in enumerate(offsets):
        if offset > timedelta(0):   # rungs at offset 0 were told when it opened
            _schedule(session, incident, run="ack", step="-", level=level, repeat=0, at=since + offset, now=now,
                      into=into)
    if offsets[top] == timedelta(0):
        _schedule(session, incident, run="ack", step="-", level=top, repeat=1,
                  at=since + repeat_interval(spec, 1), now=now, into=into)


def schedule_step(session: Session, incident: Incident, step: IncidentStep, policy: IncidentPolicy,
                  now: datetime, into: list[Due] | None = None) -> None:
    """A step's reminder before its deadline, and its breach ladder from the deadline
    (with ``into``: append them there, see :func:`_schedule`)."""
    if step.due_at is None or not step.is_pending:
        return
    remind_at = step.due_at - policy.remind_before
    if step.due_at - now > timedelta(days=1) and step.due_last_day is not None:
        # A deadline days away: remind on the morning of its last day, not at night.
        remind_at = min(remind_at, datetime.combine(step.due_last_day, time(9, 0), tzinfo=SHANGHAI))
    # A routine incident's breach ladder starts when the office opens (and climbs from there).
    start = office_time(incident, policy, step.due_at)
    if (policy.remind_before > timedelta(0) and remind_at > now
            and office_time(incident, policy, remind_at) < start):   # never "due soon" after the breach
        _schedule(session, incident, run="step", step=step.key, level=-1, repeat=0, at=remind_at, now=now,
                  policy=policy, into=into)
    if step.optional:
        return   # optional steps are reminded, never escalated
    spec = load_ladders().for_grade(Grade(incident.grade))
    offsets = spec.offsets()
    base_level = OWNER_LEVEL.get(step.owner_role, 0)
    for level in range(base_level, len(offsets)):
        if level > base_level and level <= step.escalation_level:
            continue
        at = start + (offsets[level] - offsets[base_level])
        _schedule(session, incident, run="step", step=step.key, level=level, repeat=0, at=at, now=now,
                  policy=policy, into=into)


def announce_new(session: Session, incident: Incident, *, profile: Profile, policy: IncidentPolicy,
                 now: datetime, steps: list[IncidentStep] | None = None,
                 notices: list[str] | None = None) -> list[Person]:
    """Tell the first rung(s) and, for opinion and security events, the leader on duty
    (DUTY-3); schedule the ladder and the steps. Returns who was told. ``steps``: the
    incident's steps, when the caller has read them; ``notices`` gets the 技术保障 lines
    for the reporter (what :func:`support_notice` reads back later)."""
    steps = steps_of(session=session, incident=incident) if steps is None else steps
    spec = load_ladders().for_grade(Grade(incident.grade))
    offsets = spec.offsets()
    told: list[Person] = []
    notices = [] if notices is None else notices
    for step in steps:   # DUTY-2: the 技术保障 is asked at once, before anyone else reads the card
        if step.owner_role == "support" and step.is_pending and step.anchor == "report":
            notice, pinged = ping_support(session, incident, step, policy=policy, now=now)
            notices.append(notice)
            told += pinged
    reporter = incident.reporter_id
    for level, offset in enumerate(offsets):
        if offset > timedelta(0):
            break
        label = incident.ladder_rungs()[level]["label"]
        head = "【新事件】" if level == 0 else f"【事件报告·{label}】{incident.grade_label}事件"
        extra = "".join(f"\n{n}" for n in notices) if level == 0 else ""
        event = f"{ref_of(incident)}:new:{level}"
        rung = notify(session, _everyone_or_admins(session, rung_people(session, incident, level))
                      if level == 0 else rung_people(session, incident, level),
                      f"{card(session, incident, steps, now=now, head=head)}{extra}\n{_basis(profile)}",
                      event=event, now=now, buttons=ack_buttons(incident), card=card_key(incident), skip=reporter)
        told += rung
        page_ping(session, incident, rung, policy=policy, run="ack", level=level, event=event, now=now)
        incident.escalation_level = max(incident.escalation_level, level)
    playbook = load_playbooks()[IncidentType(incident.type)]
    if playbook.inform_leader and incident.escalation_level < 1:
        event = f"{ref_of(incident)}:inform-leader"
        leaders = notify(session, leaders_on_duty(session, incident, policy),
                         card(session, incident, steps, now=now,
                              head=f"【事件报告·带班领导】{TYPE_ZH[IncidentType(incident.type)]}事件，请知悉并督促处置")
                         + "\n" + profile.basis('DUTY-3'),
                         event=event, now=now, buttons=ack_buttons(incident), card=card_key(incident), skip=reporter)
        told += leaders
        page_ping(session, incident, leaders, policy=policy, run="ack", level=1, event=event, now=now)
    session.add(incident)
    dues: list[Due] = []   # one query for all their keys (issue 21)
    start_ack_run(session, incident, since=incident.reported_at, now=now, into=dues)
    for step in steps:
        schedule_step(session, incident, step, policy, now, into=dues)
    schedule.schedule_many(session=session, items=dues, now=now)
    return told


def after_acknowledged(session: Session, incident: Incident, person: Person, now: datetime) -> None:
    """Stop the ack ladder and tell those already pinged, so no one keeps a stale card."""
    cancel_runs(session, incident, "ack:")
    told: dict[int | None, Person] = {}   # each person once, in the order first pinged
    for level in range(0, incident.escalation_level + 1):
        for p in rung_people(session, incident, level):
            told.setdefault(p.id, p)
    notify(session, list(told.values()),
           card(session, incident, now=now, head=f"【已确认】{person.name} {fmt_short_zh(now)} 确认收到，升级提醒已停止"),
           event=f"{ref_of(incident)}:acked", now=now,
           card=card_key(incident), skip=person.id)


def after_step_closed(session: Session, incident: Incident, step: IncidentStep,
                      started: list[IncidentStep], policy: IncidentPolicy, now: datetime) -> None:
    """Stop the step's ladder; start the clocks of the steps that counted from it."""
    cancel_runs(session, incident, f"step:{step.key}:")
    for other in started:
        if other.owner_role == "support" and other.is_pending:
            notice, _ = ping_support(session, incident, other, policy=policy, now=now)
            notify(session, _everyone_or_admins(session, officers_for(session, incident, policy, now)),
                   f"【技术保障】{incident.number} 步骤{other.seq}“{other.title}”\n{notice}",
                   event=f"{ref_of(incident)}:support-notice:{other.key}", now=now, skip=step.done_by_id)
        schedule_step(session, incident, other, policy, now)
    if step.escalation_level > 0:
        people: list[Person] = []
        for level in range(1, step.escalation_level + 1):
            people += rung_people(session, incident, level)
        notify(session, list({p.id: p for p in people}.values()),
               f"【超期步骤已完成】{incident.number} 步骤{step.seq}“{step.title}”已由 {name_of(session, step.done_by_id)} 完成。",
               event=f"{ref_of(incident)}:step-done:{step.key}", now=now, skip=step.done_by_id)


def after_resolved(session: Session, incident: Incident, person: Person, now: datetime) -> None:
    """All required steps done: ask the owner (or the leaders) to close it; ``person``,
    who did the last step, reads it in the reply. An owner who has left is not asked."""
    owner = session.get(Person, incident.owner_id) if incident.owner_id is not None else None
    people = [owner] if owner is not None and owner.active else rung_people(session, incident, 1)
    notify(session, people, f"【可结案】{incident.number} 必做步骤已全部完成。\n"
           f"请写明结论：/incident close {incident.number} 结论", event=f"{ref_of(incident)}:resolved", now=now,
           skip=person.id)


def after_ended(session: Session, incident: Incident, person: Person, now: datetime) -> None:
    """Closed, cancelled or a false alarm: nothing more is due; tell whoever was pinged."""
    schedule.cancel_for(session=session, ref=ref_of(incident))
    people: list[Person] = []
    for level in range(0, incident.escalation_level + 1):
        people += rung_people(session, incident, level)
    if incident.reporter_id:
        reporter = session.get(Person, incident.reporter_id)
        if reporter is not None and reporter.active:   # not those who have left
            people.append(reporter)
    what = STATUS_ZH[IncidentStatus(incident.status)]
    detail = incident.conclusion or incident.status_reason or ""
    notify(session, list({p.id: p for p in people}.values()),
           f"【事件{what}】{incident.number}（{TYPE_ZH[IncidentType(incident.type)]}）由 {person.name} {what}：{detail[:100]}",
           event=f"{ref_of(incident)}:ended", now=now, card=card_key(incident), skip=person.id)


def after_regraded(session: Session, incident: Incident, policy: IncidentPolicy, profile: Profile,
                   person: Person, before: Grade, now: datetime) -> None:
    """Restart every ladder run under the new grade's ladder, counted from now."""
    cancel_runs(session, incident)
    spec = load_ladders().for_grade(Grade(incident.grade))
    if incident.acknowledged_at is None:
        start_ack_run(session, incident, since=now, now=now)
    for level, offset in enumerate(spec.offsets()):
        if level == 0 or offset > timedelta(0):
            continue
        event = f"{ref_of(incident)}:graded:{incident.grade}:{level}"
        told = notify(session, rung_people(session, incident, level),
                      card(session, incident, now=now,
                           head=f"【事件等级调整·{grade_names(profile).zh(before)}→{incident.grade_label}】由 {person.name} 调整")
                      + f"\n{_basis(profile)}",
                      event=event, now=now,
                      buttons=ack_buttons(incident) if incident.acknowledged_at is None else (), skip=person.id)
        if incident.acknowledged_at is None:   # an acknowledged incident needs nobody woken
            page_ping(session, incident, told, policy=policy, run="graded", level=level, event=event, now=now)
        incident.escalation_level = max(incident.escalation_level, level)
    session.add(incident)
    for step in steps_of(session=session, incident=incident):
        step.escalation_level = 0
        session.add(step)
        schedule_step(session, incident, step, policy, now)


def escalate_now(session: Session, incident: Incident, person: Person, reason: str, profile: Profile,
                 now: datetime, policy: IncidentPolicy | None = None) -> str:
    """Manual escalation: ping the next rung above the highest pinged so far (and page
    them by phone where ``policy`` says so)."""
    rungs = incident.ladder_rungs()
    level = min(incident.escalation_level + 1, len(rungs) - 1)
    people = rung_people(session, incident, level)
    while not people and level < len(rungs) - 1:
        level += 1
        people = rung_people(session, incident, level)
    label = rungs[level]["label"]
    event = f"{ref_of(incident)}:manual:{level}:{now.isoformat()}"
    told = notify(session, _everyone_or_admins(session, people),
                  card(session, incident, now=now, head=f"【事件上报·{label}】{person.name} 提请关注：{reason or '请指示'}")
                  + f"\n{_basis(profile)}",
                  event=event, now=now,
                  buttons=ack_buttons(incident) if incident.acknowledged_at is None else (), skip=person.id)
    if policy is not None:
        page_ping(session, incident, told, policy=policy, run="manual", level=level, event=event, now=now)
    incident.escalation_level = max(incident.escalation_level, level)
    session.add(incident)
    names = "、".join(p.name for p in people) or "管理员"
    record(session, incident, now, "escalated", f"上报{label}：{names}" + (f"（{reason[:100]}）" if reason else ""),
            person=person, actor=person.name)
    return f"{label}（{names}）"


# -- the processor -------------------------------------------------------------------


class Escalator:
    """The ``incident.escalate`` due-item processor, bound to the profile and policy;
    ``on_fired`` (:data:`EscalationHook`) is told of every rung that fires."""

    def __init__(self, profile: Profile, policy: IncidentPolicy,
                 on_fired: EscalationHook | None = None) -> None:
        self.profile, self.policy = profile, policy
        self.on_fired = on_fired

    def _fired(self, session: Session, run: str, level: int) -> None:
        if self.on_fired is not None:
            self.on_fired(session, run, level)

    def prepare(self, session: Session, items: list[DueItem], now: datetime) -> None:
        """Read a chunk's incidents and their steps with one query (the scheduler runs
        escalations ``at_once``: see :meth:`bot.scheduler.Scheduler.register`)."""
        batch.prefetch(session, [item.ref.removeprefix("incident:") for item in items])

    def __call__(self, session: Session, due: DueItem, now: datetime) -> None:
        data = due.data()
        batch.begin(session)   # people read once per transaction (the scheduler's chunk)
        incident, steps = batch.incident_with_steps(session, due.ref.removeprefix("incident:"))
        if not incident.is_open or data.get("grade") != incident.grade:
            return
        event = f"{due.key}@{due.due_at.isoformat()}"
        if data["run"] == "ack":
            self._ack(session, incident, steps, data, event, now)
        else:
            self._step(session, incident, steps, data, event, now)

    def _repeat_next(self, session: Session, incident: Incident, data: dict[str, Any], now: datetime) -> None:
        """The next repeat after the growing interval; after ``policy.repeat_limit`` repeats
        that slot carries the closing note instead (see :meth:`_repeat`)."""
        spec = load_ladders().for_grade(Grade(incident.grade))
        n = int(data["repeat"]) + 1
        if n > self.policy.repeat_limit + 1:
            return
        _schedule(session, incident, run=str(data["run"]), step=str(data["step"]), level=int(data["level"]),
                  repeat=n, at=now + repeat_interval(spec, n), now=now, policy=self.policy)

    def _repeat(self, session: Session, incident: Incident, data: dict[str, Any], event: str, now: datetime,
                what: str, text: Callable[[str], str], buttons: tuple[Button, ...], head: str = "事件升级") -> None:
        """A repeat after every rung was told: to the unit's leader on duty and principal
        (:func:`repeat_people`), at most ``policy.repeat_limit`` times; then one closing
        note to the leader, and nothing more is scheduled. ``text(head)`` is the card
        under that first-line head."""
        n = int(data["repeat"])
        step = str(data["step"])
        if n > self.policy.repeat_limit:
            leaders = repeat_people(session, incident, self.policy, now, leaders_only=True)
            notify(session, leaders,
                   text(f"【停止重复提醒】{what}。已通知全部层级，停止重复提醒（已重复提醒{self.policy.repeat_limit}次）")
                   + f"\n请带班领导跟进处置。\n{_basis(self.profile)}",
                   event=event, now=now, buttons=buttons)
            record(session, incident, now, "repeats_stopped",
                   f"已通知全部层级，停止重复提醒（已重复{self.policy.repeat_limit}次）；告知：{'、'.join(p.name for p in leaders)}",
                   person=None, actor="system", run=data["run"], step=step)
            return
        people = repeat_people(session, incident, self.policy, now)
        told = notify(session, people, text(f"【{head}·重复提醒·第{n + 1}次】{what}") + f"\n{_basis(self.profile)}",
                      event=event, now=now, buttons=buttons)
        page_ping(session, incident, told, policy=self.policy, run=str(data["run"]), level=int(data["level"]),
                  event=event, now=now, repeat=True)
        record(session, incident, now, "pinged",
               f"{what}，第{n + 1}次提醒：{'、'.join(p.name for p in people)}",
               person=None, actor="system", level=int(data["level"]), repeat=n, step=step)
        self._fired(session, "repeat", int(data["level"]))
        self._repeat_next(session, incident, data, now)

    def _ack(self, session: Session, incident: Incident, steps: list[IncidentStep], data: dict[str, Any],
             event: str, now: datetime) -> None:
        if incident.acknowledged_at is not None:
            return
        if int(data["repeat"]):
            waited = duration_zh(now - incident.reported_at)
            self._repeat(session, incident, data, event, now, f"报告后{waited}仍无人确认",
                         lambda head: card(session, incident, steps, now=now, head=head), ack_buttons(incident))
            return
        level = int(data["level"])
        rungs = incident.ladder_rungs()
        reached, people = reachable_rung(session, incident, level)
        # Not the reporter about their own report, unless nobody else is on the rung.
        people = [p for p in people if p.id != incident.reporter_id] or people
        label = rungs[reached]["label"]
        waited = duration_zh(now - incident.reported_at)
        told = notify(session, people,
                      card(session, incident, steps, now=now, head=f"【事件升级·{label}】报告后{waited}仍无人确认")
                      + f"\n{_basis(self.profile)}",
                      event=event, now=now, buttons=ack_buttons(incident))
        page_ping(session, incident, told, policy=self.policy, run="ack", level=level, event=event, now=now)
        incident.escalation_level = max(incident.escalation_level, level)
        session.add(incident)
        record(session, incident, now, "pinged", f"无人确认，升级提醒{label}：{'、'.join(p.name for p in people)}",
                person=None, actor="system", level=level)
        self._fired(session, "ack", level)
        if level == len(rungs) - 1:
            self._repeat_next(session, incident, data, now)

    def _step(self, session: Session, incident: Incident, steps: list[IncidentStep], data: dict[str, Any],
              event: str, now: datetime) -> None:
        step = next((s for s in steps if s.key == data["step"]), None)
        if step is None or not step.is_pending or step.due_at is None:
            return
        level = int(data["level"])
        basis = f"依据：{step.citation}，{step.period_zh}（{OWNER_ZH.get(step.owner_role, '')}办理）"
        button = (Button(f"步骤{step.seq}已完成", f"/incident done {incident.number} {step.seq}"),) \
            if not step.external and not step.evidence_required else ()
        urge = f"请督促办理；如需上报：/incident escalate {short_form(incident.number, local(now).date())} 说明"

        def text(head: str, action: str | None = None) -> str:
            return card(session, incident, steps, now=now, head=head, step=step, action=action) + f"\n{basis}"

        if level == -1:
            notify(session, step_owners(session, incident, step, self.policy, now),
                   text("【事件提醒】即将到期"), event=event, now=now, buttons=button)
            return
        owners = "、".join(p.name for p in step_owners(session, incident, step, self.policy, now))
        late = f"步骤{step.seq}“{step.title}”超期仍未完成，责任人：{owners}"
        if int(data["repeat"]):
            self._repeat(session, incident, data, event, now, late, lambda head: text(head, urge), (),
                         head="事件超期升级")
            return
        base = OWNER_LEVEL.get(step.owner_role, 0)
        rungs = incident.ladder_rungs()
        if level == base:
            people = step_owners(session, incident, step, self.policy, now)
            msg = text("【事件超期】已过期限")
        else:
            reached, people = reachable_rung(session, incident, level)
            msg = text(f"【事件超期升级·{rungs[reached]['label']}】{late}", urge)
        told = notify(session, people, msg, event=event, now=now, buttons=button if level == base else ())
        page_ping(session, incident, told, policy=self.policy, run="step", level=level, event=event, now=now)
        step.escalation_level = max(step.escalation_level, level)
        session.add(step)
        incident.escalation_level = max(incident.escalation_level, level)
        session.add(incident)
        record(session, incident, now, "pinged",
                f"步骤{step.seq}超期，提醒{rungs[reachable_rung(session, incident, level)[0]]['label'] if level != base else '责任人'}：{'、'.join(p.name for p in people)}",
                person=None, actor="system", level=level, step=step.key)
        self._fired(session, "step", level)
        if level == len(rungs) - 1:
            self._repeat_next(session, incident, data, now)
