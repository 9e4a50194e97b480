"""Who did each 审 and 校 when corrected content is republished (issue 14 item 3).

A playbook step marked ``signoff = true`` (``revise`` of 敏感信息, ``correct`` of 内容错误:
SENS-2, "可修改的经“三审三校”后重新发布") cannot be completed until the people who
reviewed (审) and proofread (校) it are named::

    /incident done INC-20261123-001 3 审：王芳、李强、赵敏 校：王芳、孙丽、李强

How many names are needed is the article's, found through the document that states the
active profile's GRADE-2 (else SENS-2) — the office's own, a parent's (参照) or, for the
composite default, the one it refers to:

- 梁平 (liangping) 第十二条 三审三校: 一审 信息员、二审 分管负责人、三审 主要负责人 and
  一校 排版人员、二校 科室负责人、三校 分管负责人 — exactly three of each (the composite
  default refers to it: 参照);
- 古丈 (guzhang) 第十条 三审: 初审 业务室负责人或办公室主任、复审 分管领导、终审 主要领导 —
  three 审; 校 optional;
- 云南 (yunnan) 第二十一条 先审后发 (江川 参照): at least one 审; 校 optional;
- no article (宝鸡): at least one 审, labelled 工作要求 (本地规定未作要求); 校 optional.

The counts live here, keyed by the document, because GRADE-2 carries no values in the
profile catalog; the citation shown is the profile's own (``梁平办法第十二条``,
``参照《…》第十二条``). The names are free text (a 排版人员 need not use the bot) and are
stored on the step as JSON ``[{"stage": "一审", "name": "王芳"}, …]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from core.errors import DutybotError
from core.profiles import NOT_REQUIRED, Profile

REVIEW, PROOF = "审", "校"
MAX_NAMES = 5                 # where the article fixes no number of stages
MAX_NAME = 20
_NUMERALS = "一二三四五六七八九十"
# 审：… 校：… 备注：… (full-width or ASCII colon); 审核/校对 are accepted as well, and so
# is one stage at a time: 一审：王芳 二审：李强 …, 初审：… 复审：… 终审：….
_MARK = re.compile(r"([一二三四五六七八九十初复终]?)(审核|校对|备注|审|校)\s*[:：]")
_SEPARATORS = re.compile(r"[、,，;；\s]+")
_KIND = {"审核": REVIEW, "审": REVIEW, "校对": PROOF, "校": PROOF, "备注": "note"}
# Where no article of the chain sets the review (宝鸡): the bot's minimum, labelled as such.
PRACTICE = f"工作要求（至少记录一名审核人，{NOT_REQUIRED}）"
_STAGE_INDEX = {c: i for i, c in enumerate(_NUMERALS, start=1)} | {"初": 1, "复": 2, "终": 3}


@dataclass(frozen=True)
class _Document:
    name: str                                  # 三审三校 / 三审 / 先审后发
    reviews: tuple[tuple[str, str], ...] = ()  # fixed stages (stage, who) — exactly these
    proofs: tuple[tuple[str, str], ...] = ()


_DOCUMENTS: dict[str, _Document] = {
    # 梁平办法第十二条: 一审由信息员负责，二审由分管负责人负责，三审由主要负责人负责；
    # 一校由排版人员负责，二校由科室负责人负责，三校由分管负责人负责.
    "liangping": _Document("三审三校",
                           (("一审", "信息员"), ("二审", "分管负责人"), ("三审", "主要负责人")),
                           (("一校", "排版人员"), ("二校", "科室负责人"), ("三校", "分管负责人"))),
    # 古丈办法第十条: 业务室负责人或办公室主任初审、分管领导复审、主要领导终审.
    "guzhang": _Document("三审", (("初审", "业务室负责人或办公室主任"), ("复审", "分管领导"),
                                 ("终审", "主要领导"))),
    # 云南办法第二十一条: 分级分类审核、先审后发 — no fixed number of stages.
    "yunnan": _Document("先审后发"),
}


def _ordinal(n: int, kind: str) -> str:
    """``一审``, ``三校`` …"""
    return f"{_NUMERALS[n - 1] if n <= len(_NUMERALS) else n}{kind}"


@dataclass(frozen=True)
class Signoffs:
    """What a person wrote: the 审 names, the 校 names, and any note."""

    reviews: tuple[str, ...]
    proofs: tuple[str, ...]
    note: str


def parse_signoffs(text: str) -> Signoffs:
    """``审：王芳、李强 校：孙丽 备注：已重新发布`` → names and note.

    Text before the first marker is kept as the note, as is what follows ``备注：``.
    """
    marks = list(_MARK.finditer(text))
    found: dict[str, list[tuple[int | None, str]]] = {REVIEW: [], PROOF: []}
    notes = [text[:marks[0].start()].strip() if marks else text.strip()]
    for mark, nxt in zip(marks, [*marks[1:], None][:len(marks)], strict=True):
        body = text[mark.end():nxt.start() if nxt else len(text)].strip()
        kind = _KIND[mark.group(2)]
        if kind == "note":
            notes.append((mark.group(1) + body) if mark.group(1) else body)
            continue
        stage = _STAGE_INDEX.get(mark.group(1))
        found[kind] += [(stage, n) for n in _SEPARATORS.split(body) if n]

    def ordered(kind: str) -> tuple[str, ...]:
        items = found[kind]
        if items and all(stage is not None for stage, _ in items):   # 三审：赵敏 一审：王芳 …
            items = sorted(items, key=lambda item: item[0] or 0)
        return tuple(name for _, name in items)

    return Signoffs(ordered(REVIEW), ordered(PROOF), "；".join(n for n in notes if n))


@dataclass(frozen=True)
class SignoffRule:
    """How many 审 and 校 the active profile's document requires, and its citation."""

    name: str                                  # 三审三校 / 三审 / 先审后发 / "" (not stated)
    citation: str                              # 梁平办法第十二条 / 参照《…》第…条 / 本地规定未作要求
    reviews: tuple[tuple[str, str], ...] = ()  # fixed stages; empty: at least one, any stages
    proofs: tuple[tuple[str, str], ...] = ()   # fixed stages; empty: optional

    @property
    def stated(self) -> bool:
        return bool(self.name)

    @property
    def basis(self) -> str:
        """``依据：梁平办法第十二条（三审三校）`` / ``工作要求（至少记录一名审核人，本地规定未作要求）``."""
        if not self.stated:
            return PRACTICE
        return f"依据：{self.citation}（{self.name}）"

    def stages_zh(self) -> str:
        """``一审 信息员、二审 分管负责人……；一校 排版人员……`` (what each stage is)."""
        parts = ["、".join(f"{stage} {who}" for stage, who in stages)
                 for stages in (self.reviews, self.proofs) if stages]
        return "；".join(parts)

    def syntax(self, number: str, seq: int) -> str:
        """The exact command, with as many names as the article needs."""
        review = "、".join(f"姓名{i}" for i in range(1, len(self.reviews) + 1)) if self.reviews else "姓名[、姓名…]"
        proof = (f"校：{'、'.join(f'姓名{i}' for i in range(1, len(self.proofs) + 1))}" if self.proofs
                 else "[校：姓名、…]")
        return f"/incident done {number} {seq} 审：{review} {proof}"

    def _label(self, names: tuple[str, ...], stages: tuple[tuple[str, str], ...], kind: str,
               missing: list[str], problems: list[str]) -> list[dict[str, str]]:
        what = "审核" if kind == REVIEW else "校对"
        if len(set(names)) != len(names):
            twice = "、".join(dict.fromkeys(n for n in names if names.count(n) > 1))
            problems.append(f"{what}人员重复：{twice}（每一{kind}写一人）")
        if any(len(n) > MAX_NAME for n in names):
            problems.append(f"{what}人员姓名过长（每人不超过 {MAX_NAME} 字）")
        if stages:
            if len(names) > len(stages):
                problems.append(f"{self.name}只需 {len(stages)} 名{what}人员"
                                f"（{'、'.join(stage for stage, _ in stages)}），写了 {len(names)} 人")
            missing += [stage for stage, _ in stages[len(names):]]
            labels = [stage for stage, _ in stages]
        else:
            if len(names) > MAX_NAMES:
                problems.append(f"{what}人员最多写 {MAX_NAMES} 人")
            labels = [_ordinal(i, kind) for i in range(1, len(names) + 1)]
        return [{"stage": stage, "name": name} for stage, name in zip(labels, names, strict=False)]

    def collect(self, text: str, *, number: str, seq: int, title: str) -> tuple[list[dict[str, str]], str]:
        """The names ``text`` gives for each stage, and the rest of it as the note.

        Raises:
            DutybotError: names missing or malformed; the message shows the exact syntax
                and cites the article.
        """
        given = parse_signoffs(text)
        missing: list[str] = []
        problems: list[str] = []
        entries = self._label(given.reviews, self.reviews, REVIEW, missing, problems)
        if not self.reviews and not given.reviews:
            missing.append("至少一名审核人")
        entries += self._label(given.proofs, self.proofs, PROOF, missing, problems)
        if not missing and not problems:
            return entries, given.note
        lines = [f"步骤{seq}“{title}”重新发布前须记录审核、校对人员。",
                 self.basis + (f"：{self.stages_zh()}" if self.stages_zh() else "") + "。"]
        if missing:
            lines.append(f"还缺：{'、'.join(missing)}。")
        lines += [f"{p}。" for p in problems]
        lines.append(f"请发送：{self.syntax(number, seq)}")
        order = "、".join(stage for stage, _ in (*self.reviews, *self.proofs))
        lines.append("（姓名之间用“、”、逗号或空格分隔" + (f"，按 {order} 的顺序写" if order else "")
                     + "；可另加 备注：说明）")
        raise DutybotError("\n".join(lines))


def signoff_rule(profile: Profile) -> SignoffRule:
    """What ``profile`` requires: the document behind its GRADE-2 (else SENS-2) decides."""
    for rule_id in ("GRADE-2", "SENS-2"):
        entry = profile.rule(rule_id)
        doc = _DOCUMENTS.get(entry.source) if entry.regulated else None
        if doc is not None:
            return SignoffRule(doc.name, entry.citation, doc.reviews, doc.proofs)
    return SignoffRule("", NOT_REQUIRED)


def format_signoffs(entries: list[dict[str, str]]) -> str:
    """``一审 王芳、二审 李强、三审 赵敏；一校 王芳、二校 孙丽、三校 李强``."""
    groups = [[e for e in entries if e["stage"].endswith(kind)] for kind in (REVIEW, PROOF)]
    return "；".join("、".join(f"{e['stage']} {e['name']}" for e in group) for group in groups if group)


def dump(entries: list[dict[str, str]]) -> str:
    """The JSON stored in ``IncidentStep.signoffs``."""
    return json.dumps(entries, ensure_ascii=False)
