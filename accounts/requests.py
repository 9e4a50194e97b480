"""Account requests (开设、变更、关停、注销): reading them, their errors, and the helpers the
lifecycle steps share (:mod:`accounts.lifecycle` makes and decides requests,
:mod:`accounts.followup` carries them out).

Contract: functions work in the caller's transaction (nothing here commits) and raise a
:class:`~core.errors.DutybotError` whose message a person can read; every change is in the
audit log (``account_request``, ``account``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from accounts import approvals
from accounts.approvals import labels_of
from accounts.duties import account_name, site_of, unit_of
from accounts.models import (
    REQUEST_STATUS_ZH,
    STATE_ZH,
    Account,
    AccountDuty,
    AccountRequest,
    AccountState,
    RequestAction,
    RequestStatus,
)
from core import audit
from core.clock import local, local_midnight
from core.errors import DutybotError, InputError, NotFound, PermissionDenied
from people.models import Person, Role
from roster.models import Site
from roster.sites import KIND_ALIASES, KIND_ZH, SiteKind, remove_site

log = logging.getLogger(__name__)

IN_PROGRESS = (RequestStatus.pending.value, RequestStatus.approved.value)
CLOSING = (RequestAction.close, RequestAction.cancel)
END_STATE = {RequestAction.close: AccountState.closed, RequestAction.cancel: AccountState.cancelled}


class RequestNotFound(NotFound):
    """No account request has this number."""

    def __init__(self, request_id: int) -> None:
        super().__init__(f"找不到账号申请 {request_id}。可用 /account requests 查看办理中的申请。")
        self.request_id = request_id


class Refused(DutybotError):
    """A request the rules forbid; ``citation`` names the article."""

    def __init__(self, message: str, citation: str) -> None:
        super().__init__(message)
        self.citation = citation


@dataclass
class Outcome:
    """What a lifecycle step did: the request (None for a standing duty), the account,
    and the duties it opened."""

    request: AccountRequest | None
    account: Account
    duties: list[AccountDuty] = field(default_factory=list)

    def add(self, duty: AccountDuty | None) -> None:
        if duty is not None and duty not in self.duties:
            self.duties.append(duty)


# ------------------------------------------------------------------------------ reading

def get_request(*, session: Session, request_id: int) -> AccountRequest:
    """The request numbered ``request_id``.

    Raises:
        RequestNotFound: none.
    """
    request = session.get(AccountRequest, request_id)
    if request is None:
        raise RequestNotFound(request_id)
    return request


def account_of(session: Session, request: AccountRequest) -> Account:
    """The account a request is about."""
    account = session.get(Account, request.account_id)
    if account is None:   # the foreign key forbids it
        raise NotFound(f"申请 {request.id} 的账号缺失")
    return account


def in_progress(*, session: Session, account_id: int | None = None) -> list[AccountRequest]:
    """Requests pending or approved and not yet finished (of one account), oldest first."""
    stmt = select(AccountRequest).where(col(AccountRequest.status).in_(IN_PROGRESS))
    if account_id is not None:
        stmt = stmt.where(AccountRequest.account_id == account_id)
    return list(session.exec(stmt.order_by(col(AccountRequest.id))))


def action_of(request: AccountRequest) -> RequestAction:
    return RequestAction(request.action)


def status_zh(request: AccountRequest) -> str:
    return REQUEST_STATUS_ZH[RequestStatus(request.status)]


def waiting_label(session: Session, request: AccountRequest) -> str | None:
    """The approver whose decision the request waits for (None unless pending)."""
    if request.status != RequestStatus.pending:
        return None
    labels, step = labels_of(request), approvals.current_step(session, request)
    return labels[step] if step < len(labels) else None


# ------------------------------------------------------------------------------ helpers

def parse_platform(text: str) -> SiteKind:
    """``微信公众号``, ``公众号``, ``微博``, ``douyin`` … → the platform.

    Raises:
        InputError: unknown, or a website (not a new-media account).
    """
    found = KIND_ALIASES.get(text.strip()) or KIND_ALIASES.get(text.strip().lower())
    platforms = "、".join(v for k, v in KIND_ZH.items() if k != SiteKind.website)
    if found is None:
        raise InputError(f"无法识别的平台“{text.strip()}”（可选：{platforms}）")
    if found == SiteKind.website:
        raise InputError(f"网站不是政务新媒体账号，不按账号开设（可选平台：{platforms}）")
    return found


def stored_account(session: Session, name: str, unit: str) -> tuple[Site | None, Account | None]:
    """The site row called ``name`` of ``unit`` and the account beside it, if any."""
    site = session.exec(select(Site).where(Site.name == name, Site.unit == unit)).first()
    if site is None:
        return None, None
    return site, session.exec(select(Account).where(Account.site_id == site.id)).first()


def today_of(now: datetime) -> date:
    return local(now).date()


def start_of(day: date, now: datetime) -> datetime:
    """The instant a period counted from ``day`` starts (now when it is today)."""
    return now if day == today_of(now) else local_midnight(day)


def audit_request(session: Session, request: AccountRequest, *, now: datetime, actor: str, action: str, zh: str,
                  from_state: str | None = None, to_state: str | None = None, **detail: Any) -> None:
    audit.record(session=session, at=now, entity_type="account_request", entity_id=request.id or 0, action=action,
                 actor=actor, from_state=from_state, to_state=to_state, zh=zh, account_id=request.account_id,
                 request_action=request.action, **detail)


def set_state(session: Session, account: Account, state: AccountState, *, day: date, now: datetime,
              actor: str) -> None:
    before = account.state
    account.state, account.state_since, account.updated_at = state.value, day, now
    session.add(account)
    audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="state",
                 actor=actor, from_state=before, to_state=state.value,
                 zh=f"账号状态：{account_name(session, account)} {STATE_ZH[AccountState(before)]} → {STATE_ZH[state]}")
    site = site_of(session, account)
    if state in (AccountState.closed, AccountState.cancelled) and site.active:
        remove_site(session=session, name=site.name, unit=site.unit, now=now, actor=actor)


def check_actor(session: Session, person: Person, account: Account, request: AccountRequest | None = None) -> None:
    """Allow ``person`` to record what the account's unit did (opened, notice, done).

    Raises:
        PermissionDenied: not an admin, not of the account's unit, not its operator nor the requester.
    """
    unit = unit_of(session, account)
    if (Role.admin in person.role_set() or (unit and person.unit == unit) or person.id == account.operator_id
            or (request is not None and person.id == request.requested_by_id)):
        return
    raise PermissionDenied(f"该账号属于{unit or '其他单位'}，您（{person.unit or '未登记单位'}）不能办理。请联系该单位或管理员。")
