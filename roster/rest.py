"""Rest rules on the roster: how long a person may be on duty without a break, and how
long they rest between two stretches of duty.

These are the office's own settings (``[roster] max_continuous_hours``, default 24, and
``min_rest_hours``, default 8; 0 switches a rule off). None of the five regulations in
DOMAIN.md sets working or rest hours for duty staff, so no article is cited: messages say
"本单位规定".

A person's *stretch* is a run of their shifts (either duty role) each starting no later
than the previous one ends: back-to-back shifts (a night shift and the next morning's day
shift) are one continuous stretch. The rules:

- a stretch lasts at most ``max_continuous``;
- between two stretches the person rests at least ``min_rest``.

:func:`violations` checks a change for one person (shifts taken on, shifts given away)
and reports only what the change causes, so a roster that was already broken does not
block an unrelated fix. Published shifts always count; draft shifts count when the change
itself is to a draft. Swaps (``roster.changes``), substitutions (``roster.substitute``)
and ``/assign`` (``roster.assign``) call :func:`enforce`: a change that breaks a rule is
refused (:class:`RestRefused`), unless an admin gives a reason (:class:`Override`); the
reason is written to the audit log (entity ``shift``, action :data:`OVERRIDE_ACTION`),
where ``dutybot roster log`` shows it (:func:`overrides_between`). Generation
(``roster.rotation``) never rosters a person back-to-back and keeps ``min_rest``.

Functions work in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from sqlmodel import Session, col, select

from core import audit
from core.audit import AuditEvent
from core.clock import fmt_short_zh, local
from core.errors import DutybotError, PermissionDenied
from people.models import Person, Role
from roster.models import Shift, ShiftAssignment
from roster.service import label

OVERRIDE_ACTION = "rest_override"
CONTINUOUS = "continuous"
REST = "rest"
MAX_REASON = 200


class RestSettings(Protocol):
    """What :meth:`RestRules.from_settings` reads from ``[roster]``."""

    @property
    def max_continuous_hours(self) -> int: ...
    @property
    def min_rest_hours(self) -> int: ...


@dataclass(frozen=True)
class RestRules:
    """The office's rest rules; None switches one off."""

    max_continuous: timedelta | None = timedelta(hours=24)
    min_rest: timedelta | None = timedelta(hours=8)

    @classmethod
    def from_settings(cls, roster: RestSettings) -> RestRules:
        return cls(timedelta(hours=roster.max_continuous_hours) if roster.max_continuous_hours else None,
                   timedelta(hours=roster.min_rest_hours) if roster.min_rest_hours else None)

    @property
    def active(self) -> bool:
        return self.max_continuous is not None or self.min_rest is not None


NO_RULES = RestRules(None, None)


