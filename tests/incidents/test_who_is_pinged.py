"""Who is pinged (issue 14 item 4): the 技术保障 of a site or unit, bounded repeats that
spare the reporter, and routine reminders that wait for office hours — with the clock
moved, never slept."""

from __future__ import annotations

from collections import Counter
from datetime import UTC

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli import main
from bot.config import load_settings
from core import audit
from core.clock import FakeClock, parse_local
from core.outbox import OutboxMessage
from core.schedule import DueItem, DueStatus
from incidents.models import Incident, IncidentStep, IncidentType, StepStatus
from incidents.playbooks import load_playbooks
from people.models import Person, Role
from roster.sites import add_site, validate
from tests.factories import make_person

PINGS = ("【事件升级", "【事件超期", "【停止重复提醒")


def build(engine: Engine, start: str, *, extra: tuple[tuple[str, Role, str], ...] = (),
          env: dict[str, str] | None = None) -> MemoryChat:
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, role, unit in (("王芳", Role.officer, "区政府办"), ("李强", Role.leader, "区政府办"),
                                 ("赵敏", Role.principal, "区政府办"), ("张伟", Role.admin, "区政府办"),
                                 ("刘洋", Role.officer, "区政府办公室"), *extra):
            make_person(session, name, roles=(role,), now=clock.now(), unit=unit)
        session.commit()
    adapter = MemoryAdapter()
    settings = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋", **(env or {})})
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


def add_support(engine: Engine, name: str, unit: str, *, bound: bool = True, phone: str = "13900000001") -> None:
    with Session(engine) as session:
        make_person(session, name, roles=(Role.support,), now=parse_local("2026-11-01T09:00"), unit=unit,
                    phone=phone, platform="memory" if bound else None)
        session.commit()


def number_in(reply: str) -> str:
    return reply.split("已登记 ")[1].split("（")[0]


def steps(engine: Engine, number: str) -> list[IncidentStep]:
    with Session(engine) as session:
        inc = session.exec(select(Incident).where(Incident.number == number)).one()
        return list(session.exec(select(IncidentStep).where(IncidentStep.incident_id == inc.id)
                                 .order_by(IncidentStep.seq)))


def timeline(engine: Engine, number: str) -> list[str]:
    with Session(engine) as session:
        return [e.details().get("zh", e.action)
                for e in audit.history(session=session, entity_type="incident", entity_id=number)]


def pings(chat: MemoryChat, name: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith(PINGS)]


# -- 技术保障 (DUTY-2) -------------------------------------------------------------------


def test_every_outage_content_and_tamper_playbook_asks_the_support_first() -> None:
    books = load_playbooks()
    for kind in (IncidentType.site_down, IncidentType.content_error, IncidentType.tamper):
        support = [s for s in books[kind].steps if s.owner == "support"]
        assert [s.key for s in support] == ["notify"] and support[0].rule == "DUTY-2", kind
    # The bot marks a support step done itself: no step may count from one (its clock would never start).
    for book in books.values():
        keys = {s.key for s in book.steps if s.owner == "support"}
        assert not any(s.after in keys for s in book.steps), book.type


