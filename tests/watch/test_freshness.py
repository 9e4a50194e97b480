"""Column freshness (FRESH-1): the dates a column page shows in Chinese formats, how many
entries it lists, and the stale and empty findings with the profile's limits and
citations — a fresh column gives none, a profile without a limit invents none."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import SHANGHAI
from core.profiles import NOT_REQUIRED, Quantity, load_profile
from roster.models import Site
from tests.watch.conftest import SiteServer
from watch.freshness import INDICATORS, due_date, freshness_findings, item_count, newest_date
from watch.models import ColumnKind, FindingKind, SiteColumn
from watch.pages import Page, fetcher_for, get_page
from watch.types import WatchPolicy

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
POLICY = WatchPolicy(timeout_seconds=2, polite_delay_ms=0, fresh_warn_days=3)
MENU = ("<div class='nav'><ul><li><a href='/'>首页</a></li><li><a href='/xwdt/'>新闻动态</a></li>"
        "<li><a href='/tzgg/'>通知公告</a></li><li><a href='/zcwj/'>政策文件</a></li></ul></div>")
FOOTER = "<div class='footer'><ul><li><a href='/about.html'>关于本站</a></li></ul>主办：区政府办公室</div>"


def column_page(*entries: tuple[str, str], layout: str = "ul") -> str:
    """A CMS column page: the site menu, the list of (title, date) entries, pagination, footer."""
    if layout == "ul":
        rows = "".join(f"<li><a href='/art/{n}.html'>{title}</a><span>{when}</span></li>"
                       for n, (title, when) in enumerate(entries))
        body = f"<ul class='list'>{rows}</ul>"
    else:
        rows = "".join(f"<tr><td><a href='/art/{n}.html'>{title}</a></td><td>{when}</td></tr>"
                       for n, (title, when) in enumerate(entries))
        body = f"<table>{rows}</table>"
    pager = "<div class='page'><a href='?page=1'>1</a><a href='?page=2'>2</a><a href='?page=2'>下一页</a></div>"
    return (f"<html><head><title>栏目</title><script>var built='2026-11-22';</script></head><body>"
            f"{MENU}<div class='main'>{body}{pager}</div>{FOOTER}</body></html>")


EMPTY = (f"<html><body>{MENU}<div class='main'><div class='list'>暂无信息</div>"
         "<div class='pagination'><a href='?page=1'>首页</a><a href='?page=1'>尾页</a></div></div>"
         f"{FOOTER}</body></html>")


# ---- dates -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, newest", [
    ("发布时间：2026-11-20", date(2026, 11, 20)),
    ("2026/11/19", date(2026, 11, 19)),
    ("2026.11.18", date(2026, 11, 18)),
    ("2026年11月17日", date(2026, 11, 17)),
    ("2026 年 3 月 5 日", date(2026, 3, 5)),
    ("[11-16]", date(2026, 11, 16)),
    ("（11-15）", date(2026, 11, 15)),
    ("(11-14)", date(2026, 11, 14)),
    ("【11-13】", date(2026, 11, 13)),
    ("11-12", date(2026, 11, 12)),
    ("2026-11-24", date(2026, 11, 24)),         # tomorrow: a server a few hours ahead
    ("[12-20]", date(2025, 12, 20)),            # its year inferred: not in the future
])
def test_chinese_date_formats(text: str, newest: date) -> None:
    assert newest_date(f"<html><body><li>{text}</li></body></html>", TODAY) == newest


def test_the_newest_of_several_dates_wins() -> None:
    html = column_page(("通知一", "2026-10-01"), ("通知二", "2026年11月02日"), ("通知三", "[09-30]"))
    assert newest_date(html, TODAY) == date(2026, 11, 2)       # not the script's 2026-11-22


def test_month_days_around_the_new_year() -> None:
    html = "<ul><li>[12-30]</li><li>[01-02]</li></ul>"
    assert newest_date(html, date(2027, 1, 3)) == date(2027, 1, 2)
    assert newest_date("<p>[12-30] [01-05]</p>", date(2027, 1, 3)) == date(2026, 12, 30)   # 01-05 was 2026
    assert newest_date("<p>[02-29]</p>", date(2026, 11, 23)) == date(2024, 2, 29)


@pytest.mark.parametrize("text", [
    "<script>document.write('2026-11-22')</script>", "<style>/* 2026-11-22 */</style>",
    "2026-02-30", "1999-01-01", "2150-01-01", "2026-12-25", "2027年1月1日",
    "电话：0743-1234567", "10:30-11:30", "192.168.11.23", "版本 1.2026.11", "",
])
def test_what_is_not_a_date_of_the_page(text: str) -> None:
    assert newest_date(f"<html><body>{text}</body></html>", TODAY) is None


def test_bad_html_is_read_all_the_same() -> None:
    assert newest_date("<html><body><ul><li>2026-11-01<li><b>[11-05]</ul></div></table>", TODAY) == date(2026, 11, 5)
    assert item_count("<ul><li><a href=1.html>一<li><a href=2.html>二</ul></div></span>") == 2


# ---- entries ---------------------------------------------------------------------------

def test_entries_are_counted_without_menus_pagination_and_footer() -> None:
    assert item_count(column_page(("通知一", "2026-11-01"), ("通知二", "2026-10-01"))) == 2
    assert item_count(column_page(*[(f"文件{n}", "2026-10-01") for n in range(15)], layout="table")) == 15
    assert item_count(EMPTY) == 0
    rows = "".join(f"<div class='item'><a href='/a{n}.html'>信息{n}</a> <span>2026-11-0{n}</span></div>"
                   for n in range(1, 4))
    assert item_count(f"<html><body>{MENU}<div class='con'>{rows}</div></body></html>") == 3
    assert item_count("<nav><ul><li><a href='/'>首页</a></li></ul></nav><ul><li><a href='#'>占位</a></li>"
                      "<li><a href='javascript:void(0)'>占位</a></li></ul>") == 0


# ---- findings against the profile ------------------------------------------------------

def saved_site(session: Session) -> Site:
    site = Site(name="区政府门户网站", kind="website", url="http://127.0.0.1/", unit="区政府办",
                created_at=NOW)
    session.add(site)
    session.flush()
    return site


def ok_page(url: str, html: str) -> Page:
    return Page(url=url, final_url=url, status=200, elapsed_ms=80, html=html, error="",
                content_type="text/html; charset=utf-8")


def a_column(site: Site, name: str, path: str, kind: ColumnKind) -> SiteColumn:
    assert site.id is not None
    return SiteColumn(id=1, site_id=site.id, name=name, url=f"http://127.0.0.1{path}", kind=kind, created_at=NOW)


async def test_the_fixture_site_stale_empty_and_fresh_columns(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/xwdt/", column_page(("区长调研安全生产", "2026-11-01"), ("全区召开会议", "2026-10-28")))
    site_server.set("/tzgg/", EMPTY)
    site_server.set("/zcwj/", column_page(("关于印发实施方案的通知", "2026-09-01")))
    gbk = column_page(("区政府常务会议", "[11-20]"), ("工作部署", "[11-18]")).encode("gbk")
    site_server.set("/gzdt/", gbk, content_type="text/html")           # GBK, undeclared
    liangping = load_profile("liangping")
    with Session(engine) as session:
        site = site_server.site(session)
        fetcher = fetcher_for(site)
        assert site.id is not None
        columns = [SiteColumn(id=n, site_id=site.id, name=name, url=site_server.url(path), kind=kind, created_at=NOW)
                   for n, (name, path, kind) in enumerate([
                       ("新闻动态", "/xwdt/", ColumnKind.news), ("通知公告", "/tzgg/", ColumnKind.notices),
                       ("政策文件", "/zcwj/", ColumnKind.notices), ("工作动态", "/gzdt/", ColumnKind.news)], 1)]
        found = {}
        for col in columns:
            page = await get_page(fetcher, col.url, POLICY)
            found[col.name] = freshness_findings(site, col, page, liangping, NOW, POLICY)
    stale, = found["新闻动态"]
    assert (stale.kind, stale.data["level"], stale.data["newest"], stale.data["limit"]) == (
        FindingKind.stale_column, "breach", "2026-11-01", "2周")
    assert stale.detail == ("栏目“新闻动态”（动态要闻）最新信息的日期是2026年11月1日（星期日），已超过2周未更新"
                            "（应于2026年11月15日（星期日）前更新）。请尽快更新（依据：梁平办法第十七条）")
    empty, = found["通知公告"]
    assert empty.kind == FindingKind.empty_column and "依据：梁平办法第十七条" in empty.detail
    assert found["政策文件"] == []              # 6 months: fresh
    assert found["工作动态"] == []              # GBK page, [11-20]: fresh


def test_a_warning_comes_before_the_limit_and_the_breach_after(engine: Engine) -> None:
    liangping = load_profile("liangping")
    with Session(engine) as session:
        site = saved_site(session)
        news = a_column(site, "工作动态", "/gzdt/", ColumnKind.news)
        page = ok_page(news.url, column_page(("工作动态", "2026-11-10")))       # due 11-24

        def at(day: int) -> list[tuple[str, str]]:
            now = datetime(2026, 11, day, 9, 0, tzinfo=SHANGHAI)
            return [(f.data["level"], f.key) for f in freshness_findings(site, news, page, liangping, now, POLICY)]

        assert at(20) == []
        warning = at(21)
        assert [level for level, _ in warning] == ["warning"]
        assert at(24)[0][0] == "warning"
        breach = at(25)
        assert [level for level, _ in breach] == ["breach"] and breach[0][1] != warning[0][1]
        last_day = freshness_findings(site, news, page, liangping, datetime(2026, 11, 24, 9, tzinfo=SHANGHAI), POLICY)
        assert "今天是最后一天" in last_day[0].detail and last_day[0].data["citation"] == "梁平办法第十七条"


def test_months_and_years_are_counted_on_the_calendar(engine: Engine) -> None:
    assert due_date(date(2026, 5, 31), Quantity(6, "months")) == date(2026, 11, 30)
    assert due_date(date(2024, 2, 29), Quantity(1, "years")) == date(2025, 2, 28)
    assert due_date(date(2026, 11, 1), Quantity(2, "weeks")) == date(2026, 11, 15)
    guzhang = load_profile("guzhang")
    with Session(engine) as session:
        site = saved_site(session)
        notices = a_column(site, "政策文件", "/zcwj/", ColumnKind.notices)
        page = ok_page(notices.url, column_page(("实施意见", "2026-05-31")))
        on_time = freshness_findings(site, notices, page, guzhang, datetime(2026, 11, 30, 9, tzinfo=SHANGHAI), POLICY)
        assert on_time[0].data["level"] == "warning"
        late = freshness_findings(site, notices, page, guzhang, datetime(2026, 12, 1, 9, tzinfo=SHANGHAI), POLICY)
        assert late[0].data["level"] == "breach" and late[0].data["limit"] == "6个月"
        other = a_column(site, "机构概况", "/jggk/", ColumnKind.other)
        old = ok_page(other.url, column_page(("机构职能", "2025-10-01")))
        yearly, = freshness_findings(site, other, old, guzhang, NOW, POLICY)
        assert yearly.data["level"] == "breach" and "已超过1年未更新" in yearly.detail
        assert "古丈办法第九条" in yearly.detail


def test_no_limit_is_invented_where_the_profile_states_none(engine: Engine) -> None:
    liangping, yunnan = load_profile("liangping"), load_profile("yunnan")
    with Session(engine) as session:
        site = saved_site(session)
        other = a_column(site, "机构概况", "/jggk/", ColumnKind.other)      # 梁平 states no "other" limit
        stale = ok_page(other.url, column_page(("机构职能", "2020-01-01")))
        assert freshness_findings(site, other, stale, liangping, NOW, POLICY) == []
        news = a_column(site, "新闻动态", "/xwdt/", ColumnKind.news)        # 云南 states no FRESH-1 at all
        assert freshness_findings(site, news, ok_page(news.url, column_page(("旧闻", "2020-01-01"))),
                                  yunnan, NOW, POLICY) == []
        # An empty column is still reported, saying the local rules do not require it.
        empty, = freshness_findings(site, news, ok_page(news.url, EMPTY), yunnan, NOW, POLICY)
        assert empty.kind == FindingKind.empty_column
        assert NOT_REQUIRED in empty.detail and INDICATORS in empty.detail
        assert empty.data["basis"] == "practice"


def test_a_page_that_did_not_load_or_shows_a_frame_gives_no_freshness_finding(engine: Engine) -> None:
    liangping = load_profile("liangping")
    with Session(engine) as session:
        site = saved_site(session)
        news = a_column(site, "新闻动态", "/xwdt/", ColumnKind.news)
        down = Page(url=news.url, final_url=news.url, status=None, elapsed_ms=None, html="", error="连接超时")
        missing = Page(url=news.url, final_url=news.url, status=404, elapsed_ms=5, html=EMPTY, error="")
        framed = ok_page(news.url, f"<html><body>{MENU}<iframe src='/list.jsp'></iframe></body></html>")
        undated = ok_page(news.url, "<ul><li><a href='/a.html'>一则信息</a></li></ul>")
        for page in (down, missing, framed, undated):
            assert freshness_findings(site, news, page, liangping, NOW, POLICY) == []
