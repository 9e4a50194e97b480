"""Open incidents of a person who leaves (deactivated), and handing them to a named person.

The receiver becomes the owner (``owner_id``); the status, the steps and their deadlines
do not change, and the escalation runs keep going (they read the owner when they fire).
Each handover is on the incident's timeline (action ``handed_over``).

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from incidents.models import (
    OPEN_STATUSES,
    STATUS_ZH,
    TYPE_ZH,
    Incident,
    IncidentStatus,
    IncidentType,
)
from incidents.service import record
from people.models import Person


def owned_open(*, session: Session, person: Person) -> list[Incident]:
    """The open incidents ``person`` owns, oldest first."""
    return list(session.exec(select(Incident).where(Incident.owner_id == person.id,
                                                    col(Incident.status).in_([s.value for s in OPEN_STATUSES]))
                             .order_by(col(Incident.reported_at), col(Incident.id))))


def line(incident: Incident) -> str:
    """``INC-20261123-001｜无法访问｜一般｜处置中｜门户网站``."""
    return (f"{incident.number}｜{TYPE_ZH[IncidentType(incident.type)]}｜{incident.grade_label}｜"
            f"{STATUS_ZH[IncidentStatus(incident.status)]}｜{incident.site[:20] or '—'}")


def hand_over(*, session: Session, incident: Incident, leaving: Person, receiver: Person, now: datetime,
              actor: str) -> None:
    """Make ``receiver`` the owner of ``leaving``'s incident."""
    incident.owner_id = receiver.id
    session.add(incident)
    record(session, incident, now, "handed_over", f"工作交接：{leaving.name} 已停用，负责人改为 {receiver.name}",
           person=None, actor=actor, from_state=incident.status, to_state=incident.status,
           previous=leaving.name, owner=receiver.name)
