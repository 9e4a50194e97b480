"""Wrong and sensitive terms on a page (issue 17 item 2), found with one Aho-Corasick automaton.

Lexicon files are UTF-8 text, one entry a line (docs/watch.md; for users docs/admin.md
«网站巡检词库»):

- ``错误写法=正确写法`` — a wrong expression and what it should be (``wrong``);
- ``词语`` — a sensitive term: any occurrence is reported (``sensitive``);
- ``!词语`` — an exception (``allowed``): correct text in which a wrong or sensitive term
  would otherwise be seen, e.g. ``!公布署名`` keeps ``布署`` from firing in «公布署名单位»;
- ``#`` starts a comment; blank lines are ignored; full-width ``＝`` and ``！`` are read as
  ``=`` and ``!``; runs of spaces inside a term are one space; a term has at most
  :data:`MAX_TERM` characters; matching is case-sensitive.

:meth:`Lexicon.load` reads the shipped default (``watch/data/default_lexicon.txt``) and
then the office's files in the order given: the office's files **add** to the default.
When a term appears more than once, the last entry wins — so an office can change the
correction of a default entry, or switch it off with ``!词语``. Every bad line is reported
at once, with its file and line number (:class:`LexiconError`).

Scanning: the wrong and sensitive terms, the exceptions and the correct forms that contain
a wrong or sensitive term go into one leftmost-longest automaton. Among overlapping
candidates the one starting first wins, and of those the longest; a correct form or
exception that covers a wrong term therefore hides it, so a wrong form inside a longer
correct word (``县政府办`` in ``县政府办公室``) does not fire. Correct forms and exceptions
are never reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, NamedTuple

import ahocorasick_rs

from core.errors import ConfigError
from roster.models import Site
from watch.models import FindingKind
from watch.types import Found, finding_key

TermKind = Literal["wrong", "sensitive", "allowed"]

#: Longest term accepted, in characters.
MAX_TERM = 50
#: Characters of context on each side of a hit.
CONTEXT = 20
DEFAULT_LEXICON = "default_lexicon.txt"
_SPACES = re.compile(r"\s+")
_CONTINUATION = bytes(range(0x80, 0xC0))


class LexiconError(ConfigError):
    """A lexicon file is missing, not UTF-8, or has bad lines; ``problems`` has one
    Chinese line each, naming the file and line number."""


@dataclass(frozen=True)
class LexiconEntry:
    """One term of a lexicon; ``correct`` is "" unless ``kind`` is ``wrong``; ``source``
    is ``file:line`` of the entry that won."""

    term: str
    kind: TermKind
    correct: str = ""
    source: str = ""


class TermHit(NamedTuple):
    """One occurrence of a wrong or sensitive term in a text.

    ``start`` is the offset (in characters) of the term in the scanned text; ``context``
    is the term with about :data:`CONTEXT` characters either side, ``…`` where cut. (A
    named tuple, not a dataclass: a scan may build tens of thousands of them.)
    """

    term: str
    kind: Literal["wrong", "sensitive"]
    correct: str
    start: int
    context: str


def _clean(term: str) -> str:
    return _SPACES.sub(" ", term).strip()


def parse_lines(lines: Iterable[str], source: str) -> tuple[list[LexiconEntry], list[str]]:
    """The entries of a lexicon text and the Chinese problems of its bad lines."""
    entries: list[LexiconEntry] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].replace("＝", "=").replace("！", "!").strip()
        if not line:
            continue
        where = f"{source}:{number}"

        def bad(reason: str, number: int = number, raw: str = raw) -> None:
            problems.append(f"词库 {source} 第 {number} 行“{raw.strip()[:60]}”：{reason}")

        if line.startswith("!"):
            term = _clean(line[1:])
            if not term:
                bad("“!”后缺少例外词")
            elif "=" in term:
                bad("例外词不能带“=”（例外词只写正确的词语本身，如“!公布署名”）")
            elif len(term) > MAX_TERM:
                bad(f"词语过长（最多 {MAX_TERM} 个字）")
            else:
                entries.append(LexiconEntry(term, "allowed", source=where))
            continue
        if "=" not in line:
            term = _clean(line)
            if len(term) > MAX_TERM:
                bad(f"词语过长（最多 {MAX_TERM} 个字）")
            else:
                entries.append(LexiconEntry(term, "sensitive", source=where))
            continue
        if line.count("=") > 1:
            bad("一行只能有一个“=”（格式：错误写法=正确写法）")
            continue
        wrong, correct = (_clean(part) for part in line.split("="))
        if not wrong:
            bad("“=”前缺少错误写法（格式：错误写法=正确写法）")
        elif not correct:
            bad("“=”后缺少正确写法（敏感词只写词语本身，不带“=”）")
        elif wrong == correct:
            bad(f"错误写法与正确写法相同（如要排除误报，请写“!{wrong}”）")
        elif max(len(wrong), len(correct)) > MAX_TERM:
            bad(f"词语过长（最多 {MAX_TERM} 个字）")
        else:
            entries.append(LexiconEntry(wrong, "wrong", correct, source=where))
    return entries, problems


def _read(path: str) -> tuple[str | None, str | None]:
    """(text, problem) of a lexicon file."""
    try:
        return Path(path).read_text(encoding="utf-8-sig"), None
    except FileNotFoundError:
        return None, f"词库文件 {path} 不存在"
    except UnicodeDecodeError as exc:
        return None, f"词库文件 {path} 不是 UTF-8 编码（第 {exc.start + 1} 个字节起无法读取），请另存为 UTF-8"
    except OSError as exc:
        return None, f"词库文件 {path} 无法读取：{exc.strerror or exc}"


def _covering_corrections(entries: dict[str, LexiconEntry]) -> list[str]:
    """The correct forms that hold a wrong or sensitive term: the only ones that can keep
    a term from firing, so the only ones worth a place in the automaton."""
    reported = [e.term for e in entries.values() if e.kind != "allowed"]
    corrections = list(dict.fromkeys(e.correct for e in entries.values()
                                     if e.kind == "wrong" and e.correct not in entries))
    if not reported or not corrections:
        return []
    finder = ahocorasick_rs.AhoCorasick(reported)
    return [c for c in corrections if finder.find_matches_as_indexes(c, overlapping=True)]


class Lexicon:
    """Wrong, sensitive and allowed terms, compiled into one automaton."""

    def __init__(self, entries: Iterable[LexiconEntry]) -> None:
        merged: dict[str, LexiconEntry] = {}
        for entry in entries:
            merged.pop(entry.term, None)       # the last entry wins, in its own place
            merged[entry.term] = entry
        self.entries: dict[str, LexiconEntry] = merged
        roles: dict[str, LexiconEntry | None] = dict.fromkeys(_covering_corrections(merged))
        for entry in merged.values():
            roles[entry.term] = None if entry.kind == "allowed" else entry
        self._patterns = list(roles)
        # per pattern: (term, kind, correct, length) when it is reported, None when allowed
        self._reported: list[tuple[str, Literal["wrong", "sensitive"], str, int] | None] = [
            None if e is None else (e.term, "wrong" if e.kind == "wrong" else "sensitive", e.correct, len(e.term))
            for e in roles.values()]
        # Matched on UTF-8 bytes: the str interface maps every offset back to characters,
        # which costs more than the search; scan() maps only the hits. A UTF-8 pattern
        # never matches from the middle of a character (the encoding is self-synchronising).
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            [p.encode("utf-8") for p in self._patterns],
            matchkind=ahocorasick_rs.MatchKind.LeftmostLongest) if self._patterns else None

    @classmethod
    def parse(cls, text: str, *, source: str = "词库") -> Lexicon:
        """A lexicon from the text of one file; raises :class:`LexiconError` on bad lines."""
        entries, problems = parse_lines(text.splitlines(), source)
        if problems:
            raise LexiconError(problems)
        return cls(entries)

    @classmethod
    def load(cls, paths: Sequence[str], *, include_default: bool = True) -> Lexicon:
        """The shipped default lexicon followed by the files at ``paths`` (they add to it).

        Raises:
            LexiconError: a file is missing or not UTF-8, or lines are malformed — every
                problem of every file at once.
        """
        entries: list[LexiconEntry] = []
        problems: list[str] = []
        if include_default:
            text = resources.files("watch").joinpath("data", DEFAULT_LEXICON).read_text(encoding="utf-8")
            found, bad = parse_lines(text.splitlines(), DEFAULT_LEXICON)
            entries += found
            problems += bad
        for path in paths:
            text_or_none, problem = _read(path)
            if text_or_none is None:
                problems.append(problem or f"词库文件 {path} 无法读取")
                continue
            found, bad = parse_lines(text_or_none.splitlines(), path)
            entries += found
            problems += bad
        if problems:
            raise LexiconError(problems)
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def patterns(self) -> tuple[str, ...]:
        """Every string the automaton looks for (terms, exceptions, covering correct forms)."""
        return tuple(self._patterns)

    def count(self, kind: TermKind) -> int:
        """How many entries of this kind the lexicon holds."""
        return sum(1 for e in self.entries.values() if e.kind == kind)

    def scan(self, text: str) -> list[TermHit]:
        """Every wrong or sensitive term in ``text``, in order, non-overlapping."""
        if self._automaton is None or not text:
            return []
        hits: list[TermHit] = []
        size = len(text)
        reported = self._reported
        data = text.encode("utf-8", "surrogatepass")
        byte_at = char_at = 0
        for index, byte_start, _ in self._automaton.find_matches_as_indexes(data):
            found = reported[index]
            if found is None:
                continue
            term, kind, correct, length = found
            # characters between the last hit and this one: the bytes that do not
            # continue a UTF-8 sequence (faster than decoding them)
            char_at += len(data[byte_at:byte_start].translate(None, _CONTINUATION))
            byte_at = byte_start
            left, right = char_at - CONTEXT, char_at + length + CONTEXT
            if left <= 0:
                context = text[:right] if right < size else text
            else:
                context = "…" + text[left:right]
            if right < size:
                context += "…"
            hits.append(TermHit(term, kind, correct, char_at, context))
        return hits


def term_findings(site: Site, url: str, text: str, lexicon: Lexicon) -> list[Found]:
    """One finding per term seen on the page at ``url`` (``wrong_term`` or
    ``sensitive_term``), with the first occurrence's context and the count."""
    if site.id is None:
        raise ValueError("term_findings needs a stored site")
    first: dict[str, TermHit] = {}
    counts: dict[str, int] = {}
    for hit in lexicon.scan(text):
        first.setdefault(hit.term, hit)
        counts[hit.term] = counts.get(hit.term, 0) + 1
    found: list[Found] = []
    for term, hit in first.items():
        times = f"（本页共 {counts[term]} 处）" if counts[term] > 1 else ""
        if hit.kind == "wrong":
            kind = FindingKind.wrong_term
            detail = f"错误表述“{term}”，应为“{hit.correct}”{times}：{hit.context}"
        else:
            kind = FindingKind.sensitive_term
            detail = f"敏感词“{term}”{times}：{hit.context}"
        found.append(Found(kind=kind, site_id=site.id, url=url, detail=detail[:500],
                           key=finding_key(url, term),
                           data={"term": term, "correct": hit.correct, "context": hit.context,
                                 "count": counts[term]}))
    return found
