"""Drafting a fair roster, recording leave, and publishing the draft (DUTY-1: 7×24 duty).

``generate_draft`` builds the shifts of a period from the patterns as a draft (unpublished,
so ``/duty`` does not show them) and fills each with its officers and one leader.
Published shifts that already have people are left as they are (and reported); every
other shift of the period is drafted anew, so a second run replaces the draft.

The fill is deterministic. A greedy pass takes the scarcest shifts first (holidays, then
rest days, then nights — shifts that cross midnight — then the rest) and gives each to
the available person with the lowest cost, a tuple compared in order: the person's count
of each kind the shift is (holiday, rest-day, night), their total, the rest they would
have around it (longest first), then a stable rank — names in order, shuffled by
``seed`` when one is given. A repair pass then hands single shifts from one person to
another while that evens the counts. Counts include the published shifts of the
``lookback_days`` before the period, so fairness carries on from one period to the next.
Nobody is put on two overlapping or back-to-back shifts (a night, then the next
morning's day shift), nor on a shift touching a day of recorded leave. A shift that
cannot be filled is listed, never left silently empty.

``publish_draft`` makes the draft visible and tells each person their new shifts in one
message through the outbox.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from core import audit
from core.clock import fmt_date_zh, local
from core.errors import DutybotError, InputError, NotFound
from core.messages import Outbound
from core.outbox import enqueue
from core.workdays import WorkdayCalendar
from people.models import ChatIdentity, Person, Role
from roster.models import DUTY_ROLE_ZH, DutyRole, Leave, Shift, ShiftAssignment
from roster.patterns import ShiftPatterns
from roster.service import ShiftView, ensure_shifts, label, on_leave, planned, views

SOURCE = "generated"
LOOKBACK_DAYS = 28
MAX_LEAVE_DAYS = 366
MAX_REASON = 200
MESSAGE_LINES = 60
PUBLISH_EVENT = "roster-publish"
_TICK = timedelta(microseconds=1)


# ---------------------------------------------------------------- the pure fill

@dataclass(frozen=True)
class Slot:
    """A shift to fill, as plain values."""

    key: int
    day: date
    name: str
    starts_at: datetime
    ends_at: datetime
    officers: int
    night: bool
    restday: bool
    holiday: bool


@dataclass(frozen=True)
class Candidate:
    person_id: int
    name: str


@dataclass
class Tally:
    """Shifts held: 总班数、夜班、休息日班、节假日班."""

    total: int = 0
    nights: int = 0
    restdays: int = 0
    holidays: int = 0

    def add(self, slot: Slot) -> None:
        self.total += 1
        self.nights += slot.night
        self.restdays += slot.restday
        self.holidays += slot.holiday


@dataclass(frozen=True)
class Unfilled:
    """A shift short of people in one role."""

    day: date
    shift_name: str
    starts_at: datetime
    ends_at: datetime
    role: DutyRole
    missing: int


@dataclass
class Rotation:
    """What ``rotate`` decided: slot key -> role -> person ids, the holes, period counts."""

    picks: dict[int, dict[DutyRole, list[int]]]
    unfilled: list[Unfilled]
    tallies: dict[int, Tally]


# Weights of the balance the repair pass improves: a holiday counts most, a plain shift least.
WEIGHTS = {"holidays": 4, "restdays": 3, "nights": 2, "total": 1}
REPAIR_ROUNDS = 20


def _signature(slot: Slot) -> tuple[str, ...]:
    """The counts a slot adds to, scarcest first."""
    return tuple(a for a, on in zip(WEIGHTS, (slot.holiday, slot.restday, slot.night, True), strict=True) if on)


class _Fill:
    """One greedy fill of the slots, then moves that make the counts more even."""

    def __init__(self, slots: Sequence[Slot], pools: dict[DutyRole, list[int]], names: Mapping[int, str],
                 busy: Mapping[int, Sequence[tuple[datetime, datetime]]],
                 leave: Mapping[int, Sequence[tuple[date, date]]], carried: Mapping[int, Tally],
                 seed: int | None) -> None:
        self.slots, self.pools, self.leave = list(slots), pools, leave
        order = sorted(names, key=lambda pid: (names[pid], pid))
        if seed is not None:
            random.Random(seed).shuffle(order)
        self.rank = {pid: i for i, pid in enumerate(order)}
        self.held = {pid: Tally(**vars(carried[pid])) if pid in carried else Tally() for pid in names}
        self.period = {pid: Tally() for pid in names}
        # Each person's shifts, sorted: (start, end, slot key; -1 for a published one).
        self.mine = {pid: sorted((a, b, -1) for a, b in busy.get(pid, ())) for pid in names}
        self.picks: dict[int, dict[DutyRole, list[int]]] = {s.key: {r: [] for r in pools} for s in slots}
        self.kinds = {s.key: _signature(s) for s in slots}
        self.days = {s.key: (local(s.starts_at).date(), local(s.ends_at - _TICK).date()) for s in slots}
        self.missing = 0

    def _near(self, pid: int, slot: Slot) -> list[tuple[datetime, datetime, int]]:
        shifts = self.mine[pid]
        i = bisect.bisect_left(shifts, (slot.starts_at,))
        return shifts[max(0, i - 2):i + 1]

    def rest(self, pid: int, slot: Slot) -> float | None:
        """Seconds of rest ``pid`` would have around ``slot``; None when they cannot take it:
        on leave on a day it touches, or holding an overlapping or back-to-back shift."""
        first, last = self.days[slot.key]
        for a, b in self.leave.get(pid, ()):
            if a <= last and b >= first:
                return None
        rest = float("inf")
        for a, b, _ in self._near(pid, slot):
            if a <= slot.ends_at and b >= slot.starts_at:
                return None
            rest = min(rest, ((a - slot.ends_at) if a >= slot.ends_at else (slot.starts_at - b)).total_seconds())
        return rest

    def put(self, pid: int, slot: Slot, role: DutyRole, sign: int = 1) -> None:
        for tally in (self.held[pid], self.period[pid]):
            for a in self.kinds[slot.key]:
                setattr(tally, a, getattr(tally, a) + sign)
        if sign > 0:
            bisect.insort(self.mine[pid], (slot.starts_at, slot.ends_at, slot.key))
            self.picks[slot.key][role].append(pid)
        else:
            self.mine[pid].remove((slot.starts_at, slot.ends_at, slot.key))
            self.picks[slot.key][role].remove(pid)

    def fill(self, by_kind: bool) -> _Fill:
        """Scarce kinds first (holidays, rest days, nights) when ``by_kind``, else in time order.

        The cost of a person for a slot: their counts of the slot's kinds, their total, then
        the longest rest around it, then their rank."""
        def kind_first(s: Slot) -> tuple[object, ...]:
            return (not s.holiday, not s.restday, not s.night, s.starts_at, s.key)
        for slot in sorted(self.slots, key=kind_first if by_kind else (lambda s: (s.starts_at, s.key))):
            kinds = self.kinds[slot.key]
            for role, pool in self.pools.items():
                need = slot.officers if role == DutyRole.officer else 1
                # Rest only breaks ties between equal counts: look at the lowest counts first.
                groups: dict[tuple[int, ...], list[int]] = {}
                for pid in pool:
                    held = self.held[pid]
                    groups.setdefault(tuple(getattr(held, a) for a in kinds), []).append(pid)
                costs: list[tuple[tuple[float, ...], int]] = []
                for counts in sorted(groups):
                    for pid in groups[counts]:
                        rest = self.rest(pid, slot)
                        if rest is not None:
                            costs.append(((*counts, -rest, self.rank[pid]), pid))
                    if len(costs) >= need:
                        break
                for _, pid in heapq.nsmallest(need, costs):
                    self.put(pid, slot, role)
                self.missing += max(0, need - len(costs))
        return self

    def repair(self) -> None:
        """Hand single shifts from one person to another while that evens the weighted counts."""
        in_time = sorted(self.slots, key=lambda s: (s.starts_at, s.key))
        for _ in range(REPAIR_ROUNDS):
            moved = False
            for role, pool in self.pools.items():
                others = sorted(pool, key=self.rank.__getitem__)
                for slot in in_time:
                    kinds = self.kinds[slot.key]
                    for pid in list(self.picks[slot.key][role]):
                        best, gain = None, 0
                        for q in others:
                            # The change in the weighted sum of squares of the counts.
                            delta = sum(WEIGHTS[a] * (getattr(self.held[q], a) - getattr(self.held[pid], a) + 1)
                                        for a in kinds)
                            if delta < gain and q != pid and self.rest(q, slot) is not None:
                                best, gain = q, delta
                        if best is not None:
                            self.put(pid, slot, role, -1)
                            self.put(best, slot, role)
                            moved = True
            if not moved:
                return


def rotate(*, slots: Sequence[Slot], officers: Sequence[Candidate], leaders: Sequence[Candidate],
           busy: Mapping[int, Sequence[tuple[datetime, datetime]]] | None = None,
           leave: Mapping[int, Sequence[tuple[date, date]]] | None = None,
           carried: Mapping[int, Tally] | None = None, seed: int | None = None) -> Rotation:
    """Fill ``slots`` (one leader each, and ``slot.officers`` officers) fairly.

    A greedy pass takes the scarcest kinds first (holiday, rest-day, night shifts, then
    the rest); if that leaves holes, a pass in time order is tried and the one with fewer
    holes kept. Then single shifts move from one person to another of the same role while
    that evens the counts (weighted by ``WEIGHTS``) and breaks no rule.

    Args:
        slots: the shifts to fill.
        officers, leaders: who may take each role (a person may be in both).
        busy: shifts people already hold (published, around the period): never
            overlapped or touched.
        leave: inclusive day ranges a person is away.
        carried: counts already held (the lookback window, and kept shifts of the period).
        seed: shuffles the name order that breaks ties (None: plain name order).

    Returns:
        The picks, the shifts it could not fill, and each person's counts in ``slots``.
    """
    names = {c.person_id: c.name for c in (*officers, *leaders)}
    pools = {DutyRole.leader: [c.person_id for c in leaders], DutyRole.officer: [c.person_id for c in officers]}
    args = (slots, pools, names, busy or {}, leave or {}, carried or {}, seed)
    best = _Fill(*args).fill(by_kind=True)
    if best.missing:
        in_time = _Fill(*args).fill(by_kind=False)
        best = in_time if in_time.missing < best.missing else best
    best.repair()
    unfilled = []
    for slot in sorted(slots, key=lambda s: (s.starts_at, s.key)):
        for role in (DutyRole.officer, DutyRole.leader):
            need = slot.officers if role == DutyRole.officer else 1
            if len(best.picks[slot.key][role]) < need:
                unfilled.append(Unfilled(slot.day, slot.name, slot.starts_at, slot.ends_at, role,
                                         need - len(best.picks[slot.key][role])))
    return Rotation(best.picks, unfilled, best.period)


# ---------------------------------------------------------------- shifts as slots

def is_night(shift: Shift) -> bool:
    """The shift crosses midnight (Asia/Shanghai)."""
    return local(shift.starts_at).date() != local(shift.ends_at - _TICK).date()


class Holidays:
    """Which days are statutory holidays (rest days the calendar names), looked up once each."""

    def __init__(self, calendar: WorkdayCalendar) -> None:
        self.calendar = calendar
        self._known: dict[date, bool] = {}

    def __contains__(self, day: object) -> bool:
        assert isinstance(day, date)
        if day not in self._known:
            info = self.calendar.day(day)
            self._known[day] = not info.is_workday and bool(info.name)
        return self._known[day]


def to_slot(shift: Shift, officers: int, holidays: Holidays) -> Slot:
    assert shift.id is not None
    return Slot(shift.id, shift.day, shift.name, shift.starts_at, shift.ends_at, officers, is_night(shift),
                shift.pattern == "restday", shift.day in holidays)


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
                   lookback_days: int = LOOKBACK_DAYS) -> Draft:
    """Build and store the draft roster of ``start``..``end`` (replacing an earlier draft).

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
        session.execute(delete(ShiftAssignment).where(col(ShiftAssignment.shift_id).in_(ids)))
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

    people = {p.id: p for p in (*officers, *leaders)}
    busy: dict[int, list[tuple[datetime, datetime]]] = {}
    carried: dict[int, Tally] = {}
    counted_from = start - timedelta(days=lookback_days)
    # The day before and after are read for back-to-back shifts even when nothing is counted.
    for shift, row in _history(session, min(counted_from, start - timedelta(days=1)), end + timedelta(days=1)):
        if row.person_id not in people:
            continue
        busy.setdefault(row.person_id, []).append((shift.starts_at, shift.ends_at))
        if counted_from <= shift.day < start or shift.id in kept_ids:
            carried.setdefault(row.person_id, Tally()).add(to_slot(shift, 0, holidays))
    leave = {pid: [(x.start_day, x.end_day) for x in rows] for pid, rows in on_leave(
        session=session, person_ids=list(people), start=start - timedelta(days=1), end=end + timedelta(days=1)).items()}
    rotation = rotate(slots=slots, officers=[Candidate(p.id, p.name) for p in officers if p.id is not None],
                      leaders=[Candidate(p.id, p.name) for p in leaders if p.id is not None],
                      busy=busy, leave=leave, carried=carried, seed=seed)
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
                  end: date, now: datetime, actor: str) -> Published:
    """Publish the draft of ``start``..``end`` and queue one summary per person.

    Raises:
        InputError: a bad period.
        DutybotError: there is no draft in the period.
    """
    draft = load_draft(session=session, calendar=calendar, patterns=patterns, start=start, end=end)
    if not draft.views:
        raise DutybotError(f"{fmt_date_zh(start)}至{fmt_date_zh(end)}没有待发布的值班草稿。"
                           f"请先运行 dutybot roster generate --from {start} --to {end}")
    mine: dict[int, list[tuple[ShiftView, DutyRole]]] = {}
    people: dict[int, Person] = {}
    for view in draft.views:
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
    lines = [f"【值班安排】{_span(start, end)}的值班表已发布，您共有 {len(held)} 个班："]
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


