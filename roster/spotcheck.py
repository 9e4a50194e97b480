"""Spot-checks (抽查, DUTY-4): the district office asks a unit's officer on duty to confirm.

``start_check`` finds the unit's officer(s) on duty per the published roster and asks
them to confirm within ``[roster] spotcheck_confirm_minutes`` (a due item
``spotcheck:<id>``). Whoever of them confirms first closes the check; the admin who
asked hears the result either way, and a missed check (nobody confirmed, or nobody of
the unit was on duty) also goes to the unit's leader on duty — what the district office
finds is notified to the host unit at once (liangping 第二十一条). Every check is a
``spot_check`` row and every change an audit event (entity ``spot_check``).

A check drawn in advance (``roster.spotcheck_plan``) starts with no requester: the unit
is told the district office checks, and the admins hear of a failed one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, select

from core import audit, schedule
from core.clock import ensure_utc, fmt_short_zh, local
from core.errors import DutybotError, InputError, NotFound, PermissionDenied
from core.messages import Button, Outbound, duration_zh
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import DueItem
from people.models import Person, Role
from people.service import people_with_role
from roster.models import SpotCheck, SpotCheckStatus
from roster.service import leaders_at, officers_at

KIND = "roster.spotcheck"
MAX_UNIT = 100
STATUS_ZH = {SpotCheckStatus.pending: "待确认", SpotCheckStatus.confirmed: "已确认在岗",
             SpotCheckStatus.missed: "未通过"}


class SpotCheckNotFound(NotFound):
    def __init__(self, check_id: int | None) -> None:
        super().__init__(f"没有找到抽查 {check_id}。" if check_id is not None
                         else "您所在单位当前没有待确认的在岗抽查。")
        self.check_id = check_id


class Registry(Protocol):
    """The part of ``bot.scheduler.Scheduler`` used here."""

    def register(self, kind: str, fn: Any) -> None: ...


@dataclass
class Started:
    """What :func:`start_check` did."""

    check: SpotCheck
    officers: list[Person] = field(default_factory=list)   # asked to confirm
    leaders: list[Person] = field(default_factory=list)    # told at once (nobody on duty)


def ref_of(check: SpotCheck) -> str:
    return f"spotcheck:{check.id}"


def _basis(profile: Profile) -> str:
    return profile.basis("DUTY-4")


def send(session: Session, people: list[Person], text: str, *, event: str, now: datetime,
         buttons: tuple[Button, ...] = ()) -> None:
    """Queue ``text`` for each of ``people``."""
    for person in people:
        enqueue(session=session, message=Outbound(text, person_id=person.id, buttons=buttons),
                now=now, event_key=event)


def known_units(session: Session) -> list[str]:
    """Units of active people, sorted."""
    units = session.exec(select(Person.unit).where(Person.active == True, Person.unit != "")).all()  # noqa: E712
    return sorted(set(units))


def units_on_duty(session: Session, at: datetime) -> list[str]:
    """Units that have an officer on duty at ``at``, sorted."""
    return sorted({p.unit for p in officers_at(session=session, at=at) if p.unit})


def rng_for(seed: str, at: datetime) -> random.Random:
    """The generator ``/spotcheck random`` uses: reproducible from the seed and the instant."""
    return random.Random(f"{seed}|spotcheck|{ensure_utc(at).isoformat()}")


def pick_unit(session: Session, at: datetime, rng: random.Random) -> str:
    """A unit chosen with ``rng`` among those with an officer on duty.

    Raises:
        DutybotError: nobody is on duty.
    """
    units = units_on_duty(session, at)
    if not units:
        raise DutybotError("按值班表，当前没有任何单位的值班员在岗，无法随机抽查。")
    return rng.choice(units)


def unit_leaders(session: Session, unit: str, at: datetime) -> list[Person]:
    """The unit's leader(s) on duty at ``at``; without one, the unit's leaders."""
    on_duty = [p for p in leaders_at(session=session, at=at) if p.unit == unit]
    return on_duty or [p for p in people_with_role(session=session, role=Role.leader) if p.unit == unit]


def _names(people: list[Person]) -> str:
    return "、".join(p.name for p in people) or "无"


def start_check(*, session: Session, unit: str, requester: Person | None, now: datetime, confirm: timedelta,
                profile: Profile, actor: str) -> Started:
    """Spot-check ``unit``: ask its officer(s) on duty to confirm within ``confirm``
    (``requester`` None: a check drawn in advance, ``roster.spotcheck_plan``).

    Raises:
        InputError: no active person belongs to ``unit`` (likely a typo).
    """
    unit = unit.strip()
    if not unit or len(unit) > MAX_UNIT:
        raise InputError(f"请写明被抽查的单位（1–{MAX_UNIT} 字）。")
    units = known_units(session)
    if unit not in units:
        raise InputError(f"没有单位“{unit}”的在册人员（已登记的单位：{'、'.join(units) or '无'}）。")
    officers = [p for p in officers_at(session=session, at=now) if p.unit == unit]
    office = f"区政府办公室（{requester.name}）" if requester is not None else "区政府办公室"
    check = SpotCheck(unit=unit, requested_by_id=requester.id if requester is not None else None,
                      person_id=officers[0].id if officers else None,
                      asked_at=now, due_at=now + confirm if officers else now,
                      status=SpotCheckStatus.pending if officers else SpotCheckStatus.missed,
                      note=f"抽查对象：{_names(officers)}" if officers else "抽查时该单位无值班员在岗（按值班表）")
    session.add(check)
    session.flush()
    started = Started(check, officers)
    if officers:
        send(session, officers,
             f"【在岗抽查】{office}正在抽查{unit}值班读网在岗情况（抽查编号 {check.id}）。\n"
             f"请在 {local(check.due_at):%H:%M} 前（{duration_zh(confirm)}内）确认在岗：/spotcheck confirm {check.id}\n"
             f"{_basis(profile)}",
             event=f"{ref_of(check)}:ask", now=now, buttons=(Button("确认在岗", f"/spotcheck confirm {check.id}"),))
        schedule.schedule(session=session, key=ref_of(check), kind=KIND, ref=ref_of(check), due_at=check.due_at,
                          now=now)
        zh = f"抽查{unit}在岗情况：请 {_names(officers)} 在 {fmt_short_zh(check.due_at)} 前确认"
    else:
        started.leaders = unit_leaders(session, unit, now)
        send(session, started.leaders,
             f"【抽查未通过】{office}于 {local(now):%H:%M} 抽查{unit}值班读网在岗情况："
             f"按值班表，本单位当前无值班员在岗（抽查编号 {check.id}）。\n请立即安排人员在岗读网。\n{_basis(profile)}",
             event=f"{ref_of(check)}:missed", now=now)
        zh = f"抽查{unit}在岗情况：无值班员在岗，抽查未通过；已通知 {_names(started.leaders)}"
    audit.record(session=session, at=now, entity_type="spot_check", entity_id=check.id or 0, action="started",
                 actor=actor, actor_id=check.requested_by_id, to_state=check.status, zh=zh, unit=unit,
                 officers=[p.name for p in officers])
    return started


def get_check(*, session: Session, check_id: int) -> SpotCheck:
    check = session.get(SpotCheck, check_id)
    if check is None:
        raise SpotCheckNotFound(check_id)
    return check


def waiting_for(*, session: Session, person: Person) -> SpotCheck:
    """The newest pending check of ``person``'s unit.

    Raises:
        SpotCheckNotFound: none is waiting.
    """
    check = session.exec(select(SpotCheck).where(SpotCheck.unit == person.unit,
                                                 SpotCheck.status == SpotCheckStatus.pending)
                         .order_by(col(SpotCheck.asked_at).desc(), col(SpotCheck.id).desc())).first()
    if check is None or not person.unit:
        raise SpotCheckNotFound(None)
    return check


def taken_zh(check: SpotCheck) -> str:
    """``用时3分钟``, ``用时1小时5分钟`` (or ``用时不到1分钟``)."""
    assert check.confirmed_at is not None
    return f"用时{duration_zh(ensure_utc(check.confirmed_at) - ensure_utc(check.asked_at))}"


def confirm(*, session: Session, check: SpotCheck, person: Person, now: datetime, actor: str) -> SpotCheck:
    """``person`` confirms being on duty; the admin who asked is told.

    Raises:
        PermissionDenied: ``person`` is not of the checked unit.
        DutybotError: the check was already confirmed or has timed out.
    """
    if person.unit != check.unit:
        raise PermissionDenied(f"抽查 {check.id} 针对{check.unit}，您（{person.unit or '未登记单位'}）无需确认。")
    if check.status == SpotCheckStatus.confirmed:
        raise DutybotError(f"抽查 {check.id} 已于 {fmt_short_zh(check.confirmed_at or now)} 确认，无需重复确认。")
    if check.status == SpotCheckStatus.missed:
        raise DutybotError(f"抽查 {check.id} 已超时（应在 {fmt_short_zh(check.due_at)} 前确认），"
                           "已记为未通过并通报。请保持在岗读网。")
    check.status, check.confirmed_at, check.person_id = SpotCheckStatus.confirmed, now, person.id
    session.add(check)
    schedule.cancel_for(session=session, ref=ref_of(check))
    audit.record(session=session, at=now, entity_type="spot_check", entity_id=check.id or 0, action="confirmed",
                 actor=actor, actor_id=person.id, from_state=SpotCheckStatus.pending,
                 to_state=SpotCheckStatus.confirmed, zh=f"{person.name} 确认在岗（{taken_zh(check)}）")
    requester = session.get(Person, check.requested_by_id) if check.requested_by_id else None
    if requester is not None and requester.active:
        send(session, [requester],
             f"【抽查结果】{check.unit}（抽查编号 {check.id}）：{person.name} 于 {local(now):%H:%M} 确认在岗，{taken_zh(check)}。",
             event=f"{ref_of(check)}:confirmed", now=now)
    return check


class SpotCheckTimeout:
    """The ``roster.spotcheck`` processor: nobody confirmed in time."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def __call__(self, session: Session, due: DueItem, now: datetime) -> None:
        check = session.get(SpotCheck, int(due.ref.removeprefix("spotcheck:")))
        if check is None or check.status != SpotCheckStatus.pending:
            return
        check.status = SpotCheckStatus.missed
        session.add(check)
        asked = check.note.removeprefix("抽查对象：")
        requester = session.get(Person, check.requested_by_id) if check.requested_by_id else None
        window = duration_zh(ensure_utc(check.due_at) - ensure_utc(check.asked_at))
        # A check drawn in advance has no requester: its result goes to the admins.
        told = [requester] if requester is not None else people_with_role(session=session, role=Role.admin)
        if requester is None or requester.active:
            send(session, told,
                 f"【抽查结果】{check.unit}（抽查编号 {check.id}）：值班员 {asked} 未在{window}内确认在岗，抽查未通过。"
                 f"已通知该单位带班领导。",
                 event=f"{ref_of(check)}:result", now=now)
        leaders = unit_leaders(session, check.unit, check.asked_at)
        send(session, leaders,
             f"【抽查未通过】区政府办公室于 {fmt_short_zh(check.asked_at)} 抽查{check.unit}值班读网在岗情况，"
             f"值班员 {asked} 未在{window}内确认（抽查编号 {check.id}）。\n请核实情况并督促在岗读网。\n"
             f"{_basis(self.profile)}",
             event=f"{ref_of(check)}:missed", now=now)
        audit.record(session=session, at=now, entity_type="spot_check", entity_id=check.id or 0, action="missed",
                     from_state=SpotCheckStatus.pending, to_state=SpotCheckStatus.missed,
                     zh=f"{asked} 未在{window}内确认在岗，抽查未通过；已通知 {_names(leaders)}")


