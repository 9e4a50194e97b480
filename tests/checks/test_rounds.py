"""Quarterly inspection rounds (CHECK-1, 梁平办法第二十九条): a unit's result opens
rectification items whose deadline is the office's working practice (10 working days,
counted over the 2026 National Day holiday), the unit is told, reminded before and on the
last day, and the admins are told once it has passed. Where the profile states no check
interval (云南, 宝鸡) no periodic round is planned. Clock moved, never slept."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryChat
from checks import rounds, service
from checks.indicators import load_sheet
from checks.models import CheckResult, CheckRound, ItemStatus, Rectification, RoundStatus
from core.audit import AuditEvent
from core.clock import parse_local
from core.errors import InputError
from core.schedule import DueItem, DueStatus
from tests.checks.conftest import Office

BASIS = "检查依据：梁平办法第二十九条"
PRACTICE = "整改期限10个工作日为工作要求，非条款规定"


def plan_and_record(chat: MemoryChat, engine: Engine, unit: str, items: str, **kw: object) -> rounds.Recorded:
    app = chat.app
    with Session(engine, expire_on_commit=False) as session:
        sheet = load_sheet()
        rounds.plan_round(session=session, profile=app.profile, sheet=sheet, now=app.clock.now(), actor="张伟")
        done = rounds.record_result(session=session, sheet=sheet, policy=app.settings.check_policy(app.calendar),
                                    unit=unit, hits_text=items, now=app.clock.now(), actor="张伟", **kw)  # type: ignore[arg-type]
        session.commit()
        return done


def check_messages(chat: MemoryChat, name: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith(("【检查", "【整改"))]


async def test_a_quarter_round_opens_items_counted_over_the_national_day_holiday(office: Office, engine: Engine) -> None:
    chat, _ = office("liangping", "2026-09-29T10:00")        # Tuesday before 国庆 (10月1日—7日)
    done = plan_and_record(chat, engine, "区教育局", "V2,D01×2")
    assert done.round.title == "2026年第三季度检查" and done.round.citation == "梁平办法第二十九条"
    assert (done.result.score, done.result.vetoed, done.result.passed) == (96, True, False)
    # 9月30日, then 10月8日, 9日, 10日 (调休上班的星期六), 12日 … 19日: the 10th working day.
    assert [(i.id, i.code, i.due_last_day) for i in done.items] == [
        (1, "V2", date(2026, 10, 19)), (2, "D01", date(2026, 10, 19))]
    assert done.items[0].due_at == parse_local("2026-10-20T00:00")
    assert [p.name for p in done.notified] == ["李强"]

    await chat.app.drain()
    [told] = check_messages(chat, "李强")
    assert told.startswith("【检查结果】2026年第三季度检查｜区教育局\n"
                           "得分：96（满分100，合格线60）；结果：不合格（单项否决：站点无法访问）")
    assert "· V2 站点无法访问（单项否决）\n· D01 首页栏目更新不及时 ×2（扣4分）" in told
    assert f"请于 2026年10月19日（星期一）24:00 前完成整改（{PRACTICE}）：" in told
    assert "· 编号 1｜V2 站点无法访问\n· 编号 2｜D01 首页栏目更新不及时（2处）" in told
    assert "/check done 编号" in told and told.endswith(BASIS)
    assert check_messages(chat, "王芳") == [] and check_messages(chat, "张伟") == []   # unit's leader only

    # Reminders: 2 working days before the last day, at opening time.
    await chat.app.advance_to(parse_local("2026-10-15T08:59"))
    assert len(check_messages(chat, "李强")) == 1
    await chat.app.advance_to(parse_local("2026-10-15T09:00"))
    before = check_messages(chat, "李强")[1:]
    assert [m.splitlines()[0] for m in before] == ["【整改提醒】即将到期：编号 1｜区教育局｜V2 站点无法访问",
                                                   "【整改提醒】即将到期：编号 2｜区教育局｜D01 首页栏目更新不及时（2处）"]
    assert before[0].splitlines()[1] == "截止：10月19日 24:00 前（还剩4天15小时）"
    assert before[0].endswith(f"{PRACTICE}；{BASIS}")

    # The officer of the unit lists the items and closes one; the admins are told to verify.
    listed = await chat.send("/check", as_="王芳")
    assert listed.startswith("本单位（区教育局）待整改事项（2 项）：\n· 编号 1｜V2 站点无法访问｜截止 2026年10月19日（星期一）24:00｜待整改")
    reply = await chat.send("/check done 1 首页已恢复访问", as_="王芳")
    assert reply.startswith("已登记整改完成：编号 1｜区教育局｜V2 站点无法访问") and "尚有 1 项待整改" in reply
    assert chat.last("张伟") == ("【整改完成】区教育局 已登记整改完成：编号 1｜V2 站点无法访问\n整改说明：首页已恢复访问\n"
                                "登记人：王芳。请核查整改情况。")
    assert "已于" in await chat.send("/check done 1", as_="王芳")
    assert "只能由该单位人员或管理员登记办结" in await chat.send("/check done 2", as_="陈晨")

    # On the last day, only the open item; at the deadline the unit and the admins.
    await chat.app.advance_to(parse_local("2026-10-19T09:00"))
    assert [m.splitlines()[0] for m in check_messages(chat, "李强")[3:]] == [
        "【整改提醒】今天到期：编号 2｜区教育局｜D01 首页栏目更新不及时（2处）"]
    await chat.app.advance_to(parse_local("2026-10-20T08:59"))
    assert not [m for m in chat.messages("刘洋") if "超期" in m]
    await chat.app.advance_to(parse_local("2026-10-20T09:00"))
    assert check_messages(chat, "李强")[-1].startswith("【整改超期】已过整改期限，请尽快整改并登记：编号 2")
    escalated = chat.last("刘洋")
    assert escalated.startswith("【整改超期·上报】区教育局 整改事项超期未办结：编号 2｜区教育局｜D01 首页栏目更新不及时（2处）\n"
                                "截止：已超期9小时（昨天 24:00）\n请督促整改")
    assert chat.last("张伟") == escalated and check_messages(chat, "陈晨") == []

    with Session(engine) as session:
        due = {(d.key, d.status) for d in session.exec(select(DueItem).where(DueItem.kind == "checks.remind"))}
        assert ("rectify:1:due", DueStatus.cancelled) in due and ("rectify:2:overdue", DueStatus.done) in due
        actions = [(e.entity_type, e.action) for e in session.exec(select(AuditEvent).where(
            col(AuditEvent.entity_type).in_(["check_round", "check_result", "rectification"])).order_by(col(AuditEvent.id)))]
        # The fourth quarter's round was planned by the bot on its first working morning (10月8日).
        assert actions == [("check_round", "planned"), ("check_result", "recorded"), ("check_round", "planned"),
                           ("rectification", "done")]


async def test_the_round_covers_every_unit_with_sites_or_people_and_closes_when_all_are_recorded(
        office: Office, engine: Engine) -> None:
    chat, clock = office("liangping", "2026-11-23T10:00")
    app = chat.app
    sheet, policy = load_sheet(), app.settings.check_policy(app.calendar)
    with Session(engine, expire_on_commit=False) as session:
        planned = rounds.plan_round(session=session, profile=app.profile, sheet=sheet, now=clock.now(), actor="cli")
        assert planned.created and planned.units == ["区卫健委", "区政府办", "区教育局"]
        assert (planned.round.period, planned.round.starts_on, planned.round.ends_on) == (
            "2026Q4", date(2026, 10, 1), date(2026, 12, 31))
        again = rounds.plan_round(session=session, profile=app.profile, sheet=sheet, now=clock.now(), actor="cli")
        assert not again.created and again.round.id == planned.round.id
        nxt = rounds.plan_round(session=session, profile=app.profile, sheet=sheet, now=clock.now(), actor="cli", ahead=1)
        assert (nxt.round.period, nxt.round.title) == ("2027Q1", "2027年第一季度检查")
        for unit, found in (("区政府办", "无"), ("区卫健委", "D06"), ("区教育局", "D03×9,D04")):
            rounds.record_result(session=session, sheet=sheet, policy=policy, unit=unit, hits_text=found,
                                 now=clock.now(), actor="cli", round_id=planned.round.id)
        with pytest.raises(InputError, match="区教育局 在2026年第四季度检查中已于 2026-11-23 10:00 由 管理员（命令行） 登记"):
            rounds.record_result(session=session, sheet=sheet, policy=policy, unit="区教育局", hits_text="无",
                                 now=clock.now(), actor="cli", round_id=planned.round.id)
        with pytest.raises(InputError, match="“区公安局”不是已登记网站或人员的单位"):
            rounds.record_result(session=session, sheet=sheet, policy=policy, unit="区公安局", hits_text="无",
                                 now=clock.now(), actor="cli", round_id=planned.round.id)
        with pytest.raises(InputError, match="评分表中没有条目“Z9”"):
            rounds.record_result(session=session, sheet=sheet, policy=policy, unit="区卫健委", hits_text="Z9",
                                 now=clock.now(), actor="cli", round_id=nxt.round.id)
        session.commit()
    with Session(engine) as session:
        results = {r.unit: (r.score, r.passed) for r in session.exec(
            select(CheckResult).where(CheckResult.round_id == planned.round.id))}
        assert results == {"区政府办": (100, True), "区卫健委": (95, True), "区教育局": (94, True)}  # D03 capped at 5
        assert session.get(CheckRound, planned.round.id).status == RoundStatus.done  # type: ignore[union-attr]
        assert session.get(CheckRound, nxt.round.id).status == RoundStatus.open  # type: ignore[union-attr]
        assert [(i.unit, i.code, i.what) for i in service.items(session=session)] == [
            ("区卫健委", "D06", "账号未备案"), ("区教育局", "D03", "链接不可用（9处）"), ("区教育局", "D04", "错别字")]
    await app.drain()
    # A unit with no leader or admin of its own: the admins get its result.
    assert chat.last("张伟").startswith("【检查结果】2026年第四季度检查｜区政府办\n得分：100") and "无整改事项" in chat.last("张伟")
    assert "编号 1｜D06 账号未备案" in chat.last("陈晨")


async def test_a_due_date_set_by_the_checkers_is_said_to_be_theirs(office: Office, engine: Engine) -> None:
    chat, _ = office("guzhang", "2026-11-23T10:00")
    done = plan_and_record(chat, engine, "区卫健委", "D06", due=date(2026, 11, 30), note="抽查健康区卫健")
    assert done.round.citation == "古丈办法第二十一条"
    [item] = done.items
    assert (item.due_last_day, item.due_at, item.due_basis) == (
        date(2026, 11, 30), parse_local("2026-12-01T00:00"), "整改期限由检查组指定，为工作要求，非条款规定")
    await chat.app.drain()
    assert "请于 2026年11月30日（星期一）24:00 前完成整改（整改期限由检查组指定，为工作要求，非条款规定）" in chat.last("陈晨")
    assert "检查说明：抽查健康区卫健" in chat.last("陈晨") and chat.last("陈晨").endswith("检查依据：古丈办法第二十一条")
    with Session(engine) as session, pytest.raises(InputError, match="整改期限 2026-11-01 已过"):
        rounds.record_result(session=session, sheet=load_sheet(), policy=chat.app.settings.check_policy(chat.app.calendar),
                             unit="区教育局", hits_text="D04", now=chat.app.clock.now(), actor="cli", due=date(2026, 11, 1))


@pytest.mark.parametrize("profile", ["yunnan", "baoji"])
async def test_no_periodic_round_where_the_profile_states_no_interval(office: Office, engine: Engine,
                                                                     profile: str) -> None:
    chat, clock = office(profile, "2026-11-23T10:00")
    app = chat.app
    with Session(engine, expire_on_commit=False) as session:
        with pytest.raises(service.NotStated, match=f"^本地规定未作要求：规则配置档 {profile} 未规定定期检查周期"):
            rounds.plan_round(session=session, profile=app.profile, sheet=load_sheet(), now=clock.now(), actor="cli")
        assert session.exec(select(CheckRound)).all() == []
        adhoc = rounds.plan_round(session=session, profile=app.profile, sheet=load_sheet(), now=clock.now(),
                                  actor="cli", adhoc=True)
        assert (adhoc.round.kind, adhoc.round.title) == ("adhoc", "专项检查（2026年11月23日）")
        done = rounds.record_result(session=session, sheet=load_sheet(), policy=app.settings.check_policy(app.calendar),
                                    unit="区教育局", hits_text="D03", now=clock.now(), actor="cli")
        session.commit()
    assert done.items[0].due_last_day == date(2026, 12, 7)
    await app.drain()
    assert chat.last("李强").endswith("专项检查（本单位安排，非条款规定的定期检查）")
    await app.advance_to(parse_local("2026-12-08T09:00"))
    assert chat.last("张伟").startswith("【整改超期·上报】区教育局")
    with Session(engine) as session:
        assert session.exec(select(Rectification)).one().status == ItemStatus.open


async def test_the_quarter_round_is_planned_at_office_opening_once(office: Office, engine: Engine) -> None:
    """梁平办法第二十九条 每季度: on the first working morning the bot runs, the quarter's round
    exists and the admins are told; the next morning nothing new."""
    chat, _ = office("liangping", "2026-11-23T08:00")
    await chat.app.advance_to(parse_local("2026-11-23T09:05"))
    with Session(engine) as session:
        rounds = session.exec(select(CheckRound)).all()
        assert [(r.title, r.citation) for r in rounds] == [("2026年第四季度检查", "梁平办法第二十九条")]
    told = [m for m in chat.messages("刘洋") if m.startswith("【定期检查】")]
    assert len(told) == 1 and "已建立2026年第四季度检查，检查单位" in told[0] and "区教育局" in told[0]
    assert "在管理端登记各单位结果：dutybot checks record" in told[0]
    await chat.app.advance_to(parse_local("2026-11-24T09:05"))
    assert len([m for m in chat.messages("刘洋") if m.startswith("【定期检查】")]) == 1


async def test_no_round_is_planned_where_no_interval_is_stated(office: Office, engine: Engine) -> None:
    chat, _ = office("yunnan", "2026-11-23T08:00")
    await chat.app.advance_to(parse_local("2026-11-24T09:05"))
    with Session(engine) as session:
        assert session.exec(select(CheckRound)).all() == []
    assert not [m for m in chat.messages("刘洋") if m.startswith("【定期检查】")]
