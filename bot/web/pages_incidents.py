"""事件: open incidents (filters, overdue first), one incident's detail (steps, timeline,
evidence), the register (.xlsx) and the situation report (.docx), and the three actions.

The actions make the same domain calls as the chat handler (``bot/handlers/incident.py``:
``incidents.authz.authorize``, ``incidents.actions``, ``incidents.escalation``), with the
person's name as the actor, so the audit log reads exactly as from chat, the ladder stops
the same way and every chat card of the incident is edited; the person's own private card
is updated too, as their chat reply would be.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import case, func
from sqlmodel import col, select
from starlette.responses import Response

from bot.web.board import Gone, Page
from core import audit
from core.clock import ensure_utc, local
from core.errors import DutybotError, InputError
from core.messages import Outbound, duration_zh
from core.outbox import enqueue
from incidents import actions, authz
from incidents import escalation as esc
from incidents import service as svc
from incidents.grades import grade_names
from incidents.models import (
    OPEN_STATUSES,
    STATUS_ZH,
    TYPE_ZH,
    Evidence,
    Incident,
    IncidentStatus,
    IncidentStep,
    IncidentType,
    StepStatus,
)
from incidents.report import ACTION_ZH, build_report, write_docx
from incidents.stats import write_register_xlsx

PAGE_SIZE = 50
DONE_ZH = {"ack": "已确认，升级提醒已停止。", "take": "已由您负责处置。", "done": "步骤已完成。"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True)
class Row:
    """One line of the list."""

    incident: Incident
    type_zh: str
    status_zh: str
    step: IncidentStep | None
    due_zh: str
    overdue: bool
    rung: str
    age: str


def visible(page: Page, number: str) -> Incident:
    """The incident ``number`` if the viewer may see it; else :class:`Gone` (404 either way)."""
    incident = page.db.exec(select(Incident).where(Incident.number == number.strip().upper())).first()
    if incident is None or not page.viewer.sees_unit(incident.unit):
        raise Gone()
    return incident


def rung_label(incident: Incident) -> str:
    rungs = incident.ladder_rungs()
    level = min(incident.escalation_level, len(rungs) - 1)
    return str(rungs[level].get("label", "—")) if rungs else "—"


def _filters(page: Page) -> dict[str, str]:
    q = page.query
    return {"type": q.get("type", ""), "grade": q.get("grade", ""), "unit": q.get("unit", "")[:100],
            "overdue": "1" if q.get("overdue") == "1" else ""}


def open_rows(page: Page, filters: dict[str, str]) -> tuple[list[Row], int, int]:
    """The page's rows (overdue first, then by next deadline, then newest), the total count
    and the page number. Ordered and cut in SQL: 10,000 open incidents cost two queries
    over the steps' index, not 10,000 rows in Python (bench/bench_web.py)."""
    db, now = page.db, page.now
    due = (select(IncidentStep.incident_id, func.min(IncidentStep.due_at).label("due"))
           .where(IncidentStep.status == StepStatus.pending, col(IncidentStep.due_at).is_not(None),
                  IncidentStep.optional == False)  # noqa: E712
           .group_by(col(IncidentStep.incident_id)).subquery())
    where: list[Any] = [col(Incident.status).in_([s.value for s in OPEN_STATUSES])]
    units = page.viewer.units_filter()
    if units is not None:
        where.append(col(Incident.unit).in_(units))
    if filters["type"] in {t.value for t in IncidentType}:
        where.append(Incident.type == filters["type"])
    if filters["grade"]:
        where.append(Incident.grade == filters["grade"])
    if filters["unit"] and page.viewer.district:
        where.append(Incident.unit == filters["unit"])
    late = due.c.due <= now
    if filters["overdue"]:
        where.append(late)
    count = select(func.count()).select_from(Incident)
    if filters["overdue"]:
        count = count.join(due, due.c.incident_id == Incident.id)
    total = db.exec(count.where(*where)).one()
    pages = max(1, -(-total // PAGE_SIZE))
    try:
        number = min(max(1, int(page.query.get("page", "1"))), pages)
    except ValueError:
        number = 1
    chosen = list(db.exec(
        select(Incident, due.c.due).outerjoin(due, due.c.incident_id == Incident.id).where(*where)
        .order_by(case((late, 0), else_=1), due.c.due.is_(None), due.c.due, col(Incident.reported_at).desc())
        .offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    steps: dict[int, list[IncidentStep]] = {}
    ids = [incident.id for incident, _ in chosen]
    for pending in db.exec(select(IncidentStep).where(col(IncidentStep.incident_id).in_(ids),
                                                      IncidentStep.status == StepStatus.pending)):
        steps.setdefault(pending.incident_id, []).append(pending)
    rows = []
    for incident, next_due in chosen:
        step = svc.next_step(steps.get(incident.id or -1, []))
        overdue = next_due is not None and ensure_utc(next_due) <= now
        rows.append(Row(incident, TYPE_ZH[IncidentType(incident.type)], STATUS_ZH[IncidentStatus(incident.status)],
                        step, svc.step_due_zh(step) if step is not None else "—", overdue,
                        rung_label(incident), duration_zh(now - incident.reported_at)))
    return rows, total, number


def incidents_page(page: Page) -> Response:
    filters = _filters(page)
    rows, total, number = open_rows(page, filters)
    units: list[str] = []
    if page.viewer.district:
        units = [u for u in page.db.exec(select(Incident.unit).distinct().order_by(col(Incident.unit))) if u]
    grades = grade_names(page.board.profile)
    return page.render("incidents.html", title="事件", active="incidents", rows=rows, total=total, page_no=number,
                       pages=max(1, -(-total // PAGE_SIZE)), filters=filters, units=units,
                       types=[(t.value, zh) for t, zh in TYPE_ZH.items()],
                       grades=[(g.value, grades.zh(g)) for g in grades.allowed])


def detail_page(page: Page, *, error: str = "", status: int = 200) -> Response:
    incident = visible(page, page.path["number"])
    db = page.db
    steps = svc.steps_of(session=db, incident=incident)
    events = audit.history(session=db, entity_type="incident", entity_id=incident.number)
    timeline = [(e.at, e.actor_zh(), e.details().get("zh") or ACTION_ZH.get(e.action, "（其他操作）")) for e in events]
    evidence = list(db.exec(select(Evidence).where(Evidence.incident_id == incident.id)
                            .order_by(col(Evidence.captured_at))))
    names = {s.id: svc.name_of(db, s.done_by_id) for s in steps if s.done_by_id}
    may_act = incident.is_open and _may(page, "ack", incident)
    return page.render(
        "incident.html", status=status, title=incident.number, active="incidents", incident=incident, steps=steps, names=names,
        timeline=timeline, evidence=evidence, error=error, notice=DONE_ZH.get(page.query.get("ok", ""), ""),
        type_zh=TYPE_ZH[IncidentType(incident.type)], status_zh=STATUS_ZH[IncidentStatus(incident.status)],
        rung=rung_label(incident), age=duration_zh(page.now - incident.reported_at),
        reporter=svc.reporter_name(db, incident), owner=svc.name_of(db, incident.owner_id),
        acked_by=svc.name_of(db, incident.acknowledged_by_id), may_act=may_act, due_zh=svc.step_due_zh,
        now=page.now)


def _may(page: Page, action: str, incident: Incident) -> bool:
    try:
        authz.authorize(action, page.person, incident, district_office=page.board.policy.district_office)
    except DutybotError:
        return False
    return True


# -- actions (POST) ---------------------------------------------------------------------


def _card_to_actor(page: Page, incident: Incident, action: str) -> None:
    """The person's own chat card of the incident, updated as their chat reply would be."""
    enqueue(session=page.db, message=Outbound(esc.card(page.db, incident, now=page.now), person_id=page.person.id,
                                              card_key=esc.card_key(incident)),
            now=page.now, event_key=f"{esc.ref_of(incident)}:web-{action}:{page.person.id}:{page.now.timestamp():.0f}")


def act(page: Page) -> Response:
    """``POST /web/incidents/{number}/{action}``: ack, take or done (with ``step``, ``note``)."""
    incident = visible(page, page.path["number"])
    action = page.path["action"]
    if action not in DONE_ZH:
        raise Gone()
    db, me, now, policy = page.db, page.person, page.now, page.board.policy
    try:
        authz.authorize(action, me, incident, district_office=policy.district_office)
        if action == "ack":
            if actions.acknowledge(session=db, incident=incident, person=me, now=now, actor=me.name):
                esc.after_acknowledged(db, incident, me, now)
        elif action == "take":
            svc.require_manage(me, incident, policy, "接手")
            was_acked = incident.acknowledged_at is not None
            actions.take(session=db, incident=incident, person=me, now=now, actor=me.name)
            if not was_acked:
                esc.after_acknowledged(db, incident, me, now)
        else:
            _step_done(page, incident)
    except DutybotError as exc:
        db.rollback()
        return detail_page(page, error=exc.message, status=409)
    _card_to_actor(page, incident, action)
    page.changed = True
    return page.board.redirect(f"/web/incidents/{incident.number}?ok={action}")


def _step_done(page: Page, incident: Incident) -> None:
    db, me, now, board = page.db, page.person, page.now, page.board
    svc.require_manage(me, incident, board.policy, "处置")
    step = svc.find_step(session=db, incident=incident, ref=page.form.get("step", "")[:10])
    note = page.form.get("note", "").strip()
    if step.external and not note:
        raise InputError(f"步骤{step.seq}是向{step.external}报告，请在备注中写明报告方式和联系人，如：电话 区网信办张科长 [登记编号]。")
    was_acked = incident.acknowledged_at is not None
    started = actions.complete_step(session=db, calendar=board.calendar, profile=board.profile, policy=board.policy,
                                    incident=incident, step=step, person=me, now=now, actor=me.name, note=note)
    if not was_acked:
        esc.after_acknowledged(db, incident, me, now)
    esc.after_step_closed(db, incident, step, started, board.policy, now)
    if incident.status == IncidentStatus.resolved:
        esc.after_resolved(db, incident, me, now)


# -- downloads --------------------------------------------------------------------------


def _file(write: object, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"out{suffix}"
        write(path)  # type: ignore[operator]
        return path.read_bytes()


def report_docx(page: Page) -> Response:
    incident = visible(page, page.path["number"])
    report = build_report(session=page.db, incident=incident, now=page.now,
                          evidence_dir=page.board.settings.resolve(page.board.settings.incidents.evidence_dir))
    data = _file(lambda path: write_docx(report, path), ".docx")
    return _download(data, DOCX, f"{incident.number}-情况报告.docx")


def register_xlsx(page: Page) -> Response:
    """The register of the viewer's units, this month by default (``from``, ``to``)."""
    today = local(page.now).date()
    try:
        start = date.fromisoformat(page.query.get("from", "")) if page.query.get("from") else today.replace(day=1)
        end = date.fromisoformat(page.query.get("to", "")) if page.query.get("to") else today
    except ValueError:
        raise InputError("日期格式应为 YYYY-MM-DD。") from None
    if end < start or end - start > timedelta(days=400):
        raise InputError("导出期间不正确（结束不早于开始，最长 400 天）。")
    units = page.viewer.units_filter()
    data = _file(lambda path: write_register_xlsx(session=page.db, start=start, end=end, path=path,
                                                   now=page.now, units=units), ".xlsx")
    return _download(data, XLSX, f"事件台账-{start.isoformat()}-{end.isoformat()}.xlsx")


def _download(data: bytes, kind: str, name: str) -> Response:
    return Response(data, media_type=kind, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})