def register_spotchecks(scheduler: Registry, *, profile: Profile) -> None:
    """Register the spot-check timeout processor."""
    scheduler.register(KIND, SpotCheckTimeout(profile))


def recent_checks(*, session: Session, limit: int = 10) -> list[SpotCheck]:
    return list(session.exec(select(SpotCheck).order_by(col(SpotCheck.asked_at).desc(), col(SpotCheck.id).desc())
                             .limit(limit)))


def check_line(session: Session, check: SpotCheck) -> str:
    """``#12 11月23日 10:00｜区教育局｜已确认在岗（王芳，用时3分钟）``."""
    state = STATUS_ZH[SpotCheckStatus(check.status)]
    if check.status == SpotCheckStatus.confirmed:
        who = session.get(Person, check.person_id) if check.person_id else None
        state += f"（{who.name if who else '—'}，{taken_zh(check)}）"
    elif check.status == SpotCheckStatus.missed:
        asked = check.note.startswith("抽查对象：")
        state += f"（{check.note.removeprefix('抽查对象：')}未确认）" if asked else "（无值班员在岗）"
    else:
        state += f"（{local(check.due_at):%H:%M} 前）"
    return f"{check.id}｜{fmt_short_zh(check.asked_at)}｜{check.unit}｜{state}"
