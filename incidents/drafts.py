"""Drafts of the reports sent to outside authorities (网信、公安、电信、上级、平台).

Built from the incident's facts only; the officer reads, corrects and sends it through
the channel the authority uses, then records the contact with ``/incident done``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from core.clock import fmt_date_zh, fmt_short_zh, local
from incidents.models import (
    SOURCE_ZH,
    TYPE_ZH,
    Incident,
    IncidentType,
    Source,
    StepStatus,
)
from incidents.service import evidence_count, name_of, steps_of
from people.models import Person

# The bodies of core.profiles.BODIES (and the short names of older incidents) as a letter
# is addressed to them.
ADDRESSEE = {"网信部门": "网信部门", "公安机关": "公安机关（网安部门）", "电信主管部门": "电信主管部门",
             "上级主管部门": "上级主管部门", "平台运营方": "平台运营方", "政务公开办公室": "政务公开办公室",
             "网信": "网信部门", "公安": "公安机关（网安部门）", "电信": "电信主管部门",
             "上级": "上级主管部门", "平台": "平台运营方"}


def addressee(external: str) -> str:
    """``网信部门、公安机关`` (or the older ``网信/公安``) → ``网信部门、公安机关（网安部门）``."""
    parts = [p for p in external.replace("/", "、").split("、") if p]
    return "、".join(ADDRESSEE.get(part, part) for part in parts)


def draft_external(*, session: Session, incident: Incident, external: str, person: Person | None,
                   unit_name: str, now: datetime) -> str:
    """The Chinese text of a report about ``incident`` to ``external``."""
    kind = TYPE_ZH[IncidentType(incident.type)]
    where = incident.site + (f"（{incident.url}）" if incident.url and incident.url != incident.site else "")
    how = "接区政府办公室通报" if incident.source == Source.district else "在值班读网中发现"
    unit = incident.unit or unit_name
    done = [s for s in steps_of(session=session, incident=incident) if s.status == StepStatus.done]
    pending = [s for s in steps_of(session=session, incident=incident) if s.status == StepStatus.pending]
    lines = [f"关于{where}{kind}情况的报告", "", f"{addressee(external)}：", "",
             f"{fmt_short_zh(incident.reported_at)}，{unit}{how}，{where}出现{kind}情况：{incident.description}"
             f"（事件编号 {incident.number}，等级：{incident.grade_label}，来源：{SOURCE_ZH[Source(incident.source)]}）。"]
    if done:
        lines.append("已采取措施：" + "；".join(f"{fmt_short_zh(s.done_at)}{s.title}" for s in done if s.done_at) + "。")
    if pending:
        lines.append("正在进行：" + "；".join(s.title for s in pending[:3]) + "。")
    count = evidence_count(session=session, incident=incident)
    if count:
        lines.append(f"已保全证据 {count} 份（网页存档、截图等，附 SHA-256 校验值），可随时提供。")
    lines.append("特此报告。")
    contact = f"联系人：{person.name} {person.phone}".rstrip() if person else f"联系人：{name_of(session, incident.owner_id)}"
    lines += ["", contact, unit, fmt_date_zh(local(now).date())]
    return "\n".join(lines)
