"""A person deactivated: their future shifts are removed and the gaps announced at once;
their open incidents and reply items go to a named person, who is told; without a receiver
the deactivation is refused, listing the open work; the last admin stays. Clock moved,
never slept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli.main import main
from bot.config import load_settings
from core.audit import AuditEvent
from core.clock import FakeClock, parse_local
from core.db import make_engine, upgrade
from incidents.models import Incident
from people.models import Person, Role
from replies.models import ReplyItem
from roster.changes import request_swap
from roster.models import Shift, ShiftAssignment, Site, SwapRequest, SwapStatus
from roster.sites import add_site, set_support
from roster.sites import validate as site_row
from tests.factories import make_person, roster_days

# Monday 2026-11-23, 10:00: the 白班 of the day is running.
START = "2026-11-23T10:00"
PEOPLE = (("张伟", (Role.admin,), "13800000001"), ("王芳", (Role.officer,), "13800000002"),
          ("陈晨", (Role.officer,), "13800000003"), ("李强", (Role.leader,), "13800000004"),
          ("周明", (Role.leader,), "13800000005"))


def setup(engine: Engine, now: str = START) -> None:
    """People above; 王芳 and 陈晨 (officers), 李强 and 周明 (leaders) rostered 11-20..11-27."""
    with Session(engine) as session:
        for name, roles, phone in PEOPLE:
            make_person(session, name, roles=roles, phone=phone, now=parse_local(now))
        roster_days(session, start="2026-11-20", end="2026-11-27", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=parse_local("2026-11-19T10:00"))
        session.commit()


def build(engine: Engine, env: dict[str, str] | None = None) -> MemoryChat:
    setup(engine)
    adapter = MemoryAdapter()
    app = App(load_settings(None, env=env or {}), clock=FakeClock(parse_local(START)), adapter=adapter,
              engine=engine)
    return MemoryChat(app, adapter)


def assignments_of(engine: Engine, name: str) -> list[tuple[str, bool]]:
    """(shift label, started before START) of ``name``'s assignments."""
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        rows = session.exec(select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
                            .where(ShiftAssignment.person_id == person.id).order_by(col(Shift.starts_at))).all()
        return [(f"{s.day.isoformat()} {s.name}", s.starts_at <= parse_local(START)) for s in rows]


def person_id(engine: Engine, name: str) -> int:
    with Session(engine) as session:
        found = session.exec(select(Person).where(Person.name == name)).one().id
        assert found is not None
        return found


async def open_work_for_wangfang(chat: MemoryChat) -> tuple[str, str]:
    """An incident 王芳 owns and a reply item assigned to her; their numbers."""
    reply = await chat.send("/incident new 无法访问 https://www.example.gov.cn 首页502", as_="王芳")
    incident = reply.split("已登记 ")[1].split("（")[0]
    await chat.send(f"/incident take {incident}", as_="王芳")
    reply = await chat.send("/reply new 咨询 办事指南在哪里查看", as_="陈晨")
    item = reply.split("已登记 ")[1].split("（")[0]
    assert "已将" in await chat.send(f"/reply assign {item} 王芳", as_="张伟")
    return incident, item


def gap_notices(chat: MemoryChat, name: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith("【值班空缺】")]


async def test_future_shifts_become_announced_gaps_and_past_ones_stay(engine: Engine) -> None:
    chat = build(engine)
    before = assignments_of(engine, "王芳")
    past = [a for a in before if a[1]]
    future = [a for a in before if not a[1]]
    assert past and future

    reply = await chat.send("/people deactivate 王芳", as_="张伟")
    assert reply.startswith("已停用 王芳（值班员）：不再出现在名单、排班和通知中。")
    assert f"已撤下其今后的班次 {len(future)} 个，出现空缺 {len(future)} 个（已通知管理员和带班领导）：" in reply
    assert "用 /assign 日期 班次 人员 补位。" in reply
    assert assignments_of(engine, "王芳") == past                 # past (and running) shifts untouched
    if any(a[0] == "2026-11-23 白班" for a in past):
        assert "其正在值守的11月23日（星期一）白班" in reply

    # One message to each leader (the acting admin reads it in the reply), listing every gap.
    notices = gap_notices(chat, "李强")
    assert len(notices) == 1 and gap_notices(chat, "周明") == notices and gap_notices(chat, "张伟") == []
    text = notices[0]
    assert text.startswith("【值班空缺】王芳 已停用，其今后的班次已撤下，以下班次出现空缺，请尽快安排：")
    gap_lines = [line for line in text.splitlines() if line.startswith("· ")]
    assert len(gap_lines) == len(future) and all(line.endswith("缺值班员") for line in gap_lines)
    assert "用 /assign 日期 班次 人员 补位。" in text and "依据：" in text
    assert gap_lines[0] in reply

    # The daily check does not report the same gaps again at the same stage: the next
    # morning only tomorrow's gaps come back (the eve warning), not the ones further out.
    await chat.app.advance_to(parse_local("2026-11-24T09:00"))
    daily = gap_notices(chat, "李强")[1:]
    assert len(daily) == 1
    assert "· 明天｜11月25日（星期三）白班 08:30起：缺值班员" in daily[0]
    assert "11月26日" not in daily[0] and "11月27日" not in daily[0]

    with Session(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.entity_type == "shift"))]
        assert actions.count("unassigned") == len(future)


