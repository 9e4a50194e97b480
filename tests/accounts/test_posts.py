"""Recording posts (accounts/posts.py, accounts/feeds.py, ``dutybot accounts posts|fetch``):
platform exports with their own headers and Chinese dates, all or nothing with every bad
row named; nothing counted twice; RSS, Atom and JSON feeds read through the guarded
fetcher from local servers behind a fake resolver; internal addresses and entity tricks
refused. No test leaves the machine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from accounts.feeds import (
    FeedError,
    feed_targets,
    fetch_feeds_job,
    parse_feed,
    read_feed,
    record_feed,
)
from accounts.models import Account, AccountPost, AccountState
from accounts.posts import PostIn, parse_export, record_posts
from bot.app import open_database
from bot.cli import account_posts, main
from bot.config import load_settings
from core.clock import local, parse_local
from core.errors import InputError
from core.fetcher import NOT_ALLOWED, GuardedFetcher
from core.tables import read_table
from tests.accounts.cadence_factories import make_account
from tests.core.fake_net import PUBLIC_IP, FakeResolver, LoopbackNetwork, http_server, page

NOW = parse_local("2026-11-23T09:00")
RSS = """<?xml version="1.0" encoding="{encoding}"?>
<rss version="2.0"><channel><title>梁平发布</title><link>https://feeds.example.test/</link>
<item><title>区政府常务会议召开</title><link>https://feeds.example.test/1</link>
  <pubDate>Fri, 20 Nov 2026 18:30:00 +0800</pubDate><category>原创</category></item>
<item><title>冬季森林防火提示</title><pubDate>Sat, 21 Nov 2026 02:00:00 GMT</pubDate></item>
<item><title>没有日期的条目</title></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>云南发布</title><id>urn:x</id>
<updated>2026-11-22T10:00:00+08:00</updated>
<entry><title type="html">高原特色农业 &amp; 乡村振兴</title><id>urn:1</id>
  <published>2026-11-22T10:00:00+08:00</published><updated>2026-11-22T11:00:00+08:00</updated>
  <category term="原创"/></entry>
<entry><title>转载：天气预报</title><id>urn:2</id><updated>2026-11-21T08:00:00Z</updated></entry>
</feed>"""


def _rows(session: Session, account_id: int) -> list[AccountPost]:
    return list(session.exec(select(AccountPost).where(AccountPost.account_id == account_id)
                             .order_by(col(AccountPost.posted_at))))


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- platform exports ------------------------------------------------------------------

def test_an_export_with_the_back_ends_own_headers_and_chinese_dates_is_read(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["发表时间", "作品名称", "是否原创", "阅读数"])
    sheet.append([datetime(2026, 11, 20, 18, 30), "区政府常务会议召开", "是", 1200])  # noqa: DTZ001  (a date cell)
    sheet.append(["2026/11/21", "冬季森林防火提示", "否", 300])
    sheet.append(["2026年11月22日 10时05分", "周末文化活动", 1, 88])
    sheet.append([None, None, None, None])                                            # an empty row
    book.save(tmp_path / "导出.xlsx")
    posts = parse_export(read_table(tmp_path / "导出.xlsx", required=(), columns_hint=""), now=NOW)
    assert [(local(p.posted_at).strftime("%m-%d %H:%M"), p.title, p.original) for p in posts] == [
        ("11-20 18:30", "区政府常务会议召开", True),
        ("11-21 00:00", "冬季森林防火提示", False),      # a day alone: that day
        ("11-22 10:05", "周末文化活动", True)]


def test_a_wechat_export_with_group_send_time_and_type_columns_is_read() -> None:
    rows = [{"群发时间": "2026-11-23 08:00", "标题": "早安梁平", "类型": "转载"},
            {"群发时间": "2026.11.22", "标题": "梁平柚丰收", "类型": "原创"}]
    posts = parse_export(rows, now=NOW)
    assert [(p.title, p.original) for p in posts] == [("早安梁平", False), ("梁平柚丰收", True)]


def test_an_export_with_bad_rows_names_each_and_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    path = _csv(tmp_path / "posts.csv", "日期,标题,原创\n"
                "2026-11-20 10:00,好的一行,是\n"
                "2026-13-01,月份不存在,否\n"
                "2026-11-30,还没到的日子,否\n"
                "2026-11-21,原创写错,也许\n"
                "昨天下午,看不懂的日期,否\n")
    with pytest.raises(InputError) as err:
        parse_export(read_table(path, required=(), columns_hint=""), now=NOW)
    lines = err.value.message.splitlines()
    assert lines[0].startswith("第3行：") and "不存在" in lines[0]
    assert lines[1].startswith("第4行：") and "晚于现在" in lines[1]
    assert lines[2].startswith("第5行：") and "是/否、原创/转载、1/0" in lines[2]
    assert lines[3].startswith("第6行：") and "无法识别的日期" in lines[3]
    assert lines[-1] == "共 4 行有误，未导入任何记录。请改正后重新导入。"
    with pytest.raises(InputError, match="缺少日期列"):
        parse_export([{"标题": "只有标题"}], now=NOW)


@pytest.fixture
def cli_db(tmp_path: Path) -> Iterator[Engine]:
    """The database the CLI opens in the test's folder (created on first use)."""
    engine = open_database(load_settings(None, env={}))
    with Session(engine) as session:
        make_account(session, "梁平发布", registered=parse_local("2026-11-01").date())
        session.commit()
    yield engine
    engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@freeze_time("2026-11-23 01:00:00")
