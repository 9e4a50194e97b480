"""Drafting a fair roster and publishing the draft (DUTY-1: 7×24 duty).

``generate_draft`` builds the shifts of a period from the patterns as a draft (unpublished,
so ``/duty`` does not show them) and fills each with its officers and one leader (the
fill itself is ``roster.rotation.rotate``). Published shifts that already have people are
left as they are (and reported); every other shift of the period is drafted anew, so a
second run replaces the draft. Counts include the published shifts of the
``lookback_days`` before the period, so fairness carries on from one period to the next,
and recorded leave (``roster.leave``) and the office's rest rules (``roster.rest``: nobody
back-to-back, at least ``min_rest`` between two shifts) are respected.

``publish_draft`` makes the draft visible and tells each person their new shifts in one
message through the outbox.

Where the rule profile states STAFF-1 (先培训后上岗, ``roster.training``), the draft leaves out
officers not yet trained on a shift's day (``Draft.untrained`` says who), and publishing a
draft that still holds one is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from core import audit
from core.clock import fmt_date_zh, fmt_span_zh
from core.errors import DutybotError, InputError
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.workdays import WorkdayCalendar
from people.models import ChatIdentity, Person, Role
from roster import training
from roster.models import DUTY_ROLE_ZH, DutyRole, Shift, ShiftAssignment
from roster.patterns import ShiftPatterns
from roster.rest import RestRules
from roster.rotation import Candidate, Holidays, Tally, Unfilled, rotate, to_slot
from roster.service import ShiftView, ensure_shifts, label, on_leave, planned, views

SOURCE = "generated"
LOOKBACK_DAYS = 28
MESSAGE_LINES = 60
PUBLISH_EVENT = "roster-publish"


@dataclass
class FairnessRow:
    """One person's counts in the period, and in the lookback window before it."""

    person: Person
    roles: tuple[DutyRole, ...]
    period: Tally
    carried: Tally


@dataclass
class Draft:
    """A period's draft: the shifts with their people, the holes and the fairness table."""

    start: date
    end: date
    views: list[ShiftView]
    unfilled: list[Unfilled]
    fairness: list[FairnessRow]
    kept: list[Shift] = field(default_factory=list)    # published shifts with people, left alone
    replaced: int = 0
    lookback_days: int = LOOKBACK_DAYS
    # Officers left out of (part of) the period: not trained yet (STAFF-1), by name.
    untrained: list[Person] = field(default_factory=list)


def duty_pools(*, session: Session, unit: str | None = None) -> tuple[list[Person], list[Person]]:
    """Active officers and leaders (of ``unit`` when given), by name."""
    stmt = select(Person).where(Person.active == True).order_by(col(Person.name))  # noqa: E712
    if unit:
        stmt = stmt.where(Person.unit == unit)
    people = list(session.exec(stmt))
    return ([p for p in people if Role.officer in p.role_set()],
            [p for p in people if Role.leader in p.role_set()])


def _history(session: Session, start: date, end: date) -> list[tuple[Shift, ShiftAssignment]]:
    """Published shifts of ``start``..``end`` with their assignments."""
    return list(session.exec(
        select(Shift, ShiftAssignment).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
        .where(col(Shift.day) >= start, col(Shift.day) <= end, Shift.published == True)  # noqa: E712
        .order_by(col(Shift.starts_at))).all())


def _officers_needed(calendar: WorkdayCalendar, patterns: ShiftPatterns, start: date,
                     end: date) -> dict[tuple[date, str], int]:
    return {(p.day, p.name): p.officers for p in planned(calendar=calendar, patterns=patterns, start=start, end=end)}


# ---------------------------------------------------------------- generating

