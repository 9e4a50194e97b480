"""Who may act on an incident (issue 16 item 4): every ``/incident`` sub-command × who is
speaking × open or ended, through the chat, against rules written out here on their own.
A refusal changes nothing: the incident's timeline and state stay as they were."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import audit
from core.clock import parse_local
from incidents.models import Incident, IncidentStatus
from people.models import Role
from tests.factories import make_person
from tests.incidents.test_incident_chat import build, number_in

# Who is speaking: the incident belongs to 区政府办 and was reported by the district office.
WHO = {"same_officer": "王芳", "same_leader": "李强", "other_officer": "陈晨", "other_leader": "周杰",
       "district": "刘洋", "admin": "张伟", "support": "孙工", "external": "网信办老许"}
COMMANDS = {
    "show": "/incident show {n}", "report": "/incident report {n}", "ack": "/incident ack {n}",
    "take": "/incident take {n}", "done": "/incident done {n} 1 已处理", "skip": "/incident skip {n} 1 不适用",
    "note": "/incident note {n} 已电话联系发布单位", "grade": "/incident grade {n} 重大",
    "escalate": "/incident escalate {n} 请领导关注", "close": "/incident close {n} 已更正",
    "cancel": "/incident cancel {n} 重复登记", "false": "/incident false {n} 监测系统误报",
    "evidence": "/incident evidence {n} 首页截图已存档", "draft": "/incident draft {n}",
    "list": "/incident list", "new": "/incident new 内容错误 @区政府办 https://www.example.gov.cn/x/{who} 错别字",
}


def expected(action: str, who: str, state: str) -> str:
    """``ok``, ``refused``, or ``request`` (an officer's 误报 waits for a leader)."""
    if who in ("support", "external"):
        return "refused"                     # they never act on incidents
    if action in ("list", "new"):
        return "ok"                          # not about one incident: anyone of the staff reports
    if state == "closed" and action not in ("show", "report"):
        return "refused"                     # an ended incident is only viewed and reported
    if who in ("other_officer", "other_leader"):
        return "refused"                     # another unit's incident
    leaderish = who in ("same_leader", "admin")
    if action == "grade":
        return "ok" if leaderish else "refused"
    if action == "cancel":                   # the reporter (the district office) or a leader
        return "ok" if leaderish or who == "district" else "refused"
    if action == "false":
        return "ok" if leaderish else "request"
    return "ok"


def refused(reply: str) -> bool:
    return (("不能" in reply and ("抱歉" in reply or "不能再操作" in reply))
            or "需要以下角色之一" in reply or "外部联系人" in reply)


def _state(engine: Engine, number: str) -> tuple[str, int]:
    with Session(engine) as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        events = audit.history(session=session, entity_type="incident", entity_id=number)
        return incident.status, len(events)


CASES = [(a, w, s) for a in COMMANDS for w in WHO for s in ("open", "closed")]


@pytest.mark.parametrize(("action", "who", "state"), CASES, ids=[f"{a}-{w}-{s}" for a, w, s in CASES])
async def test_who_may_do_what(engine: Engine, action: str, who: str, state: str) -> None:
    chat = build(engine, "2026-11-23T10:00")
    with Session(engine) as session:
        now = parse_local("2026-11-23T09:00")
        make_person(session, "周杰", roles=(Role.leader,), now=now, unit="区教育局")
        make_person(session, "孙工", roles=(Role.support,), now=now, unit="区政府办")
        make_person(session, "网信办老许", roles=(Role.external,), now=now, unit="")
        session.commit()
    number = number_in(await chat.send("/incident new 内容错误 @区政府办 https://www.example.gov.cn/zwgk/1 "
                                       "发布日期写错", as_="刘洋"))
    if state == "closed":
        with Session(engine) as session:
            incident = session.exec(select(Incident).where(Incident.number == number)).one()
            incident.status, incident.closed_at = IncidentStatus.closed, incident.reported_at
            session.add(incident)
            session.commit()
    before = _state(engine, number)
    reply = await chat.send(COMMANDS[action].format(n=number, who=who), as_=WHO[who])
    want = expected(action, who, state)
    assert refused(reply) == (want == "refused"), reply
    if want == "refused":
        assert _state(engine, number) == before, "a refusal changed the incident"
    elif want == "request":
        assert "误报申请" in reply and _state(engine, number)[0] == before[0]
