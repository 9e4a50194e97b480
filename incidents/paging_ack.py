"""Answers to pages (电话/短信提醒的回复): an SMS reply or a key pressed in a voice call.

A reply of ``1``, ``收到`` or ``确认`` (:data:`ACK_WORDS`) from a number that was paged
acknowledges the incident exactly as pressing 确认收到 in chat does: the same permission
check (``incidents.authz``), the same state change (``incidents.actions.acknowledge``) and
the same end of the acknowledgement ladder (``incidents.escalation.after_acknowledged``:
the rungs' due items are cancelled and those already pinged are told). Which incident: the
one whose number the reply names, else the latest one paged to that number within the
reply window that is still open and unacknowledged. Any other reply is written on the
timeline and acknowledges nothing.

Every function works in the caller's transaction and never commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core.errors import DutybotError
from incidents import actions, escalation
from incidents.authz import authorize
from incidents.models import Incident
from incidents.paging import ACK_RUNS, normalize_phone
from incidents.paging_models import CHANNEL_ZH, Page, PageChannel, PageStatus
from incidents.service import IncidentPolicy, record
from people.models import Person

#: Replies that acknowledge (after spaces and punctuation are dropped; case ignored).
ACK_WORDS = frozenset({"1", "收到", "确认", "确认收到", "已收到", "ok"})
#: A reply is matched to pages sent within this window before it.
REPLY_WINDOW = timedelta(hours=24)
_NUMBER = re.compile(r"INC-\d{8}-\d{3,}", re.IGNORECASE)
_NOISE = re.compile(r"[\s,.，。!！、:：;；\"'“”‘’【】\[\]()（）]+")
MAX_REPLY = 100


@dataclass(frozen=True)
class Answer:
    """What a reply did: ``acked`` when it acknowledged ``incident``; ``zh`` the timeline line."""

    acked: bool
    incident: str | None = None
    zh: str = ""


def is_ack(text: str) -> bool:
    """Whether ``text`` (without an incident number) says 收到 (:data:`ACK_WORDS`)."""
    return _NOISE.sub("", _NUMBER.sub("", text or "")).lower() in ACK_WORDS


def _candidates(session: Session, phone: str, now: datetime, window: timedelta) -> list[tuple[Page, Incident]]:
    rows = session.exec(
        select(Page, Incident).join(Incident, col(Incident.id) == Page.incident_id)
        .where(Page.phone == phone, Page.channel == PageChannel.sms,
               col(Page.status).in_([PageStatus.sent, PageStatus.acked]),
               Page.created_at >= now - window, Page.created_at <= now)
        .order_by(col(Page.id).desc())).all()
    return [(page, incident) for page, incident in rows]


def _pick(found: list[tuple[Page, Incident]], text: str) -> tuple[Page, Incident] | None:
    named = {m.upper() for m in _NUMBER.findall(text or "")}
    if named:
        return next(((p, i) for p, i in found if i.number.upper() in named), None)
    waiting = [(p, i) for p, i in found if i.is_open and i.acknowledged_at is None]
    chosen = waiting or found
    return chosen[0] if chosen else None


def answer_sms(session: Session, *, phone: str, text: str, policy: IncidentPolicy, now: datetime,
               window: timedelta = REPLY_WINDOW) -> Answer | None:
    """An SMS reply from ``phone`` (as the provider reports it).

    Returns:
        What it did; None when no page went to that number within ``window`` (the reply
        is not about an incident: nothing is written).
    """
    number = normalize_phone(phone)
    if number is None:
        return None
    picked = _pick(_candidates(session, number, now, window), text)
    if picked is None:
        return None
    page, incident = picked
    reply = (text or "").strip()[:MAX_REPLY]
    if not is_ack(reply):
        person = session.get(Person, page.person_id)
        zh = (f"{person.name if person else '被提醒人'} 回复短信：“{reply}”"
              "（不是确认口令，未作确认；回复 1 或“收到”即确认）")
        record(session, incident, now, "page_reply", zh, person=person, actor=person.name if person else "system",
               page=page.id)
        return Answer(False, incident.number, zh)
    return _acknowledge(session, page, incident, how=f"回复短信“{reply}”", policy=policy, now=now)


def answer_key(session: Session, *, page_id: int, phone: str | None, key: str, policy: IncidentPolicy,
               now: datetime) -> Answer | None:
    """A key pressed in the voice call of page ``page_id`` (``1`` acknowledges).

    Returns:
        What it did; None when there is no such voice page (or it went to another number).
    """
    page = session.get(Page, page_id)
    if page is None or page.channel != PageChannel.voice:
        return None
    if phone and normalize_phone(phone) not in (None, page.phone):
        return None
    incident = incident_of(session, page)
    if key.strip() != "1":
        return Answer(False, incident.number)
    return _acknowledge(session, page, incident, how="在语音电话中按 1", policy=policy, now=now)


def incident_of(session: Session, page: Page) -> Incident:
    incident = session.get(Incident, page.incident_id)
    assert incident is not None
    return incident


def person_name(session: Session, page: Page) -> str:
    person = session.get(Person, page.person_id)
    return person.name if person is not None else f"#{page.person_id}"


def _acknowledge(session: Session, page: Page, incident: Incident, *, how: str, policy: IncidentPolicy,
                 now: datetime) -> Answer:
    person = session.get(Person, page.person_id)
    assert person is not None
    if page.status != PageStatus.acked:
        page.status, page.acked_at = PageStatus.acked, now
        session.add(page)
    if not incident.is_open or incident.acknowledged_at is not None:
        state = "事件已结束" if not incident.is_open else "事件此前已有人确认"
        zh = f"{person.name} {how}（{state}）"
        record(session, incident, now, "page_reply", zh, person=person, actor=person.name, page=page.id)
        return Answer(False, incident.number, zh)
    try:
        authorize("ack", person, incident, district_office=policy.district_office)
    except DutybotError as exc:
        zh = f"{person.name} {how}，但不能确认此事件：{exc.message}"
        record(session, incident, now, "page_reply", zh, person=person, actor=person.name, page=page.id)
        return Answer(False, incident.number, zh)
    zh = f"{person.name} {how}，确认收到{CHANNEL_ZH[PageChannel(page.channel)]}提醒"
    record(session, incident, now, "page_acked", zh, person=person, actor=person.name, page=page.id)
    actions.acknowledge(session=session, incident=incident, person=person, now=now, actor=person.name)
    escalation.after_acknowledged(session, incident, person, now)
    moot = list(session.exec(select(Page).where(Page.incident_id == page.incident_id,
                                                Page.status == PageStatus.queued, col(Page.run).in_(ACK_RUNS))))
    for other in moot:
        other.status, other.claimed_until = PageStatus.cancelled, None
        session.add(other)
    if moot:
        record(session, incident, now, "page_cancelled", f"事件已确认，取消尚未发出的电话/短信提醒 {len(moot)} 条",
               person=None, actor="system", pages=[p.id for p in moot])
    return Answer(True, incident.number, zh)
