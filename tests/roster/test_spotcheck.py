"""Spot-checks (抽查, DUTY-4): the district office asks a unit's officer on duty to confirm;
confirmed or missed, the admin hears the result and a miss goes to the unit's leader."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from people.models import Person, Role
from roster.models import DutyRole, Shift, SpotCheck, SpotCheckStatus
from roster.service import assign
from roster.spotcheck import rng_for
from tests.factories import make_person, roster_days

SETTINGS = load_settings(None, env={})


def build(engine: Engine, start: str = "2026-11-23T10:00") -> MemoryChat:
    """Every shift of 11-23..11-24: 王芳 (区教育局) and 陈晨 (区卫健局) on duty, their
    leaders 李强 and 周明; 区文旅局 (刘洋, 孙丽) is not on the roster."""
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, role, unit in (("张伟", Role.admin, "区政府办公室"), ("王芳", Role.officer, "区教育局"),
                                 ("陈晨", Role.officer, "区卫健局"), ("李强", Role.leader, "区教育局"),
                                 ("周明", Role.leader, "区卫健局"), ("刘洋", Role.officer, "区文旅局"),
                                 ("孙丽", Role.leader, "区文旅局")):
            make_person(session, name, roles=(role,), now=clock.now(), unit=unit)
        roster_days(session, start="2026-11-23", end="2026-11-24", officers=["王芳"], leaders=["李强"],
                    now=clock.now())
        people = {p.name: p for p in session.exec(select(Person))}
        for shift in session.exec(select(Shift)):
            assign(session=session, shift=shift, person=people["陈晨"], role=DutyRole.officer, source="manual",
                   now=clock.now(), actor="test")
            assign(session=session, shift=shift, person=people["周明"], role=DutyRole.leader, source="manual",
                   now=clock.now(), actor="test")
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(SETTINGS, clock=clock, adapter=adapter, engine=engine), adapter)


def check(engine: Engine, check_id: int) -> SpotCheck:
    with Session(engine) as session:
        found = session.get(SpotCheck, check_id)
        assert found is not None
        return found


def tagged(chat: MemoryChat, name: str, tag: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith(tag)]


async def test_spotcheck_confirmed_is_reported_to_the_admin(engine: Engine) -> None:
    chat = build(engine)
    reply = await chat.send("/spotcheck 区教育局", as_="张伟")
    assert "已发起抽查（编号 1）" in reply and "在岗值班员：王芳" in reply and "15分钟内" in reply
    card = next(d for d in chat.adapter.delivered if d.chat_id == "u-王芳")
    assert card.text.startswith("【在岗抽查】") and "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十一条" in card.text
    assert ("确认在岗", "/spotcheck confirm 1") in card.buttons
    assert tagged(chat, "陈晨", "【在岗抽查】") == []          # another unit's officer is not asked
    chat.app.clock.advance(timedelta(minutes=3))             # type: ignore[attr-defined]
    assert "无需确认" in await chat.send("/spotcheck confirm 1", as_="陈晨", button=True)
    reply = await chat.send("/spotcheck confirm 1", as_="王芳", button=True)
    assert "已确认在岗" in reply and "用时3分钟" in reply
    assert "王芳 于 10:03 确认在岗，用时3分钟" in chat.last("张伟")
    stored = check(engine, 1)
    assert stored.status == SpotCheckStatus.confirmed and stored.confirmed_at is not None
    await chat.app.advance_to(parse_local("2026-11-23T11:00"))
    assert tagged(chat, "李强", "【抽查") == [] and len(tagged(chat, "张伟", "【抽查结果】")) == 1
    assert "无需重复确认" in await chat.send("/spotcheck confirm 1", as_="王芳")
    assert "已确认在岗（王芳，用时3分钟）" in await chat.send("/spotcheck list", as_="张伟")


async def test_spotcheck_confirmed_by_typing_the_keyword(engine: Engine) -> None:
    chat = build(engine)
    await chat.send("抽查 区卫健局", as_="张伟")
    chat.app.clock.advance(timedelta(seconds=40))            # type: ignore[attr-defined]
    assert "用时不到1分钟" in await chat.send("确认在岗", as_="陈晨")
    assert "陈晨 于 10:00 确认在岗" in chat.last("张伟")


async def test_spotcheck_timeout_goes_to_the_admin_and_the_units_leader(engine: Engine) -> None:
    chat = build(engine)
    await chat.send("/spotcheck 区卫健局", as_="张伟")
    await chat.app.advance_to(parse_local("2026-11-23T10:14"))
    assert tagged(chat, "周明", "【抽查未通过】") == []
    await chat.app.advance_to(parse_local("2026-11-23T10:15"))
    result = tagged(chat, "张伟", "【抽查结果】")
    assert len(result) == 1 and "陈晨 未在15分钟内确认在岗" in result[0] and "未通过" in result[0]
    leader = tagged(chat, "周明", "【抽查未通过】")
    assert len(leader) == 1 and "区卫健局" in leader[0] and "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十一条" in leader[0]
    assert tagged(chat, "李强", "【抽查未通过】") == []       # another unit's leader
    assert check(engine, 1).status == SpotCheckStatus.missed
    assert "已超时" in await chat.send("确认在岗 1", as_="陈晨")


async def test_spotcheck_of_a_unit_with_nobody_on_duty_is_recorded_as_failed(engine: Engine) -> None:
    chat = build(engine)
    reply = await chat.send("/spotcheck 区文旅局", as_="张伟")
    assert "当前没有值班员在岗" in reply and "抽查未通过" in reply and "孙丽" in reply
    assert len(tagged(chat, "孙丽", "【抽查未通过】")) == 1
    assert tagged(chat, "刘洋", "【在岗抽查】") == []
    stored = check(engine, 1)
    assert stored.status == SpotCheckStatus.missed and stored.person_id is None
    assert "没有单位“区文化局”" in await chat.send("/spotcheck 区文化局", as_="张伟")


async def test_only_the_district_office_starts_spotchecks(engine: Engine) -> None:
    chat = build(engine)
    assert "由区政府办公室（管理员）发起" in await chat.send("/spotcheck 区卫健局", as_="王芳")
    assert "没有待确认的在岗抽查" in await chat.send("确认在岗", as_="王芳")
    with Session(engine) as session:
        assert session.exec(select(SpotCheck)).all() == []


async def test_random_spotcheck_picks_a_unit_on_duty_reproducibly(engine: Engine) -> None:
    chat = build(engine)
    expected = rng_for(SETTINGS.roster.round_seed, chat.app.clock.now()).choice(["区卫健局", "区教育局"])
    reply = await chat.send("/spotcheck random", as_="张伟")
    assert f"随机抽中{expected}" in reply and "区文旅局" not in reply
    assert check(engine, 1).unit == expected
