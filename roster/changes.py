"""Changes to the published roster: swaps between two people.

A swap (``/swap``) moves the requester's shift to another person of the same duty role,
who may give one of their own shifts back (an exchange, ``back_shift_id``)::

    pending ──accept──▶ accepted ──approve──▶ approved   (assignments change, source "swap")
       │                   │
       ├─decline─▶ declined └─reject─▶ rejected
       └─(withdrawn, shift started, no longer valid)─▶ cancelled

``accepted`` is skipped when the request was made without ``needs_approval``
(``roster.swap_needs_approval``). Every step re-checks the request (the shift has not
started, the requester still holds it, the other person is still free); one that no
longer holds is cancelled, never applied. A due item (``roster.swap_expire``) cancels an
open request when its shift starts. A swap that would break a rest rule (``roster.rest``)
always waits for approval, and only an admin may approve it, giving a reason
(``/swap approve N 理由：…``), which the audit log keeps.

Substitutions by admins (``/substitute``) are in ``roster.substitute``; the checks both
share (who holds a shift, who is free) in ``roster.holders``.

Functions work in the caller's transaction; every change is audited (entity ``swap``,
and ``shift`` for the assignments) and every message goes through the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from core import audit, schedule
from core.errors import NotFound, PermissionDenied
from core.messages import Button, Outbound
from core.outbox import enqueue
from core.schedule import DueItem
from people.models import Person, Role
from people.service import people_with_role
from roster import rest as restrules
from roster.holders import PERSON_ROLE, SwapRefused, conflict, holder_role, roles_on
from roster.models import (
    DUTY_ROLE_ZH,
    SWAP_STATUS_ZH,
    DutyRole,
    Shift,
    SwapRequest,
    SwapStatus,
)
from roster.service import assign, label, unassign, views

EXPIRE_KIND = "roster.swap_expire"
OPEN = frozenset({SwapStatus.pending, SwapStatus.accepted})
EXCHANGE_HINT = "如对方愿意互换，可用：/swap 日期 [班次] 对方 换 日期2 [班次2]"


class SwapNotFound(NotFound):
    """No swap request has this id."""

    def __init__(self, swap_id: int) -> None:
        super().__init__(f"找不到换班申请 #{swap_id}。可用 /swap list 查看待办。")
        self.swap_id = swap_id


@dataclass(frozen=True)
class Outcome:
    """Where a swap stands after an action; ``why`` explains a cancellation."""

    swap: SwapRequest
    status: SwapStatus
    why: str = ""
    broken: tuple[restrules.RestViolation, ...] = ()   # rest rules it breaks (waiting for an admin, or overridden)


# ---------------------------------------------------------------- swap requests

def _problem(session: Session, *, shift: Shift, back_shift: Shift | None, requester: Person,
             target: Person, role: DutyRole, now: datetime) -> str | None:
    """Why this swap cannot (or can no longer) happen, or None."""
    role_zh = DUTY_ROLE_ZH[role]
    for s in (shift, back_shift):
        if s is None:
            continue
        if not s.published:
            return f"{label(s)}尚未发布，不能换班。"
        if s.starts_at <= now:
            return f"{label(s)}已经开始，不能再换班；如需临时调整，请联系管理员替班（/substitute）。"
    if requester.id == target.id:
        return "不能和自己换班。"
    if role not in roles_on(session, shift, requester):
        return f"{requester.name} 已不再担任{label(shift)}的{role_zh}。"
    if not target.active or PERSON_ROLE[role] not in target.role_set():
        return f"{target.name} 不是{role_zh}，不能接替{role_zh}的班次。"
    if roles_on(session, shift, target):
        return f"{target.name} 已在{label(shift)}值班。"
    if back_shift is not None:
        if back_shift.id == shift.id:
            return "换回的班次不能是同一个班次。"
        if role not in roles_on(session, back_shift, target):
            return f"{target.name} 没有担任{label(back_shift)}的{role_zh}，无法换回。"
        if roles_on(session, back_shift, requester):
            return f"{requester.name} 已在{label(back_shift)}值班，无法换回。"
        busy = conflict(session, person=requester, shift=back_shift, ignore={shift.id})
        if busy:
            return f"{busy[0]}，无法换回{label(back_shift)}。"
    busy = conflict(session, person=target, shift=shift, ignore={back_shift.id} if back_shift else ())
    if busy:
        hint = f"。{EXCHANGE_HINT}" if busy[1] is not None and back_shift is None else "。"
        return busy[0] + hint
    return None


def ref_of(swap: SwapRequest) -> str:
    """The due-item ``ref`` of a swap's expiry."""
    return f"swap:{swap.id}"


