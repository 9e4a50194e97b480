"""/swap (换班) between two people of the same duty role, and /substitute (替班) by admins.

Both keep the office's rest rules (``roster.rest``): a swap that breaks one waits for an
admin, who approves it with ``/swap approve N 理由：…``; a substitution that breaks one
needs ``理由：…`` at the end. The reason is kept in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.dispatcher import Context, Handler
from bot.handlers.assign import overridden_note, override_of, rest_rules, split_reason
from bot.handlers.duty import parse_day
from core.errors import InputError
from core.messages import Button, Inbound, Outbound
from core.text import parse_row_id
from people.models import Person, Role
from people.service import find_person, people_with_role
from roster import changes, holders, substitute, training
from roster import service as roster
from roster.models import DUTY_ROLE_ZH, SWAP_STATUS_ZH, DutyRole, Shift, SwapRequest, SwapStatus
from roster.rest import RestViolation

STAFF = frozenset({Role.officer, Role.leader, Role.principal, Role.admin})
ACTIONS = {"list": "list", "列表": "list", "待办": "list", "accept": "accept", "同意": "accept",
           "decline": "decline", "拒绝": "decline", "approve": "approve", "批准": "approve",
           "reject": "reject", "驳回": "reject", "cancel": "cancel", "撤回": "cancel"}
EXCHANGE_WORDS = ("换", "换回")
MAX_REASON = 200


@dataclass(frozen=True)
class Target:
    """``日期 [班次] 姓名`` parsed, and what is left."""

    day: date
    shift_name: str | None
    rest: list[str]


def _day_and_shift(tokens: list[str], ctx: Context, today: date) -> Target:
    if not tokens:
        raise InputError("请写明日期。")
    day = parse_day(tokens[0], today)
    names = ctx.settings.roster.patterns().names()
    if len(tokens) > 1 and tokens[1] in names:
        return Target(day, tokens[1], tokens[2:])
    return Target(day, None, tokens[1:])


def _swap_id(text: str) -> tuple[int, str]:
    number, _, rest = text.strip().partition(" ")
    found = parse_row_id(number)
    if found is None:
        raise InputError("请给出换班申请编号（如 /swap accept 12）。")
    return found, rest.strip()


def _person(ctx: Context) -> Person:
    assert ctx.person is not None
    return ctx.person


def _people(ctx: Context, *ids: int) -> list[Person]:
    return [p for p in (ctx.session.get(Person, i) for i in ids) if p is not None]


def _untrained(ctx: Context, officers: list[tuple[Shift | None, Person]], how: str = "") -> str:
    """Where the profile states STAFF-1: the warning about the officers put on these shifts
    before their recorded training ('' when none); recorded in the audit log when ``how``
    names the change."""
    if not training.required(ctx.profile):
        return ""
    items = [training.Untrained(s, p) for s, p in officers if s is not None and not training.trained_for(p, s.day)]
    if how:
        training.record(ctx.session, items, now=ctx.now, actor=ctx.actor, how=how)
    lines = training.warning(ctx.profile, items)
    return "\n" + "\n".join(lines) if lines else ""


def _rest_warning(broken: list[RestViolation], swap_id: int | None) -> str:
    """``\n注意：…，超过本单位规定的24小时。此换班须由管理员说明理由后批准…`` ('' when none)."""
    if not broken:
        return ""
    return ("\n注意：" + "；".join(v.zh() for v in broken) + "。此换班不符合本单位休息规定，须由管理员说明理由后批准"
            f"（/swap approve {swap_id} 理由：…）。")


class SwapHandler(Handler):
    command = "swap"
    aliases = ("换班",)
    roles = STAFF
    usage = ("/swap 日期 [班次] 对方 [理由] ｜ /swap 日期 [班次] 对方 换 日期2 [班次2] [理由]（互换）｜ "
             "/swap list ｜ accept 编号 ｜ decline 编号 [理由] ｜ approve 编号 [理由：…（管理员放行）] ｜ "
             "reject 编号 理由 ｜ cancel 编号")
    summary = "换班：请同事接替我的班次（或互换），对方同意、带班领导批准后生效"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        first, _, rest = ctx.args.strip().partition(" ")
        action = ACTIONS.get(first.lower() if first.isascii() else first)
        if not first:
            action = "list"
        if action is None:
            return self._request(ctx)
        return getattr(self, f"_{action}")(rest.strip(), ctx)

    # ------------------------------------------------------------ asking

    def _request(self, ctx: Context) -> list[Outbound]:
        me = _person(ctx)
        patterns = ctx.settings.roster.patterns()
        today = roster.local_day(ctx.now, patterns, ctx.calendar)
        first = _day_and_shift(ctx.args.split(), ctx, today)
        if not first.rest:
            raise InputError("请写明要换给谁（对方姓名）。")
        target = find_person(session=ctx.session, name=first.rest[0])
        shift = holders.held_shift(session=ctx.session, day=first.day, name=first.shift_name, person=me, who="您")
        rest = first.rest[1:]
        back: Shift | None = None
        if rest and rest[0] in EXCHANGE_WORDS:
            second = _day_and_shift(rest[1:], ctx, today)
            back = holders.held_shift(session=ctx.session, day=second.day, name=second.shift_name,
                                      person=target, who=target.name)
            rest = second.rest
        reason = " ".join(rest)
        if len(reason) > MAX_REASON:
            raise InputError(f"理由过长（上限 {MAX_REASON} 字）。")
        swap = changes.request_swap(
            session=ctx.session, shift=shift, requester=me, target=target, back_shift=back, reason=reason,
            needs_approval=ctx.settings.roster.swap_needs_approval, now=ctx.now, actor=ctx.actor,
            rest=rest_rules(ctx))
        warn = _rest_warning(changes.rest_broken(ctx.session, swap, rest_rules(ctx)), swap.id)
        role = DUTY_ROLE_ZH[DutyRole(swap.role)]
        ask = [f"【换班申请】{me.name} 请您接替{role}班次：{roster.label(shift)}"]
        if back is not None:
            ask.append(f"作为交换，{me.name} 接替您的：{roster.label(back)}")
        if reason:
            ask.append(f"理由：{reason}")
        ask.append(f"编号 #{swap.id}。同意：/swap accept {swap.id}；拒绝：/swap decline {swap.id} [理由]")
        if swap.needs_approval:
            ask.append("双方同意后，还需带班领导审批。" + warn)
        changes.notify(ctx.session, [target], "\n".join(ask), event=f"swap:{swap.id}:requested", now=ctx.now,
                       buttons=(Button("同意", f"/swap accept {swap.id}"),
                                Button("拒绝", f"/swap decline {swap.id}")))
        then = "，对方同意后还需带班领导审批" if swap.needs_approval else ""
        return [Outbound(f"已向 {target.name} 发出换班申请 #{swap.id}：{roster.label(shift)}"
                         + (f"，换回 {roster.label(back)}" if back else "")
                         + f"。等待对方确认{then}。撤回：/swap cancel {swap.id}" + warn)]

    # ------------------------------------------------------------ answering

    def _accept(self, rest: str, ctx: Context) -> list[Outbound]:
        swap = changes.get_swap(ctx.session, _swap_id(rest)[0])
        outcome = changes.accept(session=ctx.session, swap=swap, by=_person(ctx), now=ctx.now, actor=ctx.actor,
                                 rest=rest_rules(ctx))
        return self._after(outcome, ctx)

    def _decline(self, rest: str, ctx: Context) -> list[Outbound]:
        swap_id, reason = _swap_id(rest)
        swap = changes.get_swap(ctx.session, swap_id)
        changes.decline(session=ctx.session, swap=swap, by=_person(ctx), reason=reason, now=ctx.now,
                        actor=ctx.actor)
        changes.notify(ctx.session, _people(ctx, swap.requester_id),
                       f"【换班未成】{ctx.actor} 拒绝了您的换班申请\n{changes.describe_swap(ctx.session, swap)}"
                       + (f"\n对方说明：{reason}" if reason else "") + "\n值班安排不变。",
                       event=f"swap:{swap.id}:declined", now=ctx.now)
        return [Outbound(f"已拒绝换班申请 #{swap.id}，已告知申请人。")]

    def _approve(self, rest: str, ctx: Context) -> list[Outbound]:
        swap_id, extra = _swap_id(rest)
        reason = split_reason(extra)[1]
        swap = changes.get_swap(ctx.session, swap_id)
        outcome = changes.approve(session=ctx.session, swap=swap, by=_person(ctx), now=ctx.now, actor=ctx.actor,
                                  rest=rest_rules(ctx), override=override_of(ctx, reason))
        return self._after(outcome, ctx, reason)

    def _reject(self, rest: str, ctx: Context) -> list[Outbound]:
        swap_id, reason = _swap_id(rest)
        swap = changes.get_swap(ctx.session, swap_id)
        if not reason:
            # A button cannot carry a reason: check now, then read it from the next message.
            changes.check_decider(ctx.session, swap, _person(ctx))
            ctx.ask(f"/swap reject {swap.id}")
            return [Outbound(f"请回复驳回换班申请 #{swap.id} 的理由（发送“取消”放弃）。")]
        if len(reason) > MAX_REASON:
            raise InputError(f"理由过长（上限 {MAX_REASON} 字）。")
        changes.reject(session=ctx.session, swap=swap, by=_person(ctx), reason=reason, now=ctx.now,
                       actor=ctx.actor)
        changes.notify(ctx.session, _people(ctx, swap.requester_id, swap.target_id),
                       f"【换班未批准】{ctx.actor} 驳回了换班申请\n{changes.describe_swap(ctx.session, swap)}\n"
                       f"驳回理由：{reason}\n值班安排不变。", event=f"swap:{swap.id}:rejected", now=ctx.now)
        return [Outbound(f"已驳回换班申请 #{swap.id}，已告知双方。")]

    def _cancel(self, rest: str, ctx: Context) -> list[Outbound]:
        swap = changes.get_swap(ctx.session, _swap_id(rest)[0])
        was_accepted = swap.status == SwapStatus.accepted
        changes.withdraw(session=ctx.session, swap=swap, by=_person(ctx), now=ctx.now, actor=ctx.actor)
        told = _people(ctx, swap.target_id) + (changes.approvers(ctx.session, swap) if was_accepted else [])
        changes.notify(ctx.session, told, f"【换班撤回】{ctx.actor} 撤回了换班申请\n"
                       f"{changes.describe_swap(ctx.session, swap)}\n值班安排不变。",
                       event=f"swap:{swap.id}:withdrawn", now=ctx.now)
        return [Outbound(f"已撤回换班申请 #{swap.id}。")]

    def _after(self, outcome: changes.Outcome, ctx: Context, reason: str | None = None) -> list[Outbound]:
        """Tell everyone what an accept or approve led to; the reply for the actor."""
        swap, me = outcome.swap, _person(ctx)
        shift, back, requester, target = changes.parts(ctx.session, swap)
        card = changes.describe_swap(ctx.session, swap)
        if outcome.status == SwapStatus.cancelled:
            changes.notify(ctx.session, [requester, target], f"【换班取消】{card}\n{outcome.why}\n值班安排不变。",
                           event=f"swap:{swap.id}:cancelled", now=ctx.now, skip=me)
            return [Outbound(f"换班申请 #{swap.id} 已无法办理，已自动取消：{outcome.why}")]
        if outcome.status == SwapStatus.accepted:
            deciders = changes.approvers(ctx.session, swap)
            warn = _rest_warning(list(outcome.broken), swap.id)
            if outcome.broken:   # only an admin may approve it: they hear of it too
                deciders = list({p.id: p for p in [*deciders, *people_with_role(session=ctx.session,
                                                                                role=Role.admin)]}.values())
            names = "、".join(p.name for p in deciders)
            untrained = (_untrained(ctx, [(shift, target), (back, requester)])
                         if swap.role == DutyRole.officer else "")
            approve = (f"批准（管理员，须说明理由）：/swap approve {swap.id} 理由：…" if outcome.broken
                       else f"批准：/swap approve {swap.id}")
            changes.notify(ctx.session, deciders, f"【换班待审批】{requester.name} 与 {target.name} 已商定换班\n{card}"
                           f"{untrained}{warn}\n{approve}；驳回：/swap reject {swap.id} 理由",
                           event=f"swap:{swap.id}:approval", now=ctx.now,
                           buttons=((Button("驳回", f"/swap reject {swap.id}"),) if outcome.broken else
                                    (Button("批准", f"/swap approve {swap.id}"),
                                     Button("驳回", f"/swap reject {swap.id}"))))
            changes.notify(ctx.session, [requester], f"【换班进展】{target.name} 已同意换班 #{swap.id}，"
                           f"等待 {names} 审批。", event=f"swap:{swap.id}:accepted", now=ctx.now)
            return [Outbound(f"已同意换班申请 #{swap.id}，等待 {names} 审批。")]
        everyone = changes.affected(ctx.session, [shift, back], requester, target)
        lines = [f"【换班生效】{roster.label(shift)}",
                 f"{DUTY_ROLE_ZH[DutyRole(swap.role)]}：{requester.name} → {target.name}"]
        if back is not None:
            lines.append(f"{roster.label(back)}：{target.name} → {requester.name}")
        lines.append(f"编号 #{swap.id}" + (f"，{ctx.actor} 批准" if me.id != target.id else "")
                     + "。查看：/duty 日期")
        note = (_untrained(ctx, [(shift, target), (back, requester)], f"换班 #{swap.id}")
                if swap.role == DutyRole.officer else "") + overridden_note(list(outcome.broken), reason)
        changes.notify(ctx.session, everyone, "\n".join(lines) + note, event=f"swap:{swap.id}:done", now=ctx.now,
                       skip=me)
        return [Outbound(f"换班 #{swap.id} 已生效：{roster.label(shift)} 由 {target.name} 值班"
                         + (f"，{roster.label(back)} 由 {requester.name} 值班" if back else "")
                         + "。已通知相关人员。" + note)]

    # ------------------------------------------------------------ listing

    def _list(self, rest: str, ctx: Context) -> list[Outbound]:
        mine = changes.open_swaps_for(ctx.session, _person(ctx))
        lines: list[str] = []

        def section(title: str, swaps: list[SwapRequest], hint: str) -> None:
            if swaps:
                lines.append(f"{title}（{len(swaps)}）：")
                lines.extend(f"  {changes.describe_swap(ctx.session, s)}" for s in swaps)
                lines.append(f"  {hint}")

        section("待我确认", mine.to_answer, "同意：/swap accept 编号；拒绝：/swap decline 编号 [理由]")
        section("待我审批", mine.to_approve, "批准：/swap approve 编号；驳回：/swap reject 编号 理由")
        if mine.mine:
            lines.append(f"我的申请（{len(mine.mine)}）：")
            lines.extend(f"  {changes.describe_swap(ctx.session, s)}｜{SWAP_STATUS_ZH[SwapStatus(s.status)]}"
                         for s in mine.mine)
            lines.append("  撤回：/swap cancel 编号")
        return [Outbound("\n".join(lines) if lines else "没有待您处理的换班申请。")]


class SubstituteHandler(Handler):
    command = "substitute"
    aliases = ("替班",)
    roles = frozenset({Role.admin})
    usage = "/substitute 日期 [班次] 原人员 新人员 [理由]（不符合休息规定时须写“理由：…”）"
    summary = "替班：管理员直接调整某班次的值班人员（管理员）"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        patterns = ctx.settings.roster.patterns()
        today = roster.local_day(ctx.now, patterns, ctx.calendar)
        parsed = _day_and_shift(ctx.args.split(), ctx, today)
        if len(parsed.rest) < 2:
            raise InputError("请写明原人员和新人员。")
        old = find_person(session=ctx.session, name=parsed.rest[0])
        new = find_person(session=ctx.session, name=parsed.rest[1])
        free, why = split_reason(" ".join(parsed.rest[2:]))
        reason = "；".join(x for x in (free, why) if x)
        if len(reason) > MAX_REASON:
            raise InputError(f"理由过长（上限 {MAX_REASON} 字）。")
        shift = holders.held_shift(session=ctx.session, day=parsed.day, name=parsed.shift_name, person=old,
                                   who=old.name)
        sub = substitute.substitute(session=ctx.session, shift=shift, old=old, new=new, reason=reason,
                                   now=ctx.now, actor=ctx.actor, rest=rest_rules(ctx), override=override_of(ctx, why),
                                   hint=f"如确需安排，请写明理由后重发：/substitute {split_reason(ctx.args)[0]} 理由：…")
        note = (_untrained(ctx, [(shift, new)], "替班") if sub.role == DutyRole.officer else "") + \
            overridden_note(sub.overridden, why)
        text = substitute.substitution_text(sub, reason, ctx.actor) + note
        changes.notify(ctx.session, changes.affected(ctx.session, [shift], old, new), text,
                       event=f"substitute:{shift.id}:{old.id}:{new.id}:{ctx.now.isoformat()}", now=ctx.now,
                       skip=_person(ctx))
        for swap in sub.cancelled:
            changes.notify(ctx.session, _people(ctx, swap.requester_id, swap.target_id),
                           f"【换班取消】{changes.describe_swap(ctx.session, swap)}\n"
                           f"管理员已安排 {new.name} 替班，此申请自动取消。",
                           event=f"swap:{swap.id}:cancelled", now=ctx.now, skip=_person(ctx))
        extra = f"；已取消相关换班申请 {len(sub.cancelled)} 个" if sub.cancelled else ""
        return [Outbound(f"已替班：{roster.label(shift)} {DUTY_ROLE_ZH[sub.role]} {old.name} → {new.name}"
                         f"{extra}。已通知相关人员。{note}")]
