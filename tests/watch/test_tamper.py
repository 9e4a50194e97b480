"""Tampering against a homepage baseline (watch/tamper.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from roster.models import Site
from watch.models import Baseline, FindingKind
from watch.tamper import apply_to_row, compare, snapshot, snapshot_from_row, tamper_findings
from watch.text import visible_text

HOME = "https://www.cqlp.gov.cn/"
NOW = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)


def site() -> Site:
    return Site(id=5, name="梁平区人民政府网站", url=HOME, unit="区政府办",
                created_at=datetime(2026, 1, 5, tzinfo=UTC))


def homepage(news: str = "区政府召开第45次常务会议", *, extra: str = "", head: str = "",
             articles: int = 24, script: str = "/js/jquery.min.js?v=20261101") -> str:
    items = "".join(f'<li><a href="/xwzx/zwyw/202611/t202611{n:02d}_{n}.html">{news}（{n}）</a></li>'
                    for n in range(articles))
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>重庆市梁平区人民政府</title>
    <script src="{script}"></script><script src="https://hm.baidu.com/hm.js"></script>{head}</head>
    <body><div class="banner">重庆市梁平区人民政府</div><ul class="news">{items}</ul>
    <div class="yqlj"><a href="https://www.gov.cn/">中国政府网</a><a href="https://www.cq.gov.cn/">重庆市人民政府</a>
    <a href="http://www.people.com.cn/">人民网</a></div>{extra}
    <iframe src="https://map.cqlp.gov.cn/embed?z=12" width="300"></iframe>
    <div class="foot">主办：重庆市梁平区人民政府办公室 渝ICP备00000000号</div></body></html>"""


def test_the_first_run_takes_the_baseline_and_reports_nothing() -> None:
    assert tamper_findings(site(), HOME, None, snapshot(homepage(), HOME)) == []


def test_news_updated_and_whitespace_changed_are_not_tampering() -> None:
    old = snapshot(homepage(), HOME)
    updated = snapshot(homepage("区委常委会传达学习全会精神", articles=30), HOME)
    assert updated.text_sha256 != old.text_sha256
    assert compare(old, updated) == []
    spaced = snapshot(homepage().replace("<li>", "\n      <li>  ").replace("主办：", "主办：\n   "), HOME)
    assert spaced.text_sha256 == old.text_sha256
    assert compare(old, spaced) == []
    bumped = snapshot(homepage(script="/js/jquery.min.js?v=20261123"), HOME)  # cache busting
    assert compare(old, bumped) == []


def test_an_injected_script_is_tampering_and_persists_as_one_finding() -> None:
    old = snapshot(homepage(), HOME)
    hacked_html = homepage(head='<script src="https://cdn.bad-example.com/tj.js?id=88"></script>')
    hacked = snapshot(hacked_html, HOME)
    (found,) = tamper_findings(site(), HOME, old, hacked)
    assert found.kind == FindingKind.tampered and found.site_id == 5 and found.url == HOME
    assert found.detail == "页面疑似被篡改：新增外部脚本 https://cdn.bad-example.com/tj.js"
    assert found.data["changes"] == [{"kind": "script", "detail": "新增外部脚本 https://cdn.bad-example.com/tj.js",
                                      "added": ["https://cdn.bad-example.com/tj.js"], "removed": []}]
    assert "https://cdn.bad-example.com/tj.js" in found.data["new"]["scripts"]
    assert "https://cdn.bad-example.com/tj.js" not in found.data["old"]["scripts"]
    again = tamper_findings(site(), HOME, old, snapshot(hacked_html.replace("第45次", "第46次"), HOME))
    assert again[0].key == found.key
    worse = tamper_findings(site(), HOME, old, snapshot(
        hacked_html.replace("</body>", '<iframe src="http://x.bad-example.net/a.html" width=0></iframe></body>'), HOME))
    assert worse[0].key != found.key


def test_iframe_and_meta_refresh_changes_are_tampering() -> None:
    old = snapshot(homepage(), HOME)
    framed = snapshot(homepage(extra='<iframe src="http://ad.example.org/p.html" style="display:none"></iframe>'), HOME)
    (change,) = compare(old, framed)
    assert change.kind == "iframe" and change.added == ("http://ad.example.org/p.html",)
    assert "新增内嵌框架（iframe） http://ad.example.org/p.html" in change.detail
    moved = snapshot(homepage(head='<meta http-equiv="refresh" content="0;url=http://www.casino.example/">'), HOME)
    (change,) = compare(old, moved)
    assert change.kind == "meta_refresh"
    assert change.detail == "新增自动跳转（meta refresh）：0;url=http://www.casino.example/"
    (back,) = compare(moved, old)
    assert back.detail.startswith("自动跳转（meta refresh）被移除")


def test_links_to_a_new_off_site_host_are_tampering_but_not_new_site_or_gov_links() -> None:
    old = snapshot(homepage(), HOME)
    ours = snapshot(homepage(extra='<a href="https://zwgk.cqlp.gov.cn/new/">政务公开</a>'
                                   '<a href="https://www.mee.gov.cn/">生态环境部</a>'), HOME)
    assert compare(old, ours) == []
    spam = snapshot(homepage(extra='<a href="http://www.pills-example.com/">x</a>').replace(
        '<a href="http://www.people.com.cn/">人民网</a>', ""), HOME)
    (change,) = compare(old, spam)
    assert change.kind == "link_host"
    assert change.detail == "新增指向站外网站 www.pills-example.com 的链接；不再链接 www.people.com.cn"
    removed_only = snapshot(homepage().replace('<a href="http://www.people.com.cn/">人民网</a>', ""), HOME)
    assert compare(old, removed_only) == []


def test_a_defaced_homepage_is_tampering() -> None:
    old = snapshot(homepage(), HOME)
    defaced = snapshot("<html><body><h1>Hacked</h1><a href='http://t.example.io/'>contact</a></body></html>", HOME)
    kinds = [c.kind for c in compare(old, defaced)]
    assert kinds == ["script", "iframe", "link_host", "links_dropped"]
    (found,) = tamper_findings(site(), HOME, old, defaced)
    assert "页面链接由 27 个骤减到 1 个" in found.detail
    assert len(found.detail) <= 500


def test_a_baseline_row_round_trips_a_snapshot() -> None:
    snap = snapshot(homepage(), HOME)
    row = Baseline(site_id=5, url=HOME, taken_at=datetime(2026, 1, 1, tzinfo=UTC), text_sha256="")
    apply_to_row(row, snap, NOW)
    assert row.taken_at == NOW and row.html == snap.html
    assert json.loads(row.scripts) == ["https://hm.baidu.com/hm.js", "https://www.cqlp.gov.cn/js/jquery.min.js"]
    assert "https://www.gov.cn/" in json.loads(row.links)
    assert snapshot_from_row(row) == snap
    assert compare(snapshot_from_row(row), snapshot(homepage("新的要闻"), HOME)) == []
    assert "重庆市梁平区人民政府" in visible_text(row.html)
