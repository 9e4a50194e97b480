"""``/incident new``'s registration reply, and a second report of an address that is
already reported (``incidents.duplicates``): the offer, ``合并`` and ``分开 理由``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot import refs
from bot.dispatcher import Context
from core.clock import fmt_short_zh
from core.errors import InputError
from core.messages import Button, Outbound
from incidents import actions
from incidents import duplicates as dup
from incidents import escalation as esc
from incidents import service as svc
from incidents.grades import grade_names
from incidents.models import (
    STEP_STATUS_ZH,
    TYPE_ZH,
    Grade,
    Incident,
    IncidentStep,
    IncidentType,
    Source,
    StepStatus,
)
from incidents.signoff import format_signoffs
from people.models import Person


def _me(ctx: Context) -> Person:
    assert ctx.person is not None
    return ctx.person


def step_line(ctx: Context, step: IncidentStep) -> str:
    """One step as ``/incident show`` and the registration reply list it."""
    if step.status == StepStatus.pending:
        late = step.due_at is not None and step.due_at <= ctx.now
        due = svc.step_due_zh(step)
        state = ("【已超期】" if late else "") + (due if due == "无时限" or "起算" in due else f"截止 {due}")
    else:
        state = f"{STEP_STATUS_ZH[StepStatus(step.status)]} {fmt_short_zh(step.done_at) if step.done_at else ''}"
        if step.contact:
            state += f"（{step.method}·{step.contact}" + (f"·{step.contact_ref}" if step.contact_ref else "") + "）"
    flags = "".join(["（可选）" if step.optional else "", "（需证据）" if step.evidence_required else "",
                     "（需记录审校人员）" if step.signoff_required and step.is_pending else "",
                     f"（对外：{step.external}）" if step.external else ""])
    period = "" if step.period_zh == "无时限" else f"｜{step.period_zh}"
    signed = step.signoff_list()
    return (f"  {step.seq}. {step.title}{flags}\n     {state}{period}｜依据：{step.citation}"
            + (f"\n     审校：{format_signoffs(signed)}" if signed else ""))


def registered(ctx: Context, incident: Incident, steps: list[IncidentStep] | None = None) -> list[Outbound]:
    """Announce a newly opened incident and tell the reporter what happens next
    (``steps``: its steps, when the caller has them)."""
    steps = svc.steps_of(session=ctx.session, incident=incident) if steps is None else steps
    notices: list[str] = []   # 技术保障 pinged, or how to set one
    told = esc.announce_new(ctx.session, incident, profile=ctx.profile, policy=ctx.incident_policy, now=ctx.now,
                            steps=steps, notices=notices)
    lines = [f"已登记 {incident.number}（{TYPE_ZH[IncidentType(incident.type)]}，{incident.grade_label}）",
             esc.card(ctx.session, incident, steps, now=ctx.now), "处置步骤："] + [step_line(ctx, s) for s in steps]
    names = "、".join(dict.fromkeys(p.name for p in told))
    lines.append(f"已通知：{names}" if names else "已通知：暂无其他人员")
    if notices:
        lines.append(notices[-1])
    lines.append(esc.ack_hint(incident))
    lines.append(f"完成步骤：/incident done {incident.number} 序号；保全证据：/incident evidence {incident.number} 网址")
    return [Outbound("\n".join(lines), buttons=esc.ack_buttons(incident), card_key=esc.card_key(incident))]


def _open(ctx: Context, report: dict[str, Any], steps: list[IncidentStep] | None = None) -> Incident:
    return actions.open_incident(
        session=ctx.session, calendar=ctx.calendar, profile=ctx.profile, policy=ctx.incident_policy,
        type_=IncidentType(report["type"]), target=str(report["target"]), description=str(report["description"]),
        reporter=_me(ctx), unit=str(report["unit"]), source=Source(report["source"]), grade=Grade(report["grade"]),
        now=ctx.now, actor=ctx.actor, steps_into=steps)


def report_or_offer(ctx: Context, report: dict[str, Any]) -> list[Outbound]:
    """Open the incident ``report`` describes — unless its address already has one (open,
    or reported within ``[incidents] duplicate_window_hours``): then hold the report and
    offer 合并 / 分开."""
    description = str(report["description"]).strip()
    if len(description) > svc.MAX_DESCRIPTION:   # refused now, not after the reporter chose
        raise InputError(f"事件描述过长（{len(description)} 字，上限 {svc.MAX_DESCRIPTION} 字）。")
    svc.split_target(str(report["target"]))
    grade_names(ctx.profile).require(Grade(report["grade"]))
    window = timedelta(hours=ctx.settings.incidents.duplicate_window_hours)
    existing = dup.find_duplicate(session=ctx.session, target=str(report["target"]), now=ctx.now, window=window)
    if existing is None:
        steps: list[IncidentStep] = []
        return registered(ctx, _open(ctx, report, steps), steps)
    dup.hold(session=ctx.session, existing=existing, reporter=_me(ctx), report=report, now=ctx.now, actor=ctx.actor)
    ctx.ask("/incident")     # a plain 合并 / 分开 理由 answers
    minutes = int(dup.HOLD.total_seconds() // 60)
    number = existing.number
    return [Outbound(
        f"该网址已有事件 {dup.describe(existing, ctx.session)}，您的报告暂未登记。\n"
        f"合并到该事件：回复“合并”或发送 /incident merge {number}\n"
        f"另行登记：回复“分开 理由”或发送 /incident split {number} 理由\n"
        f"{minutes}分钟内未选择，将自动作为补充报告记入 {number}。",
        buttons=(Button("合并", f"/incident merge {number}"), Button("分开登记", f"/incident split {number}")))]


def _which(ctx: Context, rest: str, *, bare_numbers: bool) -> tuple[str | None, str]:
    """(the existing incident's number if named, what follows)."""
    first, _, tail = rest.strip().partition(" ")
    if first and (refs.is_explicit(first, "incident") or (bare_numbers and first.isdigit())):
        return refs.resolve_incident(ctx.session, first, ctx.now)[0].number, tail.strip()
    return None, rest.strip()


def merge(rest: str, ctx: Context) -> list[Outbound]:
    """``/incident merge [编号]`` (``合并``): the held report joins the existing incident."""
    existing, _ = _which(ctx, rest, bare_numbers=True)
    item = dup.the_one(session=ctx.session, reporter=_me(ctx), existing=existing)
    incident = dup.merge(session=ctx.session, item=item, now=ctx.now, actor=ctx.actor)
    return [Outbound(f"已作为补充报告记入 {dup.describe(incident, ctx.session)}，不另行登记。\n"
                     f"查看：/incident show {incident.number}")]


def split(rest: str, ctx: Context) -> list[Outbound]:
    """``/incident split [编号] 理由`` (``分开 理由``): registered as a new incident after all."""
    existing, reason = _which(ctx, rest, bare_numbers=False)
    item = dup.the_one(session=ctx.session, reporter=_me(ctx), existing=existing)
    if not reason:
        ctx.ask(f"/incident split {item.data()['existing']}")
        return [Outbound("请说明为什么分开登记（如：同一网页，但问题不同）。回复“取消”放弃。")]
    if len(reason) > svc.MAX_NOTE:
        raise InputError(f"理由过长（上限 {svc.MAX_NOTE} 字）。")
    incident = _open(ctx, item.data())
    dup.kept_apart(session=ctx.session, item=item, new=incident, reason=reason, now=ctx.now,
                   reporter=_me(ctx), actor=ctx.actor)
    return registered(ctx, incident)
