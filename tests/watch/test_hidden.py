"""Hidden links and links to bad sites (watch/hidden.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from roster.models import Site
from watch.hidden import BadLinkList, hidden_link_findings
from watch.models import FindingKind
from watch.terms import LexiconError
from watch.text import read_page, visible_text
from watch.types import finding_key

HOME = "https://www.cqlp.gov.cn/"


def site() -> Site:
    return Site(id=3, name="梁平区人民政府网站", url=HOME, unit="区政府办",
                created_at=datetime(2026, 1, 5, tzinfo=UTC))


def page(body: str, head: str = "") -> str:
    return (f"<html><head><title>梁平区人民政府</title>{head}</head><body>"
            '<div class="nav"><a href="/">首页</a><a href="/zwgk/">政务公开</a></div>'
            f"{body}<div class=\"foot\">主办：梁平区人民政府办公室</div></body></html>")


@pytest.mark.parametrize("hiding", [
    'style="display:none"', 'style="visibility:hidden"', 'style="position:absolute;left:-9999px"',
    'style="position: fixed; top: -1000px"', 'style="text-indent:-9999px"', 'style="font-size:0"',
    'style="width:0;height:0;overflow:hidden"', 'style="opacity:0"', 'style="filter:alpha(opacity=0)"',
    "hidden"])
def test_each_way_of_hiding_a_spam_link_is_found(hiding: str) -> None:
    html = page(f'<div {hiding}><a href="http://www.shop-example.com/p/1.html">代开发票</a></div>')
    (found,) = hidden_link_findings(site(), HOME, html)
    assert found.kind == FindingKind.hidden_link and found.site_id == 3 and found.url == HOME
    assert found.key == finding_key(HOME, "http://www.shop-example.com/p/1.html")
    assert found.detail.startswith("隐藏链接指向站外网站 www.shop-example.com：上级元素 div")
    assert found.data["hidden"] is True and found.data["text"] == "代开发票"


def test_a_style_block_rule_on_the_link_id_or_class_hides_it() -> None:
    head = "<style>/* 页脚 */ #ft-links {position:absolute; top:-999px} a.s{display:none !important}</style>"
    html = page('<p id="ft-links"><a href="http://a.example.net/">甲</a></p>'
                '<a class="s" href="http://b.example.org/">乙</a>', head)
    found = hidden_link_findings(site(), HOME, html)
    assert [f.data["host"] for f in found] == ["a.example.net", "b.example.org"]
    assert "页面样式规则“#ft-links”" in found[0].detail
    assert found[1].data["hidden_by"] == "链接本身：display:none（页面样式规则“a.s”）"


def test_a_visible_external_link_is_not_a_finding() -> None:
    html = page('<div class="yqlj">友情链接：<a href="https://www.people.com.cn/">人民网</a>'
                '<a href="http://www.news.cn/">新华网</a></div>')
    assert hidden_link_findings(site(), HOME, html) == []


def test_hidden_links_to_the_site_itself_or_to_government_sites_are_not_findings() -> None:
    html = page("""<div class="tab"><ul id="tab2" style="display:none">
      <li><a href="/xwzx/bmdt/202611/t20261120_9.html">部门动态</a></li>
      <li><a href="https://zwgk.cqlp.gov.cn/xxgk/">区政务公开平台</a></li></ul></div>
      <select><option>重庆市政府网站群</option></select>
      <ul class="sites" style="display:none"><li><a href="https://www.cq.gov.cn/">重庆市人民政府</a></li>
      <li><a href="http://www.liangping.cq.gov.cn/">梁平区某部门</a></li></ul>""")
    assert hidden_link_findings(site(), HOME, html) == []


def test_a_visible_link_to_a_gambling_or_porn_domain_is_found() -> None:
    html = page('<a href="https://www.lucky-casino.example/">在线娱乐</a><a href="http://m.example.xxx/">视频</a>'
                '<a href="http://bet365-cn.example.com/">体育</a>')
    found = hidden_link_findings(site(), HOME, html)
    assert [(f.data["category"], f.data["pattern"]) for f in found] == [
        ("赌博", "casino"), ("色情", ".xxx"), ("赌博", "bet365")]
    assert found[0].detail == "链接指向赌博网站 www.lucky-casino.example（命中“casino”），链接文字“在线娱乐”"
    assert found[0].data["hidden"] is False


def test_link_text_of_private_servers_counts_only_off_the_site() -> None:
    html = page('<a href="http://www.game-example.com/">新开传奇私服，今日开区</a>'
                '<a href="/xwzx/202611/t20261101_3.html">区公安局破获一起“时时彩”网络赌博案</a>')
    found = hidden_link_findings(site(), HOME, html)
    assert [(f.data["host"], f.data["category"]) for f in found] == [("www.game-example.com", "私服")]


def test_a_hidden_bad_link_says_both_and_repeats_are_one_finding() -> None:
    link = '<a href="http://www.example-baccarat.com/">百家乐</a>'
    html = page(f'<div style="display:none">{link}{link}</div>{link}')
    (found,) = hidden_link_findings(site(), HOME, html)
    assert found.data["count"] == 3
    assert "命中“baccarat”" in found.detail and "且被隐藏" in found.detail
    assert found.detail.endswith("（本页共 3 处）")


def test_ui_patterns_are_not_alarms() -> None:
    head = ("<style>.share{display:none} @media (max-width:768px){.share{display:block}}"
            ".yqlj ul{display:none} .yqlj:hover ul, .yqlj:focus-within ul{display:block}</style>")
    html = page('<div class="share"><a href="https://weibo.com/cqlp">分享到微博</a></div>'
                '<ul style="font-size:0"><li><a href="https://www.example.com/zt"><img src="zt.png"></a></li></ul>'
                '<div class="yqlj">媒体链接<ul><li><a href="http://www.people.com.cn/">人民网</a></li></ul></div>',
                head)
    assert hidden_link_findings(site(), HOME, html) == []


def test_a_hover_rule_that_hides_does_not_make_a_link_hidden() -> None:
    head = "<style>.ad{display:none} .menu a:hover{opacity:0}</style>"
    html = page('<div class="menu"><a href="http://www.example.org/">外部</a></div>'
                '<div class="ad"><a href="http://www.spam-example.com/">广告</a></div>', head)
    assert [f.data["host"] for f in hidden_link_findings(site(), HOME, html)] == ["www.spam-example.com"]


def test_a_page_hidden_until_a_script_shows_it_and_print_styles_are_not_alarms() -> None:
    head = ('<style id="antiClickjack">body{display:none !important;}</style>'
            '<style media="print">.share{display:none}</style>')
    html = page('<div class="share"><a href="https://weibo.com/cqlp">政务微博</a></div>', head)
    assert hidden_link_findings(site(), HOME, html) == []
    assert "政务微博" in visible_text(html)


def test_a_page_parsed_once_gives_the_same_findings() -> None:
    html = page('<div style="display:none"><a href="http://www.shop-example.com/">代开发票</a></div>')
    parsed = read_page(html, HOME)
    assert hidden_link_findings(site(), HOME, "", page=parsed) == hidden_link_findings(site(), HOME, html)


def test_the_bad_link_list_format_is_checked() -> None:
    with pytest.raises(LexiconError) as caught:
        BadLinkList.parse(["casino", "[赌博]", "two words"], source="mine.txt")
    assert caught.value.problems == ["mine.txt 第 1 行“casino”：条目前缺少 [类别]",
                                     "mine.txt 第 3 行“two words”：一行只写一条，不能有空格"]
    custom = BadLinkList.parse(["[诈骗]", "fake-bank", ".scam"])
    html = page('<a href="http://fake-bank.example.com/">网银升级</a><a href="http://www.casino.example/">x</a>')
    assert [f.data["category"] for f in hidden_link_findings(site(), HOME, html, bad_links=custom)] == ["诈骗"]
