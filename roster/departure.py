"""A person leaves the roster (deactivated): their future shifts, swap requests and sites.

* Their assignments to shifts that start after now (published or draft) are removed; the
  shift they may be holding right now is left as it is (a handover mid-shift is the
  leader's call: ``/substitute``). The published shifts left short are the gaps
  (:func:`gaps_of`) that ``roster.gaps.announce_gaps`` reports at once.
* Their open swap requests (as requester or as the other person) are cancelled and the
  people involved told: the shift they concern is no longer theirs to give or take.
* The sites they are the 技术保障 of go to the receiver when the receiver is a 技术保障,
  else the site's own 技术保障 is cleared and the unit's are pinged (``roster.sites``).

Functions work in the caller's transaction; every change is audited by the functions they
reuse (``roster.service.unassign``, ``roster.changes.cancel``, ``roster.sites.set_support``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.changes import OPEN, affected, approvers, cancel, describe_swap, notify, parts
from roster.models import DutyRole, Shift, ShiftAssignment, Site, SwapRequest, SwapStatus
from roster.patterns import ShiftPatterns
from roster.service import Gap, find_gaps, unassign
from roster.sites import set_support


@dataclass(frozen=True)
class Removed:
    """One assignment taken off a future shift."""

    shift: Shift
    role: DutyRole


def future_assignments(*, session: Session, person: Person, now: datetime) -> list[tuple[ShiftAssignment, Shift]]:
    """``person``'s assignments to shifts starting after ``now``, earliest first."""
    rows = session.exec(select(ShiftAssignment, Shift).join(Shift, col(Shift.id) == ShiftAssignment.shift_id)
                        .where(ShiftAssignment.person_id == person.id, col(Shift.starts_at) > now)
                        .order_by(col(Shift.starts_at), col(ShiftAssignment.id))).all()
    return [(a, s) for a, s in rows]


def current_shifts(*, session: Session, person: Person, now: datetime) -> list[Shift]:
    """The published shift(s) ``person`` holds that are running at ``now``."""
    rows = session.exec(select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
                        .where(ShiftAssignment.person_id == person.id, col(Shift.starts_at) <= now,
                               col(Shift.ends_at) > now, Shift.published == True)  # noqa: E712
                        .order_by(col(Shift.starts_at))).all()
    return list({s.id: s for s in rows}.values())


def remove_future(*, session: Session, person: Person, now: datetime, actor: str, why: str) -> list[Removed]:
    """Take ``person`` off every shift that starts after ``now``."""
    removed = []
    for assignment, shift in future_assignments(session=session, person=person, now=now):
        role = DutyRole(assignment.role)
        if unassign(session=session, shift=shift, person=person, role=role, now=now, actor=actor, why=why):
            removed.append(Removed(shift, role))
    session.flush()
    return removed


def gaps_of(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns,
            shifts: list[Shift]) -> list[Gap]:
    """The gaps among ``shifts`` (published ones only: a draft is not the roster yet)."""
    wanted = {(s.day, s.name) for s in shifts if s.published}
    gaps: list[Gap] = []
    for day in sorted({day for day, _ in wanted}):
        gaps += [g for g in find_gaps(session=session, calendar=calendar, patterns=patterns, start=day, end=day)
                 if (g.day, g.shift_name) in wanted]
    return gaps


def open_swaps(*, session: Session, person: Person) -> list[SwapRequest]:
    """Open swap requests ``person`` made or was asked to answer, oldest first."""
    return list(session.exec(select(SwapRequest).where(
        col(SwapRequest.status).in_(list(OPEN)),
        (SwapRequest.requester_id == person.id) | (SwapRequest.target_id == person.id))
        .order_by(col(SwapRequest.id))))


def cancel_swaps(*, session: Session, person: Person, now: datetime, actor: str) -> list[SwapRequest]:
    """Cancel ``person``'s open swap requests and tell the others involved (the approvers
    too, for a request waiting for approval)."""
    cancelled = []
    for swap in open_swaps(session=session, person=person):
        waiting_approval = swap.status == SwapStatus.accepted
        why = f"{person.name} 已停用"
        cancel(session=session, swap=swap, why=why, now=now, actor=actor)
        _, _, requester, target = parts(session, swap)
        others = [p for p in (requester, target) if p.id != person.id]
        others += approvers(session, swap) if waiting_approval else []
        notify(session, affected(session, [], *others),
               f"【换班取消】{describe_swap(session, swap)}\n{why}，申请自动取消，值班安排以管理员调整为准。",
               event=f"swap:{swap.id}:departed", now=now)
        cancelled.append(swap)
    return cancelled


def supported_sites(*, session: Session, person: Person) -> list[Site]:
    """The active sites whose own 技术保障 is ``person``."""
    return list(session.exec(select(Site).where(Site.support_id == person.id, Site.active == True)  # noqa: E712
                             .order_by(col(Site.unit), col(Site.name))))


def hand_over_sites(*, session: Session, person: Person, receiver: Person | None, now: datetime,
                    actor: str) -> tuple[list[Site], bool]:
    """Give ``person``'s sites to ``receiver`` when they are a 技术保障, else clear them.

    Returns:
        The sites, and whether they went to the receiver.
    """
    sites = supported_sites(session=session, person=person)
    to = receiver if receiver is not None and Role.support in receiver.role_set() else None
    for site in sites:
        set_support(session=session, name=site.name, unit=site.unit, person=to, now=now, actor=actor)
    return sites, to is not None
