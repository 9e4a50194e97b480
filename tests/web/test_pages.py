"""What the pages show: overdue first, filters, 暂定 deadlines, the escalation rung, holidays
and 调休 on the roster, replies overdue first with the period's statistics, and nothing a
person typed is ever markup."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from core.clock import parse_local
from incidents.models import IncidentStep
from replies.models import ReplyCategory, ReplyChannel
from replies.service import create_item
from roster.models import Site
from tests.web.conftest import Rig, populate
from watch.models import Finding, FindingKind, Probe


async def test_overdue_incidents_come_first_and_the_filter_keeps_only_them(rig: Rig) -> None:
    rig.clock.set(parse_local("2026-11-23T10:20"))
    reply = await rig.chat.send("/incident new 内容错误 https://www.edu.example.gov.cn/x/9 错别字", as_="王芳")
    later = reply.split("已登记 ")[1].split("（")[0]
    rig.clock.set(parse_local("2026-11-23T10:40"))
    client = await rig.sign_in("周杰")
    text = (await client.get("/web/incidents")).text
    first, second = rig.numbers["区教育局"], rig.numbers["区卫健委"]
    assert text.index(first) < text.index(later) and text.index(second) < text.index(later)
    assert text.count("超期</span>") == 2 and "未结 3 件" in text
    overdue = (await client.get("/web/incidents?overdue=1")).text
    assert first in overdue and second in overdue and later not in overdue
    by_type = (await client.get("/web/incidents?type=content_error")).text
    assert later in by_type and first not in by_type
    by_unit = (await client.get("/web/incidents?unit=区卫健委")).text
    assert second in by_unit and first not in by_unit and later not in by_unit


async def test_a_unit_viewer_cannot_widen_the_list_with_the_unit_filter(rig: Rig) -> None:
    client = await rig.sign_in("王芳")
    text = (await client.get("/web/incidents?unit=区卫健委")).text
    assert rig.numbers["区卫健委"] not in text and rig.numbers["区教育局"] in text
    assert "全部单位" not in text


async def test_provisional_deadlines_say_zan_ding_and_the_rung_reached_is_shown(rig: Rig) -> None:
    number = rig.numbers["区教育局"]
    rig.clock.advance(timedelta(minutes=20))
    await rig.app.advance_to(rig.clock.now())      # the ladder's next rung falls due
    with Session(rig.engine) as session:   # as if the deadline ran into a year without holiday data
        step = session.exec(select(IncidentStep).where(IncidentStep.incident_id == rig.incident("区教育局").id,
                                                       IncidentStep.seq == 1)).one()
        step.provisional = True
        session.add(step)
        session.commit()
    client = await rig.sign_in("李强")
    listing = (await client.get("/web/incidents")).text
    assert "11月23日 10:30（暂定）" in listing
    detail = (await client.get(f"/web/incidents/{number}")).text
    assert "截止 11月23日 10:30（暂定）" in detail
    assert "已提醒至：带班领导" in detail and "20分钟前报告" in detail


async def test_what_people_typed_is_shown_as_text(rig: Rig) -> None:
    reply = await rig.chat.send('/incident new 内容错误 https://www.edu.example.gov.cn/x/1 <script>alert("x")</script>',
                                as_="王芳")
    number = reply.split("已登记 ")[1].split("（")[0]
    client = await rig.sign_in("李强")
    detail = (await client.get(f"/web/incidents/{number}")).text
    assert "<script>" not in detail and "&lt;script&gt;" in detail


async def test_roster_marks_holidays_and_make_up_days_and_provisional_years(rig: Rig) -> None:
    client = await rig.sign_in("李强")
    october = (await client.get("/web/roster?month=2026-10")).text
    assert "国庆节" in october and "调休上班·国庆节" in october and "2026年10月" in october
    assert "暂定" not in october
    next_year = (await client.get("/web/roster?month=2027-01")).text
    assert '<span class="tag">暂定</span>' in next_year
    bad = await client.get("/web/roster?month=2026-13")
    assert bad.status_code == 400 and "月份" in bad.text


async def test_replies_overdue_first_with_the_periods_statistics(rig: Rig) -> None:
    populate(rig)
    now = rig.clock.now()
    with Session(rig.engine) as session:
        create_item(session=session, calendar=rig.app.calendar, profile=rig.app.profile,
                    category=ReplyCategory.error_report, channel=ReplyChannel.error_portal,
                    summary="首页链接打不开", received_at=now, unit="区教育局", assignee=None, created_by=None,
                    now=now, actor="test")
        session.commit()
    client = await rig.sign_in("李强")
    text = (await client.get("/web/replies")).text
    assert text.index("已超期") < text.index("首页链接打不开")
    assert "剩余" in text and "找错" in text and "咨询建议" in text
    assert "<strong>区教育局</strong>：收到 2" in text and "区卫健委" not in text
    year = (await client.get("/web/replies?period=year")).text
    assert "2026-01-01 至 2026-11-23" in year


async def test_duty_page_shows_todays_check_ins_and_the_next_shift(rig: Rig) -> None:
    populate(rig)
    await rig.chat.send("/checkin", as_="王芳")
    client = await rig.sign_in("周杰")
    text = (await client.get("/web/duty")).text
    assert "当前班次：白班" in text and "下一班次：夜班" in text
    assert "王芳（白班）：<span class=\"ok\">已签到 10:00</span>" in text
    assert "陈晨（夜班）：<span class=\"muted\">班次未开始</span>" in text


async def test_sites_show_this_months_availability_stale_columns_and_other_findings(rig: Rig) -> None:
    populate(rig)
    now = rig.clock.now()
    with Session(rig.engine) as session:
        site = session.exec(select(Site).where(Site.name == "区教育局网站")).one()
        for minutes, ok in ((60, True), (50, True), (40, True), (30, False)):
            session.add(Probe(site_id=site.id or 0, url=site.url, at=now - timedelta(minutes=minutes), ok=ok))
        session.add(Finding(site_id=site.id or 0, kind=FindingKind.broken_link.value, key="l-1", url=site.url,
                            detail="“办事指南”链接打不开", first_seen=now, last_seen=now))
        session.commit()
    client = await rig.sign_in("李强")
    text = (await client.get("/web/sites")).text
    assert '本月可用率：<span class="warn">75%</span>' in text and "待处理 2 项" in text
    assert text.count("教育局专用标记栏目已 40 天未更新") == 1          # listed once, as a stale column
    assert "其他问题" in text and "办事指南”链接打不开" in text
