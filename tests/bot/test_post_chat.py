"""/post in chat: record a post now (once, however often it is said), or see the account's
cadence against the active profile's articles — or 本地规定未作要求 where it states none;
and the morning briefing lists the accounts behind and the open account duties."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session

from accounts import duties
from accounts.duties import DutyPolicy
from accounts.register import find_account
from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.workdays import WorkdayCalendar
from people.models import Role
from tests.accounts.cadence_factories import make_account, post_on
from tests.factories import make_person


def _chat(engine: Engine, clock: FakeClock, profile: str) -> MemoryChat:
    """The bot under ``profile``, with two officers (王芳 of 区政府办, 陈晨 of 区文旅委), a
    leader and three accounts (two units call theirs 教育发布)."""
    settings = load_settings(None, env={"DUTYBOT_RULES_PROFILE": profile})
    with Session(engine) as session:
        wang = make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        make_person(session, "李强", roles=(Role.leader,), now=clock.now())
        make_person(session, "陈晨", roles=(Role.officer,), now=clock.now(), unit="区文旅委")
        account = make_account(session, "区政府发布", registered=date(2026, 11, 1), operator=wang)
        post_on(session, account, "2026-11-20", original=True)
        post_on(session, account, "2026-11-23", at="08:00")
        make_account(session, "教育发布", registered=date(2026, 11, 1), unit="区教委")
        make_account(session, "教育发布", registered=date(2026, 11, 1), unit="区政府办")
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


def _lines(text: str) -> list[str]:
    return text.splitlines()


async def test_post_alone_shows_the_week_against_the_liangping_minimum(engine: Engine, clock: FakeClock) -> None:
    chat = _chat(engine, clock, "liangping")
    assert _lines(await chat.send("/post 区政府发布", as_="王芳")) == [
        "区政府发布 发布情况：",
        "本周（11月23日—11月29日）已发布 1 次；每周至少更新3次（梁平办法第十七条），还需 2 次",
        "今天（工作日）已发布 1 条；每日发布：本地规定未作要求",
        "最近发布：今天 08:00；停更时限：本地规定未作要求",
        "最近原创：11月20日 10:00；原创发布：本地规定未作要求",
        "未达要求：上周仅发布1次（每周至少3次）"]


async def test_a_post_said_in_chat_is_recorded_once(engine: Engine, clock: FakeClock) -> None:
    chat = _chat(engine, clock, "liangping")
    said = _lines(await chat.send("/post 区政府发布 区政府常务会议召开 原创", as_="王芳"))
    assert said[0] == "已登记：区政府发布 于 今天 09:00 发布《区政府常务会议召开》（原创）。"
    assert said[1] == "本周（11月23日—11月29日）已发布 2 次；每周至少更新3次（梁平办法第十七条），还需 1 次"
    assert said[4] == "最近原创：今天 09:00；原创发布：本地规定未作要求"
    again = _lines(await chat.send("/post 区政府发布 区政府常务会议召开", as_="王芳"))
    assert again[0] == "区政府发布 今天发布《区政府常务会议召开》已登记过，不重复计数。"
    assert "已发布 2 次" in again[1]


async def test_each_profile_shows_its_own_articles(engine: Engine, clock: FakeClock) -> None:
    chat = _chat(engine, clock, "yunnan")
    shown = await chat.send("/post 区政府发布", as_="王芳")
    assert "本周（11月23日—11月29日）已发布 1 次；每周发布次数：本地规定未作要求" in shown
    assert "今天（工作日）已发布 1 条；除节假日外每天至少发布1条（云南办法第二十二条）" in shown
    assert "最近原创：11月20日 10:00；每2周至少发布1条原创（云南办法第二十三条）" in shown
    assert "停更时限：本地规定未作要求" in shown


async def test_baoji_shows_the_silence_limit(engine: Engine, clock: FakeClock) -> None:
    chat = _chat(engine, clock, "baoji")
    assert "最近发布：今天 08:00；超过14天未发布须说明理由（宝鸡办法第十六条）" in await chat.send(
        "/post 区政府发布", as_="王芳")


async def test_guzhang_states_no_cadence(engine: Engine, clock: FakeClock) -> None:
    chat = _chat(engine, clock, "guzhang")
    shown = _lines(await chat.send("/post 区政府发布", as_="王芳"))
    assert [line.split("；")[-1] for line in shown[1:]] == [
        "每周发布次数：本地规定未作要求", "每日发布：本地规定未作要求", "停更时限：本地规定未作要求",
        "原创发布：本地规定未作要求"]


async def test_names_that_are_unknown_or_used_by_two_units(engine: Engine, clock: FakeClock) -> None:
    chat = _chat(engine, clock, "liangping")
    assert "请写明账号名称" in await chat.send("/post", as_="王芳")
    assert "没有找到政务新媒体账号“不存在的号”" in await chat.send("/post 不存在的号 标题", as_="王芳")
    # Two units use the name: the speaker's own unit is meant; someone of a third unit says which.
    assert "教育发布 发布情况：" in await chat.send("/post 教育发布", as_="王芳")
    assert "“教育发布”在多个主办单位登记：区政府办、区教委。请写作 /post 教育发布@主办单位" in await chat.send(
        "/post 教育发布 开学第一课", as_="陈晨")
    assert "教育发布 于 今天 09:00 发布《开学第一课》" in await chat.send("/post 教育发布@区教委 开学第一课", as_="陈晨")


async def test_the_morning_briefing_lists_accounts_behind_and_open_duties(engine: Engine, clock: FakeClock) -> None:
    chat = _chat(engine, clock, "liangping")
    with Session(engine) as session:
        account = find_account(session=session, name="区政府发布")
        duties.open_duty(session=session, account=account, kind="filing", rule_id="LIFE-1", citation="梁平办法第七条",
                         title="开设后备案", now=clock.now(), actor="张伟", calendar=WorkdayCalendar(),
                         policy=DutyPolicy(), deadline=WorkdayCalendar().add_workdays(parse_local("2026-11-16T10:00"), 3))
        session.commit()
    brief = await chat.send("/brief", as_="李强")
    assert "【账号更新未达要求】3 个账号" in brief
    assert "· 区政府发布：上周仅发布1次（每周至少3次）" in brief
    assert "依据：梁平办法第十七条。发布后发送 /post 名称 标题 登记；查看：/post 名称" in brief
    assert "【账号待办事项】1 项，其中超期 1 项" in brief
    assert "· 编号1 区政府发布：开设后备案｜已超期" in brief
