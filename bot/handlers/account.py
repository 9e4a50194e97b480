"""/account (账号): 政务新媒体账号的开设、变更、关停、注销申请与审批，备案、公告等待办事项.

The rules (who approves, in which order, deadlines, refusals) are the domain's
(:mod:`accounts.lifecycle`); this handler parses, calls it, sends the approval card with
同意/不同意 buttons to the people who decide the current step, and tells the requester.
A button cannot carry a note or a reason: pressing 同意 on an outside office's step, or
不同意, asks for it in the next message.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlmodel import col, select

from accounts import approvals, cards, lifecycle
from accounts.duties import line as duty_line
from accounts.duties import open_duties, site_of, unit_of
from accounts.models import ACTION_ZH, Account, AccountRequest, RequestAction, RequestStatus
from accounts.register import AccountAmbiguous, account_line, find_account, state_zh
from accounts.requests import Outcome, account_of, get_request, in_progress, waiting_label
from bot.dispatcher import Context, Handler
from bot.handlers.duty import parse_day
from core.clock import fmt_date_zh, local
from core.errors import DutybotError, InputError
from core.messages import Button, Inbound, Outbound
from core.text import parse_row_id
from people.models import Person, Role

STAFF = frozenset({Role.officer, Role.leader, Role.principal, Role.admin})
ACTIONS = {
    "open": "open", "开设": "open", "change": "change", "变更": "change", "close": "close", "关停": "close",
    "cancel": "cancel", "注销": "cancel", "approve": "approve", "同意": "approve", "批准": "approve",
    "reject": "reject", "不同意": "reject", "驳回": "reject", "opened": "opened", "已开通": "opened",
    "notice": "notice", "公告": "notice", "done": "done", "办结": "done", "完成": "done",
    "duties": "duties", "事项": "duties", "待办": "duties", "requests": "requests", "申请": "requests",
    "show": "show", "查看": "show",
}
MAX_LINES = 20
_STEP = re.compile(r"^第(\d{1,2})步\s*")


def _person(ctx: Context) -> Person:
    assert ctx.person is not None
    return ctx.person


def _number(text: str, what: str) -> tuple[int, str]:
    head, _, rest = text.strip().partition(" ")
    found = parse_row_id(head)
    if found is None:
        raise InputError(f"请给出{what}（数字），如 3。")
    return found, rest.strip()


def _day(ctx: Context, text: str) -> date:
    return parse_day(text, local(ctx.now).date()) if text.strip() else local(ctx.now).date()


def _account(ctx: Context, name: str) -> Account:
    """The account of that name; of the speaker's unit when several units use the name."""
    try:
        return find_account(session=ctx.session, name=name)
    except AccountAmbiguous as exc:
        unit = _person(ctx).unit
        if unit and unit in exc.units:
            return find_account(session=ctx.session, name=name, unit=unit)
        raise


def _rules(ctx: Context) -> dict[str, Any]:
    """The session, rule profile, calendar and reminder policy the lifecycle steps take."""
    return {"session": ctx.session, "profile": ctx.profile, "calendar": ctx.calendar,
            "policy": ctx.settings.account_duty_policy(ctx.calendar)}


def _sees_all(person: Person) -> bool:
    return Role.admin in person.role_set() or not person.unit


