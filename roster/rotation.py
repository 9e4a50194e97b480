"""The fair fill of a period's shifts (DUTY-1: 7×24 duty), as plain values in and out.

``rotate`` fills ``Slot`` values with officers and one leader; ``to_slot`` turns a stored
shift into a slot. Drafting, fairness tables and publishing are in ``roster.drafts``;
recording leave is in ``roster.leave``.

The fill is deterministic. A greedy pass takes the scarcest shifts first (holidays, then
rest days, then nights — shifts that cross midnight — then the rest) and gives each to
the available person with the lowest cost, a tuple compared in order: the person's count
of each kind the shift is (holiday, rest-day, night), their total, the rest they would
have around it (longest first), then a stable rank — names in order, shuffled by
``seed`` when one is given. A repair pass then hands single shifts from one person to
another while that evens the counts. Counts carried in (``carried``) let fairness carry
on from one period to the next. Nobody is put on two overlapping or back-to-back shifts
(a night, then the next morning's day shift), nor on a shift touching a day of recorded
leave, nor with less than ``min_rest`` between two shifts (``[roster] min_rest_hours``,
``roster.rest``; as no shift is back-to-back, a stretch of duty is one shift, which the
configuration keeps within ``max_continuous_hours``). A shift that cannot be filled is
listed, never left silently empty.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from core.clock import local
from core.workdays import WorkdayCalendar
from roster.models import DutyRole, Shift

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
                 seed: int | None, min_rest: timedelta | None = None) -> None:
        self.slots, self.pools, self.leave = list(slots), pools, leave
        self.min_rest = min_rest.total_seconds() if min_rest else 0.0
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
        on leave on a day it touches, holding an overlapping or back-to-back shift, or
        resting less than ``min_rest`` before or after it."""
        first, last = self.days[slot.key]
        for a, b in self.leave.get(pid, ()):
            if a <= last and b >= first:
                return None
        rest = float("inf")
        for a, b, _ in self._near(pid, slot):
            if a <= slot.ends_at and b >= slot.starts_at:
                return None
            rest = min(rest, ((a - slot.ends_at) if a >= slot.ends_at else (slot.starts_at - b)).total_seconds())
        return rest if rest >= self.min_rest else None

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
           carried: Mapping[int, Tally] | None = None, seed: int | None = None,
           min_rest: timedelta | None = None) -> Rotation:
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
        min_rest: the least rest between two of a person's shifts (None: any gap).

    Returns:
        The picks, the shifts it could not fill, and each person's counts in ``slots``.
    """
    names = {c.person_id: c.name for c in (*officers, *leaders)}
    pools = {DutyRole.leader: [c.person_id for c in leaders], DutyRole.officer: [c.person_id for c in officers]}
    args = (slots, pools, names, busy or {}, leave or {}, carried or {}, seed, min_rest)
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