def _span(start: date, end: date) -> str:
    head = f"{start.year}年{start.month}月{start.day}日"
    if start == end:
        return head
    tail = f"{end.month}月{end.day}日" if end.year == start.year else f"{end.year}年{end.month}月{end.day}日"
    return f"{head}至{tail}"


# ---------------------------------------------------------------- leave

@dataclass
class LeaveAdded:
    leave: Leave
    clashes: list[Shift]      # shifts the person already holds on those days (draft or published)


def add_leave(*, session: Session, person: Person, start: date, end: date, reason: str, now: datetime,
              actor: str) -> LeaveAdded:
    """Record ``person``'s leave (inclusive days).

    Raises:
        InputError: a bad range, a reason too long, or leave that overlaps recorded leave.
    """
    reason = reason.strip()
    if end < start:
        raise InputError("请假结束日期不能早于开始日期。")
    if (end - start).days + 1 > MAX_LEAVE_DAYS:
        raise InputError(f"一次请假最多登记 {MAX_LEAVE_DAYS} 天，请分段登记。")
    if len(reason) > MAX_REASON:
        raise InputError(f"请假事由最多 {MAX_REASON} 个字（现有 {len(reason)} 个）。")
    assert person.id is not None
    for other in on_leave(session=session, person_ids=[person.id], start=start, end=end).get(person.id, []):
        raise InputError(f"{person.name} 在 {_span(other.start_day, other.end_day)} 已登记请假（编号 {other.id}），"
                         f"与本次时间重叠。请先删除：dutybot roster leave remove {other.id}")
    leave = Leave(person_id=person.id, start_day=start, end_day=end, reason=reason, created_at=now)
    session.add(leave)
    session.flush()
    audit.record(session=session, at=now, entity_type="leave", entity_id=leave.id, action="added", actor=actor,
                 zh=f"登记 {person.name} 请假：{_span(start, end)}" + (f"（{reason}）" if reason else ""),
                 person=person.name, start=start.isoformat(), end=end.isoformat())
    # A shift "on" a leave day is any that touches it: a night before leave ends next morning.
    clashes = session.exec(
        select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
        .where(ShiftAssignment.person_id == person.id, col(Shift.day) >= start - timedelta(days=1),
               col(Shift.day) <= end).order_by(col(Shift.starts_at))).all()
    touching = [s for s in {s.id: s for s in clashes}.values()
                if local(s.starts_at).date() <= end and local(s.ends_at - _TICK).date() >= start]
    return LeaveAdded(leave, touching)


