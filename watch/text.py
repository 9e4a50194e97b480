"""What a reader sees on a page, for the content checks of site watch (issue 17 item 2).

:func:`read_page` parses a page once with selectolax (lexbor, the HTML standard's parser,
so broken markup is read the way a browser reads it) and gives:

- ``text`` — the text a reader sees: scripts, styles, ``noscript``, ``template``, iframe
  fallback content and comments are left out, and so is every element hidden by CSS (see
  below). Text split across inline tags joins up (``部<span>署</span>`` reads ``部署``);
  block elements and ``<br>`` separate. Whitespace runs become one space; a line break
  between two CJK characters disappears (as browsers lay out Chinese); zero-width
  characters and private-use icon-font glyphs are dropped. The ``<title>`` is included:
  readers see it in the tab and in search results.
- ``links`` — every ``<a href>`` / ``<area href>`` to http(s), resolved against the page
  (and its ``<base href>``), fragment dropped, with its text and whether CSS hides it.
- ``scripts`` / ``iframes`` — sources of external scripts and of (i)frames, resolved, query
  and fragment dropped (so ``?v=20261123`` cache-busting is not a change).
- ``meta_refresh`` — a ``<meta http-equiv="refresh">`` as ``delay;url=absolute``, or "".

Hidden by CSS means, on the element or an ancestor, in its inline ``style`` or in a rule of
a ``<style>`` block of the page (matched with lexbor's own selector engine; rules inside
``@media`` and rules for ``:hover``/``:focus``… never hide, but a showing value there
cancels a hiding one — the mobile menu, the drop-down list; other pseudo-classes are not
evaluated): ``display:none``; ``visibility:hidden|collapse`` (a
descendant's ``visibility:visible`` shows it again); ``opacity:0`` or IE's
``filter:alpha(opacity=0)``; off-screen (``position:absolute|fixed`` with ``left``,
``top`` or ``right`` ≤ -999px, or ``text-indent`` / ``margin-left`` / ``margin-top`` ≤
-999px); ``font-size:0`` (unless a descendant sets an absolute size again; a link holding
an image still shows); zero ``width``/``height`` (or ``max-``) with ``overflow:hidden``
(the zero-height box with padding that holds responsive videos is not hidden); the
``hidden`` attribute. ``<style media="print">`` counts as an ``@media`` rule. Hiding
``<html>`` or ``<body>`` is ignored: pages do it to show themselves by script (the
anti-clickjacking snippet), never to hide one link. External stylesheets are not fetched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

#: Elements whose content a reader never sees as text.
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "frame", "object",
                       "embed", "applet", "canvas", "audio", "video"})
#: Elements that start a new line, so their text never runs into the text next to them.
BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "center", "dd", "details",
    "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "option", "p",
    "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr",
    "ul", "body", "head", "html", "select", "textarea", "legend", "menu"})
_MEDIA_TAGS = ("img", "svg", "picture", "canvas", "video", "input")
#: Hiding these hides the page until a script shows it (the anti-clickjacking
#: ``body{display:none}`` of security guides): not hiding as spam does it.
_WHOLE_PAGE = frozenset({"html", "body"})
#: Off-screen threshold in CSS pixels (the -999px / -9999px idiom of link spam).
OFFSCREEN_PX = -999.0
_PX_PER = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "em": 16.0, "rem": 16.0, "ex": 8.0,
           "ch": 8.0, "cm": 96 / 2.54, "mm": 96 / 25.4, "q": 96 / 101.6, "in": 96.0}
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))\s*([a-z%]*)$")
_ALPHA_ZERO = re.compile(r"alpha\(\s*opacity\s*=\s*0*(?:\.0*)?\s*\)")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_INVISIBLE_CHARS = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad\ue000-\uf8ff]")
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f]*\n[ \t\r\n\f]*(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_URL_NOISE = re.compile(r"[\t\n\r]")
_REFRESH = re.compile(r"^\s*(\d*(?:\.\d*)?)\s*[;,]?\s*(?:url\s*=\s*)?[\"']?([^\"']*)[\"']?\s*$", re.I)
#: At most this many selectors of ``<style>`` blocks are evaluated on a page.
MAX_SELECTORS = 2000
#: Link text longer than this is cut (it is shown in findings).
MAX_LINK_TEXT = 100

#: Second-level labels under which registrations sit one level deeper (``xx.gov.cn``).
_SECOND_LEVEL = frozenset(
    {f"{sld}.cn" for sld in ("gov", "com", "net", "org", "edu", "ac", "mil",
                             "bj", "sh", "tj", "cq", "he", "sx", "nm", "ln", "jl", "hl", "js", "zj",
                             "ah", "fj", "jx", "sd", "ha", "hb", "hn", "gd", "gx", "hi", "sc", "gz",
                             "yn", "xz", "sn", "gs", "qh", "nx", "xj")}
    | {f"{sld}.{cc}" for sld in ("com", "gov", "org", "edu", "net") for cc in ("hk", "mo", "tw", "au", "sg")}
    | {"co.uk", "org.uk", "gov.uk", "ac.uk", "co.jp", "ne.jp", "or.jp", "go.jp", "ac.jp"})


@dataclass(frozen=True)
class Link:
    """A link on a page: where it goes, what it says, and whether CSS hides it.

    ``hidden_by`` says in Chinese which element hides it and how (``""`` when visible),
    e.g. ``上级元素 div.yqlj：display:none（行内样式）``.
    """

    href: str
    text: str
    hidden: bool = False
    hidden_by: str = ""

    @property
    def host(self) -> str:
        """The link's host name, lower case."""
        return host_of(self.href)


