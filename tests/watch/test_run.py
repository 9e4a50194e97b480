"""The site-watch run on the loopback fixture website: the site-down threshold opens one
incident, tampering is found against the baseline the first run kept, a clean site
raises nothing, a loopback site not registered intranet is refused, and the scheduled
jobs do nothing without a website; a hostile page (nesting that would stall the parser,
or content checks past their time) gives no findings while the rest of its site is
checked, and keeps the findings it had."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.fetcher import GuardedFetcher
from incidents.models import Evidence, Incident
from roster.models import Site
from tests.watch.builders import messages, office, workflow
from tests.watch.conftest import SiteServer
from watch import baseline
from watch import run as watch_run
from watch.columns import add_column, validate_column
from watch.models import Baseline, Finding, FindingKind, FindingStatus, Probe
from watch.pages import REFUSED
from watch.run import run_checks
from watch.schedule import cron_fields, register_watch, watch_job
from watch.status import watched_sites
from watch.tamper import snapshot
from watch.types import WatchPolicy

NOW = parse_local("2026-11-23T10:00")
POLICY = WatchPolicy(timeout_seconds=2, polite_delay_ms=0, down_after=3)


async def no_dns(host: str, port: int) -> Sequence[str]:
    raise socket.gaierror(socket.EAI_NONAME, "no DNS in tests")


FETCHER = GuardedFetcher(resolver=no_dns)


def home(extra: str = "", head: str = "") -> str:
    return (f"<html><head><title>区政府门户网站</title>{head}</head><body>"
            "<ul class='nav'><li><a href='/gzdt/'>工作动态</a></li></ul>"
            f"<p>欢迎访问区政府门户网站。公布署名文章一篇。</p>{extra}</body></html>")


def column_page(*days: str) -> str:
    items = "".join(f"<li><a href='/gzdt/{n}.html'>工作动态{n}</a><span>{d}</span></li>" for n, d in enumerate(days))
    return f"<html><body><ul class='list'>{items}</ul></body></html>"


def sites(engine: Engine) -> list[Site]:
    with Session(engine) as session:
        return watched_sites(session)


async def run(engine: Engine, tmp_path: Path, at: Any, checks: set[str], policy: WatchPolicy = POLICY,
              progress: Any = None) -> list[Any]:
    return await run_checks(engine, sites=sites(engine), policy=policy, profile=workflow(tmp_path).profile,
                            fetcher=FETCHER, now=at, workflow=workflow(tmp_path), checks=checks, progress=progress)


def nested_page(depth: int, tail: str = "") -> str:
    """``depth`` nested ``<div>``: a tampered page, or a template that never closes them."""
    return "<html><body>" + "<div>" * depth + tail + "</div>" * depth + "</body></html>"


async def test_a_site_down_for_k_probes_opens_one_incident(engine: Engine, tmp_path: Path,
                                                           site_server: SiteServer) -> None:
    site_server.set("/", "<html><body>服务暂不可用</body></html>", 503)
    with Session(engine) as session:
        office(session, NOW)
        site_server.site(session)
        session.commit()
    for minutes in (0, 5):
        found = await run(engine, tmp_path, NOW + timedelta(minutes=minutes), {"availability"})
        assert [f.kind for f in found] == []                         # 1 and 2 failed probes: not yet
    for minutes in (10, 15, 20):
        found = await run(engine, tmp_path, NOW + timedelta(minutes=minutes), {"availability"})
        assert [f.kind for f in found] == [FindingKind.unreachable]
    with Session(engine) as session:
        (incident,) = session.exec(select(Incident)).all()
        assert incident.type == "site_down" and incident.site == "区政府门户网站"
        assert "首页连续3次无法访问" in incident.description and "HTTP 503" in incident.description
        assert len(session.exec(select(Probe)).all()) == 5
        kept = session.exec(select(Evidence).where(Evidence.incident_id == incident.id)).all()
        assert {e.kind for e in kept} == {"page", "text"}            # the error page and the record
        assert sum(incident.number in m.text for m in messages(session, "王芳")) == 1
    site_server.set("/", home())
    assert await run(engine, tmp_path, NOW + timedelta(minutes=25), {"availability"}) == []
    with Session(engine) as session:
        back = [m.text for m in messages(session, "王芳") if m.text.startswith("【网站恢复】")]
        assert len(back) == 1 and "中断约" in back[0] and incident.number in back[0]


async def test_tampering_is_found_against_the_first_runs_baseline(engine: Engine, tmp_path: Path,
                                                                  site_server: SiteServer) -> None:
    site_server.set("/", home())
    with Session(engine) as session:
        office(session, NOW)
        site_server.site(session)
        session.commit()
    assert await run(engine, tmp_path, NOW, {"content"}) == []
    with Session(engine) as session:
        first = session.exec(select(Baseline)).one()
        assert "欢迎访问" in first.html and first.taken_at == NOW
    # ordinary news: the text changes, the baseline follows
    site_server.set("/", home("<p>今日要闻：全区召开冬季安全生产会议。</p>"))
    assert await run(engine, tmp_path, NOW + timedelta(hours=1), {"content"}) == []
    evil = home(head="<script src='http://evil.example.com/x.js'></script>")
    site_server.set("/", evil)
    found = await run(engine, tmp_path, NOW + timedelta(hours=2), {"content"})
    assert [f.kind for f in found] == [FindingKind.tampered]
    assert await run(engine, tmp_path, NOW + timedelta(hours=3), {"content"}) != []   # still there
    with Session(engine) as session:
        (incident,) = session.exec(select(Incident)).all()
        assert incident.type == "tamper"
        pages = session.exec(select(Evidence).where(Evidence.incident_id == incident.id, Evidence.kind == "page")
                             .order_by(col(Evidence.id))).all()
        files = [(tmp_path / "evidence" / (e.path or "")).read_text("utf-8") for e in pages]
        assert "今日要闻" in files[0] and "evil.example.com" not in files[0]     # the baseline …
        assert "evil.example.com" in files[1]                                 # … and the page now
        kept = session.exec(select(Baseline)).one()
        assert "evil.example.com" not in kept.html                            # not replaced
        site = session.exec(select(Site)).one()
        _, closed = baseline.accept(session, site, snapshot(evil, site.url), NOW + timedelta(hours=4), "cli")
        session.commit()
        assert closed == 1
    assert await run(engine, tmp_path, NOW + timedelta(hours=5), {"content"}) == []


async def test_a_clean_site_raises_nothing(engine: Engine, tmp_path: Path, site_server: SiteServer,
                                           make_site_server: Any) -> None:
    friend = make_site_server()
    friend.set("/", "<html><body>友情网站</body></html>")
    site_server.set("/", home(f"<a href='{friend.url('/')}'>友情链接</a><a href='/gzdt/0.html'>要闻</a>"))
    site_server.set("/gzdt/", column_page("2026-11-20", "2026-11-18"))
    site_server.set("/gzdt/0.html", "<html><body><h1>要闻</h1><p>全区部署冬季防火工作。</p></body></html>")
    site_server.set("/gzdt/1.html", "<html><body><h1>要闻二</h1></body></html>")
    with Session(engine) as session:
        office(session, NOW)
        site = site_server.site(session)
        add_column(session=session, site=site, new=validate_column("工作动态", site_server.url("/gzdt/"), "动态"),
                   now=NOW, actor="test")
        session.commit()
    found = await run(engine, tmp_path, NOW, {"availability", "freshness", "links", "content"})
    assert found == []
    with Session(engine) as session:
        assert session.exec(select(Finding)).all() == [] and messages(session) == []


async def test_a_loopback_site_not_registered_intranet_is_refused(engine: Engine, tmp_path: Path,
                                                                  site_server: SiteServer) -> None:
    site_server.set("/", home())
    with Session(engine) as session:
        office(session, NOW)
        site_server.site(session, intranet=False)
        session.commit()
    found = await run(engine, tmp_path, NOW, {"availability", "freshness", "links", "content"})
    assert [(f.kind, f.data.get("refused")) for f in found] == [(FindingKind.unreachable, True)]
    assert REFUSED in found[0].detail and "--intranet" in found[0].detail
    assert site_server.hits == []
    with Session(engine) as session:
        assert session.exec(select(Probe)).all() == [] and session.exec(select(Incident)).all() == []
        (text,) = [m.text for m in messages(session, "王芳")]
        assert "dutybot sites add 名称 --intranet" in text


async def test_a_hostile_page_is_not_parsed_and_the_rest_of_the_site_is_checked(
        engine: Engine, tmp_path: Path, site_server: SiteServer, caplog: pytest.LogCaptureFixture) -> None:
    site_server.set("/", home("<p>全区布署冬季防火工作。</p>"))
    site_server.set("/gzdt/", column_page("2026-11-20"))
    site_server.set("/tzgg/", "<html><body><ul><li><a href='/tzgg/1.html'>通知</a>（2026-11-20）</li></ul>"
                              "<p>截止目前已完成。</p></body></html>")
    with Session(engine) as session:
        office(session, NOW)
        site = site_server.site(session)
        for name, path, kind in (("工作动态", "/gzdt/", "动态"), ("通知公告", "/tzgg/", "通知公告")):
            add_column(session=session, site=site, new=validate_column(name, site_server.url(path), kind),
                       now=NOW, actor="test")
        session.commit()
        site_id = site.id
    home_url, news, notices = site_server.url("/"), site_server.url("/gzdt/"), site_server.url("/tzgg/")
    first = await run(engine, tmp_path, NOW, {"freshness", "content"})
    assert sorted((f.kind, f.url) for f in first) == [(FindingKind.wrong_term, home_url),
                                                      (FindingKind.wrong_term, notices)]
    # the notices page turns hostile: 50,000 nested <div>, a gambling link hidden inside
    site_server.set("/tzgg/", nested_page(50_000, "<a style='display:none' href='http://bet365.example.com/'>x</a>"))
    site_server.set("/gzdt/", column_page("2026-11-20").replace("</ul>", "</ul><p>再接再励。</p>"))
    lines: list[str] = []
    with caplog.at_level(logging.WARNING, logger="watch.run"):
        found = await run(engine, tmp_path, NOW + timedelta(hours=1), {"freshness", "content"}, progress=lines.append)
    assert sorted((f.kind, f.url) for f in found) == [(FindingKind.wrong_term, home_url),
                                                      (FindingKind.wrong_term, news)]
    assert f"区政府门户网站：页面 {notices} 页面结构异常（标签嵌套达" in "\n".join(lines)
    assert any("本次未检查其内容" in line for line in lines)
    assert f"page {notices} of site {site_id} not parsed" in caplog.text
    with Session(engine) as session:
        kept = session.exec(select(Finding).where(Finding.url == notices)).one()
        assert (kept.kind, kept.status) == (FindingKind.wrong_term, FindingStatus.open)   # not read: kept
        assert session.exec(select(Finding).where(Finding.kind == FindingKind.empty_column)).all() == []


async def test_content_checks_past_their_time_are_given_up(engine: Engine, tmp_path: Path, site_server: SiteServer,
                                                           caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    site_server.set("/", home("<p>全区布署冬季防火工作。</p>"))
    with Session(engine) as session:
        office(session, NOW)
        site_server.site(session)
        session.commit()
    assert [f.kind for f in await run(engine, tmp_path, NOW, {"content"})] == [FindingKind.wrong_term]
    release = threading.Event()

    def stuck(*args: Any, **kwargs: Any) -> Any:
        release.wait()                      # a parse that does not end while the run waits
        raise AssertionError("the run did not wait for this page")

    monkeypatch.setattr(watch_run, "scan_page", stuck)
    monkeypatch.setattr(watch_run, "PAGE_SECONDS", 0)
    lines: list[str] = []
    try:
        with caplog.at_level(logging.WARNING, logger="watch.run"):
            found = await run(engine, tmp_path, NOW + timedelta(hours=1), {"content"}, progress=lines.append)
    finally:
        release.set()
    assert found == []
    assert any("内容检查超过 0 秒仍未完成" in line for line in lines) and "given up" in caplog.text
    with Session(engine) as session:
        (kept,) = session.exec(select(Finding)).all()
        assert kept.status == FindingStatus.open
        assert session.exec(select(Baseline)).one().taken_at == NOW          # the baseline stays


class Crons:
    """A scheduler that only remembers what was registered."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[Any, dict[str, object]]] = {}
        self.shared: set[str] = set()

    def register(self, kind: str, fn: Any) -> None:
        raise AssertionError("site watch registers no due-item processor")

    def register_cron(self, name: str, fn: Any, *, run_at_start: bool = False, shared: bool = False,
                      **fields: object) -> None:
        self.jobs[name] = (fn, fields)
        if shared:
            self.shared.add(name)