def get_swap(session: Session, swap_id: int) -> SwapRequest:
    """The swap request ``swap_id``.

    Raises:
        SwapNotFound: there is none.
    """
    # Locked: two people pressing the same button at once must not both apply it.
    swap = session.exec(select(SwapRequest).where(SwapRequest.id == swap_id).with_for_update()).first()
    if swap is None:
        raise SwapNotFound(swap_id)
    return swap


def parts(session: Session, swap: SwapRequest) -> tuple[Shift, Shift | None, Person, Person]:
    """The swap's shift, back shift, requester and target."""
    shift = session.get(Shift, swap.shift_id)
    back = session.get(Shift, swap.back_shift_id) if swap.back_shift_id else None
    requester, target = session.get(Person, swap.requester_id), session.get(Person, swap.target_id)
    assert shift is not None and requester is not None and target is not None
    return shift, back, requester, target


def describe_swap(session: Session, swap: SwapRequest) -> str:
    """``#3 值班员｜王芳 10月9日（星期五）白班 08:30–17:30 → 陈晨；换回 …｜理由：…``."""
    shift, back, requester, target = parts(session, swap)
    text = f"#{swap.id} {DUTY_ROLE_ZH[DutyRole(swap.role)]}｜{requester.name} {label(shift)} → {target.name}"
    if back is not None:
        text += f"；换回：{target.name} {label(back)} → {requester.name}"
    return text + (f"｜理由：{swap.reason}" if swap.reason else "")


def request_swap(*, session: Session, shift: Shift, requester: Person, target: Person,
                 back_shift: Shift | None, reason: str, needs_approval: bool, now: datetime,
                 actor: str, rest: restrules.RestRules = restrules.NO_RULES) -> SwapRequest:
    """Ask ``target`` to take ``requester``'s ``shift`` (and give ``back_shift`` back).

    Raises:
        SwapRefused: the shift has started, the requester holds it in no or both roles,
            the target has another role or is not free, or the requester already has an
            open request for this shift.
    """
    role = holder_role(session, shift, requester, who="您")
    problem = _problem(session, shift=shift, back_shift=back_shift, requester=requester, target=target,
                       role=role, now=now)
    if problem:
        raise SwapRefused(problem)
    existing = session.exec(select(SwapRequest).where(
        SwapRequest.shift_id == shift.id, SwapRequest.requester_id == requester.id,
        col(SwapRequest.status).in_(list(OPEN)))).first()
    if existing is not None:
        raise SwapRefused(f"您已为{label(shift)}提交过换班申请 #{existing.id}（{_status_zh(existing)}），"
                          f"请等待处理，或先撤回：/swap cancel {existing.id}")
    assert requester.id is not None and target.id is not None and shift.id is not None
    # A swap that breaks a rest rule waits for an admin's approval (with a reason).
    changes = restrules.exchange(shift, back_shift, requester, target)
    needs_approval = needs_approval or bool(restrules.check_all(session, changes, rest))
    swap = SwapRequest(requester_id=requester.id, target_id=target.id, shift_id=shift.id,
                       back_shift_id=back_shift.id if back_shift else None, role=role.value,
                       needs_approval=needs_approval, reason=reason.strip()[:200], created_at=now)
    session.add(swap)
    session.flush()
    starts = min(s.starts_at for s in (shift, back_shift) if s is not None)
    schedule.schedule(session=session, key=f"{ref_of(swap)}:expire", kind=EXPIRE_KIND, ref=ref_of(swap),
                      due_at=starts, now=now)
    _audit(session, swap, "requested", now, actor, None, SwapStatus.pending,
           f"申请换班：{describe_swap(session, swap)}")
    return swap


