"""/incident: reports, playbooks, escalation, evidence and reports (DOMAIN §2–5)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from bot import refs
from bot.config import Settings
from bot.dispatcher import Context, Handler
from bot.handlers.incident_new import merge, report_or_offer, split, step_line
from core import audit
from core.audit import AuditEvent
from core.clock import fmt_short_zh
from core.errors import DutybotError, InputError, PermissionDenied
from core.messages import Button, Inbound, Outbound
from incidents import actions, authz
from incidents import escalation as esc
from incidents import evidence as ev
from incidents import service as svc
from incidents.drafts import draft_external
from incidents.fetch import fetch_page
from incidents.grades import grade_names
from incidents.models import (
    STATUS_ZH,
    TYPE_ZH,
    Incident,
    IncidentStatus,
    IncidentStep,
    IncidentType,
    Source,
)
from incidents.report import ACTION_ZH, build_report, render_chat
from people.models import Person, Role

# An address someone means as a page: with a scheme, or a bare domain such as www.x.gov.cn/a.
_LOOKS_LIKE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://\S+|(?:[\w-]+\.)+[a-z]{2,}(?:[/:?#]\S*)?)$", re.IGNORECASE)
STAFF = frozenset({Role.officer, Role.leader, Role.principal, Role.admin})
LIST_LIMIT = 15
TIMELINE_LIMIT = 12
ACTIONS = ("new", "list", "show", "ack", "take", "done", "skip", "note", "grade", "escalate",
           "close", "cancel", "false", "evidence", "report", "draft", "merge", "split")
# What a reply to an incident card may do without naming the incident (bot.refs).
CARD_ACTIONS = frozenset(ACTIONS) - {"new", "list"}
ACTION_ALIASES = {
    "新建": "new", "报告事件": "new", "上报": "escalate", "列表": "list", "查看": "show", "确认": "ack",
    "接手": "take", "认领": "take", "完成": "done", "跳过": "skip", "不适用": "skip", "记录": "note",
    "备注": "note", "定级": "grade", "等级": "grade", "升级": "escalate", "结案": "close",
    "撤销": "cancel", "误报": "false", "证据": "evidence", "存证": "evidence", "报告": "report",
    "草稿": "draft", "拟稿": "draft", "收到": "ack", "合并": "merge", "分开": "split", "分开登记": "split",
}


def _me(ctx: Context) -> Person:
    assert ctx.person is not None
    return ctx.person


def _line(ctx: Context, incident: Incident) -> str:
    steps = svc.steps_of(session=ctx.session, incident=incident)
    late = any(s.is_pending and s.due_at is not None and s.due_at <= ctx.now for s in steps)
    step = svc.next_step(steps)
    nxt = f"｜下一步截止 {svc.step_due_zh(step)}" if step is not None and step.due_at is not None else ""
    return (f"{'【超期】' if late else ''}{incident.number}｜{TYPE_ZH[IncidentType(incident.type)]}｜"
            f"{incident.grade_label}｜{STATUS_ZH[IncidentStatus(incident.status)]}{nxt}｜{incident.site[:20]}")


_step_line = step_line
APPROVE_WORDS = frozenset({"批准", "同意", "确认"})


def _false_request(ctx: Context, incident: Incident) -> AuditEvent | None:
    """The latest pending request to mark ``incident`` a false alarm (the incident is open,
    so every request on its timeline is still pending)."""
    events = audit.history(session=ctx.session, entity_type="incident", entity_id=incident.number)
    return next((e for e in reversed(events) if e.action == authz.FALSE_REQUEST), None)


class IncidentHandler(Handler):
    command = "incident"
    aliases = ("事件",)
    roles = STAFF
    usage = ("/incident new 类型 [通报] [@单位] [等级] 网址或网站名称 描述 ｜ list [mine|open|overdue] ｜ "
             "show 编号 ｜ ack 编号 ｜ take 编号 ｜ done 编号 步骤序号 [备注，或对外报告的 方式 联系人 编号，"
             "或重新发布的 审：姓名、… 校：姓名、…] ｜ "
             "skip 编号 步骤序号 理由 ｜ note 编号 内容 ｜ grade 编号 等级（如 重大，或本地规定的名称）｜ escalate 编号 [说明] ｜ "
             "evidence 编号 网址或文字（或附截图/文件）｜ draft 编号 步骤序号 ｜ report 编号 ｜ "
             "close 编号 结论 ｜ cancel 编号 理由（撤销）｜ false 编号 理由（标记为误报）｜ "
             "merge [编号]（同一网址的报告并入已有事件）｜ split [编号] 理由（分开登记）"
             "（类型：" + "、".join(TYPE_ZH.values()) + "）")
    summary = "网站异常、敏感信息、舆情和安全事件：报告、处置步骤、升级、证据、情况报告"
    card_kind = "incident"

    def understands(self, word: str) -> bool:
        """``确认``, ``完成 2``, ``合并`` … typed in reply to an incident card."""
        return ACTION_ALIASES.get(word, word.lower()) in CARD_ACTIONS

    def usage_for(self, args: str) -> str:
        """Only the attempted sub-command's form (the whole list is long on a phone)."""
        word = args.split(maxsplit=1)[0] if args.strip() else ""
        action = ACTION_ALIASES.get(word, word.lower())
        form = next((part.strip() for part in self.usage.split("｜")
                     if part.strip().removeprefix("/incident ").startswith(action + " ")), None)
        if not action or action not in ACTIONS or form is None:
            return self.usage
        form = form if form.startswith("/incident") else f"/incident {form}"
        return form.split("（类型")[0] + ("（类型：" + "、".join(TYPE_ZH.values()) + "）" if action == "new" else "")

    # -- slow work outside the transaction ------------------------------------------

    def takes_held_media(self, args: str) -> bool:
        """``/incident evidence 编号 …`` takes the pictures and files held for the sender;
        without a number it is only answered with its usage and leaves them held."""
        parts = args.split()
        return len(parts) >= 2 and ACTION_ALIASES.get(parts[0], parts[0].lower()) == "evidence"

    @staticmethod
    def _evidence_url(args: str) -> str | None:
        parts = args.split()
        if not parts or ACTION_ALIASES.get(parts[0], parts[0].lower()) != "evidence":
            return None
        return next((p for p in parts[1:3] if _LOOKS_LIKE_URL.match(p)), None)

    def needs_prepare(self, args: str) -> bool:
        return self._evidence_url(args) is not None

    def check_prepare(self, args: str, *, card: refs.CardRef | None, session: Session, person: Person,
                      now: datetime, policy: svc.IncidentPolicy) -> None:
        """Before fetching for ``/incident evidence 编号 网址``: the incident exists, is open
        and ``person`` may keep its evidence (``incidents.authz``), so a refused command
        fetches nothing."""
        if self._evidence_url(args) is None:
            return
        rest = refs.with_card(args.strip().partition(" ")[2].strip(), card, "incident")
        number = rest.split(maxsplit=1)[0] if rest else ""
        if not number:
            raise InputError("请写明事件编号（如 3 表示今天的 3 号事件，或完整编号）。")
        incident, _ = refs.resolve_incident(session, number, now)
        authz.authorize("evidence", person, incident, district_office=policy.district_office)

    async def prepare(self, args: str, settings: Settings, now: datetime) -> object:
        """Fetch the page of ``/incident evidence [INC] URL`` before the transaction opens.
        An address without http(s):// is refused by ``fetch_page`` with a hint."""
        url = self._evidence_url(args)
        assert url is not None
        # The guarded fetcher (core.fetcher) with [incidents] fetch_allow; it opens its own connections.
        return await fetch_page(url, fetcher=settings.incidents.fetcher(),
                                timeout=settings.incidents.fetch_timeout_seconds,
                                max_bytes=settings.incidents.fetch_max_bytes, now=now)

    # -- dispatch --------------------------------------------------------------------

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        action, _, rest = ctx.args.strip().partition(" ")
        action = ACTION_ALIASES.get(action, action.lower())
        rest = rest.strip()
        if not action:
            return await self._list("", ctx)
        if action not in ACTIONS:
            raise InputError(f"未知操作“{action}”。")
        if action in CARD_ACTIONS:   # in reply to an incident card: that incident
            rest = refs.with_card(rest, ctx.card, "incident")
        return await getattr(self, f"_{action}")(rest, ctx)

    def _incident(self, ctx: Context, number: str, action: str) -> Incident:
        """The incident ``number`` names (``3`` is today's INC-…-003, ``bot.refs``), once the
        speaker may do ``action`` to it (``incidents.authz``) — before any side effect."""
        if not number:
            raise InputError("请写明事件编号（如 3 表示今天的 3 号事件，或完整编号）。")
        incident, note = refs.resolve_incident(ctx.session, number, ctx.now)
        if note:
            ctx.notes.append(note)
        authz.authorize(action, _me(ctx), incident, district_office=ctx.incident_policy.district_office)
        return incident

    # -- new (with a guided dialog when arguments are missing) -----------------------

    async def _new(self, rest: str, ctx: Context) -> list[Outbound]:
        policy = ctx.incident_policy
        me = _me(ctx)
        tokens = rest.split()
        if not tokens:
            ctx.ask("/incident new")
            buttons = tuple(Button(zh, f"/incident new {zh}") for zh in TYPE_ZH.values())
            return [Outbound("报告事件：请选择类型（或直接回复类型名称，回复“取消”放弃）：\n"
                             + "、".join(TYPE_ZH.values()), buttons=buttons)]
        type_ = svc.parse_type(tokens.pop(0))
        source = Source.district if svc.in_district(me, policy) else Source.self_found
        unit, grade = me.unit, svc.default_grade(type_)
        grades = grade_names(ctx.profile)     # 重要信息 under 古丈, as well as 一般/重大/特级
        prefix = [TYPE_ZH[type_]]
        while tokens and (tokens[0] in ("通报", "区办通报") or tokens[0].startswith(("@", "＠"))
                          or grades.is_grade_word(tokens[0])):
            token = tokens.pop(0)
            prefix.append(token)
            if token in ("通报", "区办通报"):
                source = Source.district
            elif token[0] in "@＠":
                unit = token[1:].strip()
                if not unit or len(unit) > 100:
                    raise InputError("单位名称应为 1–100 字，如 @区教育局。")
            else:
                grade = grades.parse(token)
        if svc.in_district(me, policy) and unit == me.unit:
            raise InputError("区政府办公室通报时请写明主办单位，如：/incident new 敏感信息 @区教育局 网址 描述。")
        base = "/incident new " + " ".join(prefix)
        if not tokens:
            ctx.ask(base)
            return [Outbound(f"报告{TYPE_ZH[type_]}事件：请发送出现问题的网址（或网站、账号名称），"
                             "可在后面接着写描述。回复“取消”放弃。")]
        target = tokens.pop(0)
        if not tokens:
            ctx.ask(f"{base} {target}")
            return [Outbound(f"请简要描述情况（发现了什么、在哪个栏目、影响范围）。回复“取消”放弃。\n对象：{target}")]
        return report_or_offer(ctx, {"type": type_.value, "target": target, "description": " ".join(tokens),
                                     "unit": unit, "source": source.value, "grade": grade.value,
                                     "text": f"{base} {target} {' '.join(tokens)}"})

    async def _merge(self, rest: str, ctx: Context) -> list[Outbound]:
        return merge(rest, ctx)

    async def _split(self, rest: str, ctx: Context) -> list[Outbound]:
        return split(rest, ctx)

    # -- views -----------------------------------------------------------------------

    async def _list(self, rest: str, ctx: Context) -> list[Outbound]:
        which = {"": "open", "open": "open", "未结": "open", "mine": "mine", "我的": "mine",
                 "overdue": "overdue", "超期": "overdue"}.get(rest)
        if which is None:
            raise InputError(f"无法识别的列表“{rest}”（可用：open、mine、overdue）。")
        items = svc.list_incidents(session=ctx.session, which=which, now=ctx.now, person=ctx.person)
        title = {"open": "未结事件", "mine": "我报告或负责的未结事件", "overdue": "有超期步骤的事件"}[which]
        if not items:
            return [Outbound(f"{title}：无。")]
        lines = [f"{title}：共 {len(items)} 件"] + [_line(ctx, i) for i in items[:LIST_LIMIT]]
        if len(items) > LIST_LIMIT:
            lines.append(f"……还有 {len(items) - LIST_LIMIT} 件")
        return [Outbound("\n".join(lines))]

    async def _show(self, rest: str, ctx: Context) -> list[Outbound]:
        incident = self._incident(ctx, rest, "show")
        steps = svc.steps_of(session=ctx.session, incident=incident)
        lines = [esc.card(ctx.session, incident, steps, now=ctx.now), "处置步骤："] + [_step_line(ctx, s) for s in steps]
        count = svc.evidence_count(session=ctx.session, incident=incident)
        lines.append(f"证据：{count} 份" if count else "证据：暂无")
        events = audit.history(session=ctx.session, entity_type="incident", entity_id=incident.number)
        lines.append("时间线：")
        if len(events) > TIMELINE_LIMIT:
            lines.append(f"  ……前 {len(events) - TIMELINE_LIMIT} 条略（完整见 /incident report {incident.number}）")
        for event in events[-TIMELINE_LIMIT:]:
            lines.append(f"  {fmt_short_zh(event.at)} {event.actor_zh()} "
                         f"{event.details().get('zh') or ACTION_ZH.get(event.action, '（其他操作）')}")
        buttons: tuple[Button, ...] = ()
        if incident.is_open and incident.acknowledged_at is None:
            buttons = esc.ack_buttons(incident)
        return [Outbound("\n".join(lines), buttons=buttons)]

    # -- state changes ---------------------------------------------------------------

    async def _ack(self, rest: str, ctx: Context) -> list[Outbound]:
        incident = self._incident(ctx, rest, "ack")
        if not actions.acknowledge(session=ctx.session, incident=incident, person=_me(ctx), now=ctx.now, actor=ctx.actor):
            return [Outbound(f"{incident.number} 已由 {svc.name_of(ctx.session, incident.acknowledged_by_id)} "
                             f"于 {fmt_short_zh(incident.acknowledged_at)} 确认，无需重复确认。")]  # type: ignore[arg-type]
        esc.after_acknowledged(ctx.session, incident, _me(ctx), ctx.now)
        return [Outbound(f"已确认 {incident.number}，升级提醒已停止。\n{esc.card(ctx.session, incident, now=ctx.now)}\n"
                         f"由您处置请发送：/incident take {incident.number}",
                         buttons=(Button("我来处置", f"/incident take {incident.number}"),),
                         card_key=esc.card_key(incident))]

    async def _take(self, rest: str, ctx: Context) -> list[Outbound]:
        incident = self._incident(ctx, rest, "take")
        policy = ctx.incident_policy
        svc.require_manage(_me(ctx), incident, policy, "接手")
        was_acked = incident.acknowledged_at is not None
        actions.take(session=ctx.session, incident=incident, person=_me(ctx), now=ctx.now, actor=ctx.actor)
        if not was_acked:
            esc.after_acknowledged(ctx.session, incident, _me(ctx), ctx.now)
        steps = svc.steps_of(session=ctx.session, incident=incident)
        return [Outbound(f"{incident.number} 由您负责处置。\n{esc.card(ctx.session, incident, steps, now=ctx.now)}\n处置步骤：\n"
                         + "\n".join(_step_line(ctx, s) for s in steps), card_key=esc.card_key(incident))]

    def _step_args(self, rest: str, ctx: Context, action: str) -> tuple[Incident, IncidentStep, str]:
        parts = rest.split(maxsplit=2)
        if len(parts) < 2:
            raise InputError("请写明事件编号和步骤序号。")
        incident = self._incident(ctx, parts[0], action)
        step = svc.find_step(session=ctx.session, incident=incident, ref=parts[1])
        return incident, step, parts[2] if len(parts) > 2 else ""

    async def _done(self, rest: str, ctx: Context) -> list[Outbound]:
        incident, step, note = self._step_args(rest, ctx, "done")
        policy = ctx.incident_policy
        svc.require_manage(_me(ctx), incident, policy, "处置")
        if step.external and not note:
            draft = draft_external(session=ctx.session, incident=incident, external=step.external,
                                   person=_me(ctx), unit_name=ctx.settings.bot.unit, now=ctx.now)
            raise DutybotError(
                f"步骤{step.seq}是向{step.external}报告，请记录报告方式和联系人：\n"
                f"/incident done {incident.number} {step.seq} 电话 联系人姓名 [登记编号]\n\n参考报告稿：\n{draft}")
        was_acked = incident.acknowledged_at is not None
        started = actions.complete_step(session=ctx.session, calendar=ctx.calendar, profile=ctx.profile, policy=policy,
                                    incident=incident, step=step, person=_me(ctx), now=ctx.now,
                                    actor=ctx.actor, note=note)
        return self._after_step(ctx, incident, step, started, was_acked, "已完成")

    async def _skip(self, rest: str, ctx: Context) -> list[Outbound]:
        incident, step, reason = self._step_args(rest, ctx, "skip")
        policy = ctx.incident_policy
        svc.require_manage(_me(ctx), incident, policy, "处置")
        started = actions.skip_step(session=ctx.session, calendar=ctx.calendar, profile=ctx.profile, policy=policy,
                                incident=incident, step=step, person=_me(ctx), reason=reason, now=ctx.now,
                                actor=ctx.actor)
        return self._after_step(ctx, incident, step, started, True, "已标记为不适用")

    def _after_step(self, ctx: Context, incident: Incident, step: IncidentStep, started: list[IncidentStep],
                    was_acked: bool, verb: str) -> list[Outbound]:
        policy = ctx.incident_policy
        if not was_acked:
            esc.after_acknowledged(ctx.session, incident, _me(ctx), ctx.now)
        esc.after_step_closed(ctx.session, incident, step, started, policy, ctx.now)
        late = step.due_at is not None and step.done_at is not None and step.done_at > step.due_at
        lines = [f"{incident.number} 步骤{step.seq}“{step.title}”{verb}" + ("（超期）" if late and verb == "已完成" else "") + "。"]
        for other in started:
            lines.append(f"开始计时：步骤{other.seq}“{other.title}”，截止 {svc.step_due_zh(other)}（{other.period_zh}）")
        if incident.status == IncidentStatus.resolved:
            esc.after_resolved(ctx.session, incident, _me(ctx), ctx.now)
            lines.append(f"必做步骤已全部完成，请结案：/incident close {incident.number} 结论")
        else:
            nxt = svc.next_step(svc.steps_of(session=ctx.session, incident=incident))
            if nxt is not None:
                lines.append(f"下一步：{nxt.seq}. {nxt.title}（截止 {svc.step_due_zh(nxt)}）")
        return [Outbound("\n".join(lines))]

    async def _note(self, rest: str, ctx: Context) -> list[Outbound]:
        number, _, text = rest.partition(" ")
        incident = self._incident(ctx, number, "note")
        actions.add_note(session=ctx.session, incident=incident, person=_me(ctx), text=text, now=ctx.now, actor=ctx.actor)
        return [Outbound(f"已记入 {incident.number} 的时间线。")]

    async def _grade(self, rest: str, ctx: Context) -> list[Outbound]:
        number, _, text = rest.partition(" ")
        incident = self._incident(ctx, number, "grade")   # a leader, principal or admin
        me = _me(ctx)
        policy = ctx.incident_policy
        svc.require_manage(me, incident, policy, "调整等级")
        grade = grade_names(ctx.profile).parse(text)    # 古丈办法第十条 has no 特级: refused
        before_zh = incident.grade_label
        before = actions.change_grade(session=ctx.session, incident=incident, grade=grade, person=me, policy=policy,
                                      profile=ctx.profile, now=ctx.now, actor=ctx.actor)
        esc.after_regraded(ctx.session, incident, policy, ctx.profile, me, before, ctx.now)
        return [Outbound(f"{incident.number} 等级：{before_zh} → {incident.grade_label}，已按新等级重新安排升级提醒"
                         f"（{ctx.profile.basis('GRADE-2')}）。")]

    async def _escalate(self, rest: str, ctx: Context) -> list[Outbound]:
        number, _, reason = rest.partition(" ")
        incident = self._incident(ctx, number, "escalate")
        svc.require_open(incident)
        if len(reason) > svc.MAX_NOTE:
            raise InputError(f"说明过长（上限 {svc.MAX_NOTE} 字）。")
        who = esc.escalate_now(ctx.session, incident, _me(ctx), reason.strip(), ctx.profile, ctx.now,
                               policy=ctx.incident_policy)
        return [Outbound(f"已上报 {who}。")]

    async def _close(self, rest: str, ctx: Context) -> list[Outbound]:
        number, _, conclusion = rest.partition(" ")
        incident = self._incident(ctx, number, "close")
        actions.close(session=ctx.session, incident=incident, person=_me(ctx), conclusion=conclusion, now=ctx.now,
                  actor=ctx.actor, policy=ctx.incident_policy)
        esc.after_ended(ctx.session, incident, _me(ctx), ctx.now)
        return [Outbound(f"{incident.number} 已结案。情况报告：/incident report {incident.number}")]

    async def _withdraw(self, incident: Incident, reason: str, ctx: Context, false_alarm: bool) -> list[Outbound]:
        actions.withdraw(session=ctx.session, incident=incident, person=_me(ctx), reason=reason,
                     false_alarm=false_alarm, now=ctx.now, actor=ctx.actor, policy=ctx.incident_policy)
        esc.after_ended(ctx.session, incident, _me(ctx), ctx.now)
        return [Outbound(f"{incident.number} 已{'标记为误报' if false_alarm else '撤销'}，相关提醒已停止。")]

    async def _cancel(self, rest: str, ctx: Context) -> list[Outbound]:
        number, _, reason = rest.partition(" ")
        return await self._withdraw(self._incident(ctx, number, "cancel"), reason, ctx, False)

    async def _false(self, rest: str, ctx: Context) -> list[Outbound]:
        """误报: a leader, principal or admin marks it (``批准`` approves an officer's
        pending request); an officer's ``false`` is a request to the unit's leaders."""
        number, _, reason = rest.partition(" ")
        incident = self._incident(ctx, number, "false")
        me, reason = _me(ctx), reason.strip()
        if authz.may_mark_false(me):
            if reason in APPROVE_WORDS:
                request = _false_request(ctx, incident)
                if request is None:
                    raise DutybotError(f"{incident.number} 没有待批准的误报申请。直接标记为误报请写明理由："
                                       f"/incident false {incident.number} 理由")
                reason = f"{request.details().get('reason', '')}（{request.actor} 申请，{me.name} 批准）"
            return await self._withdraw(incident, reason, ctx, True)
        if reason in APPROVE_WORDS:
            raise PermissionDenied(f"误报须由带班领导确认，您不能批准。请带班领导发送 /incident false {incident.number} 批准")
        if not reason:
            raise InputError("请写明理由。")
        if len(reason) > svc.MAX_NOTE:
            raise InputError(f"理由过长（上限 {svc.MAX_NOTE} 字）。")
        svc.record(ctx.session, incident, ctx.now, authz.FALSE_REQUEST, f"申请标记为误报：{reason[:200]}",
                   person=me, actor=ctx.actor, reason=reason)
        leaders = [p for p in svc.leaders_on_duty(ctx.session, incident, ctx.incident_policy) if p.id != me.id]
        esc.notify(ctx.session, leaders,
                   f"【误报待确认】{incident.number}（{incident.site[:20]}）：{me.name} 申请标记为误报，理由：{reason[:200]}\n"
                   f"同意请发送：/incident false {incident.number} 批准；不同意无需操作，事件照常处置。",
                   event=f"incident:{incident.number}:false-request:{ctx.now.isoformat()}", now=ctx.now,
                   buttons=(Button("批准误报", f"/incident false {incident.number} 批准"),))
        names = "、".join(p.name for p in leaders) or "暂无（请联系带班领导）"
        return [Outbound(f"已提交 {incident.number} 的误报申请，须由带班领导确认（已通知：{names}）。"
                         "确认前事件照常处置，提醒照常发送。")]

    # -- evidence, drafts, reports ---------------------------------------------------

    async def _evidence(self, rest: str, ctx: Context) -> list[Outbound]:

        number, _, what = rest.partition(" ")
        incident = self._incident(ctx, number, "evidence")   # also checked before the fetch: check_prepare
        svc.require_open(incident)
        evidence_dir = ctx.settings.resolve(ctx.settings.incidents.evidence_dir)
        me, what = _me(ctx), what.strip()
        kept = []
        if isinstance(ctx.prepared, DutybotError):
            raise ctx.prepared
        if ctx.prepared is not None:
            kept.append(ev.store_page(session=ctx.session, incident=incident, page=ctx.prepared,  # type: ignore[arg-type]
                                      evidence_dir=evidence_dir, person=me, actor=ctx.actor))
        for attachment in ctx.inbound.attachments:
            kept.append(ev.store_attachment(session=ctx.session, incident=incident, attachment=attachment,
                                            evidence_dir=evidence_dir, person=me, actor=ctx.actor, now=ctx.now,
                                            note=what))
        if not kept:
            if not what:
                raise InputError("请附上网址（自动抓取网页存证）、文字记录，或随命令发送截图/文件。")
            kept.append(ev.store_text(session=ctx.session, incident=incident, text=what, person=me,
                                      actor=ctx.actor, now=ctx.now))
        lines = [f"已为 {incident.number} 保全证据 {len(kept)} 份："] + [f"  {ev.describe(e)}" for e in kept]
        return [Outbound("\n".join(lines))]

    async def _draft(self, rest: str, ctx: Context) -> list[Outbound]:
        incident, step, _ = (self._step_args(rest, ctx, "draft") if len(rest.split()) >= 2
                             else (self._incident(ctx, rest, "draft"), None, ""))
        external = (step.external if step is not None else None) or "上级"
        text = draft_external(session=ctx.session, incident=incident, external=external, person=_me(ctx),
                              unit_name=ctx.settings.bot.unit, now=ctx.now)
        return [Outbound(f"报告稿（请核对后按对方要求的渠道发送，发送后记录：/incident done {incident.number} "
                         f"{step.seq if step else '序号'} 方式 联系人 [编号]）：\n\n{text}")]

    async def _report(self, rest: str, ctx: Context) -> list[Outbound]:

        incident = self._incident(ctx, rest, "report")
        report = build_report(session=ctx.session, incident=incident,
                              evidence_dir=Path(ctx.settings.resolve(ctx.settings.incidents.evidence_dir)),
                              now=ctx.now)
        return [Outbound(render_chat(report))]
