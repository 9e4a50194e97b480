"""Filling a gap on the roster: ``/assign 日期 班次 人员 [值班员|带班领导]`` (DUTY-1).

:func:`fill` puts a person on a shift — published or draft — that still lacks people in
that duty role (source ``assign``). A shift the patterns plan but nobody rostered (the gap
warning's "整个班次未排班") is created, published, on the way. It refuses, with the reason
in Chinese (:class:`AssignRefused`):

- a person who is not active, or has neither duty role (or not the one asked for);
- an officer not yet trained on the shift's day, where the profile states STAFF-1
  (先培训后上岗, ``roster.training``): unlike a swap or a substitution, nobody is displaced
  by waiting, and the gap warning keeps reminding;
- a shift that does not exist on that day, has ended, or is already full in that role;
- a person already on the shift, on another shift at that time, or on leave;
- a change that breaks a rest rule (``roster.rest``), unless an admin gives a reason.

:func:`fill_command` is the command the gap warnings (``roster.gaps``) print for a gap.
Functions work in the caller's transaction; every change is audited (entity ``shift``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, select

from core import audit
from core.clock import fmt_date_zh
from core.errors import DutybotError, InputError
from core.profiles import Profile
from core.workdays import WorkdayCalendar
from people.models import Person
from roster import training
from roster.holders import PERSON_ROLE, conflict, roles_on
from roster.models import DUTY_ROLE_ZH, DutyRole, Shift
from roster.patterns import ShiftPatterns
from roster.rest import Change, Override, RestRules, RestViolation, enforce
from roster.service import Gap, ShiftView, assign, label, views

SOURCE = "assign"
ROLE_WORDS = {"值班员": DutyRole.officer, "officer": DutyRole.officer, "带班领导": DutyRole.leader,
              "带班": DutyRole.leader, "领导": DutyRole.leader, "leader": DutyRole.leader}


class AssignRefused(DutybotError):
    """The gap cannot be filled this way; the message says why."""


@dataclass
class Filled:
    """What :func:`fill` did."""

    shift: Shift
    person: Person
    role: DutyRole
    overridden: list[RestViolation] = field(default_factory=list)
    still_missing: list[str] = field(default_factory=list)


def fill_command(gap: Gap) -> str:
    """``/assign 10-10 夜班 姓名 带班领导``: the command that fills ``gap`` (the role is
    named when only one is missing)."""
    officers = any(m.startswith("值班员") for m in gap.missing)
    leader = "带班领导" in gap.missing
    role = " 值班员" if officers and not leader else (" 带班领导" if leader and not officers else "")
    return f"/assign {gap.day.month}-{gap.day.day} {gap.shift_name} 姓名{role}"


def target_shift(*, session: Session, calendar: WorkdayCalendar, patterns: ShiftPatterns, day: date,
                 name: str, now: datetime, actor: str) -> tuple[Shift, int, bool]:
    """The shift ``name`` of ``day`` (created, published, where the patterns plan it but
    nothing is rostered), the officers it needs, and whether it was created.

    Raises:
        AssignRefused: ``day`` has no such shift.
    """
    plans = patterns.for_day(day, calendar)
    plan = next((p for p in plans if p.name == name), None)
    need = plan.officers if plan is not None else 1
    stored = session.exec(select(Shift).where(Shift.day == day, Shift.name == name)).first()
    if stored is not None:
        return stored, need, False
    if plan is None:
        names = "、".join(p.name for p in plans)
        raise AssignRefused(f"{fmt_date_zh(day)}没有“{name}”（当天班次：{names}）。")
    shift = Shift(day=day, name=name, pattern=plan.pattern, starts_at=plan.starts_at, ends_at=plan.ends_at,
                  provisional=plan.provisional, published=True, created_at=now)
    session.add(shift)
    session.flush()
    assert shift.id is not None
    audit.record(session=session, at=now, entity_type="shift", entity_id=shift.id, action="created", actor=actor,
                 zh=f"补排班次：{label(shift)}")
    return shift, need, True


def _missing(view: ShiftView, role: DutyRole, need: int) -> int:
    have = [p for p in view.people(role) if p.active]
    return max(0, (need if role == DutyRole.officer else 1) - len(have))


def _role(person: Person, view: ShiftView, need: int, asked: DutyRole | None) -> DutyRole:
    mine = [r for r in (DutyRole.officer, DutyRole.leader) if PERSON_ROLE[r] in person.role_set()]
    if asked is not None:
        if asked not in mine:
            raise AssignRefused(f"{person.name} 不是{DUTY_ROLE_ZH[asked]}，不能担任{DUTY_ROLE_ZH[asked]}。")
        return asked
    if not mine:
        raise AssignRefused(f"{person.name} 既不是值班员也不是带班领导，不能排班。")
    if len(mine) == 1:
        return mine[0]
    short = [r for r in mine if _missing(view, r, need)]
    if len(short) == 1:
        return short[0]
    raise InputError(f"{person.name} 既是值班员又是带班领导，请写明角色（值班员 或 带班领导）。")


def still_missing(view: ShiftView, need: int) -> list[str]:
    """``值班员（差 1 人）``, ``带班领导``: what the shift still lacks."""
    out = []
    officers = _missing(view, DutyRole.officer, need)
    if officers:
        out.append(f"值班员（差 {officers} 人）")
    if _missing(view, DutyRole.leader, need):
        out.append("带班领导")
    return out


def fill(*, session: Session, shift: Shift, need: int, person: Person, role: DutyRole | None, now: datetime,
         actor: str, rules: RestRules, override: Override | None, profile: Profile | None,
         hint: str = "") -> Filled:
    """Put ``person`` on ``shift`` as ``role`` (None: their one duty role, or the one missing).

    Args:
        need: the officers the shift needs (its pattern's ``officers``).
        override: an admin's reason for breaking a rest rule (None: refused).
        hint: what a rest refusal adds (how an admin overrides).

    Raises:
        AssignRefused: see the module docstring.
        InputError: the person has both duty roles and both are missing: which one is a guess.
        RestRefused: a rest rule is broken and there is no override.
        PermissionDenied: the override is not an admin's.
    """
    if not person.active:
        raise AssignRefused(f"{person.name} 已停用，不能排班。")
    if shift.ends_at <= now:
        raise AssignRefused(f"{label(shift)}已经结束，不能再补位。")
    view = views(session, [shift])[0]
    held = roles_on(session, shift, person)
    if held:
        raise AssignRefused(f"{person.name} 已在{label(shift)}担任{DUTY_ROLE_ZH[held[0]]}。")
    role = _role(person, view, need, role)
    role_zh = DUTY_ROLE_ZH[role]
    if not _missing(view, role, need):
        who = "、".join(p.name for p in view.people(role) if p.active)
        raise AssignRefused(f"{label(shift)}的{role_zh}已排满（{who}），无需补位。如需换人，请用 /substitute。")
    if role == DutyRole.officer and training.required(profile) and not training.trained_for(person, shift.day):
        assert profile is not None
        raise AssignRefused(f"{person.name} 尚未登记培训（须在 {shift.day.isoformat()} 前完成），不能安排为值班员。"
                            f"{profile.basis(training.RULE)}。{training.HINT}")
    busy = conflict(session, person=person, shift=shift)
    if busy:
        raise AssignRefused(busy[0] + "，不能补位。")
    overridden = enforce(session, [Change(person, (shift,))], rules=rules, override=override, now=now,
                         actor=actor, how="补位", hint=hint)
    assign(session=session, shift=shift, person=person, role=role, source=SOURCE, now=now, actor=actor)
    return Filled(shift, person, role, overridden=overridden,
                  still_missing=still_missing(views(session, [shift])[0], need))


def parse_role(word: str) -> DutyRole | None:
    """``值班员`` / ``带班领导`` (and a few synonyms), else None."""
    return ROLE_WORDS.get(word.strip().lower())
