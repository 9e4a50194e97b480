"""What follows an approved account request (issue 18 item 2): 备案, the public notice and
its term, the opening notice, the closure itself, and what completing each duty means.

Every value comes from the active rule profile with its citation; where the profile states
none, no deadline is invented (本地规定未作要求):

- 备案 (LIFE-1 ``filing``): N working days from the approval of a change or closure, from
  the day an opening account is opened (:func:`opened`); without a deadline where no value
  is stated, naming where it is filed (``filing_with``).
- Public notice of a change or closure (LIFE-2 ``announce``, LIFE-3 ``close_notice``): a
  notice duty until :func:`notice` records the day it was published; then the duty that
  ends the request, which cannot be completed before the notice has run its term (the
  longer of the stated periods; working days counted by the calendar, holidays included).
  Completing it closes (or cancels) the account and finishes the request; where LIFE-1
  ``offline`` is stated (宝鸡办法第十条) 申请永久下线 follows.
- Opening notice (LIFE-3 ``open_notice``): on the homepage for that many days.

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlmodel import Session, select

from accounts.duties import (
    DutyPolicy,
    account_name,
    complete,
    find_open,
    get_duty,
    open_duty,
    site_of,
)
from accounts.models import (
    ACTION_ZH,
    Account,
    AccountDuty,
    AccountRequest,
    AccountState,
    DutyStatus,
    FilingStatus,
    RequestAction,
    RequestStatus,
)
from accounts.naming import new_name
from accounts.requests import (
    CLOSING,
    END_STATE,
    Outcome,
    account_of,
    action_of,
    audit_request,
    check_actor,
    get_request,
    set_state,
    start_of,
    status_zh,
    today_of,
)
from core import audit
from core.clock import fmt_date_zh
from core.errors import InputError
from core.profiles import Profile, RuleValue
from core.workdays import Deadline, WorkdayCalendar
from people.models import Person
from roster.models import Site

log = logging.getLogger(__name__)

_AFTER_NOTICE = {RequestAction.close: "公告期满后关停账号", RequestAction.cancel: "公告期满后注销账号",
                 RequestAction.change: "公告期满后办结变更"}


# ------------------------------------------------------------------------ after approval

def filing_title(profile: Profile, action: RequestAction) -> str:
    """``报区政府办公室备案（开设）`` / ``在全国政务新媒体信息报送系统更新备案（关停）``."""
    where = profile.find("LIFE-1", "filing_with")
    targets = list(where.items) if where is not None else []
    systems = [t for t in targets if t.endswith("系统")]
    offices = [t for t in targets if not t.endswith("系统")]
    verb = "备案登记" if action == RequestAction.open else "更新备案"
    parts = ([f"在{'、'.join(systems)}{verb}"] if systems else []) + ([f"报{'、'.join(offices)}备案"] if offices else [])
    return f"{'，并'.join(parts) or '办理备案'}（{ACTION_ZH[action]}）"


def filing_duty(session: Session, *, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                account: Account, request: AccountRequest, start: datetime, now: datetime,
                actor: str) -> AccountDuty | None:
    """The LIFE-1 备案 of a request, from ``start`` where the profile states a time limit,
    else without one (None: the profile does not regulate filing)."""
    entry = profile.rule("LIFE-1")
    limit, where = profile.find("LIFE-1", "filing"), profile.find("LIFE-1", "filing_with")
    if not entry.regulated and limit is None and where is None:
        return None
    citations = [v.citation for v in (where, limit) if v is not None] or [entry.citation]
    citation = "；时限".join(dict.fromkeys(citations)) if len(set(citations)) > 1 else citations[0]
    deadline = calendar.add(start, limit.quantity.amount, limit.quantity.unit) if limit is not None else None
    return open_duty(session=session, account=account, kind="filing", rule_id="LIFE-1", citation=citation,
                     title=filing_title(profile, action_of(request)), now=now, actor=actor, calendar=calendar,
                     policy=policy, deadline=deadline, request_id=request.id)


def notice_values(profile: Profile, action: RequestAction) -> list[RuleValue]:
    """The notice periods stated for ``action`` (LIFE-2 ``announce``; for a closure also
    LIFE-3 ``close_notice``); [] for an opening or where none is stated."""
    if action == RequestAction.open:
        return []
    keys = [("LIFE-2", "announce")] + ([("LIFE-3", "close_notice")] if action in CLOSING else [])
    return [v for rule_id, key in keys if (v := profile.find(rule_id, key)) is not None]


def _notice_title(values: list[RuleValue], action: RequestAction) -> str:
    parts = [f"将{ACTION_ZH[action]}公告置顶，至少保留{v.quantity.zh()}" if v.rule_id == "LIFE-3"
             else f"向社会公告{ACTION_ZH[action]}，公告时间不少于{v.quantity.zh()}" for v in values]
    return "；".join(parts)


def on_approved(session: Session, outcome: Outcome, *, profile: Profile, calendar: WorkdayCalendar,
                policy: DutyPolicy, now: datetime, actor: str, how: str) -> None:
    """The last approval: the request is approved and what follows opens."""
    request, account = outcome.request, outcome.account
    assert request is not None
    request.status, request.approved_at = RequestStatus.approved.value, now
    session.add(request)
    audit_request(session, request, now=now, actor=actor, action="approved", from_state=RequestStatus.pending,
                  to_state=RequestStatus.approved, zh=f"账号{ACTION_ZH[action_of(request)]}申请已批准（{how}）")
    action = action_of(request)
    if action == RequestAction.open:
        return   # the filing is counted from the day the account is opened (``opened``)
    outcome.add(filing_duty(session, profile=profile, calendar=calendar, policy=policy, account=account,
                            request=request, start=now, now=now, actor=actor))
    values = notice_values(profile, action)
    if not values:
        finish(session, outcome, profile=profile, calendar=calendar, policy=policy, now=now, actor=actor)
        return
    if action in CLOSING:
        set_state(session, account, AccountState.closing, day=today_of(now), now=now, actor=actor)
    outcome.add(open_duty(session=session, account=account, kind="notice", rule_id=values[0].rule_id,
                          citation="；".join(v.citation for v in values), title=_notice_title(values, action),
                          now=now, actor=actor, calendar=calendar, policy=policy, request_id=request.id))


def finish(session: Session, outcome: Outcome, *, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
           now: datetime, actor: str) -> None:
    """The action is carried out: a closure closes the account; the request is done."""
    request, account = outcome.request, outcome.account
    assert request is not None
    action = action_of(request)
    if action in CLOSING:
        set_state(session, account, END_STATE[action], day=today_of(now), now=now, actor=actor)
        offline = profile.find("LIFE-1", "offline")
        if offline is not None and offline.flag:
            outcome.add(open_duty(session=session, account=account, kind="offline", rule_id="LIFE-1",
                                  citation=offline.citation, title="在全国政务新媒体信息报送系统申请永久下线",
                                  now=now, actor=actor, calendar=calendar, policy=policy, request_id=request.id))
    elif action == RequestAction.change and (name := new_name(request.detail)):
        _rename(session, account, name, now=now, actor=actor)
    before = request.status
    request.status, request.finished_at, request.finished_by = RequestStatus.done.value, now, actor[:100]
    session.add(request)
    audit_request(session, request, now=now, actor=actor, action="done", from_state=before, to_state=RequestStatus.done,
                  zh=f"账号{ACTION_ZH[action]}已办结：{account_name(session, account)}")


def _rename(session: Session, account: Account, name: str, *, now: datetime, actor: str) -> None:
    """An approved name change renames the account in the register (its ``site`` row),
    unless another account of the unit already has that name (then it is recorded, not done)."""
    site = site_of(session, account)
    old = site.name
    taken = session.exec(select(Site).where(Site.name == name, Site.unit == site.unit, Site.id != site.id)).first()
    if name == old or taken is not None:
        audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="rename_skipped",
                     actor=actor, zh=f"账号名称未变更：{name} 已在本单位登记" if taken else f"账号名称已是 {name}")
        return
    site.name = name[:100]
    session.add(site)
    audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="renamed",
                 actor=actor, from_state=old, to_state=site.name, zh=f"账号更名：{old} → {site.name}")


def _approved_request(session: Session, request_id: int, action_ok: tuple[RequestAction, ...],
                      what: str) -> tuple[AccountRequest, Account]:
    request = get_request(session=session, request_id=request_id)
    if action_of(request) not in action_ok:
        raise InputError(f"申请 {request_id} 是{ACTION_ZH[action_of(request)]}申请，不能{what}。")
    if request.status != RequestStatus.approved:
        raise InputError(f"申请 {request_id} {status_zh(request)}，不能{what}。")
    return request, account_of(session, request)


def _past_day(day: date, now: datetime, what: str) -> None:
    if day > today_of(now):
        raise InputError(f"{what}{day.isoformat()}晚于今天，请在当天或之后登记。")


def opened(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy, request_id: int,
           day: date, by: Person, now: datetime) -> Outcome:
    """The approved account was opened on ``day``: it is in use, its 备案 is counted from
    that day, its opening notice (LIFE-3 ``open_notice``) is owed, the request is done.

    Raises:
        RequestNotFound: no such request.
        InputError: not an approved opening; ``day`` after today.
        PermissionDenied: ``by`` is not of the account's unit (nor an admin).
    """
    request, account = _approved_request(session, request_id, (RequestAction.open,), "登记开通")
    check_actor(session, by, account, request)
    _past_day(day, now, "开通日期")
    account.opened_on = day
    set_state(session, account, AccountState.active, day=day, now=now, actor=by.name)
    outcome = Outcome(request, account)
    start = start_of(day, now)
    outcome.add(filing_duty(session, profile=profile, calendar=calendar, policy=policy, account=account,
                            request=request, start=start, now=now, actor=by.name))
    value = profile.find("LIFE-3", "open_notice")
    if value is not None:
        ends = calendar.add(start, value.quantity.amount, value.quantity.unit, cutoff=None)
        outcome.add(open_duty(session=session, account=account, kind="notice", rule_id="LIFE-3",
                              citation=value.citation, title=f"开通公告在首页显著位置悬挂不少于{value.quantity.zh()}"
                              f"（{fmt_date_zh(ends.last_day)}后可撤下）", now=now, actor=by.name, calendar=calendar,
                              policy=policy, request_id=request.id, not_before=ends.due))
    finish(session, outcome, profile=profile, calendar=calendar, policy=policy, now=now, actor=by.name)
    return outcome


def notice_end(profile: Profile, calendar: WorkdayCalendar, action: RequestAction,
               start: datetime) -> tuple[Deadline, RuleValue] | None:
    """When the notice of ``action`` published at ``start`` has run its term (the longer of
    the stated periods), and the value that says so; None when no period is stated."""
    ends = [(calendar.add(start, v.quantity.amount, v.quantity.unit, cutoff=None), v)
            for v in notice_values(profile, action)]
    return max(ends, key=lambda e: e[0].due) if ends else None


def notice(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy, request_id: int,
           day: date, by: Person, now: datetime, reference: str = "") -> Outcome:
    """The public notice of an approved change or closure was published on ``day``: the
    notice duty is done and the duty that ends the request opens, not to be completed
    before the notice has run its term.

    Raises:
        RequestNotFound: no such request.
        InputError: not an approved change or closure; its notice already recorded; no
            notice period stated; ``day`` after today.
        PermissionDenied: ``by`` is not of the account's unit (nor an admin).
    """
    actions = (RequestAction.change, *CLOSING)
    request, account = _approved_request(session, request_id, actions, "登记公告")
    check_actor(session, by, account, request)
    if request.notice_started_on is not None:
        raise InputError(f"申请 {request_id} 的公告已登记（{fmt_date_zh(request.notice_started_on)}发布）。")
    _past_day(day, now, "公告日期")
    action = action_of(request)
    found = notice_end(profile, calendar, action, start_of(day, now))
    if found is None:
        raise InputError(f"申请 {request_id}：本地规定未作要求公告期，无需登记公告。")
    ends, value = found
    request.notice_started_on = day
    session.add(request)
    pending = find_open(session=session, account_id=account.id or 0, kind="notice", request_id=request.id)
    if pending is not None:
        complete(session=session, duty_id=pending.id or 0, now=now, actor=by.name,
                 reference=reference or f"公告于{day.isoformat()}发布")
    audit_request(session, request, now=now, actor=by.name, action="notice", notice_started_on=day.isoformat(),
                  ends=ends.due.isoformat(), zh=f"{ACTION_ZH[action]}公告已发布：{fmt_date_zh(day)}起，"
                                                f"{fmt_date_zh(ends.last_day)}期满（依据：{value.citation}）")
    guess = "（暂定：该年度节假日安排尚未发布）" if ends.provisional else ""
    outcome = Outcome(request, account)
    outcome.add(open_duty(session=session, account=account, kind=action.value, rule_id=value.rule_id,
                          citation=value.citation, title=f"{_AFTER_NOTICE[action]}（公告{fmt_date_zh(day)}发布，"
                          f"{fmt_date_zh(ends.last_day)}期满{guess}）", now=now, actor=by.name, calendar=calendar,
                          policy=policy, request_id=request.id, not_before=ends.due))
    return outcome


# ------------------------------------------------------------------------------- duties

def complete_duty(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                  duty_id: int, by: Person, now: datetime, reference: str = "") -> Outcome:
    """Mark a duty done and carry out what it stands for: a notice duty records the notice
    (today); a closing duty closes the account and finishes the request; a 备案 records the
    account as filed (``reference``: its 备案编号); opening interaction records it open.

    Raises:
        DutyNotFound: no such duty.
        InputError: already done; its notice period has not run its term.
        PermissionDenied: ``by`` is not of the account's unit (nor an admin).
    """
    duty = get_duty(session=session, duty_id=duty_id)
    account = session.get(Account, duty.account_id)
    assert account is not None
    request = session.get(AccountRequest, duty.request_id) if duty.request_id is not None else None
    check_actor(session, by, account, request)
    if (duty.kind == "notice" and duty.status == DutyStatus.open and request is not None
            and action_of(request) != RequestAction.open and request.notice_started_on is None):
        outcome = notice(session=session, profile=profile, calendar=calendar, policy=policy, request_id=request.id or 0,
                         day=today_of(now), by=by, now=now, reference=reference)
        return outcome
    complete(session=session, duty_id=duty_id, now=now, actor=by.name, reference=reference)
    outcome = Outcome(request, account)
    if request is not None and duty.kind in (*(a.value for a in CLOSING), RequestAction.change.value):
        finish(session, outcome, profile=profile, calendar=calendar, policy=policy, now=now, actor=by.name)
    elif duty.kind == "backfill" or (duty.kind == "filing" and request is not None
                                     and action_of(request) == RequestAction.open):
        _filed(session, account, reference=reference, now=now, actor=by.name)
    elif duty.kind == "comments":
        account.comments_open, account.updated_at = True, now
        session.add(account)
        audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="comments",
                     actor=by.name, zh=f"已开启互动功能：{account_name(session, account)}")
    return outcome


def _filed(session: Session, account: Account, *, reference: str, now: datetime, actor: str) -> None:
    before = account.filing_status
    account.filing_status, account.filed_on, account.updated_at = FilingStatus.filed.value, today_of(now), now
    if reference.strip():
        account.filing_number = reference.strip()[:100]
    session.add(account)
    audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="filed",
                 actor=actor, from_state=before, to_state=FilingStatus.filed.value,
                 zh=f"登记备案：{account_name(session, account)}"
                    + (f"，备案编号 {reference.strip()}" if reference.strip() else ""))