def generate_draft(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, start: date,
                   end: date, now: datetime, actor: str, unit: str | None = None, seed: int | None = None,
                   lookback_days: int = LOOKBACK_DAYS, profile: Profile | None = None,
                   rest: RestRules | None = None) -> Draft:
    """Build and store the draft roster of ``start``..``end`` (replacing an earlier draft).

    Where ``profile`` states STAFF-1, an officer is rostered only from the day of their
    recorded training (officers never trained are left out, and listed in ``untrained``).

    Raises:
        InputError: a bad period, or nobody with the officer or leader role (in ``unit``).
    """
    plans = planned(calendar=calendar, patterns=patterns, start=start, end=end)
    officers, leaders = duty_pools(session=session, unit=unit)
    if not officers and not leaders:
        where = f"单位“{unit}”" if unit else "系统中"
        raise InputError(f"{where}没有可排班的在岗人员（需具有“值班员”或“带班领导”角色）。"
                         "请先用 dutybot people 添加或导入人员。")
    existing = list(session.exec(select(Shift).where(col(Shift.day) >= start, col(Shift.day) <= end)))
    published = [s.id for s in existing if s.published]
    staffed = set(session.exec(select(ShiftAssignment.shift_id).where(
        col(ShiftAssignment.shift_id).in_(published)))) if published else set()
    kept = sorted((s for s in existing if s.id in staffed), key=lambda s: s.starts_at)
    # The rest is (or becomes) draft: cleared, brought in line with today's patterns, refilled.
    # Published empty shifts the patterns no longer have are left alone; an old draft's are dropped.
    plan_by_key = {(p.day, p.name): p for p in plans}
    redo = [s for s in existing if s.id not in staffed and (not s.published or (s.day, s.name) in plan_by_key)]
    replaced = 0
    if redo:
        ids = [s.id for s in redo]
        replaced = len(session.exec(select(ShiftAssignment.id).where(col(ShiftAssignment.shift_id).in_(ids))).all())
        session.exec(delete(ShiftAssignment).where(col(ShiftAssignment.shift_id).in_(ids)))
    for shift in redo:
        plan = plan_by_key.get((shift.day, shift.name))
        if plan is None:
            session.delete(shift)
            continue
        shift.published, shift.pattern, shift.provisional = False, plan.pattern, plan.provisional
        shift.starts_at, shift.ends_at = plan.starts_at, plan.ends_at
    session.flush()
    kept_ids = {s.id for s in kept}
    shifts = sorted((s for s in ensure_shifts(session=session, calendar=calendar, patterns=patterns, start=start,
                                              end=end, now=now, published=False) if s.id not in kept_ids),
                    key=lambda s: s.starts_at)
    holidays = Holidays(calendar)
    slots = [to_slot(s, plan_by_key[(s.day, s.name)].officers, holidays) for s in shifts]

    people = {p.id: p for p in (*officers, *leaders) if p.id is not None}
    busy: dict[int, list[tuple[datetime, datetime]]] = {}
    carried: dict[int, Tally] = {}
    counted_from = start - timedelta(days=lookback_days)
    # The days around are read for back-to-back shifts and rest even when nothing is counted.
    min_rest = rest.min_rest if rest is not None else None
    around = timedelta(days=1 + (min_rest // timedelta(days=1) if min_rest else 0))
    for shift, row in _history(session, min(counted_from, start - around), end + around):
        if row.person_id not in people:
            continue
        busy.setdefault(row.person_id, []).append((shift.starts_at, shift.ends_at))
        if counted_from <= shift.day < start or shift.id in kept_ids:
            carried.setdefault(row.person_id, Tally()).add(to_slot(shift, 0, holidays))
    leave = {pid: [(x.start_day, x.end_day) for x in rows] for pid, rows in on_leave(
        session=session, person_ids=list(people), start=start - timedelta(days=1), end=end + timedelta(days=1)).items()}
    untrained: list[Person] = []
    if training.required(profile):
        # 先培训后上岗: not before the training day (kept out like leave), never without one.
        untrained = [p for p in officers if not training.trained_for(p, start)]
        for p in untrained:
            if p.trained_on is not None and p.id is not None:
                leave.setdefault(p.id, []).append((start - timedelta(days=1), p.trained_on - timedelta(days=1)))
        officers = [p for p in officers if p.trained_on is not None]
    rotation = rotate(slots=slots, officers=[Candidate(p.id, p.name) for p in officers if p.id is not None],
                      leaders=[Candidate(p.id, p.name) for p in leaders if p.id is not None],
                      busy=busy, leave=leave, carried=carried, seed=seed, min_rest=min_rest)
    rows = [ShiftAssignment(shift_id=key, person_id=pid, role=role.value, source=SOURCE, created_at=now)
            for key, by_role in rotation.picks.items()
            for role in (DutyRole.officer, DutyRole.leader) for pid in by_role.get(role, ())]
    session.add_all(rows)
    session.flush()
    audit.record(session=session, at=now, entity_type="roster", entity_id=f"{start}..{end}",
                 action="draft_generated", actor=actor,
                 zh=(f"生成 {start}至{end} 的值班草稿：{len(shifts)} 个班次、{len(rows)} 人次，"
                     f"空缺 {len(rotation.unfilled)} 处" + (f"，保留已发布的 {len(kept)} 个班次" if kept else "")
                     + (f"（单位：{unit}）" if unit else "")),
                 seed=seed, unit=unit, kept=[s.id for s in kept], replaced=replaced)
    draft = load_draft(session=session, calendar=calendar, patterns=patterns, start=start, end=end,
                       unit=unit, lookback_days=lookback_days)
    draft.unfilled, draft.kept, draft.replaced = rotation.unfilled, kept, replaced
    draft.untrained = untrained
    return draft


def load_draft(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, start: date, end: date,
               unit: str | None = None, lookback_days: int = LOOKBACK_DAYS) -> Draft:
    """The stored draft of ``start``..``end``: unpublished shifts, holes, and the fairness
    table over the whole period (draft and published shifts)."""
    need = _officers_needed(calendar, patterns, start, end)
    shifts = list(session.exec(select(Shift).where(col(Shift.day) >= start, col(Shift.day) <= end,
                                                   Shift.published == False)  # noqa: E712
                               .order_by(col(Shift.starts_at))))
    shown = views(session, shifts)
    unfilled = []
    for view in shown:
        s = view.shift
        wanted = need.get((s.day, s.name), 1)
        for role, have, want in ((DutyRole.officer, view.officers, wanted), (DutyRole.leader, view.leaders, 1)):
            if len(have) < want:
                unfilled.append(Unfilled(s.day, s.name, s.starts_at, s.ends_at, role, want - len(have)))
    officers, leaders = duty_pools(session=session, unit=unit)
    return Draft(start, end, shown, unfilled, fairness_table(
        session=session, calendar=calendar, start=start, end=end, people=[*officers, *leaders],
        lookback_days=lookback_days), lookback_days=lookback_days)


def fairness_table(*, session: Session, calendar: WorkdayCalendar, start: date, end: date,
                   people: Iterable[Person], lookback_days: int = LOOKBACK_DAYS) -> list[FairnessRow]:
    """Per person: shifts held in ``start``..``end`` (draft or published) and published
    in the ``lookback_days`` before; ``people`` plus anyone holding a shift, by role and name."""
    rows: dict[int, FairnessRow] = {}
    holidays = Holidays(calendar)

    def row(person: Person) -> FairnessRow:
        assert person.id is not None
        if person.id not in rows:
            roles = tuple(r for r in (DutyRole.officer, DutyRole.leader) if Role(r.value) in person.role_set())
            rows[person.id] = FairnessRow(person, roles, Tally(), Tally())
        return rows[person.id]

    for person in people:
        row(person)
    stmt = (select(Shift, ShiftAssignment, Person)
            .join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
            .join(Person, col(Person.id) == ShiftAssignment.person_id)
            .where(col(Shift.day) >= start - timedelta(days=lookback_days), col(Shift.day) <= end))
    for shift, _, person in session.exec(stmt):
        if shift.day >= start:
            row(person).period.add(to_slot(shift, 0, holidays))
        elif shift.published:
            row(person).carried.add(to_slot(shift, 0, holidays))
    return sorted(rows.values(), key=lambda r: (DutyRole.officer not in r.roles, r.person.name))


# ---------------------------------------------------------------- publishing

@dataclass
class Published:
    shifts: list[Shift]
    notified: list[Person]
    unbound: list[Person]        # hold new shifts but have no chat account to be told on
    unfilled: list[Unfilled]


def publish_draft(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, start: date,
                  end: date, now: datetime, actor: str, profile: Profile | None = None) -> Published:
    """Publish the draft of ``start``..``end`` and queue one summary per person.

    Raises:
        InputError: a bad period.
        DutybotError: there is no draft in the period.
        TrainingRequired: ``profile`` states STAFF-1 and an officer of the draft is not
            trained by their shift's day; nothing is published.
    """
    draft = load_draft(session=session, calendar=calendar, patterns=patterns, start=start, end=end)
    if not draft.views:
        raise DutybotError(f"{fmt_date_zh(start)}至{fmt_date_zh(end)}没有待发布的值班草稿。"
                           f"请先运行 dutybot roster generate --from {start} --to {end}")
    if training.required(profile):
        assert profile is not None
        untrained = training.untrained_in(draft.views)
        if untrained:
            raise training.TrainingRequired(profile, untrained, start, end)
    mine: dict[int, list[tuple[ShiftView, DutyRole]]] = {}
    people: dict[int, Person] = {}
    for view in draft.views:
        assert view.shift.id is not None
        view.shift.published = True
        session.add(view.shift)
        for role in (DutyRole.officer, DutyRole.leader):
            for person in view.people(role):
                assert person.id is not None
                people[person.id] = person
                mine.setdefault(person.id, []).append((view, role))
        names = "；".join(f"{DUTY_ROLE_ZH[r]}：{'、'.join(p.name for p in view.people(r)) or '空缺'}"
                         for r in (DutyRole.officer, DutyRole.leader))
        audit.record(session=session, at=now, entity_type="shift", entity_id=view.shift.id, action="published",
                     actor=actor, from_state="draft", to_state="published", zh=f"发布 {label(view.shift)}：{names}")
    event = f"{PUBLISH_EVENT}:{start:%Y%m%d}-{end:%Y%m%d}:{now:%Y%m%dT%H%M%S%f}"
    bound = set(session.exec(select(ChatIdentity.person_id).where(
        col(ChatIdentity.person_id).in_(list(people)), col(ChatIdentity.blocked_at).is_(None)))) if people else set()
    notified, unbound = [], []
    for pid, held in sorted(mine.items(), key=lambda kv: people[kv[0]].name):
        if pid not in bound:
            unbound.append(people[pid])
            continue
        enqueue(session=session, message=Outbound(_summary(start, end, pid, held), person_id=pid), now=now,
                event_key=event)
        notified.append(people[pid])
    audit.record(session=session, at=now, entity_type="roster", entity_id=f"{start}..{end}", action="published",
                 actor=actor, zh=(f"发布 {start}至{end} 的值班表：{len(draft.views)} 个班次，通知 {len(notified)} 人"
                                  + (f"，仍有空缺 {len(draft.unfilled)} 处" if draft.unfilled else "")),
                 event=event)
    session.flush()
    return Published([v.shift for v in draft.views], notified, unbound, draft.unfilled)


def _summary(start: date, end: date, person_id: int, held: list[tuple[ShiftView, DutyRole]]) -> str:
    lines = [f"【值班安排】{span_zh(start, end)}的值班表已发布，您共有 {len(held)} 个班："]
    for view, role in held[:MESSAGE_LINES]:
        other = DutyRole.leader if role == DutyRole.officer else DutyRole.officer
        mates = [p.name for p in view.people(role) if p.id != person_id]
        partners = "、".join(p.name for p in view.people(other)) or "空缺"
        line = f"  {label(view.shift)}｜{DUTY_ROLE_ZH[role]}｜{DUTY_ROLE_ZH[other]}：{partners}"
        if mates:
            line += f"｜同班：{'、'.join(mates)}"
        lines.append(line)
    if len(held) > MESSAGE_LINES:
        lines.append(f"  ……另有 {len(held) - MESSAGE_LINES} 个班，可发送 /duty 日期 查看。")
    lines.append("如有冲突请尽早与同事协商换班。发送 /myduty 可随时查看接下来的值班。")
    return "\n".join(lines)





def span_zh(start: date, end: date) -> str:
    """``2026年11月1日至11月30日``."""
    return fmt_span_zh(start, end, "至")
