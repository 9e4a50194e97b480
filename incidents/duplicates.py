"""A second report of the same address: offered as the incident it already is.

When ``/incident new`` names an address (``https://…`` or a bare ``www.x.gov.cn/a``) that
an open incident — or one reported within ``[incidents] duplicate_window_hours`` — already
has, the new report is not registered at once. It is *held*, and the reporter chooses:

``合并``         the report joins the existing incident's record as an additional report
                 (reporter, time, what they wrote), audited as ``report_merged``; nobody is
                 pinged twice for one broken page.
``分开 理由``    it is registered as a new incident after all; the reason is written on both
                 timelines (``kept_apart``).

Nothing is kept in memory and the schema is unchanged: a held report is a pending due item
(:data:`KIND`, ``ref`` ``incident-dup:<person id>``) whose payload is the whole report, and
holding it is audited on the existing incident (``duplicate_held``), so a restart loses
nothing. Unanswered after :data:`HOLD`, the processor merges it (the safe default: it
reaches the people already handling that address) and tells the reporter.

Addresses are compared normalised (:func:`normalize_url`, :mod:`incidents.address`): scheme,
host case, default port, trailing slash and fragment do not matter; path and query do. They
are found by the indexed ``incident.address_key``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, or_, select

from core.clock import fmt_short_zh
from core.db import UTCDateTime
from core.errors import InputError
from core.schedule import DueItem, DueStatus, schedule
from incidents.address import address_key
from incidents.address import (
    normalize_url as normalize_url,  # re-exported: watch, alerts import it from here
)
from incidents.escalation import notify
from incidents.models import (
    OPEN_STATUSES,
    STATUS_ZH,
    TYPE_ZH,
    Incident,
    IncidentStatus,
    IncidentType,
)
from incidents.service import get_incident, record, reporter_name
from people.models import Person

KIND = "incident.duplicate"
HOLD = timedelta(minutes=30)


# Built once (bound per call): building the statement cost as much as running it.
_SINCE = bindparam("since", type_=UTCDateTime())
_SAME_ADDRESS = (select(Incident)
                 .where(col(Incident.address_key) == bindparam("key"),
                        or_(col(Incident.status).in_([s.value for s in OPEN_STATUSES]),
                            col(Incident.reported_at) >= _SINCE))
                 .order_by(col(Incident.reported_at).desc(), col(Incident.id).desc()))


def find_duplicate(*, session: Session, target: str, now: datetime, window: timedelta) -> Incident | None:
    """The newest incident with the same address as ``target`` that is open or was reported
    within ``window``; None when ``target`` is no address or nothing matches."""
    key = normalize_url(target)
    if key is None:
        return None
    # By the indexed key of the address (issue 21: reading every open incident to compare
    # here took 0.5 s with 10,000 open); what it finds is compared exactly below.
    for incident in session.exec(_SAME_ADDRESS, params={"key": address_key(target), "since": now - window}):
        address = incident.url or incident.site   # the site is the URL's host when both are set
        if address and normalize_url(address) == key:
            return incident
    return None


def describe(incident: Incident, session: Session) -> str:
    """``INC-20261123-001（无法访问，一般，待确认，王芳 11月23日 10:00 报告）``."""
    return (f"{incident.number}（{TYPE_ZH[IncidentType(incident.type)]}，{incident.grade_label}，"
            f"{STATUS_ZH[IncidentStatus(incident.status)]}，{reporter_name(session, incident)} "
            f"{fmt_short_zh(incident.reported_at)} 报告）")


def _ref(person_id: int | None) -> str:
    return f"incident-dup:{person_id}"


def hold(*, session: Session, existing: Incident, reporter: Person, report: dict[str, Any],
         now: datetime, actor: str) -> DueItem:
    """Hold ``report`` (what :func:`report_of` reads back) until its reporter chooses, at
    most :data:`HOLD`; the hold is written on ``existing``'s timeline."""
    body = {**report, "existing": existing.number, "reporter_id": reporter.id, "actor": actor,
            "reported_at": now.isoformat()}
    item = schedule(session=session, key=f"{_ref(reporter.id)}:{uuid.uuid4().hex[:12]}", kind=KIND,
                    ref=_ref(reporter.id), due_at=now + HOLD, now=now, payload=body)
    record(session, existing, now, "duplicate_held",
           f"收到同一网址的另一份报告（{reporter.name}）：{str(report.get('description', ''))[:100]}；"
           "等待报告人选择合并或分开登记", person=reporter, actor=actor, report=body)
    return item