async def test_an_outage_pings_the_units_support_and_the_timeline_says_so(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    add_support(engine, "张工", "区政府办")
    add_support(engine, "钱工", "区教育局")          # another unit's support is never asked
    reply = await chat.send("/incident new 无法访问 https://www.example.gov.cn 首页502", as_="王芳")
    number = number_in(reply)
    assert "已通知技术保障：张工（请立即排查故障、恢复访问）" in reply and "张工" in reply.split("已通知：")[1]
    ping = chat.last("张工")
    assert ping.startswith("【技术保障·请处理】请立即排查故障、恢复访问")
    assert number in ping and "首页502" in ping and "请告知值班员：王芳（13800000000）" in ping
    assert "梁平" in ping and "第二十条" in ping             # DUTY-2's article
    assert chat.messages("钱工") == []
    first = steps(engine, number)[0]
    assert (first.key, first.status, first.done_by_id) == ("notify", StepStatus.done, None)
    assert first.note == "机器人已通知技术保障：张工"
    assert any(line.startswith("通知技术保障：张工——请立即排查故障、恢复访问；步骤1") for line in timeline(engine, number))
    shown = await chat.send(f"/incident show {number}", as_="王芳")
    assert "系统 通知技术保障：张工" in shown
    # The notify step is done, so it is never reminded nor escalated.
    await chat.app.advance_to(parse_local("2026-11-23T11:00"))
    assert not any("步骤1" in m for m in pings(chat, "王芳") + pings(chat, "李强"))


async def test_a_sites_own_support_wins_and_is_set_in_chat_by_an_admin(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    add_support(engine, "张工", "区政府办")
    add_support(engine, "周工", "")                  # a vendor's engineer serving every unit
    with Session(engine) as session:
        add_site(session=session, new=validate("门户网站", "网站", "https://www.example.gov.cn", "区政府办"),
                 now=parse_local("2026-11-01T09:00"), actor="test")
        session.commit()
    assert "需要管理员" in await chat.send("/sites support 门户网站 周工", as_="王芳")
    done = await chat.send("/sites support 门户网站 周工", as_="张伟")
    assert "已设置 门户网站（网站） https://www.example.gov.cn｜区政府办 的技术保障：周工" in done
    assert "技术保障：周工" in await chat.send("/sites", as_="王芳")
    # Reported by address: the host names the registered site.
    reply = await chat.send("/incident new 内容错误 https://www.example.gov.cn/zwgk/1 发布日期写错", as_="王芳")
    assert "已通知技术保障：周工" in reply
    assert chat.last("周工").startswith("【技术保障·请处理】请立即核对并更正错误内容")
    assert chat.messages("张工") == []
    # Cleared: the unit's own support is asked again.
    assert "改由单位的技术保障负责" in await chat.send("/sites support 门户网站 清除", as_="张伟")
    await chat.send("/incident new 无法访问 门户网站 打不开", as_="王芳")
    assert chat.last("张工").startswith("【技术保障·请处理】")


async def test_without_support_the_duty_officer_is_told_how_to_set_it(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    reply = await chat.send("/incident new 内容错误 @区政府办 https://www.example.gov.cn/zwgk/1 发布日期写错", as_="刘洋")
    number = number_in(reply)
    for text in (reply, chat.last("王芳")):      # the reporter and the unit's duty officer
        assert "未设置技术保障" in text and "机器人无法代为通知" in text
        assert "/people add 姓名 电话 技术保障 区政府办" in text and "/sites support www.example.gov.cn 姓名" in text
        assert f"/incident done {number} 1" in text
    assert chat.last("王芳").startswith("【新事件】")
    assert steps(engine, number)[0].status == StepStatus.pending     # the officer still has to call
    assert any("未设置技术保障" in line for line in timeline(engine, number))


async def test_a_support_without_a_chat_account_is_named_with_the_phone(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    add_support(engine, "吴工", "区政府办", bound=False, phone="023-12345678")
    reply = await chat.send("/incident new 无法访问 https://www.example.gov.cn 首页打不开", as_="王芳")
    number = number_in(reply)
    assert "技术保障 吴工（023-12345678） 未绑定机器人" in reply and "请立即电话通知" in reply
    assert steps(engine, number)[0].status == StepStatus.pending
    with Session(engine) as session:
        wu = session.exec(select(Person).where(Person.name == "吴工")).one()
        assert session.exec(select(OutboxMessage).where(OutboxMessage.person_id == wu.id)).all() == []


async def test_a_tampered_page_asks_the_support_too(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    add_support(engine, "张工", "区政府办")
    reply = await chat.send("/incident new 篡改 https://www.example.gov.cn 首页标题被改", as_="王芳")
    assert "已通知技术保障：张工" in reply
    assert chat.last("张工").startswith("【技术保障·请处理】请立即协助核实篡改/挂马情况")


async def test_support_is_added_in_chat_with_its_role(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    added = await chat.send("/people add 郑工 13911112222 技术保障 区政府办", as_="张伟")
    assert "已添加 郑工（技术保障）" in added
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == "郑工")).one()
        assert person.role_set() == {Role.support} and person.unit == "区政府办"
    assert "绑定码" in await chat.send("/people invite 郑工", as_="张伟")   # may bind to receive pings


def test_support_is_set_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("people", "add", "张工", "--role", "技术保障", "--unit", "区教育局", "--phone", "13900000001",
                       "--organization", "某网络科技公司")
    assert code == 0 and "已添加 张工（技术保障）" in out
    code, out, _ = run("sites", "add", "教育局网站", "--kind", "网站", "--url", "https://edu.example.gov.cn",
                       "--unit", "区教育局", "--support", "张工")
    assert code == 0 and "已登记：教育局网站（网站） https://edu.example.gov.cn｜区教育局｜技术保障：张工" in out
    code, out, _ = run("sites", "list")
    assert "｜技术保障：张工" in out
    code, out, _ = run("sites", "support", "教育局网站", "--clear")
    assert code == 0 and "已清除" in out and "改由单位的技术保障负责：张工" in out
    code, _, err = run("sites", "support", "教育局网站")
    assert code == 2 and "请给出技术保障人员的姓名" in err
    code, out, _ = run("sites", "support", "教育局网站", "张工")
    assert code == 0 and "已设置：教育局网站（网站） https://edu.example.gov.cn｜区教育局｜技术保障：张工" in out
    code, _, err = run("sites", "support", "教育局网站", "无此人")
    assert code == 1 and "无此人" in err


# -- repeats --------------------------------------------------------------------------


async def test_repeats_over_a_three_day_holiday_are_bounded_and_spare_the_reporter(engine: Engine) -> None:
    # National Day 2026: a leader reports an outage on the morning of 10-01; nobody acts
    # until 10-04. The ladder climbs once, repeats twice to the unit's leader and
    # principal, closes with one note, and the routine step reminders wait for 10-08.
    chat = build(engine, "2026-10-01T10:00", extra=(("孙丽", Role.leader, "区政府办"),))
    number = number_in(await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502",
                                       as_="李强"))
    await chat.app.advance_to(parse_local("2026-10-04T10:00"))
    got = Counter({name: len(pings(chat, name)) for name in ("王芳", "李强", "孙丽", "赵敏", "刘洋", "张伟")})
    # 孙丽: the leader rung, 2 repeats, the closing note; 赵敏: the principal rung and 2
    # repeats; 刘洋: the top rung once; the reporter 李强 and the officer 王芳: nothing.
    assert got == Counter({"孙丽": 4, "赵敏": 3, "刘洋": 1})
    assert sum(got.values()) == 8
    repeats = [m for m in pings(chat, "孙丽") if "重复提醒" in m]
    assert [m.split("】")[0] for m in repeats] == ["【事件升级·重复提醒·第2次", "【事件升级·重复提醒·第3次",
                                                  "【停止重复提醒"]
    assert "已通知全部层级，停止重复提醒（已重复提醒2次）" in repeats[-1]
    assert "停止重复提醒" not in "".join(chat.messages("赵敏"))   # the closing note is the leader's
    lines = timeline(engine, number)
    assert "无人确认，升级提醒带班领导：孙丽" in lines
    assert sum("第2次提醒：孙丽、赵敏" in line or "第3次提醒：孙丽、赵敏" in line for line in lines) == 2
    assert any(line.startswith("已通知全部层级，停止重复提醒（已重复2次）；告知：孙丽") for line in lines)
    # Nothing of the acknowledgement run is left; the step reminders wait for 10-08 09:00.
    with Session(engine) as session:
        left = session.exec(select(DueItem).where(DueItem.ref == f"incident:{number}",
                                                  DueItem.status == DueStatus.pending)).all()
    assert left and all(":step:" in d.key for d in left)
    assert min(d.due_at for d in left) == parse_local("2026-10-08T09:00").astimezone(UTC)


async def test_a_reporter_who_is_the_only_leader_keeps_hearing_the_repeats(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    await chat.send("/incident new 攻击 特级 https://www.example.gov.cn 首页被篡改为境外内容", as_="李强")
    await chat.app.advance_to(parse_local("2026-11-23T09:15"))
    assert "【事件升级·重复提醒·第2次】" in chat.last("李强") and "【事件升级·重复提醒·第2次】" in chat.last("赵敏")


async def test_the_repeat_limit_is_configurable(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00", env={"DUTYBOT_INCIDENTS_REPEAT_LIMIT": "0"})
    await chat.send("/incident new 无法访问 https://www.example.gov.cn 首页502", as_="王芳")
    await chat.app.advance_to(parse_local("2026-11-24T09:00"))
    unacknowledged = [m.split("】")[0] for m in pings(chat, "李强") if "无人确认" in m]
    assert unacknowledged == ["【事件升级·带班领导", "【停止重复提醒"]
    overdue_step = [m.split("】")[0] for m in pings(chat, "李强") if "步骤1" in m.splitlines()[0]]
    assert overdue_step == ["【事件超期升级·带班领导", "【停止重复提醒"]


# -- office hours ------------------------------------------------------------------------


async def test_a_routine_step_waits_for_the_office_but_a_major_incident_pings_at_3am(engine: Engine) -> None:
    chat = build(engine, "2026-10-03T03:00")   # Saturday, National Day holiday
    routine = number_in(await chat.send("/incident new 敏感 本单位门户网站 栏目含个人手机号", as_="王芳"))
    major = number_in(await chat.send("/incident new 敏感 重大 本单位门户网站 公示名单含身份证号", as_="王芳"))
    # 重大: the leader on duty hears at once, at 03:00 on a holiday.
    assert "【事件报告·带班领导】重大事件" in chat.last("李强") and major in chat.last("李强")
    # Both deletions were due at 03:30: the major one's owner is pinged then …
    await chat.app.advance_to(parse_local("2026-10-03T03:30"))
    overdue = [m for m in chat.messages("王芳") if m.startswith("【事件超期】")]
    assert len(overdue) == 1 and major in overdue[0]
    # … the routine one's waits for the first working morning after the holiday.
    await chat.app.advance_to(parse_local("2026-10-08T08:59"))
    assert not any(routine in m for m in chat.messages("王芳") if m.startswith("【事件超期"))
    await chat.app.advance_to(parse_local("2026-10-08T09:00"))
    assert any(m.startswith("【事件超期】") and routine in m for m in chat.messages("王芳"))
