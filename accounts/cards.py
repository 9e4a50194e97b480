"""How account requests read in chat: one line in a list, the card an approver gets, and
what the unit does next. Short enough for a phone; the first lines say what, and what to
press; the last names the article."""

from __future__ import annotations

from sqlmodel import Session

from accounts import approvals
from accounts.duties import find_open, site_of, unit_of
from accounts.followup import notice_values
from accounts.models import ACTION_ZH, AccountRequest, RequestAction, RequestStatus
from accounts.requests import account_of, action_of, status_zh, waiting_label
from core.clock import fmt_date_zh, local
from core.profiles import Profile
from roster.sites import kind_zh


def account_label(session: Session, request: AccountRequest) -> str:
    """``梁平发布（微信公众号）｜区政府办``."""
    account = account_of(session, request)
    site = site_of(session, account)
    return f"{site.name}（{kind_zh(site)}）｜{unit_of(session, account)}"


def request_line(session: Session, request: AccountRequest) -> str:
    """``申请 3｜关停｜梁平发布（微信公众号）｜区政府办｜审批中：待 逐级审核（1/2）``."""
    head = f"申请 {request.id}｜{ACTION_ZH[action_of(request)]}｜{account_label(session, request)}"
    label = waiting_label(session, request)
    if label is not None:
        step, total = approvals.current_step(session, request) + 1, len(approvals.labels_of(request))
        return f"{head}｜审批中：待 {label}（{step}/{total}）"
    return f"{head}｜{status_zh(request)}"


def approval_card(session: Session, profile: Profile, request: AccountRequest) -> str:
    """The card the people who decide the current step receive."""
    label = waiting_label(session, request) or ""
    action = action_of(request)
    account = account_of(session, request)
    labels = approvals.labels_of(request)
    step = approvals.current_step(session, request)
    note = " 批准文号" if approvals.is_outside(label) else " [备注]"
    lines = [f"【账号{ACTION_ZH[action]}审批】申请 {request.id}：{account_label(session, request)}",
             f"待 {label} 审批（第{step + 1}步，共{len(labels)}步），由{approvals.who_zh(label)}登记",
             f"同意：/account approve {request.id}{note}；不同意：/account reject {request.id} 理由"]
    warning = approvals.government_warning(profile, account, action)
    if warning:
        lines.append(f"注意：{warning}")
    who = f"申请人：{request.requested_by}"
    if request.detail:
        who += f"；{'确需关停理由' if warning else '内容'}：{request.detail}"
    lines += [who, f"审批流程：{approvals.progress_zh(session, request)}", f"依据：{request.citation}"]
    return "\n".join(lines)


def next_step_zh(session: Session, profile: Profile, request: AccountRequest) -> str:
    """What the unit does next with an approved request ('' when nothing waits)."""
    if request.status != RequestStatus.approved:
        return ""
    action = action_of(request)
    if action == RequestAction.open:
        return f"账号开通后请发送 /account opened {request.id} [开通日期]"
    if request.notice_started_on is None:
        values = notice_values(profile, action)
        basis = "；".join(v.citation for v in values)
        return f"请向社会发布公告后发送 /account notice {request.id} [公告日期]（依据：{basis}）"
    duty = find_open(session=session, account_id=request.account_id, kind=action.value, request_id=request.id)
    if duty is None or duty.not_before is None:
        return ""
    return (f"公告期满（{fmt_date_zh(local(duty.not_before).date())}起）后请发送 /account done {duty.id} 办结")