def _status_zh(swap: SwapRequest) -> str:
    return SWAP_STATUS_ZH[SwapStatus(swap.status)]


def _audit(session: Session, swap: SwapRequest, action: str, now: datetime, actor: str,
           old: str | None, new: str, zh: str) -> None:
    audit.record(session=session, at=now, entity_type="swap", entity_id=swap.id or 0, action=action,
                 actor=actor, from_state=old, to_state=new, zh=zh)


def _close(session: Session, swap: SwapRequest, status: SwapStatus, *, by: Person | None, now: datetime,
           actor: str, action: str, zh: str, keep_due: bool = False) -> None:
    old = swap.status
    swap.status, swap.decided_at = status.value, now
    swap.decided_by_id = by.id if by is not None else None
    session.add(swap)
    if not keep_due:
        schedule.cancel_for(session=session, ref=ref_of(swap))
    _audit(session, swap, action, now, actor, old, status.value, zh)


def cancel(*, session: Session, swap: SwapRequest, why: str, now: datetime, actor: str,
           by: Person | None = None, keep_due: bool = False) -> None:
    """End an open request without changing the roster."""
    _close(session, swap, SwapStatus.cancelled, by=by, now=now, actor=actor, action="cancelled",
           zh=f"换班申请 #{swap.id} 取消：{why}", keep_due=keep_due)


def _open(swap: SwapRequest, *wanted: SwapStatus) -> None:
    if swap.status not in wanted:
        raise SwapRefused(f"换班申请 #{swap.id} 当前状态为“{_status_zh(swap)}”，无法办理。")


def _recheck(session: Session, swap: SwapRequest, now: datetime, actor: str) -> str | None:
    """Cancel ``swap`` when it no longer holds; the reason, or None when it still does."""
    shift, back, requester, target = parts(session, swap)
    problem = _problem(session, shift=shift, back_shift=back, requester=requester, target=target,
                       role=DutyRole(swap.role), now=now)
    if problem:
        cancel(session=session, swap=swap, why=problem, now=now, actor=actor)
    return problem


def approvers(session: Session, swap: SwapRequest) -> list[Person]:
    """Who approves: the shift's leader on duty for an officer's swap; the principal(s)
    for a leader's own swap (or when the shift has no leader); admins as the last resort."""
    shift = session.get(Shift, swap.shift_id)
    assert shift is not None
    skip = {swap.requester_id, swap.target_id}
    if swap.role == DutyRole.officer:
        leaders = [p for p in views(session, [shift])[0].leaders if p.active and p.id not in skip]
        if leaders:
            return leaders
    for role in (Role.principal, Role.admin):
        people = [p for p in people_with_role(session=session, role=role) if p.id not in skip]
        if people:
            return people
    return []


def may_approve(session: Session, swap: SwapRequest, person: Person) -> bool:
    """An approver of this swap, or any principal who is not a party to it."""
    if person.id in (swap.requester_id, swap.target_id):
        return False
    return Role.principal in person.role_set() or any(p.id == person.id for p in approvers(session, swap))


def check_decider(session: Session, swap: SwapRequest, person: Person) -> None:
    """Raise unless ``swap`` waits for approval and ``person`` may give it.

    Raises:
        SwapRefused: the request is not waiting for approval.
        PermissionDenied: ``person`` may not approve this swap.
    """
    _open(swap, SwapStatus.accepted)
    if not may_approve(session, swap, person):
        raise PermissionDenied(f"换班申请 #{swap.id} 需由该班次的带班领导审批"
                               "（带班领导本人换班由主要负责人审批）。")


