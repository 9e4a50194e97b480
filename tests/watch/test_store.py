"""Findings are stored once while they persist, closed when a run no longer sees them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import parse_local
from tests.watch.builders import found, website
from watch.models import Finding, FindingKind, FindingStatus
from watch.store import finding_data, open_findings, set_finding_data, store_findings

NOW = parse_local("2026-11-23T09:00")
CONTENT = {FindingKind.wrong_term, FindingKind.sensitive_term, FindingKind.hidden_link, FindingKind.tampered}
HOME = "https://www.example.gov.cn/"


def test_a_finding_seen_twice_is_one_row_and_new_once(engine: Engine) -> None:
    with Session(engine) as session:
        site = website(session, NOW)
        term = found(site, FindingKind.wrong_term, HOME, "“中华人民共和国国务院”写作“国务院院”", "国务院院")
        first = store_findings(session, site, [term], CONTENT, NOW)
        assert [f.detail for f in first.new] == [term.detail] and not first.still_open
        later = NOW + timedelta(hours=1)
        again = found(site, FindingKind.wrong_term, HOME, "同一处错误，说明有更新", "国务院院", context="……")
        second = store_findings(session, site, [again, again], CONTENT, later)
        assert not second.new and len(second.still_open) == 1
        row = second.still_open[0]
        assert (row.id, row.first_seen, row.last_seen, row.detail) == (first.new[0].id, NOW, later, "同一处错误，说明有更新")
        assert finding_data(row) == {"context": "……"}
        session.commit()
        assert len(session.exec(select(Finding)).all()) == 1


def test_a_finding_no_longer_seen_is_closed_and_a_return_is_new(engine: Engine) -> None:
    with Session(engine) as session:
        site = website(session, NOW)
        term = found(site, FindingKind.wrong_term, HOME, "错误表述", "国务院院")
        row = store_findings(session, site, [term], CONTENT, NOW).new[0]
        gone = store_findings(session, site, [], CONTENT, NOW + timedelta(hours=1))
        assert gone.closed == [row] and row.status == FindingStatus.closed
        assert row.closed_at == NOW + timedelta(hours=1)
        assert open_findings(session, site.id) == []
        back = store_findings(session, site, [term], CONTENT, NOW + timedelta(hours=2))
        assert len(back.new) == 1 and back.new[0].id != row.id


def test_kinds_not_checked_and_pages_not_read_keep_their_findings(engine: Engine) -> None:
    with Session(engine) as session:
        site = website(session, NOW)
        column = "https://www.example.gov.cn/tzgg/"
        broken = found(site, FindingKind.broken_link, "https://www.example.gov.cn/a.html", "链接不可用")
        stale = found(site, FindingKind.stale_column, column, "通知公告 45天未更新")
        store_findings(session, site, [broken, stale], {FindingKind.broken_link, FindingKind.stale_column}, NOW)
        # the freshness check ran but the column page did not load: its finding stays open
        result = store_findings(session, site, [], {FindingKind.stale_column, FindingKind.empty_column},
                                NOW + timedelta(hours=6), within=set())
        assert result.closed == []
        assert {f.kind for f in open_findings(session, site.id)} == {"broken_link", "stale_column"}


def test_the_dispatchers_own_data_survives_a_refresh(engine: Engine) -> None:
    with Session(engine) as session:
        site = website(session, NOW)
        down = found(site, FindingKind.unreachable, HOME, "连续3次无法访问", failures=3)
        row = store_findings(session, site, [down], {FindingKind.unreachable}, NOW).new[0]
        set_finding_data(row, finding_data(row) | {"_told": [7]})
        later = found(site, FindingKind.unreachable, HOME, "连续4次无法访问", failures=4)
        store_findings(session, site, [later], {FindingKind.unreachable}, NOW + timedelta(minutes=5))
        assert finding_data(row) == {"failures": 4, "_told": [7]}


def test_findings_of_another_site_are_left_alone(engine: Engine) -> None:
    with Session(engine) as session:
        ours = website(session, NOW)
        theirs = website(session, NOW, "https://edu.example.gov.cn/", name="教育局网站", unit="区教育局")
        store_findings(session, theirs, [found(theirs, FindingKind.slow, "https://edu.example.gov.cn/", "慢")],
                       {FindingKind.slow}, NOW)
        result = store_findings(session, ours, [], {FindingKind.slow}, NOW)
        assert result.closed == [] and len(open_findings(session)) == 1
