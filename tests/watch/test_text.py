"""The text a reader sees and the links of a page (watch/text.py)."""

from __future__ import annotations

from watch.text import links, read_page, registrable_domain, same_site, visible_text

HOME = "https://www.cqlp.gov.cn/index.html"


def test_scripts_styles_comments_and_templates_are_not_text() -> None:
    html = """<html><head><title>梁平区人民政府</title>
    <style>.nav{color:red}</style><script>var notice = "不该出现";</script></head>
    <body><!-- 旧栏目：不该出现 --><noscript>请启用脚本</noscript>
    <template><p>模板内容</p></template><p>区政府召开常务会议</p></body></html>"""
    assert visible_text(html) == "梁平区人民政府 区政府召开常务会议"


def test_inline_tags_join_and_blocks_separate() -> None:
    html = ('<p>全面<span style="font-family:宋体">部</span><span>署</span>安全生产工作</p>'
            "<p>国务院</p><p>办公厅</p><div>一<br>二</div>")
    assert visible_text(html) == "全面部署安全生产工作 国务院 办公厅 一 二"


def test_line_breaks_between_chinese_characters_vanish_and_spaces_collapse() -> None:
    html = "<p>国务院\n        办公厅　　印发\u00a0通知\u200b了 Office  2026</p>"
    assert visible_text(html) == "国务院办公厅 印发 通知了 Office 2026"


def test_elements_hidden_by_css_are_not_text() -> None:
    html = """<style>#spam{position:absolute;top:-9999px}</style>
    <p>可见一</p><div style="display:none">隐藏一</div><div style="visibility: hidden">隐藏二</div>
    <div style="font-size:0px">隐藏三</div><div id="spam">隐藏四</div><div hidden>隐藏五</div>
    <div style="visibility:hidden"><span style="visibility:visible">可见二</span></div>"""
    assert visible_text(html) == "可见一 可见二"


def test_bad_html_is_read_like_a_browser() -> None:
    html = "<div><p>第一段<p>第二段</div></span><table><p>表格里的段落<tr><td>单元格</table><b>未闭合"
    text = visible_text(html)
    for part in ("第一段", "第二段", "表格里的段落", "单元格", "未闭合"):
        assert part in text
    assert visible_text("") == ""


def test_links_are_resolved_and_only_http() -> None:
    html = """<a href="/xwzx/2026/t1.html#top">新闻</a><a href=" zwgk/index.html ">政务公开</a>
    <a href="javascript:void(0)">菜单</a><a href="mailto:zfb@cqlp.gov.cn">信箱</a>
    <a href="https://www.gov.cn/">中国政府网</a><a>无地址</a>"""
    found = links(html, HOME)
    assert [link.href for link in found] == [
        "https://www.cqlp.gov.cn/xwzx/2026/t1.html", "https://www.cqlp.gov.cn/zwgk/index.html",
        "https://www.gov.cn/"]
    assert [link.text for link in found] == ["新闻", "政务公开", "中国政府网"]
    assert not any(link.hidden for link in found)


def test_base_href_is_honoured() -> None:
    html = '<head><base href="https://www.cqlp.gov.cn/zwgk/"></head><a href="fdzdgknr/">法定主动公开内容</a>'
    assert links(html, HOME)[0].href == "https://www.cqlp.gov.cn/zwgk/fdzdgknr/"


def test_link_hidden_by_a_style_rule_on_an_ancestor_says_where() -> None:
    html = ("<style>.yqlj{display:none}</style>"
            '<div class="yqlj"><ul><li><a href="http://www.example.com/">友情链接</a></li></ul></div>')
    (link,) = links(html, HOME)
    assert link.hidden
    assert "div.yqlj" in link.hidden_by and "display:none" in link.hidden_by
    assert "页面样式规则" in link.hidden_by


def test_a_rule_shown_again_in_a_media_query_does_not_hide() -> None:
    html = ("<style>.m-nav{display:none} @media (max-width:768px){.m-nav{display:block}}</style>"
            '<nav class="m-nav"><a href="https://weibo.com/cqlp">政务微博</a></nav>')
    assert not links(html, HOME)[0].hidden


def test_font_size_zero_hides_text_links_but_not_image_links_or_resized_children() -> None:
    html = """<ul style="font-size:0">
      <li><a href="http://a.example.com/"><img src="banner.png" alt="专题"></a></li>
      <li><a href="http://b.example.com/">看不见</a></li>
      <li style="font-size:14px"><a href="http://c.example.com/">看得见</a></li>
      <li style="font-size:1.2em"><a href="http://d.example.com/">仍是零</a></li></ul>"""
    hidden = {link.href.split("//")[1].split(".")[0]: link.hidden for link in links(html, HOME)}
    assert hidden == {"a": False, "b": True, "c": False, "d": True}
    assert links(html, HOME)[0].text == "专题"


def test_zero_height_box_holding_a_video_is_not_hidden() -> None:
    html = ('<div style="height:0;padding-bottom:56.25%;overflow:hidden;position:relative">'
            '<a href="https://v.example.com/1">视频</a></div>'
            '<div style="height:0;overflow:hidden"><a href="http://x.example.com/">藏起来</a></div>')
    assert [link.hidden for link in links(html, HOME)] == [False, True]


def test_scripts_iframes_and_meta_refresh() -> None:
    html = """<meta http-equiv="Refresh" content="3; URL='/new/index.html'">
    <script src="/js/jquery.js?v=20261123"></script><script>inline()</script>
    <iframe src="https://player.example.com/embed?vid=9">视频</iframe>"""
    page = read_page(html, HOME)
    assert page.scripts == ["https://www.cqlp.gov.cn/js/jquery.js"]
    assert page.iframes == ["https://player.example.com/embed"]
    assert page.meta_refresh == "3;url=https://www.cqlp.gov.cn/new/index.html"
    assert "视频" not in page.text


def test_registrable_domains() -> None:
    assert registrable_domain("www.cqlp.gov.cn") == "cqlp.gov.cn"
    assert registrable_domain("zwgk.cqlp.gov.cn") == "cqlp.gov.cn"
    assert registrable_domain("news.example.com") == "example.com"
    assert registrable_domain("www.xinhua.com.cn") == "xinhua.com.cn"
    assert registrable_domain("10.1.2.3") == "10.1.2.3"
    assert same_site("zwgk.cqlp.gov.cn", "www.cqlp.gov.cn")
    assert not same_site("www.cq.gov.cn", "www.cqlp.gov.cn")
