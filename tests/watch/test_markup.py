"""The parse-work estimate: hostile shapes (deep nesting, huge selects, tags hidden from a
naive scan) are over the cap; ordinary and sloppy pages — unclosed ``p``/``li``/``td``
and inline tags, scripts full of ``<`` comparisons, commented-out markup, inline SVG —
are far below it, and the estimate does not grow with their size the way nesting does."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from watch.markup import MAX_PARSE_WORK, parse_cost
from watch.pages import Page


def page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head><meta charset=utf-8><title>区政府</title>{head}</head><body>{body}</body></html>"


def nested(depth: int, tag: str = "div") -> str:
    return f"<{tag}>" * depth + "正文" + f"</{tag}>" * depth


def sloppy_cms_page(rows: int) -> str:
    """An old table-layout CMS page: unclosed cells, fonts, paragraphs and list items,
    minified script, commented-out blocks, inline SVG icons, a county drop-down."""
    script = "<script>(function(){for(var i=0;i<n.length;i++){if(a<b&&c<d){x=e<f?g:h}}" \
             "var s='<div class=\"x\">'+t+'</div>';})();</script>"
    table = "<table>" + "".join(
        f"<tr><td><font color=red>{i}<td><a href='/xxgk/{i}.html'>关于做好第{i}项工作的通知</a>"
        f"<td>2026-11-{i % 28 + 1:02d}<br><img src=dot.gif></tr>" for i in range(rows)) + "</table>"
    icons = "".join("<span class=ic><svg viewBox='0 0 16 16'><path d='M0 0L16 16'/></svg></span>"
                    for _ in range(50))
    old = "".join(f"<!-- <div class='old{i}'><p>旧版栏目 -->" for i in range(100))
    unclosed = "".join(f"<div class=item><span>项目{i}<b>重点</div>" for i in range(rows // 5))
    paragraphs = "".join(f"<p>第{i}段<p>又一段<br>" for i in range(rows // 5))
    items = "<ul>" + "".join(f"<li><a href='/gzdt/{i}.html'>动态{i}</a><span>11-{i % 28 + 1:02d}"
                             for i in range(rows // 5)) + "</ul>"
    county = "<select name=xq>" + "".join(f"<option value={i}>县{i}" for i in range(300)) + "</select>"
    return page(script * 20 + table + icons + old + unclosed + paragraphs + items + county,
                head="<style>.nav>li{float:left}</style>" + script)


def test_ordinary_and_sloppy_pages_are_far_below_the_cap() -> None:
    assert parse_cost(page("<p>欢迎访问</p>")).work < 100
    small, large = parse_cost(sloppy_cms_page(1_000)), parse_cost(sloppy_cms_page(10_000))
    assert not large.too_costly and large.work < MAX_PARSE_WORK // 20
    assert large.depth == small.depth < 10                   # sloppiness does not pile up
    assert large.work < 20 * small.work                      # ten times the page, about ten times the work


def test_deep_nesting_is_over_the_cap() -> None:
    cost = parse_cost(page(nested(20_000)))
    assert cost.too_costly and cost.depth > 5_000
    assert not parse_cost(page(nested(500))).too_costly      # deep, but still an ordinary parse
    for shape in ("span", "font", "ul"):
        assert parse_cost(page(nested(20_000, shape))).too_costly, shape
    assert parse_cost(page("<ul><li>" * 20_000)).too_costly          # lists in list items
    assert not parse_cost(page("<li>" * 20_000 + "<p>" * 20_000)).too_costly   # each closes the last


def test_end_tags_that_close_nothing_do_not_hide_nesting() -> None:
    # </span> cannot close the span under a div: the parser ignores it, the stack grows
    assert parse_cost(page("<span><div></span>" * 20_000)).too_costly
    assert parse_cost(page("<div></p></li></td>" * 20_000)).too_costly


def test_a_huge_select_is_over_the_cap() -> None:
    cost = parse_cost(page("<select>" + "<option>县" * 20_000 + "</select>"))
    assert cost.too_costly and cost.options > 2_000 and "下拉列表" in Page(
        "u", "u", 200, 1, page("<select>" + "<option>县" * 20_000), "").unparsable
    assert not parse_cost(page("<select><option>县</option></select>" * 20_000)).too_costly


def test_markup_read_as_text_is_not_counted() -> None:
    for wrapper in ("<script>{}</script>", "<style>{}</style>", "<textarea>{}</textarea>",
                    "<title>{}</title>", "<!--{}-->", "<xmp>{}</xmp>"):
        assert not parse_cost(page(wrapper.format(nested(20_000).replace("</div>", "")))).too_costly, wrapper
    assert not parse_cost(page("<script>" + "if(i<n&&a<b){c<d}" * 20_000 + "</script>")).too_costly


def test_tags_cannot_hide_from_the_scan() -> None:
    body = nested(20_000)
    # a comment opener or a script inside an attribute value is part of the value
    assert parse_cost(page("<a title='<!--'>" + body + "-->")).too_costly
    assert parse_cost(page("<a title=\"<script>\">" + body)).too_costly
    # a quote opens a value only after "=": this tag ends at the first ">"
    assert parse_cost(page("<a =\">\" " + body + '">')).too_costly
    # a script's string cannot run past its end tag
    assert parse_cost(page("<script>var s = '<a title=\"';</script>" + body + '">')).too_costly
    # <style> in a select and in svg is no raw text for the parser: nor for the scan
    assert parse_cost(page("<select><style>" + body)).too_costly
    assert parse_cost(page("<svg><style>" + nested(20_000, "g"))).too_costly
    # <!--> is a whole comment
    assert parse_cost(page("<!-->" + body)).too_costly


def test_pages_called_cheap_are_shallow_for_the_parser() -> None:
    """The model closes what the parser closes: the real trees are as shallow."""
    for html in (sloppy_cms_page(2_000), page("<li>" * 20_000)):
        tree = LexborHTMLParser(html)
        depth, stack = 0, [(tree.root, 1)]
        while stack:
            node, level = stack.pop()
            depth = max(depth, level)
            child = node.first_child if node is not None else None
            while child is not None:
                stack.append((child, level + 1))
                child = child.next
        assert depth < 20                                    # the real tree is shallow too


def test_a_page_says_why_it_is_not_parsed() -> None:
    deep = Page("http://site.test/a", "http://site.test/a", 200, 12, page(nested(20_000)), "")
    assert deep.unparsable.startswith("页面结构异常（标签嵌套达 ") and "解析耗时过长" in deep.unparsable
    assert Page("http://site.test/b", "http://site.test/b", 200, 12, page("<p>正常</p>"), "").unparsable == ""