def accept(*, session: Session, swap: SwapRequest, by: Person, now: datetime, actor: str,
           rest: restrules.RestRules = restrules.NO_RULES) -> Outcome:
    """The target agrees: the swap waits for approval, or is applied at once.

    Raises:
        PermissionDenied: ``by`` is not the person asked.
        SwapRefused: the request is no longer pending.
    """
    if by.id != swap.target_id:
        raise PermissionDenied(f"换班申请 #{swap.id} 不是发给您的。")
    _open(swap, SwapStatus.pending)
    problem = _recheck(session, swap, now, actor)
    if problem:
        return Outcome(swap, SwapStatus.cancelled, problem)
    broken = rest_broken(session, swap, rest)
    if (swap.needs_approval or broken) and approvers(session, swap):
        _close(session, swap, SwapStatus.accepted, by=by, now=now, actor=actor, action="accepted",
               zh=f"{by.name} 同意换班 #{swap.id}，待审批", keep_due=True)
        return Outcome(swap, SwapStatus.accepted, broken=tuple(broken))
    if broken:
        why = restrules.RestRefused(broken).message
        cancel(session=session, swap=swap, why=why, now=now, actor=actor)
        return Outcome(swap, SwapStatus.cancelled, why)
    _apply(session, swap, by=by, now=now, actor=actor)
    return Outcome(swap, SwapStatus.approved)


def decline(*, session: Session, swap: SwapRequest, by: Person, reason: str, now: datetime,
            actor: str) -> SwapRequest:
    """The target says no.

    Raises:
        PermissionDenied: ``by`` is not the person asked.
        SwapRefused: the request is no longer pending.
    """
    if by.id != swap.target_id:
        raise PermissionDenied(f"换班申请 #{swap.id} 不是发给您的。")
    _open(swap, SwapStatus.pending)
    _close(session, swap, SwapStatus.declined, by=by, now=now, actor=actor, action="declined",
           zh=f"{by.name} 拒绝换班 #{swap.id}" + (f"：{reason.strip()}" if reason.strip() else ""))
    return swap


def approve(*, session: Session, swap: SwapRequest, by: Person, now: datetime, actor: str,
            rest: restrules.RestRules = restrules.NO_RULES, override: restrules.Override | None = None) -> Outcome:
    """The approver agrees: the assignments change. A swap that breaks a rest rule is
    approved only by an admin's ``override`` (any admin, approver or not; recorded).

    Raises:
        PermissionDenied: ``by`` may not approve this swap.
        SwapRefused: the request is not waiting for approval.
        RestRefused: it breaks a rest rule and there is no override.
    """
    _open(swap, SwapStatus.accepted)
    if not (override is not None and Role.admin in by.role_set() and rest_broken(session, swap, rest)):
        check_decider(session, swap, by)
    problem = _recheck(session, swap, now, actor)
    if problem:
        return Outcome(swap, SwapStatus.cancelled, problem)
    broken = restrules.enforce(session, restrules.exchange(*parts(session, swap)), rules=rest,
                               override=override, now=now, actor=actor, how=f"换班 #{swap.id}",
                               hint=f"如确需换班，须由管理员说明理由后批准：/swap approve {swap.id} 理由：…")
    _apply(session, swap, by=by, now=now, actor=actor)
    return Outcome(swap, SwapStatus.approved, broken=tuple(broken))


def rest_broken(session: Session, swap: SwapRequest,
                rest: restrules.RestRules) -> list[restrules.RestViolation]:
    """The rest rules ``swap`` would break (``roster.rest``)."""
    return restrules.check_all(session, restrules.exchange(*parts(session, swap)), rest)


def reject(*, session: Session, swap: SwapRequest, by: Person, reason: str, now: datetime,
           actor: str) -> SwapRequest:
    """The approver says no (with a reason).

    Raises:
        PermissionDenied: ``by`` may not approve this swap.
        SwapRefused: the request is not waiting for approval.
    """
    check_decider(session, swap, by)
    _close(session, swap, SwapStatus.rejected, by=by, now=now, actor=actor, action="rejected",
           zh=f"{by.name} 驳回换班 #{swap.id}：{reason.strip()}")
    return swap


