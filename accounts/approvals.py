"""Who approves an account request, in which order, and who may record each decision.

The chain is the active profile's ``LIFE-1`` value for the action (``open_approval``,
``change_approval``; closure and cancellation use ``close_approval``), snapshotted on the
request when it is made. Where the profile names no approvers the request needs none
(:data:`INTERNAL`): it is approved on creation by the requester's record.

Each step is recorded by someone the bot knows:

- a unit's own head (主要负责人, 主要负责同志, 集体研究, 主要领导): a principal (主要负责人)
  of the account's unit, or an admin;
- an outside office (区政府办公室, 本级政府办公室, 省政府办公厅, 组织单位, 逐级审核 …):
  an admin, who records that office's decision with a note (批准文号).

Nobody decides a request they made. Functions here are pure or read-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, col, select

from accounts.models import Account, AccountApproval, AccountRequest, RequestAction
from core.errors import InputError, PermissionDenied
from core.profiles import NOT_REQUIRED, Profile
from people.models import Person, Role
from people.service import people_with_role

RULE = "LIFE-1"
INTERNAL = f"{NOT_REQUIRED}：本单位按内部程序审批"
APPROVAL_KEY = {RequestAction.open: "open_approval", RequestAction.change: "change_approval",
                RequestAction.close: "close_approval", RequestAction.cancel: "close_approval"}
OWN_HEAD = ("主要负责人", "主要负责同志", "集体研究", "主要领导")
OUTSIDE = ("政府办公室", "办公厅", "组织单位", "逐级审核", "主管单位")


@dataclass(frozen=True)
class Chain:
    """The approvers of an action, in order, and the article that names them."""

    labels: tuple[str, ...]
    citation: str

    @property
    def required(self) -> bool:
        return bool(self.labels)


def chain(profile: Profile, action: RequestAction) -> Chain:
    """The profile's approvers for ``action`` (none: :data:`~core.profiles.NOT_REQUIRED`)."""
    value = profile.find(RULE, APPROVAL_KEY[action])
    if value is None or not value.items:
        return Chain((), NOT_REQUIRED)
    return Chain(tuple(value.items), value.citation)


def labels_of(request: AccountRequest) -> list[str]:
    """The approvers snapshotted on ``request``."""
    labels: list[str] = json.loads(request.approvals_needed or "[]")
    return labels


def decisions(session: Session, request: AccountRequest) -> list[AccountApproval]:
    """The decisions recorded on ``request``, step by step."""
    return list(session.exec(select(AccountApproval).where(AccountApproval.request_id == request.id)
                             .order_by(col(AccountApproval.step))))


def current_step(session: Session, request: AccountRequest) -> int:
    """The index of the step waiting for a decision (== len(labels) when all agreed)."""
    return sum(1 for d in decisions(session, request) if d.approved)


def is_outside(label: str) -> bool:
    """Whether a step is an outside office's decision (recorded by an admin) rather than
    the unit's own head's."""
    return any(w in label for w in OUTSIDE) or not any(w in label for w in OWN_HEAD)


def who_zh(label: str) -> str:
    """Who records the step, for a card: ``主要负责人或管理员`` / ``管理员（登记批准文号）``."""
    return "管理员（登记批准文号）" if is_outside(label) else "本单位主要负责人或管理员"


def check_decider(*, person: Person, request: AccountRequest, label: str, unit: str) -> None:
    """Allow ``person`` to record the decision of step ``label`` on ``request``, or raise.

    Raises:
        PermissionDenied: it is their own request, or their role (and unit) does not allow it.
    """
    roles = person.role_set()
    if person.id is not None and person.id == request.requested_by_id:
        raise PermissionDenied(f"申请 {request.id} 是您本人提出的，不能由您审批。请由{who_zh(label)}审批。")
    if Role.admin in roles:
        return
    if is_outside(label):
        raise PermissionDenied(f"“{label}”的意见由管理员登记（附批准文号），您不能登记。")
    if Role.principal not in roles:
        raise PermissionDenied(f"“{label}”须由本单位主要负责人审批，您（{person.roles_zh()}）不能审批。")
    if person.unit and unit and person.unit != unit:
        raise PermissionDenied(f"该账号属于{unit}，您（{person.unit}）不能审批。")


def check_note(label: str, note: str) -> None:
    """An outside office's approval is recorded with its 批准文号 or a note.

    Raises:
        InputError: none given.
    """
    if is_outside(label) and not note.strip():
        raise InputError(f"请写明“{label}”的批准文号或意见，如：/account approve 编号 宝政办函〔2026〕12号")


def deciders(session: Session, *, request: AccountRequest, label: str, unit: str) -> list[Person]:
    """Who is asked to decide step ``label``: the unit's principals (else the admins) for
    its own head, the admins (of the unit, else all) for an outside office; never the requester."""
    def others(role: Role) -> list[Person]:
        return [p for p in people_with_role(session=session, role=role) if p.id != request.requested_by_id]

    admins = others(Role.admin)
    own_admins = [p for p in admins if unit and p.unit == unit] or admins
    if is_outside(label):
        return own_admins
    principals = [p for p in others(Role.principal) if not p.unit or not unit or p.unit == unit]
    return principals or own_admins


def progress_zh(session: Session, request: AccountRequest) -> str:
    """``本部门主要负责同志 ✓ → 本级政府办公室（待审批）→ 省政府办公厅``."""
    labels = labels_of(request)
    if not labels:
        return INTERNAL
    step = current_step(session, request)
    parts = [f"{label} ✓" if i < step else (f"{label}（待审批）" if i == step else label)
             for i, label in enumerate(labels)]
    return " → ".join(parts)


def government_warning(profile: Profile, account: Account, action: RequestAction) -> str:
    """``原则上不得关停（依据：宝鸡办法第十条）`` for a government account's closure under a
    profile that says so ('' otherwise)."""
    if action not in (RequestAction.close, RequestAction.cancel) or not account.government:
        return ""
    value = profile.find("LIFE-4", "gov_no_closure")
    if value is None or not value.flag:
        return ""
    return f"市县政府系统政务新媒体原则上不得关停（依据：{value.citation}）"
