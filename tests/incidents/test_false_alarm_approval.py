"""误报 (false alarm): an officer's ``/incident false`` is a request the unit's leader
approves with ``/incident false 编号 批准``; a leader marks it directly."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from incidents.models import IncidentStatus
from tests.incidents.test_incident_chat import build, incident, number_in


async def test_an_officers_false_alarm_waits_for_the_leader(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    number = number_in(await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502",
                                       as_="刘洋"))
    asked = await chat.send(f"/incident false {number} 监测系统误报，网站访问正常", as_="王芳")
    assert "误报申请" in asked and "须由带班领导确认" in asked and "李强" in asked
    assert incident(engine, number).status != IncidentStatus.false_alarm
    told = chat.last("李强")
    assert told.startswith("【误报待确认】") and f"/incident false {number} 批准" in told
    # The officer cannot approve her own request; another unit's leader cannot either.
    assert "不能批准" in await chat.send(f"/incident false {number} 批准", as_="王芳")
    add = await chat.send(f"/incident false {number} 批准", as_="陈晨")
    assert "不能标记为误报" in add
    approved = await chat.send(f"/incident false {number} 批准", as_="李强")
    assert "已标记为误报" in approved
    row = incident(engine, number)
    assert row.status == IncidentStatus.false_alarm
    assert row.status_reason == "监测系统误报，网站访问正常（王芳 申请，李强 批准）"


async def test_approving_without_a_request_is_explained(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    number = number_in(await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502",
                                       as_="刘洋"))
    assert "没有待批准的误报申请" in await chat.send(f"/incident false {number} 批准", as_="李强")
    assert "已标记为误报" in await chat.send(f"/incident false {number} 网络抖动，已恢复", as_="李强")
