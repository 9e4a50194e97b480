"""Account lifecycle: opening (开设), change (变更), closure (关停) and cancellation (注销)
requests and their approvals (issue 18 item 2; issue 14 item 6).

Every value comes from the active rule profile with its citation; where the profile states
nothing, nothing is invented (本地规定未作要求):

- **Approvals** (LIFE-1 ``open_approval`` / ``change_approval`` / ``close_approval``): the
  chain is snapshotted on the request and decided one step at a time, in order, by the
  people :mod:`accounts.approvals` allows (never the requester). No chain: approved on
  creation by the requester's record (本地规定未作要求：本单位按内部程序审批), still audited.
- **Refusals**: closing or cancelling a government account where LIFE-4 ``gov_no_closure``
  is stated (宝鸡办法第十条 原则上不得关停) needs a reason (确需关停理由), and every card says
  so; a change that closes 私信、评论、留言 where REPLY-6 ``comments_open`` is stated
  (宝鸡办法第二十一条) is refused.
- **Names**: an opening or a rename whose name holds a place or organ name opens the LIFE-5
  consent duty (:mod:`accounts.standing`).
- **After the last approval**: :mod:`accounts.followup` (备案, public notice, closure); its
  :func:`opened`, :func:`notice` and :func:`complete_duty` are re-exported here.
- **Daily sweep**: :func:`register_lifecycle` (standing duties: backfill, interaction,
  names; and the duty reminders).

Request states: 审批中 (pending) → 已批准、办理中 (approved) → 已办结 (done), or 未批准
(rejected). Account states: opening → active → closing (notice running) → closed /
cancelled. A rejected opening leaves its account cancelled and off the reading list.

Contract: every function works in the caller's transaction (nothing here commits) and
raises a :class:`~core.errors.DutybotError` whose message a person can read. Every change
is in the audit log under ``account_request`` (and ``account``, ``account_duty``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import partial

from sqlmodel import Session, select

from accounts import approvals
from accounts.approvals import INTERNAL, check_decider, check_note, labels_of
from accounts.duties import DutyPolicy, account_name, cancel, register_duty_reminders, unit_of
from accounts.followup import complete_duty as complete_duty
from accounts.followup import notice as notice
from accounts.followup import on_approved
from accounts.followup import opened as opened
from accounts.models import (
    ACTION_ZH,
    STATE_ZH,
    Account,
    AccountApproval,
    AccountDuty,
    AccountRequest,
    AccountState,
    DutyStatus,
    RequestAction,
    RequestStatus,
)
from accounts.naming import closes_interaction, new_name
from accounts.requests import (
    CLOSING,
    Outcome,
    Refused,
    account_of,
    action_of,
    audit_request,
    get_request,
    in_progress,
    parse_platform,
    set_state,
    status_zh,
    stored_account,
    today_of,
)
from accounts.standing import place_name_duty, sweep
from core import audit
from core.errors import InputError
from core.profiles import Profile
from core.schedule import CronRegistry
from core.workdays import WorkdayCalendar
from people.models import Person
from roster.sites import NewSite, SiteKind, add_site, validate

log = logging.getLogger(__name__)

SWEEP_JOB = "accounts.lifecycle_sweep"
MAX_DETAIL = 500


# --------------------------------------------------------------------------- requesting

def _new_request(session: Session, *, profile: Profile, account: Account, action: RequestAction, detail: str,
                 by: Person, now: datetime) -> AccountRequest:
    assert account.id is not None
    _not_busy(session, account)
    if len(detail) > MAX_DETAIL:
        raise InputError(f"内容过长（上限 {MAX_DETAIL} 字）")
    chain = approvals.chain(profile, action)
    request = AccountRequest(account_id=account.id, action=action.value, detail=detail.strip(),
                             approvals_needed=json.dumps(list(chain.labels), ensure_ascii=False),
                             citation=chain.citation[:200], requested_by=by.name[:100], requested_by_id=by.id,
                             requested_at=now)
    session.add(request)
    session.flush()
    steps = " → ".join(chain.labels) or INTERNAL
    audit_request(session, request, now=now, actor=by.name, action="requested", to_state=RequestStatus.pending,
                  zh=f"账号{ACTION_ZH[action]}申请：{account_name(session, account)}（审批：{steps}；依据：{chain.citation}）"
                     + (f"；{request.detail}" if request.detail else ""), approvals=list(chain.labels))
    return request


def _settle(session: Session, outcome: Outcome, *, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
            by: Person, now: datetime) -> Outcome:
    """A request without approvers is approved at once, on the requester's record."""
    assert outcome.request is not None
    if not labels_of(outcome.request):
        on_approved(session, outcome, profile=profile, calendar=calendar, policy=policy, now=now, actor=by.name,
                    how=f"{INTERNAL}（{by.name}提出）")
    return outcome


