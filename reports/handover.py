"""The handover summary (CHECK-2): what the next shift must know, built when an officer
hands over (``roster.lifecycle.hand_over`` is given :func:`handover_summary`).

It reads three domains: the shift's reading rounds (roster), the incidents opened during
it and every open incident with its next deadline (incidents), and the reply items
overdue or due within 24 hours (replies); hence it lives in the composing layer.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from incidents.models import STATUS_ZH, TYPE_ZH, Incident, IncidentStatus, IncidentType
from incidents.service import list_incidents, next_step, step_due_zh, steps_of
from replies.flows import deadline_zh
from replies.models import CATEGORY_ZH, ReplyCategory
from replies.service import list_items
from reports.dutylog import round_line, round_tallies
from roster.models import RoundStatus, Shift

LIST_LIMIT = 8          # lines per section of a handover summary


def _more(total: int) -> list[str]:
    return [f"  …另有 {total - LIST_LIMIT} 件"] if total > LIST_LIMIT else []


def handover_summary(*, session: Session, shift: Shift, now: datetime) -> str:
    """What the next shift must know: the shift's reading rounds, incidents opened during
    it, every open incident with its next deadline, replies overdue or due within 24 hours."""
    tally = round_tallies(session, [shift.id])[shift.id]
    lines = [f"读网：{tally.zh()}"]
    lines += [f"  {round_line(r)}" for r in tally.rounds if r.status in (RoundStatus.anomaly, RoundStatus.missed)]
    opened = list(session.exec(select(Incident).where(col(Incident.reported_at) >= shift.starts_at,
                                                      col(Incident.reported_at) <= now)
                               .order_by(col(Incident.reported_at))))
    lines.append(f"本班新发事件：{len(opened)} 件" if opened else "本班新发事件：无")
    lines += [f"  {i.number}｜{TYPE_ZH[IncidentType(i.type)]}｜{STATUS_ZH[IncidentStatus(i.status)]}｜{i.site}"
              for i in opened[:LIST_LIMIT]] + _more(len(opened))
    open_incidents = sorted(list_incidents(session=session, which="open", now=now, person=None),
                            key=lambda i: i.reported_at)
    lines.append(f"在办事件：{len(open_incidents)} 件" if open_incidents else "在办事件：无")
    for incident in open_incidents[:LIST_LIMIT]:
        step = next_step(steps_of(session=session, incident=incident))
        todo = f"下一步：{step.title}（截止 {step_due_zh(step)}）" if step else "待结案"
        lines.append(f"  {incident.number}｜{TYPE_ZH[IncidentType(incident.type)]}｜"
                     f"{STATUS_ZH[IncidentStatus(incident.status)]}｜{todo}")
    lines += _more(len(open_incidents))
    items = list_items(session=session, which="due", now=now)
    overdue = [i for i in items if i.due_at <= now]
    lines.append(f"留言答复：已超期 {len(overdue)} 件，24小时内到期 {len(items) - len(overdue)} 件"
                 if items else "留言答复：无超期或24小时内到期")
    for item in items[:LIST_LIMIT]:
        flag = "【超期】" if item.due_at <= now else ""
        lines.append(f"  {flag}{item.number}｜{CATEGORY_ZH[ReplyCategory(item.category)]}｜"
                     f"截止 {deadline_zh(item)}｜{item.summary[:24]}")
    lines += _more(len(items))
    return "\n".join(lines)