class AccountHandler(Handler):
    command = "account"
    aliases = ("账号",)
    roles = STAFF
    usage = ("/account open 名称 平台 [单位] ｜ change 名称 变更内容 ｜ close 名称 理由 ｜ cancel 名称 理由 ｜ "
             "approve 编号 [备注] ｜ reject 编号 理由 ｜ opened 编号 [日期] ｜ notice 编号 [日期] ｜ "
             "done 事项编号 [备注或备案编号] ｜ duties ｜ requests ｜ show 名称")
    summary = "政务新媒体账号：开设、变更、关停、注销的申请与审批，备案、公告等待办事项"

    def usage_for(self, args: str) -> str:
        """Only the attempted sub-command's form."""
        word = args.split(maxsplit=1)[0] if args.strip() else ""
        action = ACTIONS.get(word, ACTIONS.get(word.lower(), ""))
        for part in self.usage.split("｜"):
            form = part.strip().removeprefix("/account ")
            if action and form.split(" ", 1)[0] == action:
                return f"/account {form}"
        return self.usage

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        first, _, rest = ctx.args.strip().partition(" ")
        action = ACTIONS.get(first, ACTIONS.get(first.lower())) if first else "duties"
        if action is None:
            raise InputError(f"无法识别的子命令“{first}”。")
        replies: list[Outbound] = getattr(self, f"_{action}")(rest.strip(), ctx)
        return replies

    # ------------------------------------------------------------------ requests

    def _open(self, rest: str, ctx: Context) -> list[Outbound]:
        parts = rest.split()
        if len(parts) < 2:
            raise InputError("请写明账号名称和平台，如：/account open 梁平发布 微信公众号")
        unit = parts[2] if len(parts) > 2 else _person(ctx).unit
        outcome = lifecycle.request_open(**_rules(ctx), name=parts[0], platform=parts[1], unit=unit,
                                         by=_person(ctx), now=ctx.now)
        return self._asked(ctx, outcome)

    def _change(self, rest: str, ctx: Context) -> list[Outbound]:
        name, _, detail = rest.partition(" ")
        if not name:
            raise InputError("请写明账号名称和变更内容。")
        outcome = lifecycle.request_change(**_rules(ctx), account=_account(ctx, name), detail=detail,
                                           by=_person(ctx), now=ctx.now)
        return self._asked(ctx, outcome)

    def _close(self, rest: str, ctx: Context, action: RequestAction = RequestAction.close) -> list[Outbound]:
        name, _, reason = rest.partition(" ")
        if not name:
            raise InputError(f"请写明要{ACTION_ZH[action]}的账号名称和理由。")
        outcome = lifecycle.request_close(**_rules(ctx), account=_account(ctx, name), reason=reason,
                                          by=_person(ctx), now=ctx.now, action=action)
        return self._asked(ctx, outcome)

    def _cancel(self, rest: str, ctx: Context) -> list[Outbound]:
        return self._close(rest, ctx, RequestAction.cancel)

    def _asked(self, ctx: Context, outcome: Outcome) -> list[Outbound]:
        """The requester's reply and, while approvals are needed, the approvers' cards."""
        request = outcome.request
        assert request is not None
        what = ACTION_ZH[RequestAction(request.action)]
        lines = [f"已提交{what}申请（申请编号 {request.id}）：{cards.account_label(ctx.session, request)}"]
        out: list[Outbound] = []
        if request.status == RequestStatus.pending:
            ask = self._ask_deciders(ctx, request)
            out += ask
            lines.append(f"审批：{approvals.progress_zh(ctx.session, request)}（依据：{request.citation}）")
            names = "、".join(sorted({_name(ctx, o.person_id) for o in ask}))
            lines.append(f"已请 {names} 审批。" if names else
                         "目前没有可以审批这一步的人员（申请人不能审批自己的申请）：请管理员添加或指定审批人员。")
        else:
            lines.append(f"{approvals.INTERNAL}，已视为批准。")
        lines += self._after(ctx, outcome)
        return [Outbound("\n".join(lines)), *out]

    def _after(self, ctx: Context, outcome: Outcome) -> list[str]:
        """The duties a step opened and what to do next."""
        lines: list[str] = []
        request = outcome.request
        if request is not None and request.status == RequestStatus.done and request.finished_at == ctx.now:
            lines.append(f"申请 {request.id} 已办结：{cards.account_label(ctx.session, request)}，"
                         f"账号{state_zh(outcome.account)}。")
        lines += [f"待办：{duty_line(ctx.session, d, ctx.now)}" for d in outcome.duties]
        if outcome.request is not None:
            step = cards.next_step_zh(ctx.session, ctx.profile, outcome.request)
            lines += [step] if step else []
        return lines

    def _ask_deciders(self, ctx: Context, request: AccountRequest) -> list[Outbound]:
        label = waiting_label(ctx.session, request)
        if label is None:
            return []
        account = account_of(ctx.session, request)
        people = approvals.deciders(ctx.session, request=request, label=label,
                                    unit=unit_of(ctx.session, account))
        text = cards.approval_card(ctx.session, ctx.profile, request)
        step = approvals.current_step(ctx.session, request)
        word = _step_word(step)
        buttons = (Button("同意", f"/account approve {request.id} {word}"),
                   Button("不同意", f"/account reject {request.id} {word}"))
        return [Outbound(text, person_id=p.id, buttons=buttons, card_key=_card(request.id, step),
                         event_key=f"account-request:{request.id}:step:{step}") for p in people]

    # ------------------------------------------------------------------ deciding

    def _approve(self, rest: str, ctx: Context) -> list[Outbound]:
        request_id, step, note = _decision(ctx, rest)
        me = _person(ctx)
        label = lifecycle.check_may_decide(session=ctx.session, request_id=request_id, by=me)
        if approvals.is_outside(label) and not note:
            ctx.ask(f"/account approve {request_id} {_step_word(step)}")
            return [Outbound(f"请回复“{label}”的批准文号或意见（发送“取消”放弃）。")]
        outcome = lifecycle.approve(**_rules(ctx), request_id=request_id, by=me, note=note, now=ctx.now)
        request = outcome.request
        assert request is not None
        if request.status == RequestStatus.pending:
            ask = self._ask_deciders(ctx, request)
            names = "、".join(sorted({_name(ctx, o.person_id) for o in ask})) or "管理员"
            nxt = waiting_label(ctx.session, request)
            text = f"已同意申请 {request_id}（{label}）。下一步：{nxt}，已请 {names} 审批。"
            return [Outbound(text, card_key=_card(request_id, step)), *ask]
        lines = [f"申请 {request_id} 已批准（{approvals.progress_zh(ctx.session, request)}）。", *self._after(ctx, outcome)]
        told = self._tell_requester(ctx, request, "【账号申请已批准】" + cards.request_line(ctx.session, request)
                                    + "\n" + "\n".join(lines[1:]), "approved")
        return [Outbound("\n".join(lines), card_key=_card(request_id, step)), *told]

    def _reject(self, rest: str, ctx: Context) -> list[Outbound]:
        request_id, step, reason = _decision(ctx, rest)
        if not reason:
            label = lifecycle.check_may_decide(session=ctx.session, request_id=request_id, by=_person(ctx))
            ctx.ask(f"/account reject {request_id} {_step_word(step)}")
            return [Outbound(f"请回复不同意申请 {request_id}（{label}）的理由（发送“取消”放弃）。")]
        outcome = lifecycle.reject(session=ctx.session, request_id=request_id, by=_person(ctx), reason=reason,
                                   now=ctx.now)
        request = outcome.request
        assert request is not None
        told = self._tell_requester(ctx, request, f"【账号申请未获批准】{cards.request_line(ctx.session, request)}\n"
                                    f"{ctx.actor}：{reason}", "rejected")
        return [Outbound(f"已不同意申请 {request_id}，理由：{reason}。" + ("已告知申请人。" if told else ""),
                         card_key=_card(request_id, step)), *told]

    def _tell_requester(self, ctx: Context, request: AccountRequest, text: str, event: str) -> list[Outbound]:
        if request.requested_by_id is None or request.requested_by_id == _person(ctx).id:
            return []
        return [Outbound(text, person_id=request.requested_by_id, event_key=f"account-request:{request.id}:{event}")]

    # ------------------------------------------------------------------ carrying out

    def _opened(self, rest: str, ctx: Context) -> list[Outbound]:
        request_id, day_text = _number(rest, "申请编号")
        outcome = lifecycle.opened(**_rules(ctx), request_id=request_id, day=_day(ctx, day_text), by=_person(ctx),
                                   now=ctx.now)
        site = site_of(ctx.session, outcome.account)
        day = outcome.account.opened_on or local(ctx.now).date()
        return [Outbound("\n".join([f"已登记开通：{site.name}，{fmt_date_zh(day)}起在用。", *self._after(ctx, outcome)]))]

    def _notice(self, rest: str, ctx: Context) -> list[Outbound]:
        request_id, day_text = _number(rest, "申请编号")
        outcome = lifecycle.notice(**_rules(ctx), request_id=request_id, day=_day(ctx, day_text), by=_person(ctx),
                                   now=ctx.now)
        return [Outbound("\n".join([f"已登记申请 {request_id} 的公告。", *self._after(ctx, outcome)]))]

    def _done(self, rest: str, ctx: Context) -> list[Outbound]:
        duty_id, reference = _number(rest, "事项编号")
        outcome = lifecycle.complete_duty(**_rules(ctx), duty_id=duty_id, by=_person(ctx), now=ctx.now,
                                          reference=reference)
        return [Outbound("\n".join([f"已办结事项 {duty_id}。", *self._after(ctx, outcome)]))]

    # ------------------------------------------------------------------ reading

    def _duties(self, rest: str, ctx: Context) -> list[Outbound]:
        me = _person(ctx)
        rows = open_duties(session=ctx.session, unit=None if _sees_all(me) else me.unit)
        if not rows:
            return [Outbound("没有待办的账号事项。")]
        lines = [f"待办账号事项（{len(rows)}）：", *(duty_line(ctx.session, d, ctx.now) for d in rows[:MAX_LINES])]
        if len(rows) > MAX_LINES:
            lines.append(f"……另有 {len(rows) - MAX_LINES} 项")
        lines.append("办结：/account done 事项编号 [备注或备案编号]")
        return [Outbound("\n".join(lines))]

    def _requests(self, rest: str, ctx: Context) -> list[Outbound]:
        me = _person(ctx)
        rows = [r for r in in_progress(session=ctx.session)
                if _sees_all(me) or unit_of(ctx.session, account_of(ctx.session, r)) == me.unit]
        if not rows:
            return [Outbound("没有办理中的账号申请。")]
        lines = [f"办理中的账号申请（{len(rows)}）：", *(cards.request_line(ctx.session, r) for r in rows[:MAX_LINES])]
        lines.append("审批：/account approve 编号 [备注]；不同意：/account reject 编号 理由")
        return [Outbound("\n".join(lines))]

    def _show(self, rest: str, ctx: Context) -> list[Outbound]:
        if not rest:
            raise InputError("请写明账号名称。")
        account = _account(ctx, rest)
        lines = [account_line(account, site_of(ctx.session, account))]
        requests = list(ctx.session.exec(select(AccountRequest).where(AccountRequest.account_id == account.id)
                                         .order_by(col(AccountRequest.id).desc()).limit(3)))
        lines += [cards.request_line(ctx.session, r) for r in requests]
        lines += [duty_line(ctx.session, d, ctx.now) for d in open_duties(session=ctx.session, account_id=account.id)]
        return [Outbound("\n".join(lines))]