def test_each_check_has_its_own_schedule_and_none_when_disabled(tmp_path: Path) -> None:
    flow = workflow(tmp_path)
    crons = Crons()
    register_watch(crons, enabled=True, policy=WatchPolicy(), profile=flow.profile, fetcher=FETCHER, workflow=flow)
    assert {name: fields for name, (_, fields) in crons.jobs.items()} == {
        "watch.availability": {"minute": "*/5"},
        "watch.freshness": {"hour": "*/6", "minute": "10"},
        "watch.links": {"day": "*/1", "hour": "2", "minute": "20"},
        "watch.content": {"hour": "*/1", "minute": "30"},
        "watch.purge": {"hour": "3", "minute": "50"},      # probes older than 400 days
    }
    assert crons.shared == set()                           # one process: no claims
    workers = Crons()                                      # several workers: checks claimed site by site
    register_watch(workers, enabled=True, policy=WatchPolicy(), profile=flow.profile, fetcher=FETCHER, workflow=flow,
                   claim=lambda key: True)
    assert workers.shared == {"watch.availability", "watch.freshness", "watch.links", "watch.content"}
    assert cron_fields(90) == {"hour": "*/2", "minute": "0"}
    disabled = Crons()
    register_watch(disabled, enabled=False, policy=WatchPolicy(), profile=flow.profile, fetcher=FETCHER,
                   workflow=flow)
    assert disabled.jobs == {}


