"""A second report of an address already reported is offered as that incident: 合并 adds it
to the record, 分开 理由 registers it apart; unanswered, it is merged. Nothing is lost."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit
from core.clock import parse_local
from core.schedule import DueItem, DueStatus
from incidents.duplicates import KIND, normalize_url
from incidents.models import Incident
from tests.incidents.test_incident_chat import build, number_in

URL = "https://www.example.gov.cn/zwgk/notice/1.html"


def numbers(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Incident.number).order_by(col(Incident.id))))


def held(engine: Engine) -> list[DueItem]:
    with Session(engine) as session:
        return list(session.exec(select(DueItem).where(DueItem.kind == KIND)))


def timeline(engine: Engine, number: str) -> list[str]:
    with Session(engine) as session:
        return [str(e.details().get("zh")) for e in audit.history(session=session, entity_type="incident",
                                                                  entity_id=number)]


@pytest.mark.parametrize(("a", "b"), [
    ("https://www.example.gov.cn/a/", "HTTP://WWW.Example.GOV.cn/a"),
    ("https://www.example.gov.cn/a#top", "https://www.example.gov.cn:443/a"),
    ("www.example.gov.cn/a?x=1", "https://www.example.gov.cn/a/?x=1"),
])
def test_same_address(a: str, b: str) -> None:
    assert normalize_url(a) == normalize_url(b) is not None


@pytest.mark.parametrize(("a", "b"), [
    ("https://www.example.gov.cn/a", "https://www.example.gov.cn/b"),
    ("https://www.example.gov.cn/a?x=1", "https://www.example.gov.cn/a?x=2"),
    ("https://www.example.gov.cn/A", "https://www.example.gov.cn/a"),      # paths are case-sensitive
])
def test_different_addresses(a: str, b: str) -> None:
    assert normalize_url(a) != normalize_url(b)


def test_names_are_not_addresses() -> None:
    assert normalize_url("本单位门户网站") is None and normalize_url("微博@某街道") is None


async def test_a_second_report_is_offered_and_merged_into_the_record(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    first = number_in(await chat.send(f"/incident new 无法访问 {URL} 首页502", as_="王芳"))
    offer = await chat.send("/incident new 无法访问 HTTPS://WWW.EXAMPLE.GOV.CN/zwgk/notice/1.html/#x 通知页打不开",
                            as_="李强")
    assert offer.startswith(f"该网址已有事件 {first}（无法访问，一般，待确认，王芳 11月23日 10:00 报告）")
    assert f"/incident merge {first}" in offer and "分开 理由" in offer
    assert numbers(engine) == [first]                      # not registered yet …
    [item] = held(engine)                                  # … but held in the database
    assert item.status == DueStatus.pending and item.data()["description"] == "通知页打不开"
    assert any("收到同一网址的另一份报告（李强）" in line for line in timeline(engine, first))
    merged = await chat.send("合并", as_="李强")            # the plain answer continues the offer
    assert f"已作为补充报告记入 {first}" in merged
    assert numbers(engine) == [first] and held(engine)[0].status == DueStatus.done
    with Session(engine) as session:
        [event] = [e for e in audit.history(session=session, entity_type="incident", entity_id=first)
                   if e.action == "report_merged"]
    assert event.actor == "李强" and "补充报告（李强 11月23日 10:00，报告人选择合并）" in event.details()["zh"]
    assert "通知页打不开" in event.details()["zh"] and event.details()["report"]["reporter_id"] == event.actor_id
    shown = await chat.send(f"/incident show {first}", as_="王芳")
    assert "补充报告（李强" in shown


async def test_kept_apart_with_a_reason_is_a_new_incident(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    first = number_in(await chat.send(f"/incident new 无法访问 {URL} 首页502", as_="王芳"))
    await chat.send(f"/incident new 内容错误 {URL} 发布日期写错", as_="李强")
    asked = await chat.send(f"/incident split {first}", as_="李强")
    assert "请说明为什么分开登记" in asked
    created = await chat.send("同一网页，但这是内容错误，不是打不开", as_="李强")
    second = number_in(created)
    assert second != first and numbers(engine) == [first, second]
    assert "【新事件】" in chat.last("王芳") and second in chat.last("王芳")
    assert f"与 {first} 网址相同，报告人选择分开登记，理由：同一网页，但这是内容错误，不是打不开" in timeline(engine, second)
    assert any(f"已分开登记为 {second}" in line for line in timeline(engine, first))
    assert held(engine)[0].status == DueStatus.done
    # Both choices are spent: nothing else is held for 李强.
    assert "没有" in await chat.send("/incident merge", as_="李强")


async def test_an_unanswered_offer_is_merged_after_30_minutes(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    first = number_in(await chat.send(f"/incident new 无法访问 {URL} 首页502", as_="王芳"))
    await chat.send(f"/incident new 无法访问 {URL} 还是打不开", as_="李强")
    await chat.app.advance_to(parse_local("2026-11-23T10:29"))
    assert held(engine)[0].status == DueStatus.pending
    await chat.app.advance_to(parse_local("2026-11-23T10:30"))
    assert held(engine)[0].status == DueStatus.done and numbers(engine) == [first]
    assert any("未在时限内选择，自动合并" in line for line in timeline(engine, first))
    assert f"已作为补充报告记入 {first}" in chat.last("李强")


async def test_the_window_counts_closed_incidents_only_for_a_while(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00", env={"DUTYBOT_INCIDENTS_DUPLICATE_WINDOW_HOURS": "2"})
    first = number_in(await chat.send(f"/incident new 无法访问 {URL} 首页502", as_="王芳"))
    await chat.send(f"/incident false {first} 网络抖动，已恢复", as_="李强")   # a leader marks 误报
    await chat.app.advance_to(parse_local("2026-11-23T11:00"))
    assert "该网址已有事件" in await chat.send(f"/incident new 无法访问 {URL} 又打不开了", as_="李强")
    await chat.send("分开 上次是误报，这次确实打不开", as_="李强")
    await chat.app.advance_to(parse_local("2026-11-23T12:30"))
    # The second one is open: a third report is still offered, whenever it comes.
    third = await chat.send(f"/incident new 无法访问 {URL}#main 仍打不开", as_="赵敏")
    assert third.startswith("该网址已有事件 INC-20261123-002")
    # Another address is registered at once.
    assert "已登记" in await chat.send("/incident new 无法访问 https://www.example.gov.cn/other 打不开", as_="赵敏")
