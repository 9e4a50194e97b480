"""/reply: messages from the public and their legal reply deadlines (REPLY-1..6)."""

from __future__ import annotations

from bot import refs
from bot.dispatcher import Context, Handler
from core import audit
from core.clock import fmt_short_zh
from core.errors import InputError, PermissionDenied
from core.messages import Button, Inbound, Outbound
from core.words_zh import parse_duration, parse_number
from people.models import Person, Role
from people.service import find_person
from replies import flows
from replies.models import (
    CATEGORY_ZH,
    CHANNEL_ZH,
    STATUS_ZH,
    ReplyCategory,
    ReplyChannel,
    ReplyItem,
    ReplyStatus,
)
from replies.service import assign as assign_item
from replies.service import (
    close,
    create_item,
    decide_extension,
    default_channel,
    list_items,
    parse_category,
    parse_channel,
    request_extension,
)

STAFF = frozenset({Role.officer, Role.leader, Role.principal, Role.admin})
MANAGERS = frozenset({Role.leader, Role.principal, Role.admin})
LIST_LIMIT = 15
ACTIONS = ("new", "list", "show", "assign", "done", "explain", "extend", "approve", "reject")
ACTION_ALIASES = {"新建": "new", "登记": "new", "列表": "list", "查看": "show", "指派": "assign",
                  "答复": "done", "办结": "done", "说明": "explain", "延期": "extend",
                  "批准": "approve", "驳回": "reject"}
# What a reply to a reply-item card may do without naming the item (bot.refs).
CARD_ACTIONS = frozenset(ACTIONS) - {"new", "list"}


def _item(ctx: Context, text: str) -> ReplyItem:
    """The item ``text`` names: ``17`` is today's MSG-…-017 (``bot.refs``)."""
    item, note = refs.resolve_reply(ctx.session, text, ctx.now)
    if note:
        ctx.notes.append(note)
    return item


def _workdays(text: str) -> int | None:
    """``5``, ``五``, ``5个工作日``, ``十个工作日`` as a number of working days."""
    try:
        return parse_number(text)
    except InputError:
        found = parse_duration(text)
        return found[0] if found is not None and found[1] == "workdays" else None


def _need(person: Person | None, roles: frozenset[Role], what: str) -> Person:
    assert person is not None
    if not roles & person.role_set():
        names = "、".join({Role.leader: "带班领导", Role.principal: "主要负责人", Role.admin: "管理员",
                           Role.officer: "值班员"}[r] for r in Role if r in roles)
        raise PermissionDenied(f"抱歉，{what}需要以下角色之一：{names}。")
    return person


def _line(item: ReplyItem, ctx: Context) -> str:
    overdue = "【超期】" if item.is_open and item.due_at <= ctx.now else ""
    who = ""
    if item.assignee_id:
        person = ctx.session.get(Person, item.assignee_id)
        who = f"｜{person.name}" if person else ""
    return (f"{overdue}{item.number}｜{CATEGORY_ZH[ReplyCategory(item.category)]}｜"
            f"截止 {flows.deadline_zh(item)}{who}｜{item.summary[:24]}")