def request_open(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy, name: str,
                 platform: str, unit: str, by: Person, now: datetime, government: bool = False) -> Outcome:
    """Ask to open an account: registers it (state 开设申请中) or takes the stored one that is
    not in use (an opening never made, a closed or cancelled account), and makes the request.

    Raises:
        InputError: a bad name, platform or unit; a website; the account is in use or has
            a request running.
    """
    kind = parse_platform(platform)
    new = validate(name, kind.value, "", unit)
    if not new.unit:
        raise InputError("请写明主办单位（您未登记单位时须在命令中写明）")
    today = today_of(now)
    site, account = stored_account(session, new.name, new.unit)
    if site is not None and account is None and site.kind == SiteKind.website:
        raise InputError(f"“{new.name}”（{new.unit}）已登记为网站，请换一个账号名称。")
    if account is not None and account.state in (AccountState.active, AccountState.closing):
        raise InputError(f"账号“{new.name}”（{new.unit}）当前为“{STATE_ZH[AccountState(account.state)]}”，无需开设。")
    site, _ = add_site(session=session, new=NewSite(new.name, kind, site.url if site else "", new.unit), now=now,
                       actor=by.name)
    assert site.id is not None
    if account is None:
        account = Account(site_id=site.id, owner_unit=new.unit, government=government,
                          state=AccountState.opening.value, state_since=today, created_at=now, updated_at=now)
        session.add(account)
        session.flush()
        audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="added",
                     actor=by.name, to_state=account.state, zh=f"登记政务新媒体账号（开设申请中）：{new.name}｜{new.unit}",
                     name=new.name, platform=kind.value, unit=new.unit)
    else:
        _not_busy(session, account)
        if account.state != AccountState.opening:
            set_state(session, account, AccountState.opening, day=today, now=now, actor=by.name)
    request = _new_request(session, profile=profile, account=account, action=RequestAction.open, detail="", by=by,
                           now=now)
    outcome = Outcome(request, account)
    outcome.add(place_name_duty(session=session, profile=profile, calendar=calendar, policy=policy, account=account,
                                name=new.name, now=now, actor=by.name, request_id=request.id))
    return _settle(session, outcome, profile=profile, calendar=calendar, policy=policy, by=by, now=now)


def _require_active(session: Session, account: Account, action: RequestAction) -> None:
    _not_busy(session, account)
    if account.state != AccountState.active:
        raise InputError(f"账号“{account_name(session, account)}”当前为“{STATE_ZH[AccountState(account.state)]}”，"
                         f"不能申请{ACTION_ZH[action]}。")


def _not_busy(session: Session, account: Account) -> None:
    busy = in_progress(session=session, account_id=account.id)
    if busy:
        raise InputError(f"账号“{account_name(session, account)}”已有办理中的{ACTION_ZH[action_of(busy[0])]}申请"
                         f"（申请编号 {busy[0].id}，{status_zh(busy[0])}），请先办结。")


def request_change(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                   account: Account, detail: str, by: Person, now: datetime) -> Outcome:
    """Ask to change an account (its name, platform, operator …); ``detail`` says what.

    Raises:
        InputError: no detail, the account is not in use or has a request running.
        Refused: the change closes 私信、评论、留言 where REPLY-6 forbids it.
    """
    _require_active(session, account, RequestAction.change)
    if not detail.strip():
        raise InputError("请写明变更内容，如：/account change 梁平发布 名称变更为梁平融媒")
    value = profile.find("REPLY-6", "comments_open")
    if value is not None and value.flag and closes_interaction(detail):
        raise Refused(f"不能关闭私信、评论、留言等互动功能（依据：{value.citation}）。此项变更不予受理。", value.citation)
    request = _new_request(session, profile=profile, account=account, action=RequestAction.change, detail=detail,
                           by=by, now=now)
    outcome = Outcome(request, account)
    renamed = new_name(detail)
    if renamed:
        outcome.add(place_name_duty(session=session, profile=profile, calendar=calendar, policy=policy,
                                    account=account, name=renamed, now=now, actor=by.name, request_id=request.id))
    return _settle(session, outcome, profile=profile, calendar=calendar, policy=policy, by=by, now=now)


def request_close(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                  account: Account, reason: str, by: Person, now: datetime,
                  action: RequestAction = RequestAction.close) -> Outcome:
    """Ask to close (关停) an account — or, with ``action=cancel``, to cancel it (注销).

    Raises:
        InputError: the account is not in use or has a request running.
        Refused: a government account where LIFE-4 says 原则上不得关停, and no reason given.
    """
    if action not in CLOSING:
        raise ValueError(f"not a closing action: {action}")
    _require_active(session, account, action)
    warning = approvals.government_warning(profile, account, action)
    if warning and not reason.strip():
        name = account_name(session, account)
        raise Refused(f"“{name}”是政府账号：{warning}。确需{ACTION_ZH[action]}的，请写明确需{ACTION_ZH[action]}理由："
                      f"/account {action.value} {name} 理由", profile.citation("LIFE-4"))
    request = _new_request(session, profile=profile, account=account, action=action, detail=reason, by=by, now=now)
    return _settle(session, Outcome(request, account), profile=profile, calendar=calendar, policy=policy, by=by,
                   now=now)