def withdraw(*, session: Session, swap: SwapRequest, by: Person, now: datetime, actor: str) -> SwapRequest:
    """The requester takes the request back.

    Raises:
        PermissionDenied: ``by`` is not the requester.
        SwapRefused: the request is no longer open.
    """
    if by.id != swap.requester_id:
        raise PermissionDenied(f"只有申请人可以撤回换班申请 #{swap.id}。")
    _open(swap, *OPEN)
    cancel(session=session, swap=swap, why=f"{by.name} 撤回", now=now, actor=actor, by=by)
    return swap


def _apply(session: Session, swap: SwapRequest, *, by: Person, now: datetime, actor: str) -> None:
    shift, back, requester, target = parts(session, swap)
    role = DutyRole(swap.role)
    why = f"换班 #{swap.id}"
    unassign(session=session, shift=shift, person=requester, role=role, now=now, actor=actor, why=why)
    assign(session=session, shift=shift, person=target, role=role, source="swap", now=now, actor=actor)
    if back is not None:
        unassign(session=session, shift=back, person=target, role=role, now=now, actor=actor, why=why)
        assign(session=session, shift=back, person=requester, role=role, source="swap", now=now, actor=actor)
    _close(session, swap, SwapStatus.approved, by=by, now=now, actor=actor, action="approved",
           zh=f"换班生效：{describe_swap(session, swap)}")


@dataclass
class MySwaps:
    """What is open for one person: to answer, to approve, and their own requests."""

    to_answer: list[SwapRequest] = field(default_factory=list)
    to_approve: list[SwapRequest] = field(default_factory=list)
    mine: list[SwapRequest] = field(default_factory=list)


def open_swaps_for(session: Session, person: Person) -> MySwaps:
    """The open requests that concern ``person``, oldest first."""
    rows = session.exec(select(SwapRequest).where(col(SwapRequest.status).in_(list(OPEN)))
                        .order_by(col(SwapRequest.id))).all()
    out = MySwaps()
    for swap in rows:
        if swap.requester_id == person.id:
            out.mine.append(swap)
        elif swap.status == SwapStatus.pending and swap.target_id == person.id:
            out.to_answer.append(swap)
        elif swap.status == SwapStatus.accepted and may_approve(session, swap, person):
            out.to_approve.append(swap)
    return out


def affected(session: Session, shifts: Iterable[Shift | None], *people: Person) -> list[Person]:
    """``people`` and everyone on ``shifts`` (leaders and officers), each once, active only."""
    found: dict[int | None, Person] = {p.id: p for p in people}
    for view in views(session, [s for s in shifts if s is not None]):
        for p in (*view.leaders, *view.officers):
            found.setdefault(p.id, p)
    return [p for p in found.values() if p.active]


def notify(session: Session, people: Iterable[Person], text: str, *, event: str, now: datetime,
           skip: Person | None = None, buttons: tuple[Button, ...] = ()) -> int:
    """Queue ``text`` for each person but ``skip`` (who gets the command's reply instead)."""
    sent = 0
    for person in people:
        if skip is not None and person.id == skip.id:
            continue
        sent += enqueue(session=session, message=Outbound(text, person_id=person.id, buttons=buttons),
                        now=now, event_key=event) is not None
    return sent


def process_expiry(session: Session, item: DueItem, now: datetime) -> None:
    """The ``roster.swap_expire`` processor: a request still open when its shift starts
    is cancelled, and the people involved are told."""
    swap = session.get(SwapRequest, int(item.ref.removeprefix("swap:")))
    if swap is None or swap.status not in OPEN:
        return
    waiting_approval = swap.status == SwapStatus.accepted
    why = "班次已开始，申请未办结，自动取消"
    cancel(session=session, swap=swap, why=why, now=now, actor="system", keep_due=True)
    _, _, requester, target = parts(session, swap)
    people = [requester, target] + (approvers(session, swap) if waiting_approval else [])
    notify(session, affected(session, [], *people),
           f"【换班取消】{describe_swap(session, swap)}\n{why}。值班安排不变；如需临时调整，请联系管理员替班。",
           event=f"swap:{swap.id}:expired", now=now)
