"""Whether a page is safe to give to the HTML parser: a linear estimate of its work.

selectolax's lexbor builds the tree as the HTML standard's tree builder does, and several
of its steps walk the stack of open elements (is a ``p`` open "in button scope"? which
open element does this end tag close? which formatting elements must be reopened?) or,
for each new ``option``, the options of its ``select`` (the selectedness rules). On an
ordinary page that stack is a few dozen elements deep and a list holds a few hundred
options, so parsing is linear. A page of 20,000 nested ``<div>`` takes about a second,
and 5 MB of them (the size cap) would take some twenty minutes: the work grows with the
square of the depth. A tampered page, or a CMS template that never closes its ``<div>``,
would stall the run that reads it.

:func:`parse_cost` estimates that work in one pass over the text, building no tree:

- **Tokens** as the standard's tokenizer reads them: tags with their attributes (a quoted
  value may hold ``>`` or ``<div``), comments, ``<!…>`` and ``<?…>``, and the raw text
  of ``script``, ``style``, ``textarea``, ``title``, ``xmp``, ``iframe``, ``noembed`` and
  ``noframes`` — markup in a script's strings, a ``a<b`` comparison or a commented-out
  block is not counted. Raw text is skipped only where the tokenizer reads it so (not
  inside ``svg``/``math`` nor in an open ``select``, where those tags are not raw text),
  and never further than the first end tag that may close it.
- **A model of the stack of open elements**: void elements do not stay open; an end tag
  closes the nearest open element of its name (at most :data:`REACH` down) when nothing
  that bounds its rule stands above it — the standard's "in scope" elements for ``div``,
  ``li``, ``p``, the table parts and the like, any special element for other end tags —
  and ``p``, ``li``, ``dd``/``dt``, ``option``, table cells and rows close an open
  predecessor as the standard does; ``svg``/``math`` content is followed apart. What the
  model cannot place stays open: it errs towards more work (a sloppy page drifts deeper
  than it is), not less.
- **The work**: for every start tag, and every end tag that closes nothing, the model's
  depth there; and for every ``option`` of an open ``select``, :data:`OPTION_WEIGHT`
  times the options before it (four times that for a ``selected`` one).

A page whose work passes :data:`MAX_PARSE_WORK` is not parsed: measured, 0.1–0.5 s of
parsing for the worst shapes, while ordinary pages — sloppy ones included — stay far
below (tests/watch/test_markup.py). The caller skips that page's content checks and says
so; the page still counts as having answered. The scan is a regular expression over the
tags and a few steps of Python for each (about 2 µs a tag: some 0.1 s for a 0.5 MB page
of 50,000 tags, less than parsing and reading it takes), and it stops once past the cap.
This is an estimate of one parser's known costs, not a bound for every input: the run
also gives each page's checks a time limit on a worker thread (``watch.run``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Above this estimated work a page is not parsed.
MAX_PARSE_WORK = 30_000_000
#: An option of a select costs this many times the options before it.
OPTION_WEIGHT = 4
#: How far below the top an end tag may reach through implied elements.
REACH = 16

_WS = "\t\n\f\r "
#: A tag from its ``<`` to its ``>``, attributes read as the tokenizer reads them: a
#: quote opens a value only after ``=``; ``/>`` at the end marks it self-closing.
_ATTRS = (rf"(?:[{_WS}]+|/(?!>)|[^{_WS}/>][^{_WS}/>=]*"
          rf"(?:[{_WS}]*=[{_WS}]*(?:\"[^\"]*\"?|'[^']*'?|[^{_WS}>]*))?)*")
#: One token: a comment (to ``-->``, ``--!>``, or ``<!-->``), a bogus comment or doctype
#: (``<!…>``, ``<?…>``, ``</`` and no letter), or a tag from its ``<`` to its ``>`` with
#: its attributes read as the tokenizer reads them (a quote opens a value only after
#: ``=``); groups: ``/`` of an end tag, the name, and ``/>`` when self-closing.
_TOKEN = re.compile(rf"<!--(?:-?>|.*?--!?>|.*\Z)|<[!?][^>]*>?|</(?![A-Za-z>])[^>]*>?"
                    rf"|<(/?)([A-Za-z][^{_WS}/>]*){_ATTRS}(/?>)?", re.S)
_SELECTED = re.compile(rf"[{_WS}]selected(?:[{_WS}/=>]|$)", re.I)

VOID = frozenset({"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
                  "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr"})
RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})
#: Closed by the "generate implied end tags" step of most end tags.
IMPLIED = frozenset({"p", "li", "dd", "dt", "option", "optgroup", "rb", "rp", "rt", "rtc"})
_CELLS = frozenset({"td", "th"})
_SECTIONS = frozenset({"tbody", "thead", "tfoot"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
#: Start tags that close an open ``p`` ("close a p element" in the standard).
_CLOSES_P = frozenset({"address", "article", "aside", "blockquote", "center", "details", "dialog", "dir",
                       "div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup",
                       "main", "menu", "nav", "ol", "p", "search", "section", "summary", "ul", "pre",
                       "listing", "form", "xmp", "hr", "plaintext"}) | _HEADINGS
_SPECIAL = frozenset({
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound", "blockquote", "body",
    "br", "button", "caption", "center", "col", "colgroup", "dd", "details", "dir", "div", "dl", "dt",
    "embed", "fieldset", "figcaption", "figure", "footer", "form", "frame", "frameset", "h1", "h2", "h3",
    "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li",
    "link", "listing", "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript",
    "object", "ol", "p", "param", "plaintext", "pre", "script", "search", "section", "select", "source",
    "style", "summary", "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead", "title",
    "tr", "track", "ul", "wbr", "xmp"})
#: The elements that bound "in scope" for an end tag's rule, and the table's own scope.
_SCOPE = frozenset({"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template"})
_TABLE_SCOPE = frozenset({"html", "table", "template"})
_TABLE_PARTS = _CELLS | _SECTIONS | {"tr", "table", "caption", "colgroup"}
#: What an end tag may reach through to the element it closes: the standard closes every
#: element above one "in scope" (table parts: "in table scope"; ``p``: "in button scope";
#: ``li``: "in list item scope"); any other end tag only through elements not special.
_END_STOPS: dict[str, frozenset[str]] = {
    **dict.fromkeys(_TABLE_PARTS, _TABLE_SCOPE),
    **dict.fromkeys(("address", "article", "aside", "blockquote", "button", "center", "details",
                     "dialog", "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer",
                     "header", "hgroup", "listing", "main", "menu", "nav", "ol", "pre", "search",
                     "section", "summary", "ul", "dd", "dt", *_HEADINGS), _SCOPE),
    "p": _SCOPE | {"button"}, "li": _SCOPE | {"ol", "ul"}, "select": frozenset({"template", "html"}),
}
#: Elements an ``li`` (``dd``/``dt``) start tag looks through for the one it closes.
_LIST_PASS = frozenset({"address", "div", "p"})
#: HTML start tags that end ``svg``/``math`` content (``font`` only with some attributes:
#: left out, so the model stays in the foreign content — more work, never less).
_BREAKOUT = frozenset({
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed",
    "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing", "menu", "meta",
    "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table",
    "tt", "u", "ul", "var"})
#: Elements in ``svg``/``math`` whose content is read as HTML again.
_INTEGRATION = frozenset({"foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext",
                          "annotation-xml"})
_IGNORED = frozenset({"html", "head", "body"})


@dataclass(frozen=True)
class ParseCost:
    """The estimate for one page: the work, the deepest nesting, the largest select."""

    work: int
    depth: int
    options: int

    @property
    def too_costly(self) -> bool:
        """Whether the page should not be parsed."""
        return self.work > MAX_PARSE_WORK

    def reason_zh(self) -> str:
        """Why the page is not parsed, in Chinese."""
        by_options = OPTION_WEIGHT * self.options * self.options // 2 >= self.work // 2
        what = f"一个下拉列表有 {self.options} 个选项" if by_options else f"标签嵌套达 {self.depth} 层"
        return f"页面结构异常（{what}），解析耗时过长"


_F = ":"      # the model's mark of svg/math content: ``:path``


def _reach(names: list[str], targets: frozenset[str], stops: frozenset[str] = frozenset(), *,
           passing: frozenset[str] = frozenset(), limit: int = REACH, below: int = 0) -> int:
    """How many elements to close for the nearest HTML element named in ``targets``, if no
    element named in ``stops`` (unless in ``passing``) nor svg/math content stands above
    it, ``limit`` elements down at most; 0 when there is none. ``below``: the top
    elements already closed."""
    for i in range(1, min(limit, len(names) - below) + 1):
        name = names[-i - below]
        if name[0] == _F:
            return 0
        if name in targets:
            return i
        if name in stops and name not in passing:
            return 0
    return 0


def _reach_foreign(names: list[str], name: str) -> int:
    """An end tag in svg/math content closes the nearest element of its name above the
    HTML ones."""
    for i in range(1, min(REACH, len(names)) + 1):
        if names[-i][0] != _F:
            return 0
        if names[-i] == name:
            return i
    return 0


_P = frozenset({"p"})
_LI = frozenset({"li"})
_DD_DT = frozenset({"dd", "dt"})
_OPTION = frozenset({"option"})
_TR = frozenset({"tr"})
_P_SCOPE = _SCOPE | {"button"}


def _implied_closes(names: list[str], name: str) -> int:
    """How many elements the start tag ``name`` closes first (the standard's implied ends)."""
    if name in ("li", "dd", "dt"):
        gone = _reach(names, _LI if name == "li" else _DD_DT, _SPECIAL, passing=_LIST_PASS)
        return gone + _reach(names, _P, _P_SCOPE, below=gone)
    if name in _CLOSES_P:
        gone = _reach(names, _P, _P_SCOPE)
        if name in _HEADINGS:
            gone += _reach(names, _HEADINGS, limit=1, below=gone)
        return gone
    if name in ("option", "optgroup"):
        return _reach(names, _OPTION, limit=1)
    gone = _reach(names, _CELLS, _TABLE_SCOPE)
    if name != "td" and name != "th":
        gone += _reach(names, _TR, _TABLE_SCOPE, below=gone)
        if name in _SECTIONS:
            gone += _reach(names, _SECTIONS, _TABLE_SCOPE, below=gone)
    return gone


_CLOSING_STARTS = _CLOSES_P | _CELLS | _SECTIONS | {"li", "dd", "dt", "option", "optgroup", "tr"}
_RAW_END = {name: re.compile(rf"</{name}[{_WS}/>]", re.I) for name in RAW_TEXT}


def parse_cost(html: str) -> ParseCost:
    """The estimated work of parsing ``html`` (see the module docstring)."""
    names: list[str] = []
    work = deepest = selects = options = most_options = 0
    pos = 0
    while True:
        for match in _TOKEN.finditer(html, pos):
            closing, name, tail = match.groups()
            if name is None:
                continue                                  # a comment, a doctype
            name = name.lower()
            if closing:
                if names and names[-1] == name:
                    names.pop()
                    if name == "select":
                        selects -= 1
                    continue
                if name in _IGNORED or name == "br":
                    continue
                if names and names[-1][0] == _F:
                    gone = _reach_foreign(names, _F + name)
                else:
                    gone = _reach(names, frozenset({name}), _END_STOPS.get(name, _SPECIAL))
                if gone:
                    selects -= names[-gone:].count("select")
                    del names[-gone:]
                else:
                    work += len(names)                    # the end tag's rule walks the stack for nothing
                continue
            if name in _IGNORED:
                continue
            if names and names[-1][0] == _F and names[-1][1:] not in _INTEGRATION:
                if name not in _BREAKOUT:                 # svg/math content
                    work += len(names)
                    if work > MAX_PARSE_WORK:
                        return ParseCost(work=work, depth=max(deepest, len(names)), options=most_options)
                    if tail != "/>":
                        names.append(_F + name)
                        deepest = max(deepest, len(names))
                    continue
                while names and names[-1][0] == _F and names[-1][1:] not in _INTEGRATION:
                    names.pop()
            if name in _CLOSING_STARTS:
                gone = _implied_closes(names, name)
                if gone:
                    selects -= names[-gone:].count("select")
                    del names[-gone:]
            work += len(names)
            if work > MAX_PARSE_WORK:                     # enough to know
                return ParseCost(work=work, depth=max(deepest, len(names)), options=most_options)
            if name in VOID:
                continue
            if name == "option" and selects:
                work += OPTION_WEIGHT * options * (4 if _SELECTED.search(match.group()) else 1)
                options += 1
                most_options = max(most_options, options)
            elif name == "select":
                selects += 1
                options = 0
            names.append(_F + name if name in ("svg", "math") else name)
            if len(names) > deepest:
                deepest = len(names)
            if name in RAW_TEXT and not selects:
                found = _RAW_END[name].search(html, match.end())
                pos = found.start() if found else len(html)
                break                                     # read on after the raw text
            if name == "plaintext" and not selects:
                return ParseCost(work=work, depth=deepest, options=most_options)
        else:
            return ParseCost(work=work, depth=deepest, options=most_options)
