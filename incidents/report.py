"""The situation report (情况报告) of one incident, for the leaders and the record (CHECK-2).

A report is built once from the stored state, the ``audit_event`` timeline and a fresh
check of the kept evidence, then rendered as Markdown, a Word document or a short chat
text. Sections: 一、事件概况, 二、处置经过, 三、处置步骤与依据, 四、证据, 五、处置结果.
When an evidence file no longer matches its hash the report says so and
``integrity_ok`` is False; the report is still produced.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from core.audit import AuditEvent, history
from core.clock import fmt_duration_zh, fmt_instant_zh, fmt_short_zh, local
from core.errors import InputError
from core.text import clean_text
from incidents.evidence import describe, verify
from incidents.models import (
    SOURCE_ZH,
    STATUS_ZH,
    TYPE_ZH,
    Incident,
    IncidentStatus,
    IncidentStep,
    StepStatus,
)
from incidents.signoff import format_signoffs
from people.models import Person

OVERVIEW, TIMELINE, STEPS, EVIDENCE, OUTCOME = (
    "一、事件概况", "二、处置经过", "三、处置步骤与依据", "四、证据", "五、处置结果")
NONE_ZH = "无"
NO_LIMIT = "无时限"
NO_UNIT = "未指定单位"
WITHDRAWN = (IncidentStatus.cancelled, IncidentStatus.false_alarm)
# Fallback wording for timeline events written without a ready Chinese line.
ACTION_ZH = {
    "reported": "登记事件", "acknowledged": "确认收到", "taken": "接手处置",
    "step_done": "完成步骤", "step_skipped": "步骤不适用", "note": "备注", "graded": "调整等级",
    "escalated": "升级提醒", "pinged": "提醒", "evidence": "保存证据", "resolved": "处置完成",
    "closed": "结案", "cancelled": "撤销事件", "false_alarm": "标记为误报",
    "duplicate_held": "收到同一网址的重复报告", "report_merged": "补充报告",
    "kept_apart": "同一网址分开登记", "duplicate_kept_apart": "同一网址的报告分开登记",
}
CHAT_MIN_LINES = 3


@dataclass
class Report:
    """A built report: ``sections`` are ``(heading, lines)`` in order."""

    number: str
    title: str
    generated_at: datetime
    sections: list[tuple[str, list[str]]]
    integrity_ok: bool
    integrity_problems: list[str] = field(default_factory=list)
    # The same sections, condensed for a phone (see render_chat).
    chat: list[tuple[str, list[str]]] = field(default_factory=list, repr=False)

    def section(self, heading: str) -> list[str]:
        """The lines under ``heading`` (empty when there is no such section)."""
        return next((lines for h, lines in self.sections if h == heading), [])


# ---------------------------------------------------------------- shared helpers

def label(mapping: Mapping[Any, str], value: str) -> str:
    """The Chinese label of a stored enum value (the value itself when unknown); the
    mapping is keyed by a StrEnum, whose members equal and hash as their values."""
    return mapping.get(value, value)


duration_zh = fmt_duration_zh


def step_deadline_zh(step: IncidentStep) -> str:
    """``11月24日 24:00`` for a deadline at local midnight, else ``11月23日 09:30``; 暂定 marked."""
    if step.due_at is None:
        waiting = (step.anchor.startswith("step:") and step.status == StepStatus.pending
                   and step.period_zh != NO_LIMIT)
        return "前一步完成后起算" if waiting else NO_LIMIT
    loc = local(step.due_at)
    if loc.hour == 0 and loc.minute == 0 and step.due_last_day != loc.date():
        day = step.due_last_day or (loc.date() - timedelta(days=1))
        text = f"{day.month}月{day.day}日 24:00"
    else:
        text = fmt_short_zh(step.due_at)
    return text + ("（暂定）" if step.provisional else "")


def step_overdue(step: IncidentStep, *, incident: Incident, now: datetime) -> bool:
    """Done after its deadline, or a required step still pending past it.

    A closed incident's pending steps are measured at its closing; a cancelled incident or
    a false alarm has no overdue pending steps (there was nothing left to do).
    """
    if step.due_at is None:
        return False
    if step.status == StepStatus.done:
        return step.done_at is not None and step.done_at > step.due_at
    if step.status != StepStatus.pending or step.optional or incident.status in WITHDRAWN:
        return False
    until = incident.closed_at if incident.status == IncidentStatus.closed and incident.closed_at else now
    return step.due_at < until


def person_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Names of the people with ``ids`` (None skipped), in one query."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Person).where(col(Person.id).in_(wanted)))
    return {p.id: p.name for p in rows if p.id is not None}


def steps_of(session: Session, incident: Incident) -> list[IncidentStep]:
    """The incident's steps in the order people see them."""
    stmt = (select(IncidentStep).where(IncidentStep.incident_id == incident.id)
            .order_by(col(IncidentStep.seq), col(IncidentStep.id)))
    return list(session.exec(stmt))