def test_a_scheduled_check_without_a_website_does_nothing(engine: Engine, tmp_path: Path) -> None:
    flow = workflow(tmp_path)
    with Session(engine) as session:
        assert watch_job(session, NOW, NOW, check="availability", policy=POLICY, profile=flow.profile,
                         fetcher=FETCHER, workflow=flow, lexicon=None) == 0


def test_a_scheduled_check_probes_the_registered_websites(engine: Engine, tmp_path: Path,
                                                          site_server: SiteServer) -> None:
    site_server.set("/", home())
    flow = workflow(tmp_path)
    with Session(engine) as session:
        site_server.site(session)
        session.commit()
        assert watch_job(session, NOW, NOW, check="availability", policy=POLICY, profile=flow.profile,
                         fetcher=FETCHER, workflow=flow, lexicon=None) == 0
    with Session(engine) as session:
        (probe,) = session.exec(select(Probe)).all()
        assert probe.ok and probe.status == 200
    assert [hit.path for hit in site_server.hits] == ["/"]


@pytest.mark.site_watch
def test_the_app_schedules_site_watch_when_asked(engine: Engine) -> None:
    app = App(load_settings(None, env={}), clock=FakeClock(NOW), adapter=MemoryAdapter(), engine=engine)
    assert {"watch.availability", "watch.freshness", "watch.links", "watch.content"} <= set(app.scheduler._crons)
    quiet = App(load_settings(None, env={"DUTYBOT_WATCH_ENABLED": "false"}), clock=FakeClock(NOW),
                adapter=MemoryAdapter(), engine=engine)
    assert not any(name.startswith("watch.") for name in quiet.scheduler._crons)