def test_a_bad_file_from_the_command_line_stores_nothing(cli_db: Engine, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path / "posts.csv", "日期,标题,原创\n2026-11-20,好的一行,是\n2026-11-31,坏的一行,否\n")
    code, out, err = _run(capsys, "accounts", "posts", "梁平发布", str(path))
    assert code == 2 and out == ""
    assert "第3行：日期“2026-11-31”不存在" in err and "共 1 行有误，未导入任何记录" in err
    with Session(cli_db) as session:
        assert session.exec(select(AccountPost)).all() == []
    code, _, err = _run(capsys, "accounts", "posts", "没有这个号", str(path))
    assert code == 2 and "第3行" in err       # the file is checked before the account is looked up


@freeze_time("2026-11-23 01:00:00")
def test_importing_counts_each_post_once_however_often_it_is_recorded(
        cli_db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path / "posts.csv", "发布时间,标题,原创\n"
                "2026-11-20 10:00,区政府常务会议召开,原创\n"
                "2026-11-20 16:00,每日一读,转载\n"
                "2026-11-21 16:00,每日一读,转载\n"
                "2026-11-21 16:00,每日一读,转载\n")            # two posts alike on one day: two
    code, out, _ = _run(capsys, "accounts", "posts", "梁平发布", str(path))
    assert code == 0 and out.startswith("梁平发布：读取 4 条发布记录，新增 4 条，已记录过 0 条。")
    code, out, _ = _run(capsys, "accounts", "posts", "梁平发布", str(path))
    assert code == 0 and "新增 0 条，已记录过 4 条" in out
    code, _, err = _run(capsys, "accounts", "posts", "没有这个号", str(path))
    assert code == 1 and "没有找到政务新媒体账号“没有这个号”" in err
    with Session(cli_db) as session:
        account = session.exec(select(Account)).one()
        # The same post read later from the feed, a few minutes off and with a stray space.
        again = [PostIn(parse_local("2026-11-20T10:03"), "区政府常务会议召开 ", True)]
        done = record_posts(session=session, account=account, posts=again, source="feed", now=NOW, actor="system")
        assert (done.new, done.already) == (0, 1)
        assert len(_rows(session, account.id or 0)) == 4


# ---- feeds -----------------------------------------------------------------------------

def _fetcher(port_host: str = "feeds.example.test") -> tuple[GuardedFetcher, LoopbackNetwork]:
    """A fetcher whose resolver puts ``port_host`` at a public address that is, in fact,
    the local test server."""
    network = LoopbackNetwork()
    return GuardedFetcher(resolver=FakeResolver({port_host: [PUBLIC_IP]}), network=network), network


def test_an_rss_feed_is_read_through_the_guarded_fetcher_and_counted_once(engine: Engine) -> None:
    fetcher, network = _fetcher()
    body = RSS.format(encoding="gb2312").encode("gb2312")       # a GB2312 feed, as many still are
    with http_server(page(body, **{"Content-Type": "application/rss+xml"})) as (port, seen), \
            Session(engine) as session:
        account = make_account(session, "梁平发布", registered=parse_local("2026-11-01").date(),
                               feed_url=f"http://feeds.example.test:{port}/rss")
        [target] = feed_targets(session=session)
        for _ in range(2):
            result = asyncio.run(read_feed(target, fetcher=fetcher, now=NOW))
            done = record_feed(session=session, result=result, now=NOW)
            assert done is not None
        assert (done.new, done.already) == (0, 2)                 # the second read added nothing
        rows = _rows(session, account.id or 0)
        assert [(local(r.posted_at).strftime("%m-%d %H:%M"), r.title, r.original, r.source) for r in rows] == [
            ("11-20 18:30", "区政府常务会议召开", True, "feed"),
            ("11-21 10:00", "冬季森林防火提示", False, "feed")]    # 02:00 GMT is 10:00 in Beijing
    assert network.connected == [(PUBLIC_IP, port), (PUBLIC_IP, port)] and seen.paths == ["/rss", "/rss"]


def test_an_atom_feed_is_read_with_its_published_dates_and_original_category() -> None:
    posts = parse_feed(ATOM.encode("utf-8"), now=NOW)
    assert [(local(p.posted_at).strftime("%m-%d %H:%M"), p.title, p.original) for p in posts] == [
        ("11-22 10:00", "高原特色农业 & 乡村振兴", True),          # published, not updated
        ("11-21 16:00", "转载：天气预报", False)]