async def test_open_work_is_handed_to_the_named_receiver_who_is_told(engine: Engine) -> None:
    chat = build(engine)
    incident, item = await open_work_for_wangfang(chat)

    refused = await chat.send("/people deactivate 王芳", as_="张伟")
    assert refused.startswith("王芳 还有 2 项未办结的事项，停用前请指定交接人：")
    assert f"· 事件 {incident}｜无法访问｜" in refused and f"· 留言 {item}｜咨询建议｜截止 " in refused
    assert "用法：/people deactivate 王芳 交接 接收人（命令行：dutybot people deactivate 王芳 --to 接收人）" in refused
    with Session(engine) as session:
        assert session.exec(select(Person).where(Person.name == "王芳")).one().active    # nothing changed
    assert "不能是 王芳 本人" in await chat.send("/people deactivate 王芳 交接 王芳", as_="张伟")

    reply = await chat.send("/people deactivate 王芳 交接 陈晨", as_="张伟")
    assert "已停用 王芳（值班员）" in reply
    assert "已交接给 陈晨：事件 1 项、留言 1 项（已通知陈晨）。" in reply
    told = [m for m in chat.messages("陈晨") if m.startswith("【工作交接】")]
    assert len(told) == 1
    assert told[0].startswith("【工作交接】王芳 已停用，以下事项交由您办理：")
    assert f"· 事件 {incident}" in told[0] and f"· 留言 {item}" in told[0]
    wang = person_id(engine, "王芳")
    with Session(engine) as session:
        chen = session.exec(select(Person).where(Person.name == "陈晨")).one().id
        assert session.exec(select(Incident).where(Incident.number == incident)).one().owner_id == chen
        assert session.exec(select(ReplyItem).where(ReplyItem.number == item)).one().assignee_id == chen
        handed = {(e.entity_type, e.entity_id) for e in session.exec(
            select(AuditEvent).where(AuditEvent.action == "handed_over"))}
        assert {("incident", incident), ("reply", item)} <= handed
        assert ("person", str(wang)) in handed

    # The receiver now owns the incident and carries it on.
    assert "步骤1" in await chat.send(f"/incident done {incident} 1 已通知技术保障", as_="陈晨")


async def test_open_swap_requests_are_cancelled_and_the_other_person_told(engine: Engine) -> None:
    chat = build(engine)
    with Session(engine) as session:
        wang = session.exec(select(Person).where(Person.name == "王芳")).one()
        chen = session.exec(select(Person).where(Person.name == "陈晨")).one()
        shift = session.exec(select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
                             .where(ShiftAssignment.person_id == wang.id, col(Shift.starts_at) > parse_local(START))
                             .order_by(col(Shift.starts_at))).first()
        assert shift is not None
        request_swap(session=session, shift=shift, requester=wang, target=chen, back_shift=None, reason="",
                     needs_approval=False, now=parse_local(START), actor="王芳")
        session.commit()
    reply = await chat.send("/people deactivate 王芳", as_="张伟")
    assert "已取消其未办结的换班申请 1 项" in reply
    assert any(m.startswith("【换班取消】") and "王芳 已停用" in m for m in chat.messages("陈晨"))
    with Session(engine) as session:
        assert session.exec(select(SwapRequest)).one().status == SwapStatus.cancelled


