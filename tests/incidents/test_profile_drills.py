"""Drills through the chat under each office's own profile (issue 14): the evidence gate
before a take-down, external reports that are mandatory where the article says so, and
citations that are the office's own or say 参照 and whose."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Engine

from tests.incidents.test_incident_chat import SHOT, build, number_in, steps

JURISDICTIONS = ("liangping", "yunnan", "baoji", "guzhang", "jiangchuan")
ARTICLE = re.compile(r"第[一二三四五六七八九十百]+条")


def drill(engine: Engine, profile: str):  # type: ignore[no-untyped-def]
    return build(engine, "2026-11-23T09:00", env={"DUTYBOT_RULES_PROFILE": profile})


@pytest.mark.parametrize("profile", JURISDICTIONS)
async def test_tamper_drill_keeps_evidence_before_the_take_down(engine: Engine, profile: str) -> None:
    chat = drill(engine, profile)
    created = await chat.send("/incident new 篡改 https://www.example.gov.cn 首页被篡改为赌博广告", as_="王芳")
    number = number_in(created)
    # A defaced page starts as 重大 — named as the office's document names it (GRADE-1).
    major = {"guzhang": "重要信息", "yunnan": "重要信息", "jiangchuan": "重要信息"}.get(profile, "重大")
    assert f"（篡改/挂马，{major}）" in created
    by_key = {s.key: s for s in steps(engine, number)}
    take_down = by_key["take_down"]
    assert take_down.evidence_required
    assert "已完成" in await chat.send(f"/incident done {number} {by_key['verify'].seq}", as_="王芳")
    refused = await chat.send(f"/incident done {number} {take_down.seq}", as_="王芳")
    assert "须先保全证据" in refused and "工作要求" in refused
    assert "保全证据 1 份" in await chat.send(f"/incident evidence {number} 截图", as_="王芳", attachments=(SHOT,))
    assert "已完成" in await chat.send(f"/incident done {number} {take_down.seq}", as_="王芳")
    report = by_key["report_cac_police"]
    if profile == "liangping":
        # 梁平办法第二十二条: 研判是否向网信、公安部门报告 — the leader decides first.
        assert "decide_external" in by_key and report.optional
        assert report.external == "网信部门、公安机关" and report.citation == "梁平办法第二十二条"
    else:
        # No article of these documents sends a tamper case outside: the unit decides. The
        # step cites the office's own monitoring article where it has one, never 梁平's.
        assert report.optional and "梁平" not in report.citation


@pytest.mark.parametrize("profile", JURISDICTIONS)
async def test_hack_drill_reports_to_the_police_where_the_article_says_baojing(engine: Engine,
                                                                              profile: str) -> None:
    chat = drill(engine, profile)
    number = number_in(await chat.send("/incident new 攻击 https://www.example.gov.cn 后台被入侵", as_="王芳"))
    by_key = {s.key: s for s in steps(engine, number)}
    refused = await chat.send(f"/incident done {number} {by_key['handle'].seq}", as_="王芳")
    assert "须先保全证据" in refused
    await chat.send(f"/incident evidence {number} 截图", as_="王芳", attachments=(SHOT,))
    assert "已完成" in await chat.send(f"/incident done {number} {by_key['handle'].seq}", as_="王芳")
    police = by_key["report_police"]
    if profile == "baoji":
        # 宝鸡办法第二十一条 "出现黑客攻击，应第一时间处置并报警": no 研判 step, the report is required.
        assert "decide_police" not in by_key and not police.optional
        assert police.citation == "宝鸡办法第二十一条"
        shown = await chat.send(f"/incident show {number}", as_="王芳")
        assert "（对外：公安机关）" in shown
        # Everything else done, the case cannot be closed before the police report.
        for key in ("change_password",):
            await chat.send(f"/incident done {number} {by_key[key].seq}", as_="王芳")
        assert "不能结案" in await chat.send(f"/incident close {number} 已处置", as_="王芳")
        await chat.send(f"/incident done {number} {police.seq} 电话 区公安分局 JQ20261123", as_="王芳")
        assert "向公安机关报告：方式 电话，联系人 区公安分局，编号 JQ20261123" in await chat.send(
            f"/incident show {number}", as_="王芳")
        assert "已结案" in await chat.send(f"/incident close {number} 已处置并报案", as_="王芳")
    elif profile == "liangping":
        # Attacks fall under 梁平办法第二十二条's monitoring article: 研判 first.
        assert "decide_police" in by_key and police.optional and police.citation == "梁平办法第二十二条"
        assert police.external == "网信部门、公安机关"
    else:
        assert "decide_police" in by_key and police.optional and police.external == "公安机关"


async def test_jiangchuan_drill_cites_only_jiangchuan_or_yunnan(engine: Engine) -> None:
    """江川制度第一条 bases itself on the 云南 rules: every article the chat names is 江川's own
    or 参照《云南省政务新媒体管理办法》, never 梁平、宝鸡 or 古丈."""
    chat = drill(engine, "jiangchuan")
    texts: list[str] = []
    for kind, target in (("违法", "https://www.example.gov.cn/msg/1 留言板出现赌博广告"),
                         ("假冒", "微博@假冒江川发布 冒用区政府名义"),
                         ("篡改", "https://www.example.gov.cn 首页被改")):
        created = await chat.send(f"/incident new {kind} {target}", as_="王芳")
        number = number_in(created)
        texts += [created, await chat.send(f"/incident show {number}", as_="王芳")]
        texts.append(await chat.send(f"/incident done {number} 1", as_="王芳"))
    await chat.app.advance_to(chat.app.clock.now().replace(hour=12))
    texts += [m for name in ("王芳", "李强", "赵敏", "刘洋") for m in chat.messages(name)]
    cited = 0
    for text in texts:
        for match in ARTICLE.finditer(text):
            before = text[:match.start()]
            if before.endswith("、"):      # 第十一条、第十二条: the first one was checked
                continue
            cited += 1
            assert before.endswith(("江川制度", "参照《云南省政务新媒体管理办法》")), text[max(0, match.start() - 40):match.end()]
    assert cited > 10
    # The illegal-content report is 云南第四十一条's: 网信、公安、电信 and the superior, mandatory.
    illegal = {s.key: s for s in steps(engine, number_in(texts[0]))}
    assert illegal["report_police"].external == "网信部门、公安机关、电信主管部门、上级主管部门"
    assert not illegal["report_police"].optional