def pending(*, session: Session, reporter: Person, existing: str | None = None) -> list[DueItem]:
    """``reporter``'s held reports, newest first (only those about ``existing`` if given)."""
    items = session.exec(select(DueItem).where(DueItem.ref == _ref(reporter.id),
                                               DueItem.status == DueStatus.pending)
                         .order_by(col(DueItem.id).desc())).all()
    return [i for i in items if existing is None or i.data().get("existing") == existing]


def the_one(*, session: Session, reporter: Person, existing: str | None) -> DueItem:
    """The held report a ``合并``/``分开`` answer is about: the newest (of ``existing``).

    Raises:
        InputError: nothing is held for this person (or for that incident).
    """
    items = pending(session=session, reporter=reporter, existing=existing)
    if not items:
        about = f"关于 {existing} " if existing else ""
        raise InputError(f"您没有{about}等待选择的重复报告（超过{int(HOLD.total_seconds() // 60)}分钟未选择的已自动合并）。")
    return items[0]


def _settle(item: DueItem, now: datetime) -> None:
    item.status, item.processed_at = DueStatus.done, now


def merge(*, session: Session, item: DueItem, now: datetime, actor: str, automatic: bool = False) -> Incident:
    """Add the held report to its incident's record as an additional report; tell the
    incident's owner (else whoever acknowledged it), not the reporter themself."""
    data = item.data()
    incident = get_incident(session=session, number=str(data["existing"]))
    reporter = session.get(Person, data.get("reporter_id")) if data.get("reporter_id") else None
    who = reporter.name if reporter else "—"
    at = datetime.fromisoformat(str(data["reported_at"]))
    how = "未在时限内选择，自动合并" if automatic else "报告人选择合并"
    zh = (f"补充报告（{who} {fmt_short_zh(at)}，{how}）：{data.get('target', '')}｜"
          f"{str(data.get('description', ''))[:200]}")
    record(session, incident, now, "report_merged", zh, person=reporter, actor=actor, report=data,
           automatic=automatic)
    _settle(item, now)
    session.add(item)
    for person_id in (incident.owner_id, incident.acknowledged_by_id):
        person = session.get(Person, person_id) if person_id else None
        if person is not None and person.active and person.id != data.get("reporter_id"):
            notify(session, [person], f"【补充报告】{incident.number} 收到同一网址的另一份报告\n{zh}",
                   event=f"incident:{incident.number}:merged:{item.key}", now=now)
            break
    return incident


def kept_apart(*, session: Session, item: DueItem, new: Incident, reason: str, now: datetime,
               reporter: Person, actor: str) -> None:
    """The held report became incident ``new``: the reason on both timelines."""
    existing = get_incident(session=session, number=str(item.data()["existing"]))
    record(session, new, now, "kept_apart", f"与 {existing.number} 网址相同，报告人选择分开登记，理由：{reason}",
           person=reporter, actor=actor, existing=existing.number, reason=reason)
    record(session, existing, now, "duplicate_kept_apart",
           f"同一网址的另一份报告已分开登记为 {new.number}（{reporter.name}，理由：{reason}）",
           person=reporter, actor=actor, new=new.number, reason=reason)
    _settle(item, now)
    session.add(item)


def process_expiry(session: Session, due: DueItem, now: datetime) -> None:
    """The ``incident.duplicate`` processor: an unanswered held report is merged, and its
    reporter told so (and how to register it apart after all)."""
    incident = merge(session=session, item=due, now=now, actor="system", automatic=True)
    data = due.data()
    reporter = session.get(Person, data.get("reporter_id")) if data.get("reporter_id") else None
    if reporter is not None and reporter.active:
        notify(session, [reporter],
               f"【已合并】您报告的 {data.get('target', '')} 未在{int(HOLD.total_seconds() // 60)}分钟内选择，"
               f"已作为补充报告记入 {incident.number}。\n如确属另一事件，请重新报告并选择“分开 理由”。",
               event=f"incident:{incident.number}:merged-told:{due.key}", now=now)
