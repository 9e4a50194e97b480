"""The incident card, short on a phone: its first three lines say WHAT, BY WHEN and WHAT
TO PRESS; details follow.

::

    【新事件】INC-20261123-003｜敏感信息｜一般｜待确认｜本单位门户网站
    时限：步骤1“第一时间删除敏感信息” 今天 10:30 前（还剩30分钟）
    请回复“确认”或发送 /incident ack 3
    对象：… 描述：… 报告：… 单位：… 负责人：… 下一步：…（截止 …；依据：…）

``head`` (``【新事件】``, ``【事件升级·带班领导】报告后15分钟仍无人确认``) leads the first
line; ``press`` replaces the default action line, which follows the incident's state:
acknowledge, do the next step, close, or look. The typed command uses today's short number
(``3``, see ``bot.refs``); buttons keep the full id.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from core.clock import fmt_short_zh, local
from core.numbering import short_form
from core.words_zh import by_when_zh
from incidents import escalation_batch as batch
from incidents.models import (
    SOURCE_ZH,
    STATUS_ZH,
    TYPE_ZH,
    Incident,
    IncidentStatus,
    IncidentStep,
    IncidentType,
    Source,
)
from incidents.service import next_step, reporter_name, step_due_zh

SITE_CHARS = 24


def what(incident: Incident) -> str:
    """``INC-20261123-003｜敏感信息｜一般｜待确认｜本单位门户网站``."""
    site = incident.site if len(incident.site) <= SITE_CHARS else incident.site[:SITE_CHARS - 1] + "…"
    return (f"{incident.number}｜{TYPE_ZH[IncidentType(incident.type)]}｜{incident.grade_label}｜"
            f"{STATUS_ZH[IncidentStatus(incident.status)]}" + (f"｜{site}" if site else ""))


def when(incident: Incident, steps: list[IncidentStep], now: datetime | None,
         focus: IncidentStep | None = None) -> str:
    """``时限：步骤1“删除” 今天 10:30 前（还剩30分钟）`` for ``focus`` (else the next step);
    without ``now``, the deadline only."""
    if not incident.is_open:
        return f"时限：无（{STATUS_ZH[IncidentStatus(incident.status)]}）"
    step = focus if focus is not None and focus.is_pending else next_step(steps)
    if step is None:
        return "时限：必做步骤已完成，待结案" if incident.status == IncidentStatus.resolved else "时限：无"
    if step.due_at is None or now is None:
        due = step_due_zh(step)
        return f"时限：步骤{step.seq}“{step.title}” " + (due if due == "无时限" or "起算" in due else f"{due} 前")
    return (f"时限：步骤{step.seq}“{step.title}” {by_when_zh(step.due_at, now)}"
            + ("（暂定）" if step.provisional else ""))


def press(incident: Incident, steps: list[IncidentStep], now: datetime | None,
          focus: IncidentStep | None = None) -> str:
    """What to do now, typed: ``请回复“确认”或发送 /incident ack 3``; about ``focus`` (a
    step's reminder), doing that step (which acknowledges too)."""
    ref = short_form(incident.number, local(now).date()) if now is not None else incident.number
    if not incident.is_open:
        return f"查看：/incident show {ref}"
    focused = focus is not None and focus.is_pending
    if incident.acknowledged_at is None and not focused:
        return f"请回复“确认”或发送 /incident ack {ref}"
    if incident.status == IncidentStatus.resolved:
        return f"请结案：发送 /incident close {ref} 结论"
    step = focus if focused else next_step(steps)
    if step is None:
        return f"查看：/incident show {ref}"
    if step.external:
        return f"报告后请发送 /incident done {ref} {step.seq} 方式 联系人 [编号]"
    return f"完成后回复“完成 {step.seq}”或发送 /incident done {ref} {step.seq}"


def _reporter(session: Session, incident: Incident) -> str:
    """Who reported it; a person's name from the transaction's lookups where there are some."""
    if incident.reporter_id is not None:
        return batch.name_of(session, incident.reporter_id)
    return reporter_name(session, incident)


def render(session: Session, incident: Incident, steps: list[IncidentStep], *, now: datetime | None = None,
           head: str = "", action: str | None = None, step: IncidentStep | None = None) -> str:
    """The card; see the module docstring. ``step`` is the step a reminder is about;
    ``action`` overrides the third line."""
    first = what(incident)
    if head:
        first = f"{head}{'' if head.endswith('】') else '：'}{first}"
    where = incident.site + (f" {incident.url}" if incident.url and incident.url != incident.site else "")
    lines = [first, when(incident, steps, now, step), action or press(incident, steps, now, step),
             f"对象：{where}", f"描述：{incident.description[:80]}",
             f"报告：{_reporter(session, incident)} {fmt_short_zh(incident.reported_at)}"
             f"（{SOURCE_ZH[Source(incident.source)]}）"]
    if incident.unit:
        lines.append(f"单位：{incident.unit}")
    if incident.owner_id:
        lines.append(f"负责人：{batch.name_of(session, incident.owner_id)}")
    step = step if step is not None and step.is_pending else next_step(steps)
    if step is not None:
        lines.append(f"下一步：{step.seq}. {step.title}（截止 {step_due_zh(step)}；依据：{step.citation}，{step.period_zh}）")
    return "\n".join(lines)