@dataclass(frozen=True)
class PageContent:
    """One parse of a page: its visible text, links, script and frame sources, refresh."""

    text: str
    links: list[Link] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    iframes: list[str] = field(default_factory=list)
    meta_refresh: str = ""


def visible_text(html: str) -> str:
    """The text a reader sees on the page, whitespace collapsed (see the module docstring)."""
    return read_page(html, "").text


def links(html: str, base_url: str) -> list[Link]:
    """Every http(s) link of the page, resolved against ``base_url``, in document order."""
    return read_page(html, base_url).links


def host_of(url: str) -> str:
    """The host name of ``url``, lower case ("" when it has none or is malformed)."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def registrable_domain(host: str) -> str:
    """The domain a host was registered under: ``www.cq.gov.cn`` → ``cq.gov.cn``.

    An approximation of the public-suffix list that knows the second-level domains of
    ``.cn`` (gov.cn, com.cn …, the provinces' bj.cn …) and a few others; an IP address is
    its own domain.
    """
    host = host.rstrip(".").lower()
    if not host or host.replace(".", "").isdigit() or ":" in host:
        return host
    labels = host.split(".")
    depth = 3 if ".".join(labels[-2:]) in _SECOND_LEVEL else 2
    return ".".join(labels[-depth:])


def same_site(host: str, *others: str) -> bool:
    """Whether ``host`` is registered under the same domain as one of ``others``."""
    mine = registrable_domain(host)
    return bool(mine) and any(mine == registrable_domain(o) for o in others if o)


def is_gov_host(host: str) -> bool:
    """Whether ``host`` is under ``gov.cn``, the domain of Chinese government websites."""
    host = host.rstrip(".").lower()
    return host == "gov.cn" or host.endswith(".gov.cn")


@lru_cache(maxsize=8192)
def absolute_url(base: str, href: str, *, keep_query: bool = True) -> str:
    """``href`` resolved against ``base``, fragment dropped; "" unless it is http(s)."""
    href = _URL_NOISE.sub("", href).strip()
    if not href:
        return ""
    try:
        joined = href if not base or href.startswith(("http://", "https://")) else urljoin(base, href)
        parts = urlsplit(joined)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/",
                       parts.query if keep_query else "", ""))


# ---- CSS -----------------------------------------------------------------------------

def declarations(style: str) -> dict[str, str]:
    """``prop: value; …`` as a dict (lower case, ``!important`` dropped, last one wins)."""
    out: dict[str, str] = {}
    for part in style.split(";"):
        prop, sep, value = part.partition(":")
        if sep:
            value = value.lower().replace("!important", "").strip()
            if prop.strip() and value:
                out[prop.strip().lower()] = value
    return out


def _number(value: str) -> tuple[float, str] | None:
    match = _NUMBER.match(value.strip())
    return (float(match.group(1)), match.group(2)) if match else None


def _is_zero(value: str) -> bool:
    parsed = _number(value)
    return parsed is not None and parsed[0] == 0


def _px(value: str) -> float | None:
    parsed = _number(value)
    if parsed is None or parsed[1] not in _PX_PER:
        return None
    return parsed[0] * _PX_PER[parsed[1]]


def _offscreen(value: str | None) -> bool:
    px = _px(value) if value else None
    return px is not None and px <= OFFSCREEN_PX


def hiding_reason(decls: dict[str, str]) -> str | None:
    """The CSS that hides an element and all it holds, or None (``visibility`` and
    ``font-size`` are inherited differently: see :func:`visibility_of`, :func:`font_of`)."""
    if decls.get("display") == "none":
        return "display:none"
    opacity = decls.get("opacity")
    if opacity is not None and _is_zero(opacity):
        return f"opacity:{opacity}"
    if _ALPHA_ZERO.search(decls.get("filter", "")):
        return "filter:alpha(opacity=0)"
    if decls.get("position") in ("absolute", "fixed"):
        for side in ("left", "top", "right"):
            if _offscreen(decls.get(side)):
                return f"position:{decls['position']};{side}:{decls[side]}"
    for prop in ("text-indent", "margin-left", "margin-top"):
        if _offscreen(decls.get(prop)):
            return f"{prop}:{decls[prop]}"
    clipped = any(decls.get(p) in ("hidden", "clip") for p in ("overflow", "overflow-x", "overflow-y"))
    if clipped:
        for prop in ("width", "max-width", "height", "max-height"):
            value = decls.get(prop)
            if value is not None and _is_zero(value):
                if "height" in prop and any(not _is_zero(decls.get(p, "0").split()[0])
                                            for p in ("padding-bottom", "padding-top", "padding")):
                    continue  # the zero-height box with padding that holds a responsive video
                return f"{prop}:{value};overflow:hidden"
    return None


def visibility_of(decls: dict[str, str]) -> bool | None:
    """False for ``visibility:hidden|collapse``, True for ``visible``, None when unset."""
    value = decls.get("visibility")
    if value in ("hidden", "collapse"):
        return False
    return True if value == "visible" else None


def font_of(decls: dict[str, str]) -> bool | None:
    """True for ``font-size:0``, False for an absolute non-zero size, None otherwise
    (unset, or relative — ``em`` and ``%`` of zero stay zero)."""
    value = decls.get("font-size")
    if value is None or value in ("inherit", "larger", "smaller"):
        return None
    parsed = _number(value)
    if parsed is None:
        return False  # a keyword (small, medium …) or calc(): a real size
    if parsed[0] == 0:
        return True
    return None if parsed[1] in ("em", "%", "ex", "ch") else False


def _css_rules(css: str, conditional: bool = False) -> Iterator[tuple[str, dict[str, str], bool]]:
    """(selector list, declarations, inside an at-rule) of each rule of a stylesheet."""
    pos, end = 0, len(css)
    while pos < end:
        brace = css.find("{", pos)
        if brace < 0:
            return
        semi = css.find(";", pos, brace)
        prelude = css[pos:brace].strip()
        if semi >= 0 and css[pos:semi].strip().startswith("@"):
            pos = semi + 1          # @import, @charset: a statement, not a block
            continue
        depth, close = 1, brace + 1
        while close < end and depth:
            depth += {"{": 1, "}": -1}.get(css[close], 0)
            close += 1
        body = css[brace + 1:close - 1]
        if prelude.startswith("@"):
            if prelude.lower().startswith(("@media", "@supports", "@layer", "@container", "@document")):
                yield from _css_rules(body, True)
        elif prelude:
            yield prelude, declarations(body), conditional
        pos = close


def _shows(decls: dict[str, str]) -> bool:
    return not hiding_reason(decls) and visibility_of(decls) is not False and not font_of(decls)


_INTERACTIVE = re.compile(r":(?:hover|focus-within|focus-visible|focus|active|target|checked)(?![\w-])")


def _selectors(selector_list: str) -> list[tuple[str, bool]]:
    """(selector, applies only on interaction) for each selector that can be evaluated.

    ``.yqlj:hover ul`` is ``.yqlj ul`` shown on interaction: a drop-down, like an
    ``@media`` rule it can show what another rule hides but never hides. Other
    pseudo-classes and pseudo-elements (``::before``, ``:nth-child``) are not evaluated.
    """
    out: list[tuple[str, bool]] = []
    for selector in selector_list.split(","):
        plain = _INTERACTIVE.sub("", selector).strip()
        if plain and ":" not in plain:
            out.append((plain, plain != selector.strip()))
    return out


_HIDING_PROPS = ("display", "visibility", "opacity", "filter", "font-size", "position", "left",
                 "top", "right", "text-indent", "margin-left", "margin-top", "width", "max-width",
                 "height", "max-height", "overflow", "overflow-x", "overflow-y", "padding",
                 "padding-top", "padding-bottom")


@dataclass
class _Rules:
    """What the page's ``<style>`` rules say about each element (by lexbor node id)."""

    matched: dict[int, list[tuple[dict[str, str], str]]] = field(default_factory=dict)
    shown_somewhere: dict[int, set[str]] = field(default_factory=dict)


def _style_rules(parser: LexborHTMLParser, root: LexborNode) -> _Rules:
    rules = _Rules()
    parsed: list[tuple[str, dict[str, str], bool]] = []
    for node in parser.css("style"):
        css = node.text(deep=True)
        if not css.strip():
            continue
        # <style media="print"> and the like apply on some media only, as @media does
        media = (node.attributes.get("media") or "").strip().lower()
        conditional = media not in ("", "all", "screen")
        css = _CSS_COMMENT.sub(" ", css).replace("<!--", " ").replace("-->", " ")
        parsed += _css_rules(css, conditional)
    hiding = [(sel, decls) for sel, decls, cond in parsed if not cond and (
        hiding_reason(decls) or visibility_of(decls) is False or font_of(decls))]
    if not hiding:
        return rules
    props = {p for _, decls in hiding for p in decls if p in _HIDING_PROPS}
    budget = MAX_SELECTORS
    for selector_list, decls, conditional in parsed:
        wanted = {p: v for p, v in decls.items() if p in props}
        if not wanted:
            continue
        for selector, interactive in _selectors(selector_list):
            if budget <= 0:
                return rules
            budget -= 1
            try:
                nodes = root.css(selector)
            except (SelectolaxError, ValueError):
                continue
            for node in nodes:
                if conditional or interactive:
                    rules.shown_somewhere.setdefault(node.mem_id, set()).update(
                        p for p, v in wanted.items() if _shows({p: v}))
                else:
                    rules.matched.setdefault(node.mem_id, []).append((wanted, selector))
    return rules


# ---- the walk ------------------------------------------------------------------------

@dataclass(frozen=True)
class _State:
    hidden: str = ""          # an ancestor (or self) hides everything it holds: why
    invisible: str = ""       # visibility:hidden in effect: why
    font_zero: str = ""       # font-size 0 in effect: why


def _describe(node: LexborNode, attrs: dict[str, str | None]) -> str:
    tag = node.tag or "?"
    ident = (attrs.get("id") or "").strip()
    if ident:
        return f"{tag}#{ident[:40]}"
    classes = (attrs.get("class") or "").split()
    return f"{tag}.{classes[0][:40]}" if classes else tag


def _element_state(node: LexborNode, attrs: dict[str, str | None], parent: _State, rules: _Rules,
                   *, is_self_link: bool) -> _State:
    if node.tag in _WHOLE_PAGE:
        return parent
    sources: dict[str, str] = {}
    decls: dict[str, str] = {}
    for wanted, selector in rules.matched.get(node.mem_id, ()):
        decls.update(wanted)
        sources.update(dict.fromkeys(wanted, f"页面样式规则“{selector[:60]}”"))
    inline = attrs.get("style")
    if not decls and not inline and "hidden" not in attrs:
        return parent
    who = "链接本身" if is_self_link else f"上级元素 {_describe(node, attrs)}"
    if inline:
        own = declarations(inline)
        decls.update(own)
        sources.update(dict.fromkeys(own, "行内样式"))
    maybe_shown = rules.shown_somewhere.get(node.mem_id, set())
    for prop in maybe_shown:
        if sources.get(prop, "").startswith("页面样式规则"):
            decls.pop(prop, None)   # an @media rule shows it on some screens

    def why(reason: str, prop: str) -> str:
        return f"{who}：{reason}（{sources.get(prop, '行内样式')}）"

    hidden = parent.hidden
    if not hidden:
        if "hidden" in attrs:
            hidden = f"{who}：hidden 属性"
        else:
            reason = hiding_reason(decls)
            if reason:
                hidden = why(reason, reason.split(":")[0])
    invisible = parent.invisible
    visible = visibility_of(decls)
    if visible is not None:
        invisible = "" if visible else why(f"visibility:{decls['visibility']}", "visibility")
    font_zero = parent.font_zero
    zero = font_of(decls)
    if zero is not None:
        font_zero = why(f"font-size:{decls['font-size']}", "font-size") if zero else ""
    if (hidden, invisible, font_zero) == (parent.hidden, parent.invisible, parent.font_zero):
        return parent
    return _State(hidden, invisible, font_zero)


def _children(node: LexborNode) -> list[LexborNode]:
    kids: list[LexborNode] = []
    child = node.first_child
    while child is not None:
        kids.append(child)
        child = child.next
    return kids


def _link_text(node: LexborNode) -> str:
    text = _INVISIBLE_CHARS.sub("", node.text(deep=True, separator=" "))
    text = _SPACES.sub(" ", text).strip() or (node.attributes.get("title") or "").strip()
    if not text:
        img = node.css_first("img[alt]")
        text = (img.attributes.get("alt") or "").strip() if img is not None else ""
    return text[:MAX_LINK_TEXT]


def _normalise_run(run: str) -> str:
    run = _INVISIBLE_CHARS.sub("", run)
    run = _CJK_BREAK.sub("", run)
    return _SPACES.sub(" ", run).strip()


def read_page(html: str, base_url: str) -> PageContent:
    """Parse ``html`` once: visible text, links, scripts, iframes and meta refresh."""
    parser = LexborHTMLParser(html)
    root = parser.root
    if root is None:
        return PageContent(text="")
    base = base_url
    base_tag = parser.css_first("base[href]")
    if base_tag is not None:
        base = absolute_url(base_url, base_tag.attributes.get("href") or "") or base_url
    rules = _style_rules(parser, root)

    pieces: list[str | None] = []      # None: a block boundary
    found: list[Link] = []
    stack: list[tuple[LexborNode, _State] | None] = [(root, _State())]
    while stack:
        item = stack.pop()
        if item is None:
            pieces.append(None)
            continue
        node, state = item
        if node.is_text_node:
            if not (state.hidden or state.invisible or state.font_zero):
                pieces.append(node.text_content or "")
            continue
        if not node.is_element_node:
            continue                   # comments, doctype
        tag = node.tag or ""
        if tag in SKIP_TAGS:
            continue
        attrs = node.attributes
        is_link = tag in ("a", "area") and attrs.get("href") is not None
        own = _element_state(node, attrs, state, rules, is_self_link=is_link)
        if is_link:
            href = absolute_url(base, attrs.get("href") or "")
            if href:
                with_media = own.font_zero and node.css_first(",".join(_MEDIA_TAGS)) is not None
                why = own.hidden or own.invisible or ("" if with_media else own.font_zero)
                found.append(Link(href=href, text=_link_text(node), hidden=bool(why), hidden_by=why))
        if tag in BLOCK_TAGS:
            pieces.append(None)
            stack.append(None)
        stack.extend((child, own) for child in reversed(_children(node)))

    runs: list[str] = []
    current: list[str] = []
    for piece in [*pieces, None]:
        if piece is None:
            if current:
                run = _normalise_run("".join(current))
                if run:
                    runs.append(run)
                current = []
        else:
            current.append(piece)

    scripts = [absolute_url(base, n.attributes.get("src") or "", keep_query=False)
               for n in parser.css("script[src]")]
    frames = [absolute_url(base, n.attributes.get("src") or "", keep_query=False)
              for n in parser.css("iframe[src], frame[src]")]
    return PageContent(text=" ".join(runs), links=found, scripts=[s for s in scripts if s],
                       iframes=[f for f in frames if f], meta_refresh=_meta_refresh(parser, base))


def _meta_refresh(parser: LexborHTMLParser, base: str) -> str:
    for meta in parser.css("meta[http-equiv]"):
        if (meta.attributes.get("http-equiv") or "").strip().lower() != "refresh":
            continue
        content = (meta.attributes.get("content") or "").strip()
        match = _REFRESH.match(content)
        if not match:
            return _SPACES.sub(" ", content)[:500]
        delay, target = match.group(1) or "0", match.group(2).strip()
        url = absolute_url(base, target) if target else ""
        return f"{delay};url={url}" if url else (f"{delay};url={target}" if target else delay)
    return ""
