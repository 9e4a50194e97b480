"""Findings into the workflow: who is told, which findings open an incident, and that
each is told and opened once."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.clock import parse_local
from incidents.models import Evidence, Incident, IncidentStatus
from tests.watch.builders import found, messages, office, website, workflow
from watch.dispatch import dispatch
from watch.models import Baseline, FindingKind
from watch.pages import Page
from watch.store import store_findings

NOW = parse_local("2026-11-23T10:00")
HOME = "https://www.example.gov.cn/"
AVAILABILITY = {FindingKind.unreachable, FindingKind.slow, FindingKind.availability}


def page(url: str, html: str, status: int = 200) -> Page:
    return Page(url=url, final_url=url, status=status, elapsed_ms=120, html=html, error="")


def test_a_notice_goes_once_to_the_units_officer_on_duty(engine: Engine, tmp_path: Path) -> None:
    flow = workflow(tmp_path)
    with Session(engine) as session:
        office(session, NOW)
        site = website(session, NOW)
        items = [found(site, FindingKind.stale_column, "https://www.example.gov.cn/gzdt/",
                       "工作动态 最近更新于11月1日，已22天未更新（动态要闻类不超过2周）"),
                 found(site, FindingKind.broken_link, "https://www.example.gov.cn/old.html",
                       "链接不可用（页面不存在），所在页面 https://www.example.gov.cn/")]
        kinds = {FindingKind.stale_column, FindingKind.broken_link}
        result = store_findings(session, site, items, kinds, NOW)
        done = dispatch(session, site=site, result=result, workflow=flow, pages={}, now=NOW)
        assert done.opened == [] and done.messages == 1
        (sent,) = messages(session)
        assert messages(session, "王芳") == [sent] and session.exec(select(Incident)).first() is None
        text = sent.text
        assert text.startswith("【网站巡检】区政府门户网站：发现2个问题")
        assert "栏目更新不及时：工作动态" in text and "处理：请督促栏目责任人及时更新" in text
        assert "链接不可用" in text and "处理：请修复或删除该链接" in text
        assert messages(session, "陈晨") == [] and messages(session, "李强") == []
        # the next run sees the same problems: nothing new, nobody told again
        again = store_findings(session, site, items, kinds, NOW + timedelta(hours=6))
        dispatch(session, site=site, result=again, workflow=flow, pages={}, now=NOW + timedelta(hours=6))
        assert len(messages(session)) == 1


def test_with_nobody_on_duty_the_units_leaders_hear_it(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session:
        office(session, NOW, roster=False)
        site = website(session, NOW)
        result = store_findings(session, site, [found(site, FindingKind.slow, HOME, "首页响应用时8.2秒")],
                                AVAILABILITY, NOW)
        dispatch(session, site=site, result=result, workflow=workflow(tmp_path), pages={}, now=NOW)
        assert [m.text.splitlines()[0] for m in messages(session, "李强")] == ["【网站巡检】区政府门户网站：发现1个问题"]
        assert messages(session, "王芳") == []


def test_a_site_down_opens_one_incident_and_says_when_it_is_back(engine: Engine, tmp_path: Path) -> None:
    flow = workflow(tmp_path)
    with Session(engine) as session:
        office(session, NOW)
        site = website(session, NOW)
        down = found(site, FindingKind.unreachable, HOME, "首页连续3次无法访问（连接超时）")
        for minutes in (0, 5, 10):     # the finding persists over three runs
            at = NOW + timedelta(minutes=minutes)
            result = store_findings(session, site, [down], AVAILABILITY, at)
            dispatch(session, site=site, result=result, workflow=flow, pages={}, now=at)
        incidents = session.exec(select(Incident)).all()
        assert len(incidents) == 1
        incident = incidents[0]
        assert (incident.type, incident.site, incident.url, incident.unit) == ("site_down", "区政府门户网站", HOME, "区政府办")
        assert "网站巡检发现网站无法访问：首页连续3次无法访问" in incident.description
        assert incident.reporter_id is None
        records = session.exec(select(Evidence).where(Evidence.incident_id == incident.id)).all()
        assert [e.kind for e in records] == ["text"] and "连接超时" in (records[0].text or "")
        officer = [m.text for m in messages(session, "王芳")]
        assert len(officer) == 1 and incident.number in officer[0]
        # it answers again: the people told hear it is back, once
        back = NOW + timedelta(minutes=40)
        result = store_findings(session, site, [], AVAILABILITY, back)
        assert len(result.closed) == 1 and result.closed[0].incident_number == incident.number
        dispatch(session, site=site, result=result, workflow=flow, pages={}, now=back)
        dispatch(session, site=site, result=result, workflow=flow, pages={}, now=back)
        restored = [m.text for m in messages(session, "王芳") if m.text.startswith("【网站恢复】")]
        assert restored == [f"【网站恢复】区政府门户网站 已恢复访问（11月23日 10:40 巡检正常，中断约40分钟）。\n"
                            f"事件 {incident.number}：请核实后完成“确认恢复访问”步骤：/incident show {incident.number}"]


def test_tampering_opens_an_incident_with_both_versions_as_evidence(engine: Engine, tmp_path: Path) -> None:
    flow = workflow(tmp_path)
    old = "<html><body><h1>区政府门户网站</h1><script src='/js/app.js'></script></body></html>"
    new = "<html><body><h1>区政府门户网站</h1><script src='https://evil.example.com/x.js'></script></body></html>"
    with Session(engine) as session:
        office(session, NOW)
        site = website(session, NOW)
        assert site.id is not None
        session.add(Baseline(site_id=site.id, url=HOME, taken_at=NOW - timedelta(days=2), text_sha256="0" * 64,
                             html=old))
        change = found(site, FindingKind.tampered, HOME, "首页新增外部脚本 https://evil.example.com/x.js", "scripts")
        result = store_findings(session, site, [change], {FindingKind.tampered}, NOW)
        done = dispatch(session, site=site, result=result, workflow=flow, pages={HOME: page(HOME, new)}, now=NOW)
        incident = session.exec(select(Incident)).one()
        assert done.opened == [incident.number] and incident.type == "tamper"
        assert result.new[0].incident_number == incident.number
        kept = session.exec(select(Evidence).where(Evidence.incident_id == incident.id)
                            .order_by(col(Evidence.id))).all()
        pages = [e for e in kept if e.kind == "page"]
        assert [e.captured_at for e in pages] == [NOW - timedelta(days=2), NOW]
        bodies = [(flow.evidence_dir / (e.path or "")).read_bytes() for e in pages]
        assert bodies == [old.encode(), new.encode()]
        assert [e.sha256 for e in pages] == [hashlib.sha256(b).hexdigest() for b in bodies]
        note = next(e.text or "" for e in kept if e.kind == "text")
        assert "第1份为基线版本" in note and "第2份为当前版本" in note


def test_a_finding_on_a_page_with_an_open_incident_joins_it(engine: Engine, tmp_path: Path) -> None:
    flow = workflow(tmp_path)
    url = "https://www.example.gov.cn/tzgg/1.html"
    with Session(engine) as session:
        office(session, NOW)
        site = website(session, NOW)
        term = found(site, FindingKind.sensitive_term, url, "发现敏感词“某某”：……上下文……", "某某")
        first = store_findings(session, site, [term], {FindingKind.sensitive_term}, NOW)
        dispatch(session, site=site, result=first, workflow=flow, pages={url: page(url, "<p>某某</p>")}, now=NOW)
        other = found(site, FindingKind.sensitive_term, url, "发现敏感词“另一词”", "另一词")
        second = store_findings(session, site, [term, other], {FindingKind.sensitive_term}, NOW + timedelta(hours=1))
        done = dispatch(session, site=site, result=second, workflow=flow, pages={}, now=NOW + timedelta(hours=1))
        incident = session.exec(select(Incident)).one()
        assert incident.type == "sensitive" and done.joined == [incident.number]
        assert second.new[0].incident_number == incident.number


def test_a_closed_incident_does_not_swallow_a_new_outage(engine: Engine, tmp_path: Path) -> None:
    flow = workflow(tmp_path)
    with Session(engine) as session:
        office(session, NOW)
        site = website(session, NOW)
        down = found(site, FindingKind.unreachable, HOME, "首页连续3次无法访问")
        dispatch(session, site=site, result=store_findings(session, site, [down], AVAILABILITY, NOW),
                 workflow=flow, pages={}, now=NOW)
        first = session.exec(select(Incident)).one()
        first.status = IncidentStatus.closed
        session.add(first)
        later = NOW + timedelta(days=1)
        store_findings(session, site, [], AVAILABILITY, later)
        dispatch(session, site=site, result=store_findings(session, site, [down], AVAILABILITY, later + timedelta(hours=1)),
                 workflow=flow, pages={}, now=later + timedelta(hours=1))
        assert len(session.exec(select(Incident)).all()) == 2


def test_a_refused_address_is_a_notice_not_an_incident(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session:
        office(session, NOW)
        site = website(session, NOW, "http://127.0.0.1:8080/")
        refused = found(site, FindingKind.unreachable, "http://127.0.0.1:8080/",
                        "该网址指向内网、本机或保留地址，未抓取", refused=True)
        result = store_findings(session, site, [refused], AVAILABILITY, NOW)
        dispatch(session, site=site, result=result, workflow=workflow(tmp_path), pages={}, now=NOW)
        assert session.exec(select(Incident)).first() is None
        (text,) = [m.text for m in messages(session, "王芳")]
        assert "--intranet" in text and "未抓取" in text
