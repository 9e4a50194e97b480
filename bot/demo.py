"""``dutybot demo``: a short scripted drill on a throw-away database.

It shows a newcomer what the bot does with the features that exist, through the real
console adapter, dispatcher, outbox and scheduler. It grows as features land.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlmodel import Session, col, select

from bot.adapters.console import ConsoleAdapter, ConsoleSession
from bot.app import App
from bot.config import load_settings
from bot.sandbox import sandbox
from core.clock import FakeClock, parse_local
from people.models import InviteCode, Person
from people.service import add_person, validate
from roster.models import DutyRole
from roster.service import assign, ensure_shifts

START = "2026-09-30T16:00"
PEOPLE = [
    ("张伟", "13800000001", "管理员、值班员", "区政府办"),
    ("李强", "13800000002", "带班领导", "区政府办"),
    ("王芳", "13800000003", "值班员", "区政府办"),
    ("赵敏", "13800000004", "主要负责人", "区政府办"),
    ("刘洋", "13800000006", "值班员", "区政府办公室"),
]
SCRIPT = """\
# 值班员查看当前值班（值班表按工作日/休息日自动排出班次，9月30日已排班）
:as 王芳
/duty
/duty 明天
# 新同事第一次找机器人：尚未绑定，机器人礼貌拒绝并告知怎么办
:as 陈晨
/help
# 管理员添加人员，并生成一次性绑定码
:as 张伟
/people add 陈晨 13800000005 值班员 网信科
/people invite 陈晨
# 陈晨用绑定码在私聊中绑定身份（绑定码只能用一次）
:as 陈晨
/bind {invite:陈晨}
/whoami
# 期限计算：国庆前最后一个工作日收到“找错”留言，3个工作日内答复（REPLY-1）
/due 2026-09-30 3个工作日
# 跨入尚未发布节假日安排的 2027 年：结果标注“暂定”
期限 2026-12-30 3个工作日
# 输错了也没关系：机器人给出正确用法
/due 明天
# 只有管理员能管理人员
/people list
# 区政府办公室抽查发现敏感信息并通报主办单位：须在1个工作日内删除（SENS-3），国庆假期不计
:as 刘洋
/incident new 敏感信息 @区政府办 https://www.example.gov.cn/tzgg/1.html 公示名单含完整身份证号
# 无人确认：15分钟后提醒带班领导，45分钟后提醒主要负责人（GRADE-2）
:advance 20m
# 带班领导确认后升级停止；王芳删除后结案
:as 李强
/incident ack INC-20260930-001
:as 王芳
/incident done INC-20260930-001 1 已删除并请发布单位重新审核
/incident close INC-20260930-001 已按通知删除，复查无误
# 留言板出现违法有害信息：先固定证据，再删除，再报警（SEC-2）
/incident new 违法 https://www.example.gov.cn/hd/88 留言板出现赌博广告
/incident done INC-20260930-002 2
/incident done INC-20260930-002 1
:attach {tmp}/留言截图.png /incident evidence INC-20260930-002 留言板截图
/incident done INC-20260930-002 1
/incident done INC-20260930-002 2
# 对外报告：机器人给出报告稿，记录联系人和方式
/incident done INC-20260930-002 3
/incident done INC-20260930-002 3 电话 区公安分局网安大队王警官 JQ20260930-17
/incident done INC-20260930-002 4 书面 区委网信办 网信函〔2026〕12号
/incident close INC-20260930-002 已删除并报警，证据已移交
/incident report INC-20260930-002
# 群众在“我为政府网站找错”留言：登记后自动算出答复期限，并指派给王芳
/reply new 找错 首页“政策解读”栏目链接打不开
:as 李强
/reply assign MSG-20260930-001 王芳
# 模拟时钟拨到 10月11日 上午：到期前提醒、当天提醒、超期提醒，4 小时后升级到带班领导
:at 2026-10-11T05:00
# 王芳答复后，后续升级自动停止
:as 王芳
/reply done MSG-20260930-001 已修复链接并答复网民
/reply show MSG-20260930-001
"""


async def run_demo(*, transcript: IO[str] | None = None, out: IO[str] | None = None) -> int:
    """Run the demo drill; returns the exit code."""
    out = out or sys.stdout
    with sandbox(load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋"}), empty=True,
                 prefix="dutybot-demo-") as box:
        settings, tmp = box.settings, str(box.directory)
        clock = FakeClock(parse_local(START))
        holder: list[ConsoleSession] = []
        app = App(settings, clock=clock, adapter=ConsoleAdapter(lambda c, t: holder[0].show(c, t)))
        console = ConsoleSession(app, clock, out=out, transcript=transcript)
        holder.append(console)
        with Session(app.engine) as session:
            for name, phone, roles, unit in PEOPLE:
                add_person(session=session, new=validate(name, phone, unit, roles, trained="2026-09-01"),
                           now=clock.now(), actor="demo")
            _roster_today(session, app, clock.now())
            session.commit()
        print("dutybot 演示：临时数据库，模拟时钟从 2026年9月30日 16:00 开始。"
              "人员：张伟（管理员）、李强（带班领导）、王芳（值班员）、赵敏（主要负责人）、"
              "刘洋（区政府办公室）。", file=out)
        (Path(tmp) / "留言截图.png").write_bytes(b"\x89PNG demo screenshot")
        for raw in SCRIPT.splitlines():
            raw = raw.replace("{tmp}", tmp)
            line = re.sub(r"\{invite:(\S+?)\}", lambda m: _latest_code(app, m.group(1)), raw)
            await console.line(line, echo=True)
        app.engine.dispose()
        print("\n演示结束，临时数据库已删除。自己试试：dutybot console（输入 /help 开始）。", file=out)
    return 0


def _roster_today(session: Session, app: App, now: datetime) -> None:
    """The duty of the demo's first day: 白班 王芳, 夜班 张伟, 李强 leading both."""
    shifts = ensure_shifts(session=session, calendar=app.calendar, patterns=app.settings.roster.patterns(),
                           start=now.date(), end=now.date(), now=now)
    people = {p.name: p for p in session.exec(select(Person))}
    for shift, officer in zip(shifts, ("王芳", "张伟"), strict=False):
        assign(session=session, shift=shift, person=people[officer], role=DutyRole.officer, source="demo",
               now=now, actor="demo")
        assign(session=session, shift=shift, person=people["李强"], role=DutyRole.leader, source="demo",
               now=now, actor="demo")


def _latest_code(app: App, name: str) -> str:
    with Session(app.engine) as session:
        row = session.exec(select(InviteCode).join(Person, col(Person.id) == InviteCode.person_id)
                           .where(Person.name == name).order_by(col(InviteCode.id).desc())).first()
        return row.code if row else "（无）"
