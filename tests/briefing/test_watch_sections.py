"""Site watch in the daily briefing: the websites with open findings, their availability
this month and the incidents watch opened; nothing when every site is clean."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.config import load_settings
from briefing.models import Urgency
from briefing.service import build_daily
from core.clock import parse_local
from core.workdays import WorkdayCalendar
from tests.watch.builders import found, website
from watch.models import FindingKind, Probe
from watch.store import store_findings

NOW = parse_local("2026-11-23T08:30")
SETTINGS = load_settings(None, env={})
CALENDAR = WorkdayCalendar()


def test_nothing_is_said_when_no_site_has_a_problem(engine: Engine) -> None:
    with Session(engine) as session:
        site = website(session, NOW)
        assert site.id is not None
        session.add(Probe(site_id=site.id, url=site.url, at=NOW - timedelta(hours=1), ok=True))
        built = build_daily(session=session, now=NOW, calendar=CALENDAR, settings=SETTINGS.briefing)
    assert built.section("watch.sites") is None and "网站巡检" not in built.text()


def test_sites_with_problems_are_listed_the_urgent_first(engine: Engine) -> None:
    with Session(engine) as session:
        portal = website(session, NOW)
        edu = website(session, NOW, "https://edu.example.gov.cn/", name="教育局网站", unit="区教育局")
        assert portal.id is not None and edu.id is not None
        for minutes, ok in ((10, True), (20, False)):
            session.add(Probe(site_id=portal.id, url=portal.url, at=NOW - timedelta(minutes=minutes), ok=ok))
        store_findings(session, portal, [
            found(portal, FindingKind.stale_column, "https://www.example.gov.cn/gzdt/", "工作动态超过2周未更新"),
            found(portal, FindingKind.empty_column, "https://www.example.gov.cn/ztzl/", "专题专栏是空白栏目"),
            found(portal, FindingKind.broken_link, "https://www.example.gov.cn/a.html", "链接不可用"),
            found(portal, FindingKind.broken_link, "https://www.example.gov.cn/b.html", "链接不可用"),
            found(portal, FindingKind.wrong_term, "https://www.example.gov.cn/", "错误表述“布署”", "布署"),
        ], set(FindingKind), NOW)
        (term,) = store_findings(session, edu, [
            found(edu, FindingKind.sensitive_term, "https://edu.example.gov.cn/", "敏感词", "某词")],
            set(FindingKind), NOW).new
        term.incident_number = "INC-20261123-001"
        built = build_daily(session=session, now=NOW, calendar=CALENDAR, settings=SETTINGS.briefing)
    section = built.section("watch.sites")
    assert section is not None and section.urgency == Urgency.today
    assert section.lines(5) == [
        "【网站巡检】2 个网站有 6 个待处理问题",
        "· 教育局网站（本月可用率 暂无探测）：敏感词1｜事件 INC-20261123-001",
        "· 区政府门户网站（本月可用率 50%）：栏目更新不及时1、空白栏目1、错误表述1、链接不可用2",
        "详情：/sites status；问题消除后下次巡检自动销号",
    ]
    assert "网站问题6" in built.text()