# ---------------------------------------------------------------- building

def build_report(*, session: Session, incident: Incident, evidence_dir: Path,
                 now: datetime) -> Report:
    """Build the situation report of ``incident`` as it stands at ``now``.

    Args:
        session: read-only use of the caller's session.
        incident: the incident.
        evidence_dir: where evidence files are kept (``Evidence.path`` is relative to it).
        now: the generation time; pending steps past their deadline at ``now`` are overdue.

    Returns:
        The report; ``integrity_ok`` is False when any evidence failed its check.
    """
    steps = steps_of(session, incident)
    events = history(session=session, entity_type="incident", entity_id=incident.number)
    names = person_names(session, [incident.reporter_id, incident.owner_id,
                                   incident.acknowledged_by_id, incident.closed_by_id,
                                   *(s.done_by_id for s in steps)])
    checks = verify(session=session, incident=incident, evidence_dir=evidence_dir)
    failed = [c for c in checks if not c.ok]
    warning = ([f"警告：{len(failed)} 份证据完整性校验未通过，内容可能已被改动或丢失，请核查。"]
               if failed else [])
    evidence = warning + ([f"{i}. {describe(c.evidence)}（校验："
                           + ("完整）" if c.ok else f"未通过，{c.problem}）")
                           for i, c in enumerate(checks, start=1)] or [NONE_ZH])
    timeline = [f"{fmt_short_zh(e.at)} {_actor(e)} "
                + str(e.details().get("zh") or ACTION_ZH.get(e.action, "（其他操作）"))
                for e in events] or [NONE_ZH]
    states = {s.seq: _step_state(s, incident=incident, names=names, now=now) for s in steps}
    overview = _overview(incident, names)
    outcome = _outcome(incident, steps, names, now)
    sections = [
        (OVERVIEW, [f"{k}：{v}" for k, v in overview.items()]),
        (TIMELINE, timeline),
        (STEPS, [_step_line(s, states[s.seq]) for s in steps] or [NONE_ZH]),
        (EVIDENCE, evidence),
        (OUTCOME, [f"{k}：{v}" for k, v in outcome.items()]),
    ]
    chat = [
        (OVERVIEW, [
            "｜".join((overview["类型"], overview["等级"], overview["来源"], overview["当前状态"])),
            f"网站/账号：{incident.site or '—'}" + (f" {incident.url}" if incident.url else ""),
            f"报告：{fmt_short_zh(incident.reported_at)} {overview['报告人']}；"
            f"责任单位：{overview['责任单位']}；负责人：{overview['负责人']}",
            f"描述：{incident.description}"]),
        (TIMELINE, timeline),
        (STEPS, [f"{s.seq}. {s.title}（{s.rule_id}）— {states[s.seq]}"
                 + (f"，截止 {step_deadline_zh(s)}" if s.is_pending and s.due_at else "")
                 + (f"；审校：{format_signoffs(s.signoff_list())}" if s.signoffs else "") for s in steps]
         or [NONE_ZH]),
        (EVIDENCE, warning + [f"{describe(c.evidence)}：{c.problem}" for c in failed]
         + ([f"共 {len(checks)} 份，完整 {len(checks) - len(failed)} 份"] if checks else [NONE_ZH])),
        (OUTCOME, [f"{k}：{outcome[k]}" for k in ("处置结论", "确认用时", "处置用时", "超期步骤")]),
    ]
    title = f"{incident.number} {label(TYPE_ZH, incident.type)}事件情况报告"
    return Report(incident.number, title, now, sections, not failed,
                  [f"{describe(c.evidence)}：{c.problem}" for c in failed], chat)