async def test_the_last_admin_is_neither_deactivated_nor_stripped_of_the_role(engine: Engine) -> None:
    chat = build(engine)
    assert "唯一的管理员" in await chat.send("/people deactivate 张伟", as_="张伟")
    assert "唯一的管理员" in await chat.send("/people role 张伟 值班员", as_="张伟")
    assert "已将 李强 的角色由 带班领导 改为 带班领导、管理员" in await chat.send("/people role 李强 带班领导、管理员",
                                                                     as_="张伟")
    assert "已将 张伟 的角色由 管理员 改为 值班员" in await chat.send("/people role 张伟 值班员", as_="李强")


async def test_role_and_unit_edits_are_audited_and_filed(engine: Engine) -> None:
    chat = build(engine, {"DUTYBOT_RULES_PROFILE": "liangping"})
    reply = await chat.send("/people role 陈晨 值班员、带班领导", as_="张伟")
    assert "已将 陈晨 的角色由 值班员 改为 值班员、带班领导。" in reply and "编号 1" in reply
    assert "角色已是" in await chat.send("/people role 陈晨 带班领导 值班员", as_="张伟")
    reply = await chat.send("/people unit 陈晨 网信科", as_="张伟")
    assert "已将 陈晨 的单位由 区政府办 改为 网信科。" in reply and "编号 2" in reply
    assert "修改单位需要姓名和新单位" in await chat.send("/people unit 陈晨", as_="张伟")
    listed = await chat.send("/people filings", as_="张伟")
    assert "编号 1｜11月23日 角色变更：陈晨：值班员 → 值班员、带班领导" in listed
    assert "编号 2｜11月23日 单位变更：陈晨：区政府办 → 网信科" in listed
    # Giving up the duty role is a staff change too.
    reply = await chat.send("/people role 周明 主要负责人", as_="张伟")
    assert "编号 3" in reply
    with Session(engine) as session:
        events = {e.action: e for e in session.exec(select(AuditEvent).where(AuditEvent.entity_type == "person"))}
        assert events["roles_changed"].actor == "张伟"
        assert events["unit_changed"].from_state == "区政府办" and events["unit_changed"].to_state == "网信科"
        chen = session.exec(select(Person).where(Person.name == "陈晨")).one()
        assert chen.role_set() == {Role.officer, Role.leader} and chen.unit == "网信科"


async def test_reactivate_brings_a_person_back(engine: Engine) -> None:
    chat = build(engine, {"DUTYBOT_RULES_PROFILE": "liangping"})
    await chat.send("/people deactivate 陈晨", as_="张伟")
    assert "陈晨（已停用）" in await chat.send("/people list all", as_="张伟")
    assert "陈晨" not in await chat.send("/people list", as_="张伟")
    refused = await chat.send("/people add 陈晨 13900000001 值班员", as_="张伟")
    assert "已有人员：陈晨（值班员，区政府办，13800000003，已停用）。" in refused
    assert "/people reactivate 陈晨" in refused
    assert "没有已停用的人员“王芳”" in await chat.send("/people reactivate 王芳", as_="张伟")
    reply = await chat.send("/people reactivate 陈晨", as_="张伟")
    assert "已恢复 陈晨（值班员）" in reply and "编号 2" in reply
    assert "陈晨｜值班员" in await chat.send("/people list", as_="张伟")
    listed = await chat.send("/people filings", as_="张伟")
    assert "编号 2｜11月23日 恢复（返岗）：陈晨（值班员｜区政府办｜13800000003）" in listed
    with Session(engine) as session:
        assert "reactivated" in [e.action for e in session.exec(select(AuditEvent))]


async def test_duplicate_name_or_mobile_is_refused_showing_the_existing_entry(engine: Engine) -> None:
    chat = build(engine)
    reply = await chat.send("/people add 王芳 13900000001 值班员 网信科", as_="张伟")
    assert reply.startswith("已有人员：王芳（值班员，区政府办，13800000002）。如为同名不同人，请在姓名后加区分，"
                          "如 王芳（网信科）。\n用法：/people add 姓名 电话 角色[、角色] [单位]（电话：11 位手机号码")
    reply = await chat.send("/people add 孙丽 138-0000-0002 值班员", as_="张伟")
    assert "电话 13800000002 已登记给：王芳（值班员，区政府办，13800000002）" in reply
    assert "已添加 王芳（网信科）" in await chat.send("/people add 王芳（网信科） 13900000001 值班员 网信科",
                                                 as_="张伟")
    assert "已登记给：王芳（值班员" in await chat.send("/people phone 陈晨 13800000002", as_="张伟")
    # A landline may be an office's shared duty phone: not compared.
    await chat.send("/people phone 陈晨 023-67881234", as_="张伟")
    assert "已将 李强 的电话由 13800000004 改为 023-67881234" in await chat.send("/people phone 李强 02367881234",
                                                                         as_="张伟")
    assert "023-67881234转123" in await chat.send("/people phone 周明 023-67881234-123", as_="张伟")
    bad = await chat.send("/people phone 周明 12345", as_="张伟")
    assert "电话“12345”无效" in bad and "13812345678" in bad and "023-67881234" in bad


