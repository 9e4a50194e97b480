"""``dutybot demo``: a day and a night of a district office, on a throw-away sandbox.

It shows a newcomer the product through the real console adapter, dispatcher, outbox and
scheduler: a published roster without gaps, the registered sites, the morning briefing,
a defaced homepage taken through its playbook (evidence first, the leader's decision on
the external reports), an overdue public reply escalated and answered, the evening
handover, a night report of sensitive content, and the next morning's briefing.

Every line says who speaks or who receives, with their real role and unit. Bot messages
are cut to their first lines (what, by when, what to press); ``--full`` shows them whole,
and ``--transcript`` records every message in full either way.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime
from typing import IO

from sqlmodel import Session, col, select

from bot.adapters.console import GROUP, ConsoleAdapter, ConsoleSession
from bot.app import App
from bot.config import load_settings
from bot.sandbox import sandbox
from checks.rounds import plan_round
from core.clock import FakeClock, parse_local
from incidents.models import Incident
from people.service import add_person, validate
from replies.flows import schedule_reminders
from replies.models import ReplyCategory, ReplyChannel
from replies.service import create_item
from roster import sites
from roster.drafts import generate_draft, publish_draft

START = "2026-11-17T08:20"
SEED = 2   # the roster draft's seed: 王芳 has the first day shift, 陈晨 its night   # a Tuesday: a working day, then its night
UNIT = "区政府办"
PEOPLE = [   # name, phone, roles, unit
    ("张伟", "13800000001", "管理员", UNIT),
    ("李强", "13800000002", "带班领导", UNIT),
    ("周静", "13800000007", "带班领导", UNIT),
    ("王芳", "13800000003", "值班员", UNIT),
    ("陈晨", "13800000005", "值班员", UNIT),
    ("黄磊", "13800000009", "值班员", UNIT),
    ("赵敏", "13800000004", "主要负责人", UNIT),
    ("孙磊", "13800000008", "技术保障", UNIT),
    ("刘洋", "13800000006", "值班员", "区政府办公室"),
]
SITES = [("区政府门户网站", "网站", "https://www.example.gov.cn"), ("区政府发布", "微信公众号", "")]
#: ``{n}`` is the demo's n-th incident (INC-…), ``{tmp}`` the sandbox folder.
SCRIPT = """\
# 上午 08:30：早间简报推送给带班领导、主要负责人和值班群；白班开始
:at 2026-11-17T08:30
:as 王芳
/checkin
# 10:05 读网发现首页被篡改：按预案通知技术保障和带班领导；下线页面前须先保全证据
:at 2026-11-17T10:05
/incident new 篡改 https://www.example.gov.cn/ 首页轮播图被替换为博彩广告
:as 李强
/incident ack {1}
:as 王芳
/incident done {1} 1 已电话通知孙磊
/incident done {1} 2 首页轮播图确被篡改，其他页面正常
/incident done {1} 3 已下线轮播图
:attach {tmp}/首页截图.png /incident evidence {1} 首页截图
/incident done {1} 3 已下线轮播图并恢复备份
/incident done {1} 4 已向李强报告
:as 李强
/incident done {1} 5 报告：篡改涉及赌博广告，报网信、公安
:as 王芳
/incident done {1} 6 电话 区委网信办值班室 网信登记2026-118
/incident close {1} 已恢复，报网信公安，证据已存档
# 上周三收到的网民“找错”留言已超过3个工作日答复期限（本单位规定）：王芳补答复；随后按提醒读网
/reply done {MSG} 已修复链接并答复网民
:at 2026-11-17T11:05
/read ok
:at 2026-11-17T16:30
/read ok
# 17:30 交接班：白班交班，夜班接班
:at 2026-11-17T17:30
/handover 白班读网4轮，篡改事件已结案
:as 陈晨
/checkin
:at 2026-11-17T20:20
/read ok
# 23:10 区政府办公室通报公众号文章含完整身份证号：1个工作日内删除（不计夜间）
:at 2026-11-17T23:10
:as 刘洋
/incident new 敏感信息 @区政府办 https://mp.example.cn/s/88 公示名单含完整身份证号
:as 陈晨
/incident done {2} 1 已删除该文章
/incident close {2} 已删除，复查无误
:at 2026-11-18T06:50
/read ok
# 次日 08:30：早间简报汇总昨日事件和留言
:at 2026-11-18T08:30
"""


async def run_demo(*, transcript: IO[str] | None = None, out: IO[str] | None = None,
                   full: bool = False) -> int:
    """Run the demo drill; returns the exit code."""
    out = out or sys.stdout
    env = {"DUTYBOT_RULES_PROFILE": "liangping", "DUTYBOT_BOT_UNIT": UNIT,
           "DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋", "DUTYBOT_BRIEFING_GROUP_CHAT_ID": GROUP,
           # The demo's sites are made up: site watch would only report them unreachable.
           "DUTYBOT_WATCH_ENABLED": "false"}
    settings = load_settings(None, env=env)
    # 梁平办法 sets no time limit for 找错 messages; this office sets its own (本地配置).
    settings.rules.overrides = {"REPLY-1.reply": "3 workdays"}
    with sandbox(settings, empty=True, prefix="dutybot-demo-") as box:
        clock = FakeClock(parse_local(START))
        holder: list[ConsoleSession] = []
        app = App(box.settings, clock=clock, adapter=ConsoleAdapter(lambda c, t: holder[0].show(c, t)))
        console = ConsoleSession(app, clock, out=out, transcript=transcript)
        console.max_lines = None if full else 3
        holder.append(console)
        reply_number = _set_up(app, clock.now())
        print("dutybot 演示（梁平配置档，临时数据库）：模拟时钟 2026年11月17日（星期二）08:20 起；"
              "值班表 11月17日—24日 已发布，无空缺；读网对象：区政府门户网站、“区政府发布”公众号。\n"
              "人员：张伟 管理员｜李强、周静 带班领导｜王芳、陈晨、黄磊 值班员｜赵敏 主要负责人｜"
              "孙磊 技术保障｜刘洋 区政府办公室。", file=out)
        (box.directory / "首页截图.png").write_bytes(b"\x89PNG demo screenshot")
        for raw in SCRIPT.splitlines():
            line = raw.replace("{tmp}", str(box.directory))
            line = re.sub(r"\{(\d)\}", lambda m: _incident(app, int(m.group(1))), line)
            line = line.replace("{MSG}", reply_number)
            await console.line(line, echo=True)
        app.engine.dispose()
        print("演示结束，临时数据库已删除。自己演练：dutybot drill（输入 /help 开始）。", file=out)
    return 0


def _set_up(app: App, now: datetime) -> str:
    """People, sites with their 技术保障, a published roster, and last week's public message
    (its number is returned)."""
    with Session(app.engine) as session:
        people = {}
        for name, phone, roles, unit in PEOPLE:
            people[name] = add_person(session=session, now=now, actor="demo",
                                      new=validate(name, phone, unit, roles, trained="2026-09-01"))
        for name, kind, url in SITES:
            sites.add_site(session=session, new=sites.validate(name, kind, url, UNIT), now=now, actor="demo")
        sites.set_support(session=session, name=SITES[0][0], unit=UNIT, person=people["孙磊"], now=now,
                          actor="demo")
        days = (date(2026, 11, 17), date(2026, 11, 24))
        patterns = app.settings.roster.patterns()
        generate_draft(session=session, calendar=app.calendar, patterns=patterns, start=days[0], end=days[1],
                       now=now, actor="demo", seed=SEED, unit=UNIT, profile=app.profile)
        publish_draft(session=session, calendar=app.calendar, patterns=patterns, start=days[0], end=days[1],
                      now=now, actor="demo", profile=app.profile)
        item, _ = create_item(session=session, calendar=app.calendar, profile=app.profile,
                              category=ReplyCategory.error_report, channel=ReplyChannel.error_portal,
                              summary="首页“政策解读”栏目链接打不开", received_at=parse_local("2026-11-11T10:00"),
                              unit=UNIT, assignee=people["王芳"], created_by=people["张伟"], now=now,
                              actor="demo")
        schedule_reminders(session=session, item=item, calendar=app.calendar,
                           policy=app.settings.reply_policy(app.calendar), now=now)
        # The district office planned this quarter's check (梁平办法第二十九条) weeks ago.
        plan_round(session=session, profile=app.profile, sheet=app.settings.check_sheet(), now=now, actor="demo")
        session.commit()
        return item.number


def _incident(app: App, n: int) -> str:
    """The number of the demo's n-th incident, as the bot gave it."""
    with Session(app.engine) as session:
        rows = session.exec(select(Incident.number).order_by(col(Incident.id))).all()
    return rows[n - 1] if len(rows) >= n else "（无）"