def _actor(event: AuditEvent) -> str:
    """Who acted, as recorded at the time (the person's name then, or 系统)."""
    return event.actor_zh()


def _overview(incident: Incident, names: dict[int, str]) -> dict[str, str]:
    def name(pid: int | None, empty: str = "—") -> str:
        return names.get(pid, empty) if pid is not None else empty

    return {
        "编号": incident.number,
        "类型": label(TYPE_ZH, incident.type),
        "等级": incident.grade_label,
        "来源": label(SOURCE_ZH, incident.source),
        "网站/账号": incident.site or "—",
        "URL": incident.url or "—",
        "报告时间": fmt_instant_zh(incident.reported_at),
        "报告人": name(incident.reporter_id),
        "责任单位": incident.unit or NO_UNIT,
        "负责人": name(incident.owner_id, "未指定"),
        "当前状态": label(STATUS_ZH, incident.status),
        "事件描述": incident.description,
    }


def _step_state(step: IncidentStep, *, incident: Incident, names: dict[int, str],
                now: datetime) -> str:
    """``完成：11月23日 09:20 王芳``, ``未完成，已超期``, ``不适用（理由）`` …"""
    overdue = step_overdue(step, incident=incident, now=now)
    if step.status == StepStatus.done:
        by = f" {names[step.done_by_id]}" if step.done_by_id in names else ""
        done = f"完成：{fmt_short_zh(step.done_at)}{by}" if step.done_at else "完成"
        return done + ("（超期完成）" if overdue else "")
    if step.status == StepStatus.skipped:
        return "不适用" + (f"（{step.note}）" if step.note else "")
    return "未完成，已超期" if overdue else "未完成"


def _step_line(step: IncidentStep, state: str) -> str:
    parts = [f"依据：{step.citation}（{step.rule_id}）"]
    if step.period_zh:
        parts.append(f"时限：{step.period_zh}")
    deadline = step_deadline_zh(step)
    if deadline != step.period_zh:      # not "时限：无时限；截止：无时限"
        parts.append(f"截止：{deadline}")
    parts.append(state)
    if step.external:
        details = [f"{k} {v}" for k, v in (("联系人", step.contact), ("方式", step.method),
                                            ("编号", step.contact_ref)) if v]
        parts.append(f"对外报告（{step.external}）："
                     + ("，".join(details) if details else "尚未报告"))
    signed = step.signoff_list()
    if signed:
        parts.append(f"审校：{format_signoffs(signed)}")
    if step.note and step.status != StepStatus.skipped:
        parts.append(f"备注：{step.note}")
    optional = "（可选）" if step.optional else ""
    return f"{step.seq}. {step.title}{optional}——" + "；".join(parts)


def _outcome(incident: Incident, steps: list[IncidentStep], names: dict[int, str],
             now: datetime) -> dict[str, str]:
    out = {"当前状态": label(STATUS_ZH, incident.status)}
    out["处置结论"] = incident.conclusion or incident.status_reason or "尚未形成结论"
    out["处置完成时间"] = (fmt_instant_zh(incident.resolved_at) if incident.resolved_at
                     else "尚未处置完成")
    closed_by = f"（{names[incident.closed_by_id]}）" if incident.closed_by_id in names else ""
    out["结案时间"] = (fmt_instant_zh(incident.closed_at) + closed_by if incident.closed_at
                   else "尚未结案")
    out["确认用时"] = (duration_zh(incident.acknowledged_at - incident.reported_at)
                          if incident.acknowledged_at else "尚未确认")
    if incident.resolved_at:
        out["处置用时"] = duration_zh(incident.resolved_at - incident.reported_at)
    elif incident.is_open:
        out["处置用时"] = f"尚未处置完成（已历时 {duration_zh(now - incident.reported_at)}）"
    else:
        out["处置用时"] = "—"
    overdue = [s for s in steps if step_overdue(s, incident=incident, now=now)]
    out["超期步骤"] = f"{len(overdue)} 个" + (
        "（" + "、".join(f"步骤{s.seq}" for s in overdue) + "）" if overdue else "")
    return out