def _step_word(step: int) -> str:
    """``第1步``: what a card's button adds, so a stale card cannot decide a later step."""
    return f"第{step + 1}步"


def _decision(ctx: Context, rest: str) -> tuple[int, int, str]:
    """``编号 [第N步] [备注或理由]`` → (request id, the step waiting, the text).

    Raises:
        DutybotError: the card's step was already decided (its button is stale).
    """
    request_id, text = _number(rest, "申请编号")
    request = get_request(session=ctx.session, request_id=request_id)
    step = approvals.current_step(ctx.session, request)
    m = _STEP.match(text)
    if m is None:
        return request_id, step, text
    pressed = int(m.group(1)) - 1
    if pressed != step and request.status == RequestStatus.pending:
        decided = approvals.decisions(ctx.session, request)
        by = next((d.by_name for d in decided if d.step == pressed), "他人")
        raise DutybotError(f"申请 {request_id} 的第{pressed + 1}步已由 {by} 办理，现待 {waiting_label(ctx.session, request)} "
                           "审批，请以最新的审批卡片为准。")
    return request_id, step, text[m.end():].strip()


def _card(request_id: int | None, step: int) -> str:
    """The card of one approval step: the decider's reply replaces it where the platform can edit."""
    return f"account-request:{request_id}:{step}"


def _name(ctx: Context, person_id: int | None) -> str:
    person = ctx.session.get(Person, person_id) if person_id is not None else None
    return person.name if person is not None else ""
