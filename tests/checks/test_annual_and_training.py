"""The annual report (CHECK-1.annual_report_by, 古丈办法第十五条: 1月31日前) and the annual
training (STAFF-3: 宝鸡办法第二十六条, 江川制度第二十七条): only where the profile states them;
a pre-duty training records the people's training day (STAFF-1). Clock moved, never slept."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from checks import training
from checks.models import AnnualReport, ItemStatus, TrainingAttendance
from core.audit import AuditEvent
from core.clock import parse_local
from people.models import Person
from tests.checks.conftest import Office

REPORT = "请于 2027年1月31日（星期日）24:00 前向社会公开2026年度政府网站年度工作报表（依据：古丈办法第十五条）"


def annual_messages(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith("【年度工作报表")]


async def test_guzhang_opens_a_duty_per_unit_due_31_january_and_chases_it(office: Office, engine: Engine) -> None:
    chat, _ = office("guzhang", "2026-12-31T23:00")
    await chat.app.advance_to(parse_local("2027-01-01T00:05"))
    with Session(engine) as session:
        rows = session.exec(select(AnnualReport).order_by(AnnualReport.unit)).all()
        assert [(r.year, r.unit, r.due_on, r.citation) for r in rows] == [
            (2026, unit, date(2027, 1, 31), "古丈办法第十五条") for unit in ("区卫健委", "区政府办", "区教育局")]
        assert rows[0].due_at == parse_local("2027-02-01T00:00")
    assert annual_messages(chat.messages("李强")) == []          # 元旦 and the weekend: wait for the office

    await chat.app.advance_to(parse_local("2027-01-04T09:00"))   # Monday, the first working day
    [notice] = annual_messages(chat.messages("李强"))
    assert notice == (f"【年度工作报表】区教育局：{REPORT}。\n截止：1月31日 24:00 前（还剩27天15小时）\n"
                      "公开后发送 /check annual 网址（或 dutybot checks annual done 单位 网址）")
    assert annual_messages(chat.messages("张伟"))[0].startswith("【年度工作报表】区政府办：")

    assert "以 http:// 或 https:// 开头" in await chat.send("/check annual jyj.example.gov.cn", as_="李强")
    listed = await chat.send("/check", as_="李强")
    assert "年度工作报表：2026年度｜区教育局｜截止 2027年1月31日（星期日）24:00｜待公开" in listed
    reply = await chat.send("/check annual https://jyj.example.gov.cn/ndbb/2026.html", as_="李强")
    assert reply == "已登记公开：2026年度｜区教育局｜截止 2027年1月31日（星期日）24:00｜已公开 https://jyj.example.gov.cn/ndbb/2026.html"
    assert chat.last("刘洋") == ("【年度工作报表】区教育局 已登记公开2026年度政府网站年度工作报表："
                                "https://jyj.example.gov.cn/ndbb/2026.html（登记人：李强）")

    # Two working days before the last day (a Sunday); none on the Sunday itself.
    await chat.app.advance_to(parse_local("2027-01-28T09:00"))
    assert annual_messages(chat.messages("陈晨"))[-1].startswith(f"【年度工作报表】即将到期：区卫健委：{REPORT}。")
    await chat.app.advance_to(parse_local("2027-01-31T23:00"))
    assert len(annual_messages(chat.messages("陈晨"))) == 2
    await chat.app.advance_to(parse_local("2027-02-01T09:00"))
    assert annual_messages(chat.messages("陈晨"))[-1].startswith(f"【年度工作报表·已超期】区卫健委：{REPORT}。")
    escalated = [m for m in chat.messages("刘洋") if m.startswith("【年度工作报表·超期上报】")]
    assert escalated == ["【年度工作报表·超期上报】区卫健委 尚未登记公开2026年度政府网站年度工作报表（依据：古丈办法第十五条）。\n"
                         "截止：已超期9小时（昨天 24:00）\n请督促公开；查看：dutybot checks annual"]
    assert len(annual_messages(chat.messages("李强"))) == 1    # published: nothing more
    with Session(engine) as session:
        assert [r.status for r in session.exec(select(AnnualReport).order_by(AnnualReport.unit))] == [
            ItemStatus.open, ItemStatus.open, ItemStatus.done]


async def test_no_annual_report_where_the_profile_states_none_or_its_day_has_passed(office: Office,
                                                                                    engine: Engine) -> None:
    chat, _ = office("liangping", "2026-12-31T23:00")
    await chat.app.advance_to(parse_local("2027-01-05T10:00"))
    with Session(engine) as session:
        assert session.exec(select(AnnualReport)).all() == []
    assert await chat.send("/check annual", as_="李强") == (
        "本地规定未作要求：规则配置档 liangping 未规定年度工作报表的公开期限（CHECK-1.annual_report_by）。")


async def test_the_default_profile_applies_its_reference_and_cites_it_as_such(office: Office,
                                                                             engine: Engine) -> None:
    """``default`` applies 参照 values as its other rules do; the duty says whose article it is."""
    chat, _ = office("default", "2026-12-31T23:00")
    await chat.app.advance_to(parse_local("2027-01-01T00:05"))
    with Session(engine) as session:
        rows = session.exec(select(AnnualReport)).all()
        assert rows and {r.citation for r in rows} == {"参照《古丈县政府网站管理办法》第十五条"}
        assert {r.due_on for r in rows} == {date(2027, 1, 31)}


async def test_a_deployment_started_after_the_due_day_invents_no_overdue_duty(office: Office, engine: Engine) -> None:
    chat, _ = office("guzhang", "2027-02-10T10:00")
    await chat.app.advance_to(parse_local("2027-02-11T10:00"))
    with Session(engine) as session:
        assert session.exec(select(AnnualReport)).all() == []


def training_messages(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith("【年度培训】")]


@pytest.mark.parametrize(("profile", "basis"), [("baoji", "依据：宝鸡办法第二十六条（每年至少一次业务培训）"),
                                                ("jiangchuan", "依据：江川制度第二十七条（每年组织培训）")])
async def test_without_an_annual_training_the_admins_are_reminded_from_1_november(
        office: Office, engine: Engine, profile: str, basis: str) -> None:
    chat, clock = office(profile, "2026-10-30T10:00")
    with Session(engine) as session:       # a pre-duty training is not the year's 业务培训
        training.add_training(session=session, day=date(2026, 10, 29), title="新进值班员岗前培训", names=["王芳"],
                              now=clock.now(), actor="张伟", pre_duty=True)
        session.commit()
    await chat.app.advance_to(parse_local("2026-11-02T08:59"))
    assert training_messages(chat.messages("张伟")) == []
    await chat.app.advance_to(parse_local("2026-11-02T09:00"))      # 11月1日 is a Sunday
    assert training_messages(chat.messages("张伟")) == [
        f"【年度培训】2026年尚未登记业务培训，{basis}。培训后请在管理端登记：dutybot checks training add 日期 标题（参训人员见 dutybot checks training add -h）\n"
        "（自11月1日起每周提醒一次，直至登记；提醒日期和频次为工作要求，非条款规定）"]
    assert training_messages(chat.messages("刘洋")) == training_messages(chat.messages("张伟"))
    assert training_messages(chat.messages("李强")) == []
    await chat.app.advance_to(parse_local("2026-11-06T18:00"))
    assert len(training_messages(chat.messages("张伟"))) == 1        # once a week
    await chat.app.advance_to(parse_local("2026-11-09T09:00"))
    assert len(training_messages(chat.messages("张伟"))) == 2
    with Session(engine) as session:
        training.add_training(session=session, day=date(2026, 11, 9), title="政务新媒体业务培训",
                              names=["李强", "王芳", "陈晨"], now=clock.now(), actor="张伟", organiser="区政府办")
        session.commit()
    await chat.app.advance_to(parse_local("2026-11-30T09:00"))
    assert len(training_messages(chat.messages("张伟"))) == 2


async def test_liangping_states_no_annual_training_and_reminds_nobody(office: Office) -> None:
    chat, _ = office("liangping", "2026-10-30T10:00")
    await chat.app.advance_to(parse_local("2026-11-16T10:00"))
    assert training_messages(chat.messages("张伟")) == []


def test_a_pre_duty_training_records_the_training_day_where_none_or_a_later_one_is(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        for name, trained in (("孙丽", None), ("吴刚", date(2026, 11, 21)), ("郑丽", date(2026, 3, 2))):
            session.add(Person(name=name, roles="officer", unit="区教育局", created_at=now, trained_on=trained))
        session.commit()
        done = training.add_training(session=session, day=date(2026, 11, 20), title="值班读网岗前培训",
                                     names=training.parse_names("孙丽，吴刚、郑丽 孙丽"), now=now, actor="张伟",
                                     pre_duty=True)
        session.commit()
        assert [p.name for p in done.people] == ["孙丽", "吴刚", "郑丽"]
        assert [p.name for p in done.trained] == ["孙丽", "吴刚"]
        days = {p.name: p.trained_on for p in session.exec(select(Person))}
        assert days == {"孙丽": date(2026, 11, 20), "吴刚": date(2026, 11, 20), "郑丽": date(2026, 3, 2)}
        events = [(e.entity_id, e.details()["before"]) for e in session.exec(
            select(AuditEvent).where(AuditEvent.action == "trained").order_by(col(AuditEvent.id)))]
        assert events == [("1", None), ("2", "2026-11-21")]
        assert len(session.exec(select(TrainingAttendance)).all()) == 3
        with pytest.raises(Exception, match="岗前培训须写明参训人员"):
            training.add_training(session=session, day=date(2026, 11, 20), title="岗前培训", names=[], now=now,
                                  actor="张伟", pre_duty=True)
        with pytest.raises(Exception, match="尚未到来"):
            training.add_training(session=session, day=date(2026, 11, 24), title="业务培训", names=[], now=now,
                                  actor="张伟")