class ReplyHandler(Handler):
    command = "reply"
    aliases = ("留言",)
    roles = STAFF
    usage = ("/reply new 类别[@渠道] 摘要 ｜ list [due|overdue|mine] ｜ show 编号 ｜ assign 编号 姓名 ｜ "
             "done 编号 答复摘要 ｜ explain 编号 说明 ｜ extend 编号 天数 理由 ｜ approve 编号 ｜ reject 编号 理由"
             "（类别：找错、咨询、建议、查证、异议）")
    summary = "群众留言答复期限：登记、指派、答复、延期"
    card_kind = "reply"

    def understands(self, word: str) -> bool:
        """``答复 …``, ``延期 5 理由``, ``批准`` … typed in reply to a reply-item card."""
        return ACTION_ALIASES.get(word, word.lower()) in CARD_ACTIONS

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        action, _, rest = ctx.args.strip().partition(" ")
        action = ACTION_ALIASES.get(action, action.lower())
        rest = rest.strip()
        if not action:
            return await self._list("", ctx)
        if action not in ACTIONS:
            raise InputError(f"未知操作“{action}”。")
        if action in CARD_ACTIONS:   # in reply to a reply-item card: that item
            rest = refs.with_card(rest, ctx.card, "reply")
        return await getattr(self, f"_{action}")(rest, ctx)

    async def _new(self, rest: str, ctx: Context) -> list[Outbound]:
        kind, _, summary = rest.partition(" ")
        if not kind or not summary.strip():
            raise InputError("请写明类别和留言摘要。")
        cat_text, _, channel_text = kind.partition("@")
        category = parse_category(cat_text)
        channel = parse_channel(channel_text) if channel_text else default_channel(category)
        item, deadline = create_item(
            session=ctx.session, calendar=ctx.calendar, profile=ctx.profile, category=category,
            channel=channel, summary=summary, received_at=ctx.now,
            unit=ctx.person.unit if ctx.person else "", assignee=None, created_by=ctx.person,
            now=ctx.now, actor=ctx.actor)
        flows.schedule_reminders(session=ctx.session, item=item, calendar=ctx.calendar,
                                 policy=ctx.settings.reply_policy(ctx.calendar), now=ctx.now)
        lines = [f"已登记 {item.number}（{CATEGORY_ZH[category]}，{CHANNEL_ZH[ReplyChannel(channel)]}）",
                 f"截止：{deadline.due.short_zh()}", item.citation]
        if deadline.capped:
            lines.append("注意：已按“收到之日起最迟3个月”封顶。")
        lines.append(f"指派：/reply assign {item.number} 姓名；答复后：/reply done {item.number} 答复摘要")
        return [Outbound("\n".join(lines))]

    async def _list(self, rest: str, ctx: Context) -> list[Outbound]:
        which = {"": "open", "open": "open", "due": "due", "到期": "due", "overdue": "overdue",
                 "超期": "overdue", "mine": "mine", "我的": "mine"}.get(rest)
        if which is None:
            raise InputError(f"无法识别的列表“{rest}”（可用：due、overdue、mine）。")
        items = list_items(session=ctx.session, which=which, now=ctx.now, person=ctx.person)
        title = {"open": "待答复留言", "due": "24小时内到期的留言", "overdue": "已超期的留言",
                 "mine": "指派给我的留言"}[which]
        if not items:
            return [Outbound(f"{title}：无。")]
        overdue = sum(1 for i in items if i.due_at <= ctx.now)
        lines = [f"{title}：共 {len(items)} 条" + (f"，其中超期 {overdue} 条" if overdue and which != "overdue" else "")]
        lines += [_line(i, ctx) for i in items[:LIST_LIMIT]]
        if len(items) > LIST_LIMIT:
            lines.append(f"……还有 {len(items) - LIST_LIMIT} 条")
        return [Outbound("\n".join(lines))]

    async def _show(self, rest: str, ctx: Context) -> list[Outbound]:
        if not rest:
            raise InputError("请给出留言编号。")
        item = _item(ctx, rest)
        assignee = ctx.session.get(Person, item.assignee_id) if item.assignee_id else None
        lines = [f"{item.number}｜{CATEGORY_ZH[ReplyCategory(item.category)]}｜"
                 f"{CHANNEL_ZH[ReplyChannel(item.channel)]}｜{STATUS_ZH[ReplyStatus(item.status)]}",
                 f"摘要：{item.summary}", f"收到：{fmt_short_zh(item.received_at)}",
                 f"截止：{flows.deadline_zh(item)}", item.citation,
                 f"负责人：{assignee.name if assignee else '未指派'}"]
        if item.extended_workdays:
            lines.append(f"已延期：{item.extended_workdays} 个工作日")
        if item.extension_requested:
            lines.append(f"待审批延期：{item.extension_requested} 个工作日（{item.extension_reason}）")
        if item.answer:
            on_time = "按期" if item.on_time() else "超期"
            lines.append(f"办结：{fmt_short_zh(item.closed_at)}（{on_time}）{item.answer}")  # type: ignore[arg-type]
        lines.append("记录：")
        for event in audit.history(session=ctx.session, entity_type="reply", entity_id=item.number):
            lines.append(f"  {fmt_short_zh(event.at)} {event.actor_zh()} {_EVENT_ZH.get(event.action, '其他操作')}")
        return [Outbound("\n".join(lines))]

    async def _assign(self, rest: str, ctx: Context) -> list[Outbound]:
        _need(ctx.person, MANAGERS, "指派留言")
        parts = rest.split()
        if len(parts) != 2:
            raise InputError("请给出留言编号和负责人姓名。")
        item = _item(ctx, parts[0])
        person = find_person(session=ctx.session, name=parts[1])
        assign_item(session=ctx.session, item=item, assignee=person, now=ctx.now, actor=ctx.actor)
        flows.notify(ctx.session, [person],
                     flows.card(item, now=ctx.now, head=f"【留言指派】{ctx.actor} 将留言交由您答复"),
                     event=f"reply:{item.number}:assigned:{person.id}:{ctx.now.isoformat()}", now=ctx.now)
        return [Outbound(f"已将 {item.number} 指派给 {person.name}，截止时间不变：{flows.deadline_zh(item)}。")]

    async def _close(self, rest: str, ctx: Context, status: ReplyStatus) -> list[Outbound]:
        number, _, text = rest.partition(" ")
        if not number or not text.strip():
            raise InputError("请给出留言编号和内容摘要。")
        item = _item(ctx, number)
        on_time = close(session=ctx.session, item=item, status=status, text=text, by=ctx.person,
                        now=ctx.now, actor=ctx.actor)
        flows.cancel_reminders(session=ctx.session, item=item)
        word = "已答复" if status == ReplyStatus.answered else "已说明（无法办理）"
        replies = [Outbound(f"{item.number} {word}，{'按期办结' if on_time else '超期办结'}。")]
        if item.escalation_level >= 2:
            flows.notify(ctx.session, flows.rung(ctx.session, item, Role.leader),
                         f"【超期留言已办结】{item.number} 由 {ctx.actor} {word}。",
                         event=f"reply:{item.number}:closed", now=ctx.now)
        return replies

    async def _done(self, rest: str, ctx: Context) -> list[Outbound]:
        return await self._close(rest, ctx, ReplyStatus.answered)

    async def _explain(self, rest: str, ctx: Context) -> list[Outbound]:
        return await self._close(rest, ctx, ReplyStatus.explained)

    async def _extend(self, rest: str, ctx: Context) -> list[Outbound]:
        parts = rest.split(maxsplit=2)
        days = _workdays(parts[1]) if len(parts) >= 2 else None
        if len(parts) < 3 or days is None:
            raise InputError("请给出留言编号、延期的工作日天数（如 5 或 五个工作日）和理由。")
        item = _item(ctx, parts[0])
        assert ctx.person is not None
        request_extension(session=ctx.session, item=item, profile=ctx.profile, days=days,
                          reason=parts[2], by=ctx.person, now=ctx.now, actor=ctx.actor)
        principals = flows.rung(ctx.session, item, Role.principal)
        flows.notify(ctx.session, principals,
                     flows.card(item, now=ctx.now, head=f"【延期申请】{ctx.actor} 申请延期 {days} 个工作日",
                                action=f"请审批：回复“批准”或“驳回 理由”，或发送 /reply approve {item.number}")
                     + f"\n理由：{parts[2]}",
                     event=f"reply:{item.number}:extension:{ctx.now.isoformat()}", now=ctx.now,
                     buttons=(Button("批准", f"/reply approve {item.number}"),
                              Button("驳回", f"/reply reject {item.number} 理由")),
                     card=flows.extension_card(item))
        who = "、".join(p.name for p in principals) or "（未设置主要负责人，请联系管理员）"
        return [Outbound(f"延期申请已提交，等待主要负责人审批：{who}。")]

    async def _decide(self, rest: str, ctx: Context, approve: bool) -> list[Outbound]:
        _need(ctx.person, frozenset({Role.principal}), "审批延期")
        number, _, note = rest.partition(" ")
        if not number:
            raise InputError("请给出留言编号。")
        item = _item(ctx, number)
        requester = item.extension_requested_by_id
        days = item.extension_requested
        deadline = decide_extension(session=ctx.session, item=item, approve=approve,
                                    calendar=ctx.calendar, profile=ctx.profile, now=ctx.now,
                                    actor=ctx.actor, note=note.strip())
        if deadline is not None:
            flows.schedule_reminders(session=ctx.session, item=item, calendar=ctx.calendar,
                                     policy=ctx.settings.reply_policy(ctx.calendar), now=ctx.now)
            result = f"已批准 {item.number} 延期 {days} 个工作日，新的截止：{flows.deadline_zh(item)}。"
        else:
            result = f"已驳回 {item.number} 的延期申请，截止不变：{flows.deadline_zh(item)}。"
        people = [p for p in (ctx.session.get(Person, requester) if requester else None,) if p]
        flows.notify(ctx.session, people, f"【延期审批】{ctx.actor}：{result}" + (f"\n意见：{note.strip()}" if note.strip() else ""),
                     event=f"reply:{item.number}:decision:{ctx.now.isoformat()}", now=ctx.now)
        return [Outbound(result, card_key=flows.extension_card(item))]  # the request card, decided

    async def _approve(self, rest: str, ctx: Context) -> list[Outbound]:
        return await self._decide(rest, ctx, True)

    async def _reject(self, rest: str, ctx: Context) -> list[Outbound]:
        return await self._decide(rest, ctx, False)


_EVENT_ZH = {"created": "登记", "assigned": "指派", "answered": "答复", "explained": "说明无法办理",
             "extension_requested": "申请延期", "extension_approved": "批准延期",
             "extension_rejected": "驳回延期", "imported_answered": "导入（已答复）",
             "retimed": "按节假日安排重算期限"}