def list_leave(*, session: Session, start: date | None = None, end: date | None = None) -> list[tuple[Leave, Person]]:
    """Leave overlapping ``start``..``end`` (open-ended when None), by start day and name."""
    stmt = select(Leave, Person).join(Person, col(Person.id) == Leave.person_id)
    if start is not None:
        stmt = stmt.where(col(Leave.end_day) >= start)
    if end is not None:
        stmt = stmt.where(col(Leave.start_day) <= end)
    return [(leave, person) for leave, person in
            session.exec(stmt.order_by(col(Leave.start_day), col(Person.name), col(Leave.id)))]


def remove_leave(*, session: Session, leave_id: int, now: datetime, actor: str) -> tuple[Leave, Person]:
    """Delete a leave record.

    Raises:
        NotFound: no leave has this id.
    """
    leave = session.get(Leave, leave_id)
    if leave is None:
        raise NotFound(f"没有编号为 {leave_id} 的请假记录。查看：dutybot roster leave list")
    person = session.get(Person, leave.person_id)
    assert person is not None
    session.delete(leave)
    audit.record(session=session, at=now, entity_type="leave", entity_id=leave_id, action="removed", actor=actor,
                 zh=f"删除 {person.name} 的请假：{_span(leave.start_day, leave.end_day)}", person=person.name)
    session.flush()
    return leave, person


def span_zh(start: date, end: date) -> str:
    """``2026年11月1日至11月30日``."""
    return _span(start, end)