def hours_zh(span: timedelta) -> str:
    """``48小时``, ``7小时30分钟`` (hours, never days: the rules are in hours)."""
    minutes = max(0, int(span.total_seconds() // 60))
    hours, mins = divmod(minutes, 60)
    if not hours:
        return f"{mins}分钟"
    return f"{hours}小时" + (f"{mins}分钟" if mins else "")


def moment_zh(instant: datetime) -> str:
    """``10月1日08:30`` (Asia/Shanghai)."""
    loc = local(instant)
    return f"{loc.month}月{loc.day}日{loc:%H:%M}"


@dataclass(frozen=True)
class RestViolation:
    """One rule a change breaks for one person: a stretch too long, or a rest too short."""

    person: Person
    kind: str              # CONTINUOUS or REST
    start: datetime        # the stretch, or the rest between two stretches
    end: datetime
    limit: timedelta
    shift: Shift           # the shift taken on that causes it

    def zh(self) -> str:
        """``王芳将连续值班48小时（10月1日08:30至10月3日08:30），超过本单位规定的24小时``."""
        span = f"（{moment_zh(self.start)}至{moment_zh(self.end)}）"
        if self.kind == CONTINUOUS:
            return (f"{self.person.name}将连续值班{hours_zh(self.end - self.start)}{span}，"
                    f"超过本单位规定的{hours_zh(self.limit)}")
        return (f"{self.person.name}两班之间只能休息{hours_zh(self.end - self.start)}{span}，"
                f"少于本单位规定的{hours_zh(self.limit)}")


@dataclass(frozen=True)
class Change:
    """What one person takes on and gives away in a change."""

    person: Person
    adding: tuple[Shift, ...]
    removing: tuple[int | None, ...] = ()


@dataclass
class _Stretch:
    """Back-to-back shifts of one person; ``cause``: the first shift taken on in it."""

    start: datetime
    end: datetime
    cause: Shift | None


def _held(session: Session, person: Person, start: datetime, end: datetime, drafts: bool) -> list[Shift]:
    stmt = (select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
            .where(ShiftAssignment.person_id == person.id, col(Shift.ends_at) > start, col(Shift.starts_at) < end))
    if not drafts:
        stmt = stmt.where(Shift.published == True)  # noqa: E712
    return list({s.id: s for s in session.exec(stmt)}.values())


def violations(session: Session, *, person: Person, adding: Sequence[Shift], rules: RestRules,
               removing: Collection[int | None] = ()) -> list[RestViolation]:
    """The rules ``person`` would break by taking on ``adding`` and giving away ``removing``
    (shift ids); only stretches and rests that touch a shift taken on are reported."""
    if not rules.active or not adding:
        return []
    margin = (rules.max_continuous or timedelta()) + (rules.min_rest or timedelta()) + timedelta(days=1)
    lo, hi = min(s.starts_at for s in adding) - margin, max(s.ends_at for s in adding) + margin
    added = {s.id: s for s in adding}
    drafts = any(not s.published for s in adding)
    kept = [s for s in _held(session, person, lo, hi, drafts) if s.id not in added and s.id not in removing]
    stretches: list[_Stretch] = []
    for shift in sorted([*kept, *added.values()], key=lambda s: (s.starts_at, s.ends_at)):
        mine = shift if shift.id in added else None
        if stretches and shift.starts_at <= stretches[-1].end:
            last = stretches[-1]
            last.end, last.cause = max(last.end, shift.ends_at), last.cause or mine
        else:
            stretches.append(_Stretch(shift.starts_at, shift.ends_at, mine))
    out = []
    for here, after in zip(stretches, [*stretches[1:], None], strict=True):
        if (here.cause is not None and rules.max_continuous is not None
                and here.end - here.start > rules.max_continuous):
            out.append(RestViolation(person, CONTINUOUS, here.start, here.end, rules.max_continuous, here.cause))
        if after is None or rules.min_rest is None:
            continue
        cause = here.cause or after.cause
        if cause is not None and after.start - here.end < rules.min_rest:
            out.append(RestViolation(person, REST, here.end, after.start, rules.min_rest, cause))
    return out


@dataclass(frozen=True)
class Override:
    """An admin's decision to make a change that breaks a rest rule, and why."""

    by: Person
    reason: str


class RestRefused(DutybotError):
    """A change breaks a rest rule; the message says which, and how an admin may still make it."""

    def __init__(self, found: Sequence[RestViolation], hint: str = "") -> None:
        lines = [f"不能安排：{v.zh()}。" for v in found]
        super().__init__("\n".join(lines + ([hint] if hint else [])))
        self.violations = list(found)


def check_all(session: Session, changes: Sequence[Change], rules: RestRules) -> list[RestViolation]:
    """The violations of every person's part of one change."""
    return [v for c in changes for v in violations(session, person=c.person, adding=c.adding, rules=rules,
                                                   removing=c.removing)]


def enforce(session: Session, changes: Sequence[Change], *, rules: RestRules, override: Override | None,
            now: datetime, actor: str, how: str, hint: str = "") -> list[RestViolation]:
    """Refuse a change that breaks a rest rule, unless an admin overrides it with a reason.

    Returns:
        The violations overridden (recorded in the audit log); [] when the change is fine.

    Raises:
        RestRefused: a rule is broken and there is no override (``hint`` tells how to give one).
        PermissionDenied: the override is not an admin's, or gives no reason.
    """
    found = check_all(session, changes, rules)
    if not found:
        return []
    if override is None:
        raise RestRefused(found, hint)
    if Role.admin not in override.by.role_set():
        raise PermissionDenied("\n".join([*(f"{v.zh()}。" for v in found),
                                          "不符合休息规定的安排只能由管理员说明理由后放行。"]))
    reason = override.reason.strip()
    if not reason:
        raise PermissionDenied("请写明放行的理由，如：理由：人手不足。")
    record_override(session, found, reason=reason[:MAX_REASON], now=now, actor=actor, actor_id=override.by.id,
                    how=how)
    return found


def record_override(session: Session, found: Sequence[RestViolation], *, reason: str, now: datetime,
                    actor: str, actor_id: int | None, how: str) -> None:
    """One audit event (entity ``shift``) per rule an admin let a change break."""
    for v in found:
        audit.record(session=session, at=now, entity_type="shift", entity_id=v.shift.id or 0,
                     action=OVERRIDE_ACTION, actor=actor, actor_id=actor_id, person=v.person.name, rule=v.kind,
                     limit_hours=v.limit.total_seconds() / 3600, reason=reason, how=how,
                     zh=f"{label(v.shift)}：{v.zh()}；{actor} 说明理由后放行（{how}）：{reason}")


def overrides_between(session: Session, start: date, end: date) -> list[AuditEvent]:
    """The rest-rule overrides of the shifts of duty days ``start``..``end``, in order."""
    ids = [str(i) for i in session.exec(select(Shift.id).where(col(Shift.day) >= start, col(Shift.day) <= end))]
    if not ids:
        return []
    return list(session.exec(select(AuditEvent).where(
        AuditEvent.entity_type == "shift", AuditEvent.action == OVERRIDE_ACTION,
        col(AuditEvent.entity_id).in_(ids)).order_by(col(AuditEvent.at), col(AuditEvent.id))))


def override_line(event: AuditEvent) -> str:
    """``10月3日 09:12 张伟：…``: an override as the roster log shows it."""
    return f"{fmt_short_zh(event.at)} {event.actor_zh()}：{event.details().get('zh', '')}"


def exchange(shift: Shift, back: Shift | None, requester: Person, target: Person) -> list[Change]:
    """A swap as changes: ``target`` takes ``shift`` (giving ``back``), ``requester`` the reverse."""
    out = [Change(target, (shift,), (back.id,) if back is not None else ())]
    if back is not None:
        out.append(Change(requester, (back,), (shift.id,)))
    return out