def request_cancel(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                   account: Account, reason: str, by: Person, now: datetime) -> Outcome:
    """Ask to cancel (注销) an account; see :func:`request_close`."""
    return request_close(session=session, profile=profile, calendar=calendar, policy=policy, account=account,
                         reason=reason, by=by, now=now, action=RequestAction.cancel)


# ---------------------------------------------------------------------------- deciding

def _pending(session: Session, request_id: int) -> tuple[AccountRequest, Account, str, int]:
    request = get_request(session=session, request_id=request_id)
    if request.status != RequestStatus.pending:
        raise InputError(f"申请 {request_id} {status_zh(request)}，无需审批。")
    labels, step = labels_of(request), approvals.current_step(session, request)
    return request, account_of(session, request), labels[step], step


def check_may_decide(*, session: Session, request_id: int, by: Person) -> str:
    """The label of the step the request waits for, when ``by`` may decide it (a button
    without the note or reason asks for it only after this passes).

    Raises:
        RequestNotFound, InputError, PermissionDenied: as :func:`approve`.
    """
    request, account, label, _ = _pending(session, request_id)
    check_decider(person=by, request=request, label=label, unit=unit_of(session, account))
    return label


def approve(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy, request_id: int,
            by: Person, note: str, now: datetime) -> Outcome:
    """Record ``by``'s approval of the step the request waits for; after the last step the
    request is approved and its duties open.

    Raises:
        RequestNotFound: no such request.
        InputError: not pending; an outside office's approval without its 批准文号.
        PermissionDenied: ``by`` may not decide this step (or made the request).
    """
    request, account, label, step = _pending(session, request_id)
    check_decider(person=by, request=request, label=label, unit=unit_of(session, account))
    check_note(label, note)
    session.add(AccountApproval(request_id=request_id, step=step, label=label, approved=True,
                                by_name=by.name[:100], by_id=by.id, at=now, note=note.strip()[:300]))
    session.flush()
    audit_request(session, request, now=now, actor=by.name, action="step_approved", step=step, label=label,
                  zh=f"审批同意：{label}（{by.name}）" + (f"：{note.strip()}" if note.strip() else ""))
    outcome = Outcome(request, account)
    if step + 1 == len(labels_of(request)):
        on_approved(session, outcome, profile=profile, calendar=calendar, policy=policy, now=now, actor=by.name,
                    how=" → ".join(labels_of(request)))
    return outcome


def reject(*, session: Session, request_id: int, by: Person, reason: str, now: datetime) -> Outcome:
    """Record ``by``'s refusal of the step the request waits for: the request is refused,
    its open duties withdrawn, and an opening's account leaves the reading list.

    Raises:
        RequestNotFound, InputError, PermissionDenied: as :func:`approve`; no reason given.
    """
    request, account, label, step = _pending(session, request_id)
    check_decider(person=by, request=request, label=label, unit=unit_of(session, account))
    if not reason.strip():
        raise InputError("请写明不同意的理由，如：/account reject 编号 理由")
    session.add(AccountApproval(request_id=request_id, step=step, label=label, approved=False,
                                by_name=by.name[:100], by_id=by.id, at=now, note=reason.strip()[:300]))
    request.status, request.finished_at, request.finished_by = RequestStatus.rejected.value, now, by.name[:100]
    session.add(request)
    audit_request(session, request, now=now, actor=by.name, action="rejected", from_state=RequestStatus.pending,
                  to_state=RequestStatus.rejected, step=step, label=label,
                  zh=f"审批不同意：{label}（{by.name}）：{reason.strip()}")
    _withdraw_duties(session, request, now=now, actor=by.name, why=f"申请 {request_id} 未获批准")
    if action_of(request) == RequestAction.open and account.state == AccountState.opening:
        set_state(session, account, AccountState.cancelled, day=today_of(now), now=now, actor=by.name)
    return Outcome(request, account)


def _withdraw_duties(session: Session, request: AccountRequest, *, now: datetime, actor: str, why: str) -> None:
    rows = session.exec(select(AccountDuty).where(AccountDuty.request_id == request.id,
                                                  AccountDuty.status == DutyStatus.open))
    for duty in list(rows):
        cancel(session=session, duty=duty, now=now, actor=actor, why=why)


# ----------------------------------------------------------------------------- scheduler

def register_lifecycle(scheduler: CronRegistry, *, profile: Profile, calendar: WorkdayCalendar,
                       policy: DutyPolicy) -> None:
    """Register the duty reminders and the daily sweep of standing duties (at start, then
    when the office opens; :func:`accounts.standing.sweep`).

    Raises:
        ValueError: already registered.
    """
    register_duty_reminders(scheduler)
    opens = policy.office_hours.start if policy.office_hours is not None else policy.remind_time
    scheduler.register_cron(SWEEP_JOB, partial(sweep, profile=profile, calendar=calendar, policy=policy),
                            run_at_start=True, hour=opens.hour, minute=opens.minute)
