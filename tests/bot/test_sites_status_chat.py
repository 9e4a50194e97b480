"""Site watch in chat: ``/sites status`` (availability and open findings per website, short
lines) and ``/sites column …`` (admins register the columns site watch reads)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from people.models import Role
from tests.bot.test_no_english import english_words
from tests.factories import make_person
from tests.watch.builders import found, website
from watch.models import FindingKind, Probe, SiteColumn
from watch.store import store_findings

NOW = parse_local("2026-11-23T10:00")


def build(engine: Engine) -> MemoryChat:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=NOW, unit="区政府办")
        make_person(session, "张伟", roles=(Role.admin,), now=NOW, unit="区政府办")
        ours = website(session, NOW)
        website(session, NOW, "https://edu.example.gov.cn/", name="教育局网站", unit="区教育局")
        assert ours.id is not None
        for minutes, ok in ((0, True), (5, True), (10, True), (15, False)):
            session.add(Probe(site_id=ours.id, url=ours.url, at=NOW - timedelta(minutes=minutes), ok=ok))
        store_findings(session, ours, [
            found(ours, FindingKind.stale_column, "https://www.example.gov.cn/gzdt/",
                  "栏目“工作动态”最新信息的日期是11月1日，已超过2周未更新"),
            found(ours, FindingKind.broken_link, "https://www.example.gov.cn/a.html", "链接不可用：a"),
            found(ours, FindingKind.broken_link, "https://www.example.gov.cn/b.html", "链接不可用：b"),
        ], {FindingKind.stale_column, FindingKind.broken_link}, NOW)
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env={}), clock=FakeClock(NOW), adapter=adapter, engine=engine), adapter)


async def test_sites_status_shows_availability_and_open_findings(engine: Engine) -> None:
    chat = build(engine)
    reply = await chat.send("/sites status", as_="王芳")
    lines = reply.splitlines()
    assert lines[0] == "区政府办网站巡检情况（共 1 个网站）："
    assert lines[1] == "区政府门户网站：本月可用率 75%｜待处理 3 项"
    assert lines[2].startswith("  · 栏目更新不及时：栏目“工作动态”最新信息的日期是11月1日")
    assert lines[3] == "  · 链接不可用 2 处"
    assert "dutybot watch accept" in lines[-1]
    everything = await chat.send("站点 巡检 all", as_="王芳")
    assert "教育局网站：本月可用率 暂无探测｜无待处理问题" in everything
    assert english_words(reply) == [] and english_words(everything) == []


async def test_admins_register_columns_in_chat(engine: Engine, tmp_path: Path) -> None:
    chat = build(engine)
    denied = await chat.send("/sites column add 区政府门户网站 通知公告 https://www.example.gov.cn/tzgg/ 通知公告",
                             as_="王芳")
    assert "需要管理员" in denied
    added = await chat.send("/sites column add 区政府门户网站 通知公告 https://www.example.gov.cn/tzgg/ 通知公告",
                            as_="张伟")
    assert added.startswith("已登记栏目：区政府门户网站｜通知公告（通知公告·政策文件） https://www.example.gov.cn/tzgg/")
    usage = await chat.send("/sites column add 区政府门户网站 通知公告", as_="张伟")
    assert "请写明网站、栏目名称和网址" in usage
    listed = await chat.send("/sites column", as_="王芳")
    assert "区政府门户网站：1 个栏目" in listed and "1. 通知公告（通知公告·政策文件）" in listed
    removed = await chat.send("/sites column remove 区政府门户网站 通知公告", as_="张伟")
    assert removed.startswith("已停用栏目：区政府门户网站｜通知公告")
    with Session(engine) as session:
        (column,) = session.exec(select(SiteColumn)).all()
        assert not column.active
    assert english_words(added) == [] and english_words(removed) == []
