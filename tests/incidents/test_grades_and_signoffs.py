"""Issue 14 items 1 and 3 through the chat: grades named as the office's own document names
them (古丈办法第十条 knows only 一般信息 and 重要信息), and republishing that records who did
each 审 and 校 (梁平办法第十二条 三审三校; 古丈办法第十条 三审; 云南办法第二十一条 先审后发)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import audit
from core.errors import DutybotError, InputError
from core.profiles import NOT_REQUIRED, load_profile
from incidents.grades import grade_names
from incidents.models import Grade, Incident
from incidents.playbooks import load_ladders, load_playbooks
from incidents.report import OVERVIEW, STEPS, build_report
from incidents.signoff import parse_signoffs, signoff_rule
from tests.incidents.test_incident_chat import build, incident, number_in, steps

FULL = "审：王芳、李强、赵敏 校：王芳、孙丽、李强"
FULL_SHOWN = "一审 王芳、二审 李强、三审 赵敏；一校 王芳、二校 孙丽、三校 李强"


def under(engine: Engine, profile: str):  # type: ignore[no-untyped-def]
    return build(engine, "2026-11-23T09:00", env={"DUTYBOT_RULES_PROFILE": profile})


def rung_roles(engine: Engine, number: str) -> list[str]:
    return [r["role"] for r in incident(engine, number).ladder_rungs()]


def report_section(engine: Engine, number: str, heading: str) -> list[str]:
    """A section of the full situation report (Word / Markdown), not the chat digest."""
    with Session(engine) as session:
        inc = session.exec(select(Incident).where(Incident.number == number)).one()
        return build_report(session=session, incident=inc, evidence_dir=Path("/nonexistent"),
                            now=inc.reported_at).section(heading)


# ---------------------------------------------------------------- item 1: grades


async def test_guzhang_grades_in_its_own_words_and_uses_the_major_ladder(engine: Engine) -> None:
    chat = under(engine, "guzhang")
    created = await chat.send("/incident new 篡改 重要信息 https://www.example.gov.cn 首页被篡改", as_="王芳")
    number = number_in(created)
    assert "（篡改/挂马，重要信息）" in created and f"{number}｜篡改/挂马｜重要信息｜" in created
    stored = incident(engine, number)
    assert stored.grade == Grade.major and stored.grade_name == "重要信息"     # the enum is unchanged
    assert rung_roles(engine, number) == [r.role for r in load_ladders().for_grade(Grade.major).rungs]
    assert "｜篡改/挂马｜重要信息｜" in await chat.send(f"/incident show {number}", as_="王芳")
    assert "｜篡改/挂马｜重要信息｜" in await chat.send("/incident list", as_="王芳")
    assert "篡改/挂马｜重要信息｜" in await chat.send(f"/incident report {number}", as_="王芳")
    assert "等级：重要信息" in report_section(engine, number, OVERVIEW)
    assert chat.last("李强").startswith("【事件报告·带班领导】重要信息事件")      # the major ladder's rung 1
    assert f"{number} 篡改/挂马 重要信息" in await chat.send("/brief", as_="李强")
    # Down to 一般信息, named so; the 一般 ladder is snapshotted.
    regraded = await chat.send(f"/incident grade {number} 一般信息", as_="李强")
    assert "等级：重要信息 → 一般信息" in regraded and "古丈办法第十条" in regraded
    assert incident(engine, number).grade == Grade.general
    assert rung_roles(engine, number) == [r.role for r in load_ladders().for_grade(Grade.general).rungs]
    # The bot's own word is accepted too, and shown in the document's.
    assert "等级：一般信息 → 重要信息" in await chat.send(f"/incident grade {number} 重大", as_="张伟")
    assert chat.last("李强").startswith("【事件等级调整·一般信息→重要信息】")


async def test_guzhang_has_no_special_grade(engine: Engine) -> None:
    chat = under(engine, "guzhang")
    number = number_in(await chat.send("/incident new 敏感 本单位门户网站 公示名单含身份证号", as_="王芳"))
    refused = await chat.send(f"/incident grade {number} 特级", as_="李强")
    assert "古丈办法第十条只分一般信息和重要信息" in refused and "没有“特级”" in refused
    assert incident(engine, number).grade == Grade.general
    refused = await chat.send("/incident new 篡改 特级 https://www.example.gov.cn 首页被篡改", as_="王芳")
    assert "古丈办法第十条只分一般信息和重要信息" in refused and "已登记" not in refused


async def test_liangping_accepts_all_three_names(engine: Engine) -> None:
    chat = under(engine, "liangping")
    created = await chat.send("/incident new 敏感 重大信息 本单位门户网站 公示名单含身份证号", as_="王芳")
    number = number_in(created)
    # 重大信息 is the bot's 重大 with the noun 信息: shown as before.
    assert "（敏感信息，重大）" in created and incident(engine, number).grade_name is None
    assert incident(engine, number).grade == Grade.major
    assert "等级：重大 → 特级" in await chat.send(f"/incident grade {number} 特级信息", as_="李强")
    assert rung_roles(engine, number) == [r.role for r in load_ladders().for_grade(Grade.special).rungs]
    assert "等级：特级 → 一般" in await chat.send(f"/incident grade {number} 一般信息", as_="李强")
    assert "等级：一般 → 重大" in await chat.send(f"/incident grade {number} 重大", as_="李强")
    assert incident(engine, number).grade == Grade.major


async def test_default_profile_is_unchanged(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    created = await chat.send("/incident new 篡改 https://www.example.gov.cn 首页被篡改", as_="王芳")
    number = number_in(created)
    assert "（篡改/挂马，重大）" in created and f"{number}｜篡改/挂马｜重大｜" in created
    assert incident(engine, number).grade_name is None
    assert "等级：重大 → 特级" in await chat.send(f"/incident grade {number} 特级", as_="李强")
    assert "无法识别的等级“重要信息”" in await chat.send(f"/incident grade {number} 重要信息", as_="李强")


async def test_yunnan_names_win_over_the_bots_words_only_when_written_out(engine: Engine) -> None:
    chat = under(engine, "yunnan")
    # 云南's 重大信息 is its top grade; the bare 重大 keeps the bot's meaning (its 重要信息).
    top = number_in(await chat.send("/incident new 舆情 重大信息 微博@某网友 热议", as_="王芳"))
    mid = number_in(await chat.send("/incident new 舆情 重大 微博@某网友 热议", as_="王芳"))
    assert incident(engine, top).grade == Grade.special and incident(engine, top).grade_label == "重大信息"
    assert incident(engine, mid).grade == Grade.major and incident(engine, mid).grade_label == "重要信息"


def test_grade_names_per_profile() -> None:
    baoji = grade_names(load_profile("baoji"))
    assert not baoji.stated and baoji.citation == NOT_REQUIRED
    assert [baoji.zh(g) for g in Grade] == ["一般", "重大", "特级"] and baoji.parse("特级") == Grade.special
    guzhang = grade_names(load_profile("guzhang"))
    assert guzhang.allowed == (Grade.general, Grade.major) and guzhang.parse("重要") == Grade.major
    with pytest.raises(DutybotError, match="古丈办法第十条只分一般信息和重要信息"):
        guzhang.parse("特级信息")
    with pytest.raises(InputError, match="可用：一般信息、重要信息"):
        guzhang.parse("紧急")
    jiangchuan = grade_names(load_profile("jiangchuan"))
    assert jiangchuan.citation == "参照《云南省政务新媒体管理办法》第二十一条"
    assert [jiangchuan.zh(g) for g in Grade] == ["一般情况", "重要信息", "重大信息"]


# ---------------------------------------------------------------- item 3: 审 and 校


def test_signoff_steps_are_the_republishing_ones() -> None:
    marked = {(kind.value, s.key) for kind, book in load_playbooks().items() for s in book.steps if s.signoff}
    assert marked == {("sensitive", "revise"), ("content_error", "correct")}


@pytest.mark.parametrize("text", [
    "审：王芳、李强、赵敏 校：王芳、孙丽、李强",
    "审:王芳,李强,赵敏 校:王芳,孙丽,李强",
    "审： 王芳 李强 赵敏  校： 王芳，孙丽，李强",
    "审核：王芳、李强、赵敏 校对：王芳、孙丽、李强",
    "三审：赵敏 一审：王芳 二审：李强 一校：王芳 二校：孙丽 三校：李强",
])
def test_the_syntax_is_forgiving(text: str) -> None:
    got = parse_signoffs(text)
    assert got.reviews == ("王芳", "李强", "赵敏") and got.proofs == ("王芳", "孙丽", "李强") and got.note == ""


def test_text_around_the_names_is_the_note() -> None:
    got = parse_signoffs("已重新发布 审：王芳 备注：栏目已恢复")
    assert got.reviews == ("王芳",) and got.proofs == () and got.note == "已重新发布；栏目已恢复"


@pytest.mark.parametrize(("profile", "basis"), [
    ("liangping", "依据：梁平办法第十二条（三审三校）"),
    ("default", "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第十二条（三审三校）"),
    ("guzhang", "依据：古丈办法第十条（三审）"),
    ("yunnan", "依据：云南办法第二十一条（先审后发）"),
    ("jiangchuan", "依据：参照《云南省政务新媒体管理办法》第二十一条（先审后发）"),
    ("baoji", f"工作要求（至少记录一名审核人，{NOT_REQUIRED}）"),
])
def test_the_requirement_follows_the_document(profile: str, basis: str) -> None:
    rule = signoff_rule(load_profile(profile))
    assert rule.basis == basis
    with pytest.raises(DutybotError) as refused:
        rule.collect("", number="INC-20261123-001", seq=2, title="更正")
    assert basis in refused.value.message and "/incident done INC-20261123-001 2 审：" in refused.value.message


async def test_liangping_needs_three_reviews_and_three_proofs(engine: Engine) -> None:
    chat = under(engine, "liangping")
    number = number_in(await chat.send("/incident new 内容错误 https://www.example.gov.cn/zwgk/3 附件日期写错",
                                       as_="王芳"))
    correct = {s.key: s for s in steps(engine, number)}["correct"]
    assert correct.signoff_required
    assert "（需记录审校人员）" in await chat.send(f"/incident show {number}", as_="王芳")
    await chat.send(f"/incident done {number} 1", as_="王芳")
    refused = await chat.send(f"/incident done {number} {correct.seq} 审：王芳、李强", as_="王芳")
    assert "依据：梁平办法第十二条（三审三校）" in refused and "一审 信息员" in refused
    assert "还缺：三审、一校、二校、三校" in refused
    assert f"/incident done {number} {correct.seq} 审：姓名1、姓名2、姓名3 校：姓名1、姓名2、姓名3" in refused
    assert {s.key: s for s in steps(engine, number)}["correct"].is_pending
    done = await chat.send(f"/incident done {number} {correct.seq} {FULL} 备注：已重新发布", as_="王芳")
    assert "已完成" in done
    step = {s.key: s for s in steps(engine, number)}["correct"]
    assert step.signoff_list() == [
        {"stage": "一审", "name": "王芳"}, {"stage": "二审", "name": "李强"}, {"stage": "三审", "name": "赵敏"},
        {"stage": "一校", "name": "王芳"}, {"stage": "二校", "name": "孙丽"}, {"stage": "三校", "name": "李强"}]
    assert step.note == "已重新发布"
    shown = await chat.send(f"/incident show {number}", as_="王芳")
    assert f"审校：{FULL_SHOWN}" in shown                              # the step and the timeline
    assert shown.count(FULL_SHOWN) == 2
    assert FULL_SHOWN in await chat.send(f"/incident report {number}", as_="王芳")
    assert any(f"审校：{FULL_SHOWN}" in line and "备注：已重新发布" in line for line in report_section(engine, number, STEPS))
    with Session(engine) as session:
        done_event = next(e for e in audit.history(session=session, entity_type="incident", entity_id=number)
                          if e.action == "step_done" and e.details().get("step") == "correct")
    assert done_event.details()["signoffs"] == step.signoff_list()


async def test_guzhang_needs_three_reviews_and_no_proofs(engine: Engine) -> None:
    chat = under(engine, "guzhang")
    number = number_in(await chat.send("/incident new 敏感 本单位门户网站 公示名单含身份证号", as_="王芳"))
    revise = {s.key: s for s in steps(engine, number)}["revise"]
    await chat.send(f"/incident done {number} 1", as_="王芳")
    refused = await chat.send(f"/incident done {number} {revise.seq} 审：王芳、李强", as_="王芳")
    assert "依据：古丈办法第十条（三审）" in refused and "还缺：终审" in refused and "梁平" not in refused
    assert "已完成" in await chat.send(f"/incident done {number} {revise.seq} 审：王芳、李强、赵敏", as_="王芳")
    shown = await chat.send(f"/incident show {number}", as_="王芳")
    assert "审校：初审 王芳、复审 李强、终审 赵敏" in shown
    assert any("审校：初审 王芳、复审 李强、终审 赵敏" in line for line in report_section(engine, number, STEPS))


async def test_yunnan_needs_one_review(engine: Engine) -> None:
    chat = under(engine, "yunnan")
    number = number_in(await chat.send("/incident new 内容错误 https://www.example.gov.cn/zwgk/3 附件日期写错",
                                       as_="王芳"))
    correct = {s.key: s for s in steps(engine, number)}["correct"]
    await chat.send(f"/incident done {number} 1", as_="王芳")
    refused = await chat.send(f"/incident done {number} {correct.seq} 已改", as_="王芳")
    assert "依据：云南办法第二十一条（先审后发）" in refused and "还缺：至少一名审核人" in refused
    assert "已完成" in await chat.send(f"/incident done {number} {correct.seq} 审：李强", as_="王芳")
    assert "审校：一审 李强" in await chat.send(f"/incident show {number}", as_="王芳")
    assert "一审 李强" in await chat.send(f"/incident report {number}", as_="王芳")