def test_a_json_feed_is_read_and_an_entry_far_in_the_future_is_not_believed() -> None:
    body = ('{"version": "https://jsonfeed.org/version/1.1", "title": "宝鸡发布", "items": ['
            '{"id": "1", "title": "秦岭生态保护", "date_published": "2026-11-22T09:00:00+08:00", "tags": ["原创"]},'
            '{"id": "2", "content_text": "一条没有标题的短讯", "date_published": "2026-11-22T12:00:00+08:00"},'
            '{"id": "3", "title": "时钟错了", "date_published": "2027-01-01T00:00:00+08:00"}]}')
    posts = parse_feed(body.encode("utf-8"), now=NOW)
    assert [(p.title, p.original) for p in posts] == [("秦岭生态保护", True), ("一条没有标题的短讯", False)]


@pytest.mark.parametrize("body", [
    # billion laughs: entities that expand to entities
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
    b"<rss><channel><item><title>&b;</title></item></channel></rss>",
    # an external entity reading a local file
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<rss><channel><item><title>&x;</title><pubDate>Fri, 20 Nov 2026 10:00:00 +0800</pubDate></item>"
    b"</channel></rss>",
])
def test_a_feed_declaring_entities_is_refused_whole(body: bytes) -> None:
    with pytest.raises(FeedError, match="实体"):
        parse_feed(body, now=NOW)


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html><body>404</body></html>", "不是 RSS、Atom 或 JSON Feed 订阅"),
    (b"<rss><channel><item>", "不是有效的 XML"),
    (b'{"title": "no items"}', "缺少 items"),
])
def test_what_is_not_a_feed_says_so(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed(body, now=NOW)


def test_a_feed_on_a_private_address_is_refused_by_the_fetcher(engine: Engine) -> None:
    network = LoopbackNetwork()
    fetcher = GuardedFetcher(resolver=FakeResolver({"intranet.example.test": ["10.1.2.3"]}), network=network)
    with http_server(page(RSS.format(encoding="utf-8").encode())) as (port, seen), Session(engine) as session:
        make_account(session, "内网号", registered=parse_local("2026-11-01").date(),
                     feed_url=f"http://127.0.0.1:{port}/rss")
        make_account(session, "改名号", registered=parse_local("2026-11-01").date(),
                     feed_url="http://intranet.example.test/rss")    # a name that resolves inside
        results = [asyncio.run(read_feed(t, fetcher=fetcher, now=NOW)) for t in feed_targets(session=session)]
        assert [(r.target.name, r.error) for r in results] == [("内网号", NOT_ALLOWED), ("改名号", NOT_ALLOWED)]
        assert [record_feed(session=session, result=r, now=NOW) for r in results] == [None, None]
        assert session.exec(select(AccountPost)).all() == []
    assert network.connected == [] and seen.paths == []


def test_the_periodic_job_records_every_active_accounts_feed(engine: Engine) -> None:
    fetcher, _ = _fetcher()
    with http_server(page(ATOM.encode())) as (port, _seen), Session(engine) as session:
        account = make_account(session, "云南发布", registered=parse_local("2026-11-01").date(),
                               feed_url=f"http://feeds.example.test:{port}/atom")
        make_account(session, "已关停号", registered=parse_local("2026-11-01").date(),
                     feed_url=f"http://feeds.example.test:{port}/atom", state=AccountState.closed)
        session.commit()
        assert fetch_feeds_job(session, NOW, NOW, fetcher=fetcher) == 2
        session.commit()
        assert fetch_feeds_job(session, NOW, NOW, fetcher=fetcher) == 0
        assert len(_rows(session, account.id or 0)) == 2


async def test_the_periodic_job_also_runs_from_inside_an_event_loop(engine: Engine) -> None:
    """The drill mode ticks the scheduler on the event loop's own thread."""
    fetcher, _ = _fetcher()
    with http_server(page(ATOM.encode())) as (port, _seen), Session(engine) as session:
        make_account(session, "云南发布", registered=parse_local("2026-11-01").date(),
                     feed_url=f"http://feeds.example.test:{port}/atom")
        session.commit()
        assert fetch_feeds_job(session, NOW, NOW, fetcher=fetcher) == 2


@freeze_time("2026-11-23 01:00:00")
def test_fetching_from_the_command_line_says_how_each_account_went(
        cli_db: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fetcher, _ = _fetcher()
    monkeypatch.setattr(account_posts, "feed_fetcher", lambda settings: fetcher)
    with http_server(page(RSS.format(encoding="utf-8").encode())) as (port, _seen):
        with Session(cli_db) as session:
            first = session.exec(select(Account)).one()
            first.feed_url = f"http://feeds.example.test:{port}/rss"
            session.add(first)
            make_account(session, "内网号", registered=parse_local("2026-11-01").date(),
                         feed_url=f"http://127.0.0.1:{port}/rss")
            session.commit()
        code, out, _ = _run(capsys, "accounts", "fetch")
        assert code == 1
        assert out.splitlines() == [
            f"[1/2] 内网号：读取失败，{NOT_ALLOWED}",
            "[2/2] 梁平发布：订阅中 2 条，新增 2 条，已记录过 0 条",
            "共 2 个账号，新增 2 条，1 个读取失败。"]
        code, out, _ = _run(capsys, "accounts", "fetch", "梁平发布")
        assert code == 0 and out.splitlines()[0] == "[1/1] 梁平发布：订阅中 2 条，新增 0 条，已记录过 2 条"