# ---------------------------------------------------------------- rendering

def _footer(report: Report) -> str:
    return f"本报告由 dutybot 根据事件记录自动生成，生成时间：{fmt_instant_zh(report.generated_at)}"


def render_markdown(report: Report) -> str:
    """The report as Markdown: a title, one ``##`` heading per section, one item per line."""
    out = [f"# {report.title}", "", f"生成时间：{fmt_instant_zh(report.generated_at)}", ""]
    if not report.integrity_ok:
        out += ["> **警告：证据完整性校验未通过，详见“四、证据”。**", ""]
    for heading, lines in report.sections:
        out += [f"## {heading}", ""]
        out += ["- " + line.replace("\n", "\n  ") for line in lines]
        out.append("")
    out += ["---", "", _footer(report), ""]
    return "\n".join(out)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"无法写入 {path}：{exc.strerror or exc}") from None
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file private; give it the mode a plain write would have.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"无法写入 {path}：{exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_markdown(report: Report, path: Path) -> None:
    """Write :func:`render_markdown` to ``path`` (UTF-8, atomically).

    Raises:
        InputError: the file cannot be written.
    """
    text = render_markdown(report)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_docx(report: Report, path: Path) -> None:
    """Write the report as a Word document (atomically).

    Raises:
        InputError: the file cannot be written (open in Word, no such folder).
    """
    from docx import Document
    from docx.oxml.ns import qn

    doc = Document()
    for style_name in ("Normal", "Title", "Heading 1"):
        # Word picks the East Asian font separately; without it CJK text falls back oddly.
        rfonts = doc.styles[style_name].element.get_or_add_rPr().get_or_add_rFonts()
        rfonts.set(qn("w:eastAsia"), "宋体")
    doc.core_properties.title = report.title
    doc.add_heading(clean_text(report.title), level=0)
    doc.add_paragraph(f"生成时间：{fmt_instant_zh(report.generated_at)}")
    if not report.integrity_ok:
        doc.add_paragraph().add_run("警告：证据完整性校验未通过，详见“四、证据”。").bold = True
    for heading, lines in report.sections:
        doc.add_heading(heading, level=1)
        for line in lines:
            doc.add_paragraph(clean_text(line))   # Word refuses control characters
    doc.sections[0].footer.paragraphs[0].text = _footer(report)
    atomic_write(path, lambda tmp: doc.save(str(tmp)))


def render_chat(report: Report, max_lines: int = 40) -> str:
    """A compact plain-text report for a phone, at most about ``max_lines`` lines.

    Long sections are cut (the timeline first, then steps, then evidence) with a line
    that says how many were left out and how to get the full report.
    """
    head = [f"【{report.title}】"]
    if not report.integrity_ok:
        head.append("⚠ 证据完整性校验未通过，详见“四、证据”。")
    bodies = {h: [_short(line) for line in lines] for h, lines in report.chat or report.sections}
    shown = {h: len(lines) for h, lines in bodies.items()}

    def total() -> int:
        return len(head) + sum(1 + shown[h] + (shown[h] < len(bodies[h])) for h in bodies)

    for heading in (TIMELINE, STEPS, EVIDENCE):
        while heading in shown and total() > max_lines and shown[heading] > CHAT_MIN_LINES:
            shown[heading] -= 1
    out = list(head)
    for heading, lines in bodies.items():
        out.append(f"【{heading}】")
        out += lines[:shown[heading]]
        if shown[heading] < len(lines):
            out.append(f"……还有 {len(lines) - shown[heading]} 条，完整报告："
                       f"dutybot incident report {report.number} --docx 文件")
    return "\n".join(out)


def _short(line: str, limit: int = 120) -> str:
    line = line.replace("\n", " ")
    return line if len(line) <= limit else line[:limit - 1] + "…"
