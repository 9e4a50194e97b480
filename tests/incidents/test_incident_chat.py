"""Incidents through chat with the clock moved, never slept: playbook deadlines, the
escalation ladder, evidence before deletion, external reports, permissions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.messages import Attachment
from core.profiles import load_profile
from core.schedule import DueItem, DueStatus
from incidents.models import Incident, IncidentStep, IncidentType, Source, StepStatus
from incidents.playbooks import load_playbooks, resolve_steps
from people.models import Person, Role
from tests.factories import make_person

SHOT = Attachment(filename="shot.png", data=b"\x89PNG fake screenshot", content_type="image/png", kind="photo")


def build(engine: Engine, start: str, env: dict[str, str] | None = None) -> MemoryChat:
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), unit="区政府办")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), unit="区政府办")
        make_person(session, "赵敏", roles=(Role.principal,), now=clock.now(), unit="区政府办")
        make_person(session, "张伟", roles=(Role.admin,), now=clock.now(), unit="区政府办")
        make_person(session, "陈晨", roles=(Role.officer,), now=clock.now(), unit="区教育局")
        make_person(session, "刘洋", roles=(Role.officer,), now=clock.now(), unit="区政府办公室")
        session.commit()
    adapter = MemoryAdapter()
    settings = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋", **(env or {})})
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


def alerts(chat: MemoryChat, name: str, mark: str = "【") -> list[str]:
    """Messages to ``name`` that start with ``mark``, without the daily briefings."""
    return [m for m in chat.messages(name) if m.startswith(mark) and not m.startswith(("【早报】", "【周报】"))]


def number_in(reply: str) -> str:
    return reply.split("已登记 ")[1].split("（")[0]


def incident(engine: Engine, number: str) -> Incident:
    with Session(engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def steps(engine: Engine, number: str) -> list[IncidentStep]:
    with Session(engine) as session:
        inc = session.exec(select(Incident).where(Incident.number == number)).one()
        return list(session.exec(select(IncidentStep).where(IncidentStep.incident_id == inc.id)
                                 .order_by(IncidentStep.seq)))


def pending_due(engine: Engine, number: str) -> list[DueItem]:
    with Session(engine) as session:
        return list(session.exec(select(DueItem).where(DueItem.ref == f"incident:{number}",
                                                       DueItem.status == DueStatus.pending)))


async def test_district_notice_on_the_eve_of_national_day_is_due_after_the_holiday(engine: Engine) -> None:
    chat = build(engine, "2026-09-30T16:00")
    reply = await chat.send("/incident new 敏感信息 @区政府办 https://www.example.gov.cn/tzgg/1.html "
                            "通知公告栏目公示名单含完整身份证号", as_="刘洋")
    number = number_in(reply)
    assert "区政府办公室通报" in reply
    # SENS-3: within 1 working day; 10-01..10-07 are the National Day holiday.
    assert "截止 10月8日 24:00｜1个工作日｜依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十四条" in reply
    first = steps(engine, number)[0]
    assert first.due_at == parse_local("2026-10-09T00:00").astimezone(UTC)
    # The host unit's duty officer is told at once, with buttons.
    assert "【新事件】" in chat.last("王芳")
    card = next(d for d in chat.adapter.delivered if d.chat_id == "u-王芳")
    assert ("确认收到", f"/incident ack {number}") in card.buttons
    # Reminded on the morning of the last day, then escalated after the deadline — a 一般
    # incident's breach at midnight waits for the office to open (09:00), then climbs.
    await chat.app.advance_to(parse_local("2026-10-08T08:59"))
    assert not alerts(chat, "王芳", "【事件提醒】")
    await chat.send(f"/incident ack {number}", as_="王芳")
    await chat.app.advance_to(parse_local("2026-10-08T09:00"))
    assert "即将到期" in chat.last("王芳") and "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十四条，1个工作日" in chat.last("王芳")
    await chat.app.advance_to(parse_local("2026-10-09T08:59"))
    assert not alerts(chat, "王芳", "【事件超期")
    await chat.app.advance_to(parse_local("2026-10-09T09:00"))
    assert "【事件超期】" in chat.last("王芳")
    assert "【事件超期升级" not in chat.last("李强")
    await chat.app.advance_to(parse_local("2026-10-09T09:15"))
    assert "【事件超期升级·带班领导】" in chat.last("李强") and "责任人：王芳" in chat.last("李强")
    done = await chat.send(f"/incident done {number} 1", as_="王芳")
    assert "已完成（超期）" in done
    assert alerts(chat, "李强", "【超期步骤已完成】")
    assert "请结案" in done and not alerts(chat, "王芳", "【可结案】")
    assert pending_due(engine, number) == []


async def test_self_found_sensitive_content_is_deleted_at_once(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    reply = await chat.send("/incident new 敏感 本单位门户网站 领导活动报道含涉密会议细节", as_="王芳")
    assert "本单位发现" in reply
    assert "第一时间删除敏感信息" in reply and "截止 11月23日 10:30｜立即（30分钟内）｜依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十三条" in reply


async def test_unacknowledged_incident_climbs_the_ladder_and_ack_stops_it(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T02:10")   # 3 a.m.-ish: nobody is watching
    number = number_in(await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502", as_="刘洋"))
    assert "【新事件】" in chat.last("王芳")
    await chat.app.advance_to(parse_local("2026-11-23T02:24"))
    assert alerts(chat, "李强") == []
    await chat.app.advance_to(parse_local("2026-11-23T02:25"))
    assert "【事件升级·带班领导】报告后15分钟仍无人确认" in chat.last("李强")
    assert "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十条" in chat.last("李强")
    await chat.app.advance_to(parse_local("2026-11-23T02:54"))
    assert alerts(chat, "赵敏") == []
    await chat.app.advance_to(parse_local("2026-11-23T02:55"))
    assert "【事件升级·主要负责人】报告后45分钟仍无人确认" in chat.last("赵敏")
    ack = await chat.send(f"/incident ack {number}", as_="王芳")
    assert "升级提醒已停止" in ack
    assert "【已确认】" in chat.last("李强") and "【已确认】" in chat.last("赵敏")
    before = {name: len(alerts(chat, name, "【事件升级")) for name in ("李强", "赵敏", "刘洋")}
    await chat.app.advance_to(parse_local("2026-11-23T12:00"))
    assert {name: len(alerts(chat, name, "【事件升级")) for name in before} == before
    assert alerts(chat, "刘洋", "【事件升级") == []
    again = await chat.send(f"/incident ack {number}", as_="李强")
    assert "已由 王芳" in again and "无需重复确认" in again


async def test_special_grade_pings_every_rung_at_once_then_repeats_with_growing_intervals(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 攻击 特级 https://www.example.gov.cn 首页被篡改为境外内容",
                                       as_="王芳"))
    for name in ("李强", "赵敏", "刘洋"):
        assert "特级事件" in chat.last(name), name
    assert len(alerts(chat, "刘洋", "【事件")) == 1
    # Every rung was told at once; the repeats go to the unit's own leader on duty and
    # principal (not the district office again) after 15, then 30 minutes (repeat_factor 2).
    await chat.app.advance_to(parse_local("2026-11-23T09:15"))
    for name in ("李强", "赵敏"):
        assert "【事件升级·重复提醒·第2次】" in chat.last(name), name
    await chat.app.advance_to(parse_local("2026-11-23T09:44"))
    assert len(alerts(chat, "李强", "【事件升级")) == 1
    await chat.app.advance_to(parse_local("2026-11-23T09:45"))
    assert len(alerts(chat, "李强", "【事件升级")) == 2 and "第3次" in alerts(chat, "李强", "【事件升级")[-1]
    assert alerts(chat, "刘洋", "【事件升级") == []
    await chat.send(f"/incident take {number}", as_="王芳")
    await chat.app.advance_to(parse_local("2026-11-23T11:00"))
    assert len(alerts(chat, "李强", "【事件升级")) == 2 and alerts(chat, "李强", "【停止重复提醒") == []
    assert incident(engine, number).owner_id is not None


async def test_illegal_content_needs_evidence_before_deletion(engine: Engine, tmp_path: object) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 违法有害信息 https://www.example.gov.cn/hd/msg/88 "
                                       "留言板出现赌博广告", as_="王芳"))
    # Deletion comes after preserving evidence.
    assert "请先完成步骤1" in await chat.send(f"/incident done {number} 2", as_="王芳")
    refused = await chat.send(f"/incident done {number} 1", as_="王芳")
    assert "须先保全证据" in refused and "参照《宝鸡市政府系统政务新媒体管理办法》第二十一条" in refused
    # A text note is not a preserved copy.
    await chat.send(f"/incident evidence {number} 值班员口述：广告内容为某赌博网站", as_="王芳")
    assert "须先保全证据" in await chat.send(f"/incident done {number} 1", as_="王芳")
    kept = await chat.send(f"/incident evidence {number} 留言页截图", as_="王芳", attachments=(SHOT,))
    assert "保全证据 1 份" in kept and "SHA-256" in kept
    assert "步骤1" in await chat.send(f"/incident done {number} 1", as_="王芳")
    assert "开始计时：步骤3“向网信部门、公安机关、电信主管部门、上级主管部门报告”" in await chat.send(f"/incident done {number} 2", as_="王芳")
    # Reporting to the police: the bot asks who was contacted and offers a draft.
    asked = await chat.send(f"/incident done {number} 3", as_="王芳")
    assert "请记录报告方式和联系人" in asked and "公安机关（网安部门）" in asked and "留言板出现赌博广告" in asked
    done = await chat.send(f"/incident done {number} 3 电话 区公安分局网安大队王警官 JQ2026-1123", as_="王芳")
    assert "已完成" in done
    third = steps(engine, number)[2]
    assert (third.method, third.contact, third.contact_ref) == ("电话", "区公安分局网安大队王警官", "JQ2026-1123")


async def test_a_step_counted_from_another_starts_when_that_one_is_done(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    reply = await chat.send("/incident new 舆情 微博@某街道 网传拆迁补偿不公引发转发", as_="王芳")
    number = number_in(reply)
    assert "步骤3完成后起算" in reply
    assert "【事件报告·带班领导】" in chat.last("李强")   # DUTY-3: told at once
    assert steps(engine, number)[3].due_at is None
    await chat.app.advance_to(parse_local("2026-11-27T16:00"))   # a Friday
    done = await chat.send(f"/incident done {number} 3 已核实，补偿按标准发放", as_="李强")
    # 1 working day from Friday 16:00 ends Monday 24:00.
    assert "开始计时：步骤4" in done and "11月30日 24:00" in done
    assert steps(engine, number)[3].due_at == parse_local("2026-12-01T00:00").astimezone(UTC)


async def test_close_needs_required_steps_and_the_right_unit(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 内容错误 https://www.example.gov.cn/zwgk/1 发布日期写错",
                                       as_="王芳"))
    assert "不能结案" in await chat.send(f"/incident close {number} 已更正", as_="王芳")
    # An officer of another unit can neither handle nor close it.
    assert "不能处置" in await chat.send(f"/incident done {number} 1", as_="陈晨")
    assert "不能结案" in await chat.send(f"/incident close {number} 已更正", as_="陈晨")
    # Officers cannot waive a required step; the leader can, with a reason.
    assert "只有带班领导" in await chat.send(f"/incident skip {number} 2 不需要", as_="王芳")
    assert "已完成" in await chat.send(f"/incident done {number} 1", as_="王芳")
    assert "请结案" in await chat.send(f"/incident skip {number} 2 内容已由发布单位自行撤回", as_="李强")
    closed = await chat.send(f"/incident close {number} 已通知发布单位更正，复查无误", as_="王芳")
    assert "已结案" in closed
    assert incident(engine, number).status == "closed"
    assert pending_due(engine, number) == []


async def test_only_leaders_regrade_and_a_regrade_restarts_the_ladder(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 篡改 https://www.example.gov.cn 首页标题被改", as_="王芳"))
    assert "需要带班领导" in await chat.send(f"/incident grade {number} 重大", as_="王芳")
    await chat.app.advance_to(parse_local("2026-11-23T09:05"))
    # A defaced page starts as 重大 (参照梁平办法第十一条、第十二条) unless graded otherwise.
    assert "重大 → 特级" in await chat.send(f"/incident grade {number} 特级", as_="李强")
    assert "等级调整" in chat.last("赵敏") and "等级调整" in chat.last("刘洋")
    # 特级 told every rung at once; 15 minutes after the re-grade the unit's leader and
    # principal hear it again (the district office was told and is not pinged again).
    await chat.app.advance_to(parse_local("2026-11-23T09:20"))
    assert "【事件升级·重复提醒·第2次】" in chat.last("赵敏") and "【事件升级·重复提醒·第2次】" in chat.last("李强")
    assert "等级调整" in chat.last("刘洋")


async def test_guided_dialog_when_arguments_are_missing(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    first = await chat.send("/incident new", as_="王芳")
    assert "请选择类型" in first
    assert ("舆情", "/incident new 舆情") in chat.adapter.delivered[-1].buttons
    assert "请发送出现问题的网址" in await chat.send("舆情", as_="王芳")
    assert "请简要描述情况" in await chat.send("微博@某街道", as_="王芳")
    assert "已取消" in await chat.send("取消", as_="王芳")
    assert "没有看懂" in await chat.send("网传拆迁补偿不公", as_="王芳")
    await chat.send("/incident new 舆情", as_="王芳")
    await chat.send("微博@某街道", as_="王芳")
    created = await chat.send("网传拆迁补偿不公", as_="王芳")
    assert "已登记 INC-20261123-001（舆情，一般）" in created and "对象：微博@某街道" in created


async def test_bad_input_gets_chinese_answers(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    assert "无法识别的事件类型“火灾”" in await chat.send("/incident new 火灾 某网站 描述", as_="王芳")
    assert "没有找到事件 INC-20261123-009" in await chat.send("/incident show INC-20261123-009", as_="王芳")
    assert "用法：" in await chat.send("/incident frobnicate", as_="王芳")
    number = number_in(await chat.send("/incident new 无法访问 某网站 打不开", as_="王芳"))
    assert "没有步骤“9”" in await chat.send(f"/incident done {number} 9", as_="王芳")
    assert "区政府办公室通报时请写明主办单位" in await chat.send("/incident new 敏感信息 某网站 描述", as_="刘洋")


async def test_list_and_show(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    a = number_in(await chat.send("/incident new 无法访问 https://a.example.gov.cn 打不开", as_="王芳"))
    b = number_in(await chat.send("/incident new 内容错误 https://b.example.gov.cn 错别字", as_="王芳"))
    await chat.app.advance_to(parse_local("2026-11-23T09:40"))
    listing = await chat.send("/incident list", as_="王芳")
    assert "未结事件：共 2 件" in listing and a in listing and b in listing
    overdue = await chat.send("/incident list overdue", as_="王芳")
    assert "【超期】" in overdue
    shown = await chat.send(f"/incident show {a}", as_="王芳")
    assert "时间线：" in shown and "登记事件：无法访问" in shown and "系统 无人确认，升级提醒带班领导：李强" in shown


@pytest.mark.parametrize("kind", list(IncidentType))
async def test_every_playbook_end_to_end(engine: Engine, kind: IncidentType) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send(f"/incident new {kind.value} https://www.example.gov.cn/x 演练：{kind.value}",
                                       as_="王芳"))
    await chat.send(f"/incident take {number}", as_="王芳")
    expected = resolve_steps(load_playbooks()[kind], Source.self_found, load_profile("default"), 30)
    assert [s.key for s in steps(engine, number)] == [s.spec.key for s in expected]
    kept = False
    for step in steps(engine, number):
        if step.optional:
            continue
        if step.evidence_required and not kept:
            assert "保全证据 1 份" in await chat.send(f"/incident evidence {number} 截图", as_="王芳",
                                                     attachments=(SHOT,))
            kept = True
        extra = " 电话 联系人甲 编号001" if step.external else ""
        if step.signoff_required:      # 三审三校 (梁平办法第十二条, 参照 under the default)
            extra = " 审：王芳、李强、赵敏 校：王芳、孙丽、李强"
        actor = "李强" if step.owner_role == "leader" else "王芳"
        reply = await chat.send(f"/incident done {number} {step.seq}{extra}", as_=actor)
        assert "已完成" in reply, reply
        await chat.app.advance_to(chat.app.clock.now() + timedelta(minutes=5))
    assert incident(engine, number).status == "resolved"
    assert "已结案" in await chat.send(f"/incident close {number} 演练完成", as_="王芳")
    assert all(s.status != StepStatus.pending or s.optional for s in steps(engine, number))
    assert pending_due(engine, number) == []
    report = await chat.send(f"/incident report {number}", as_="王芳")
    assert "处置经过" in report and "登记事件" in report and "结案：演练完成" in report


class _Page(BaseHTTPRequestHandler):
    body = "<html><body>赌博广告 www.bad.example</body></html>".encode()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/msg/88"
    server.shutdown()
    server.server_close()


async def test_a_page_is_fetched_and_kept_outside_the_transaction(engine: Engine, page_url: str,
                                                                  tmp_path: Path) -> None:
    # The test server is on 127.0.0.1: allowed as an intranet site, that port only.
    site = page_url.split("/")[2]
    chat = build(engine, "2026-11-23T09:00", env={"DUTYBOT_INCIDENTS_FETCH_ALLOW": site})
    number = number_in(await chat.send(f"/incident new 违法 {page_url} 留言板赌博广告", as_="王芳"))
    kept = await chat.send(f"/incident evidence {number} {page_url}", as_="王芳")
    assert "保全证据 1 份" in kept and "HTTP 200" in kept
    stored = list((tmp_path / "evidence" / number).iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == _Page.body
    assert "已完成" in await chat.send(f"/incident done {number} 1", as_="王芳")
    # An unbound user cannot make the bot fetch anything.
    assert "还没有绑定身份" in await chat.send(f"/incident evidence {number} {page_url}", as_="路人")
    # Another port of the bot's own host is refused (SSRF), and nothing is kept.
    refused = await chat.send(f"/incident evidence {number} http://127.0.0.1:9/none", as_="王芳")
    assert "无法获取网页" in refused and "该地址不能抓取" in refused
    assert len(list((tmp_path / "evidence" / number).iterdir())) == 1


async def test_optional_steps_are_reminded_but_never_escalated(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 盗号 微博@某局 账号被盗发布不当信息", as_="王芳"))
    assert "保全证据 1 份" in await chat.send(f"/incident evidence {number} 截图", as_="王芳", attachments=(SHOT,))
    for seq, extra in ((1, ""), (2, " 电话 区公安分局 JQ1"), (3, "")):
        assert "已完成" in await chat.send(f"/incident done {number} {seq}{extra}", as_="王芳")
    statement = steps(engine, number)[3]
    assert statement.optional and statement.due_at is not None
    await chat.app.advance_to(parse_local("2026-11-30T09:00"))
    assert not any("步骤4" in m for m in alerts(chat, "李强", "【事件超期升级"))
    assert not any("步骤4" in m for m in alerts(chat, "刘洋"))


async def test_an_unanswered_question_expires(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    await chat.send("/incident new 舆情", as_="王芳")
    await chat.app.advance_to(parse_local("2026-11-23T09:16"))
    assert "没有看懂" in await chat.send("微博@某街道", as_="王芳")
    # Another person's answer never continues someone else's question.
    await chat.send("/incident new 舆情", as_="王芳")
    assert "没有看懂" in await chat.send("微博@某街道", as_="李强")


async def test_without_a_district_office_the_top_pings_go_to_the_principal(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00", env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": ""})
    await chat.send("/incident new 无法访问 https://www.example.gov.cn 首页打不开", as_="王芳")
    await chat.app.advance_to(parse_local("2026-11-23T11:46"))   # 105 + 60 minutes
    pings = alerts(chat, "赵敏", "【事件升级")   # rung 2, the top rung's stand-in, the first repeat
    assert len(pings) == 3 and "主要负责人】" in pings[1] and "重复提醒·第2次" in pings[-1]
    assert alerts(chat, "张伟", "【事件升级") == []


async def test_an_address_without_scheme_is_not_taken_for_a_text_note(engine: Engine, tmp_path: Path) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 违法 某网站 留言板赌博广告", as_="王芳"))
    refused = await chat.send(f"/incident evidence {number} www.example.gov.cn/hd/88", as_="王芳")
    assert "需以 http:// 或 https:// 开头" in refused
    assert not (tmp_path / "evidence" / number).exists()


async def test_bad_input_shows_the_usage_of_the_attempted_sub_command(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    reply = await chat.send("/incident done INC-20261123-001", as_="王芳")
    assert "用法：/incident done 编号 步骤序号" in reply and "close 编号 结论" not in reply
    assert "close 编号 结论" in await chat.send("/incident frobnicate", as_="王芳")


# -- permissions: the reporter and the owner, beyond their own unit ---------------------


def add_person(engine: Engine, name: str, role: Role, unit: str) -> None:
    with Session(engine) as session:
        make_person(session, name, roles=(role,), now=parse_local("2026-11-01T09:00"), unit=unit)
        session.commit()


def move_to_unit(engine: Engine, name: str, unit: str) -> None:
    """An officer transferred to another unit (the admin edits the person)."""
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        person.unit = unit
        session.add(person)
        session.commit()


def deactivate(engine: Engine, name: str) -> None:
    """A person who left: kept for the records, no longer active."""
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        person.active = False
        session.add(person)
        session.commit()


async def test_the_reporter_may_handle_the_incident_they_reported_for_another_unit(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    add_person(engine, "周杰", Role.officer, "区卫健委")
    # 陈晨 (区教育局) spots an error on 区政府办's site and reports it for that unit.
    reply = await chat.send("/incident new 内容错误 @区政府办 https://www.example.gov.cn/zwgk/1 发布日期写错",
                            as_="陈晨")
    number = number_in(reply)
    assert "单位：区政府办" in reply
    assert "步骤1" in await chat.send(f"/incident done {number} 1", as_="陈晨")
    assert "由您负责处置" in await chat.send(f"/incident take {number}", as_="陈晨")
    # A plain officer of a third unit, neither reporter nor owner, is refused.
    refused = await chat.send(f"/incident done {number} 2", as_="周杰")
    assert f"抱歉，{number} 属于区政府办，您（区卫健委）不能处置。请联系该单位或管理员。" in refused
    assert [s.status for s in steps(engine, number)][:2] == [StepStatus.done, StepStatus.pending]


async def test_the_owner_keeps_handling_the_incident_after_moving_to_another_unit(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 内容错误 https://www.example.gov.cn/zwgk/2 领导姓名写错",
                                       as_="李强"))
    assert "由您负责处置" in await chat.send(f"/incident take {number}", as_="王芳")
    move_to_unit(engine, "王芳", "区教育局")
    assert "步骤1" in await chat.send(f"/incident done {number} 1", as_="王芳")
    # 陈晨 is now in 王芳's unit, but the incident is neither his unit's nor his.
    refused = await chat.send(f"/incident done {number} 2", as_="陈晨")
    assert f"抱歉，{number} 属于区政府办，您（区教育局）不能处置。请联系该单位或管理员。" in refused
    assert "请结案" in await chat.send(f"/incident skip {number} 2 内容已由发布单位自行撤回", as_="李强")
    assert "不能结案" in await chat.send(f"/incident close {number} 已更正", as_="陈晨")
    assert "已结案" in await chat.send(f"/incident close {number} 已更正，复查无误", as_="王芳")


# -- a deactivated person leaves the ladder -------------------------------------------------


async def test_a_deactivated_leader_on_the_ladder_is_skipped_and_the_other_leader_told(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T02:10")
    add_person(engine, "孙丽", Role.leader, "区政府办")       # both leaders are on rung 1
    number = number_in(await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502",
                                       as_="刘洋"))
    deactivate(engine, "李强")                                  # leaves before anyone acknowledges
    await chat.app.advance_to(parse_local("2026-11-23T02:25"))
    assert "【事件升级·带班领导】报告后15分钟仍无人确认" in chat.last("孙丽")
    assert alerts(chat, "李强") == []
    await chat.send(f"/incident ack {number}", as_="王芳")
    assert "【已确认】" in chat.last("孙丽")
    assert chat.messages("李强") == []


async def test_when_everyone_on_a_rung_is_deactivated_the_admins_are_told(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T02:10")
    await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502", as_="刘洋")
    deactivate(engine, "李强")                                  # the only leader
    await chat.app.advance_to(parse_local("2026-11-23T02:25"))
    assert alerts(chat, "李强") == []
    assert "【事件升级·带班领导】报告后15分钟仍无人确认" in chat.last("张伟")


async def test_an_owner_who_left_is_not_asked_to_close_nor_told_it_ended(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/incident new 内容错误 https://www.example.gov.cn/zwgk/3 附件链接失效",
                                       as_="王芳"))
    await chat.send(f"/incident take {number}", as_="王芳")
    assert "步骤1" in await chat.send(f"/incident done {number} 1", as_="王芳")
    deactivate(engine, "王芳")                                  # reporter and owner leaves
    assert "请结案" in await chat.send(f"/incident done {number} 2 已恢复 审：王芳、李强、赵敏 校：王芳、孙丽、李强",
                                     as_="张伟")
    assert "【可结案】" in chat.last("李强")                    # the leader closes it instead
    assert "已结案" in await chat.send(f"/incident close {number} 已恢复，复查无误", as_="李强")
    assert not any(m.startswith(("【可结案】", "【事件已结案】")) for m in chat.messages("王芳"))