def test_cli_deactivate_with_handover_and_role_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    adapter = MemoryAdapter()
    chat = MemoryChat(App(load_settings(None, env={}), clock=FakeClock(parse_local(START)), adapter=adapter,
                          engine=engine), adapter)
    setup(engine)
    incident, item = asyncio.run(open_work_for_wangfang(chat))   # made in chat; the CLI takes over
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")

    with freeze_time("2026-11-23 02:00:00"):      # 10:00 in Beijing
        assert main(["people", "deactivate", "王芳"]) == 2
        err = capsys.readouterr().err
        assert "王芳 还有 2 项未办结的事项" in err and incident in err
        assert "dutybot people deactivate 王芳 --to 接收人" in err
        assert main(["people", "deactivate", "王芳", "--to", "陈晨"]) == 0
        out = capsys.readouterr().out
        assert "已停用 王芳（值班员）" in out and "已交接给 陈晨：事件 1 项、留言 1 项" in out
        assert "出现空缺" in out and "/assign" in out
        assert main(["people", "role", "陈晨", "值班员、带班领导"]) == 0
        assert "已将 陈晨 的角色由 值班员 改为 值班员、带班领导。" in capsys.readouterr().out
        assert main(["people", "unit", "陈晨", "网信科"]) == 0
        assert "已将 陈晨 的单位由 区政府办 改为 网信科。" in capsys.readouterr().out
        assert main(["people", "reactivate", "王芳"]) == 0
        assert "已恢复 王芳（值班员）" in capsys.readouterr().out
        assert main(["people", "deactivate", "张伟"]) == 2
        assert "唯一的管理员" in capsys.readouterr().err
    with Session(engine) as session:
        chen = session.exec(select(Person).where(Person.name == "陈晨")).one()
        assert session.exec(select(Incident).where(Incident.number == incident)).one().owner_id == chen.id
        assert session.exec(select(ReplyItem).where(ReplyItem.number == item)).one().assignee_id == chen.id
        actors = [e.actor for e in session.exec(select(AuditEvent).where(AuditEvent.action == "roles_changed"))]
        assert actors == ["cli"]
    engine.dispose()


async def test_a_support_engineers_sites_go_to_a_support_receiver_else_are_cleared(engine: Engine) -> None:
    chat = build(engine)
    now = parse_local(START)
    with Session(engine) as session:
        sun = make_person(session, "孙工", roles=(Role.support,), phone="13900000021", now=now)
        make_person(session, "郑工", roles=(Role.support,), phone="13900000022", now=now)
        make_person(session, "钱工", roles=(Role.support,), phone="13900000023", now=now)
        for name, url in (("门户网站", "https://www.example.gov.cn"), ("政务网站", "https://zw.example.gov.cn")):
            add_site(session=session, new=site_row(name, "网站", url, "区政府办"), now=now, actor="t")
            set_support(session=session, name=name, unit="区政府办", person=sun, now=now, actor="t")
        session.commit()
    reply = await chat.send("/people deactivate 孙工 交接 郑工", as_="张伟")
    assert "其负责技术保障的网站（政务网站、门户网站）已改由 郑工 负责。" in reply
    told = [m for m in chat.messages("郑工") if m.startswith("【工作交接】")]
    assert len(told) == 1 and "· 技术保障：政务网站、门户网站" in told[0]
    reply = await chat.send("/people deactivate 郑工 交接 陈晨", as_="张伟")
    assert "已清除技术保障，网站异常时改为通知所属单位的技术保障" in reply
    with Session(engine) as session:
        assert [s.support_id for s in session.exec(select(Site))] == [None, None]
    assert "没有需要交给 张伟 的未办结事项" in await chat.send("/people deactivate 钱工 交接 张伟", as_="张伟")
