"""The score sheet of the periodic checks: a TOML data file validated by pydantic.

The shipped sheet (``checks/data/indicators.toml``) follows the structure of the national
《政府网站与政务新媒体检查指标》: 单项否决 items (any one hit: 不合格) and deduction items
(``points`` per finding, at most ``max`` per item) taken off ``full_score``; below
``pass_score`` is 不合格 too. ``[checks] indicators`` in the config may name another file of
the same shape. A malformed file is refused with one Chinese line per problem
(:class:`SheetError`), so a typo never silently changes a unit's score.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError, InputError
from core.words_zh import parse_number

SHIPPED = "checks/data/indicators.toml"
_CODE = re.compile(r"^[A-Z][0-9]{1,3}$")
# ``D03``, ``D03×2``, ``D03*2``, ``D03x2``.
_HIT = re.compile(r"^([A-Za-z][0-9]{1,3})(?:\s*[×xX*]\s*(\S+))?$")
_SPLIT = re.compile(r"[,，、;；\s]+")
MAX_COUNT = 99
NONE_WORDS = frozenset({"无", "没有", "none", "-"})

_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不是可识别的项（请检查拼写）",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为字符串",
    "list_type": "应为条目列表（[[items]]）",
    "model_type": "应为一个表",
    "string_too_short": "不能为空",
    "string_too_long": "过长",
    "too_short": "至少需要一项",
}


class SheetError(ConfigError):
    """The score sheet file is missing or malformed; ``problems`` has one Chinese line each."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ItemFile(_Strict):
    code: str
    title: str = Field(min_length=1, max_length=40)
    scope: Literal["网站", "政务新媒体", "通用"] = "通用"
    veto: bool = False
    points: int | None = Field(default=None, ge=1, le=100)
    max: int | None = Field(default=None, ge=1, le=100)
    standard: str = Field(default="", max_length=300)

    @field_validator("code")
    @classmethod
    def _code_shape(cls, v: str) -> str:
        if not _CODE.match(v):
            raise ValueError(f"条目编号应为一个大写字母加1–3位数字（如 V1、D03），收到 {v!r}")
        return v

    @model_validator(mode="after")
    def _veto_or_points(self) -> _ItemFile:
        if self.veto and (self.points is not None or self.max is not None):
            raise ValueError(f"{self.code} 是单项否决项，不能再写 points 或 max")
        if not self.veto and self.points is None:
            raise ValueError(f"{self.code} 是扣分项，须写明每处扣分 points")
        if self.points is not None and self.max is not None and self.max < self.points:
            raise ValueError(f"{self.code} 的最多扣分 max（{self.max}）小于每处扣分 points（{self.points}）")
        return self


class _SheetFile(_Strict):
    name: str = Field(min_length=1, max_length=100)
    basis: str = Field(default="", max_length=300)
    full_score: int = Field(default=100, ge=1, le=1000)
    pass_score: int = Field(default=60, ge=0, le=1000)
    items: list[_ItemFile] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> _SheetFile:
        if self.pass_score > self.full_score:
            raise ValueError(f"合格分 pass_score（{self.pass_score}）高于满分 full_score（{self.full_score}）")
        seen: set[str] = set()
        for item in self.items:
            if item.code in seen:
                raise ValueError(f"条目编号 {item.code} 重复")
            seen.add(item.code)
        return self


@dataclass(frozen=True)
class Indicator:
    """One item of the sheet."""

    code: str
    title: str
    scope: str
    veto: bool
    points: int            # per finding (0 for a veto item)
    cap: int               # the most taken off in one check (0 for a veto item)
    standard: str

    def deduction(self, count: int) -> int:
        """Points taken off for ``count`` findings."""
        return 0 if self.veto else min(self.points * count, self.cap)

    def zh(self) -> str:
        """``V2 站点无法访问（单项否决）`` / ``D03 链接不可用（每处扣1分，最多扣5分）``."""
        how = "单项否决" if self.veto else f"每处扣{self.points}分，最多扣{self.cap}分"
        return f"{self.code} {self.title}（{how}）"


@dataclass(frozen=True)
class Hit:
    """An item found at a unit, ``count`` times."""

    indicator: Indicator
    count: int = 1

    @property
    def deduction(self) -> int:
        return self.indicator.deduction(self.count)

    def zh(self) -> str:
        """``V2 站点无法访问（单项否决）`` / ``D03 链接不可用 ×2（扣2分）``."""
        ind = self.indicator
        if ind.veto:
            return f"{ind.code} {ind.title}（单项否决）"
        times = f" ×{self.count}" if self.count > 1 else ""
        return f"{ind.code} {ind.title}{times}（扣{self.deduction}分）"


@dataclass(frozen=True)
class Sheet:
    """A loaded score sheet."""

    name: str
    basis: str
    full_score: int
    pass_score: int
    items: tuple[Indicator, ...]

    def get(self, code: str) -> Indicator | None:
        """The item with ``code`` (case-insensitive), or None."""
        return next((i for i in self.items if i.code == code.upper()), None)

    def parse_hits(self, text: str) -> list[Hit]:
        """``V2,D01×2,D03`` → hits; ``无`` → none. A code given twice adds up.

        Raises:
            InputError: an unknown code or a bad count, naming the codes that exist.
        """
        words = [w for w in _SPLIT.split(text.strip()) if w]
        if not words:
            raise InputError("请写明发现的问题条目编号，如 V2,D01×2,D03；没有问题写“无”。")
        if len(words) == 1 and words[0].lower() in NONE_WORDS:
            return []
        counts: dict[str, int] = {}
        for word in words:
            m = _HIT.match(word)
            indicator = self.get(m.group(1)) if m else None
            if m is None or indicator is None:
                raise InputError(f"评分表中没有条目“{word}”。可用：{self.codes_zh()}"
                                 "（查看评分表：dutybot checks items --sheet）")
            count = 1
            if m.group(2):
                try:
                    count = parse_number(m.group(2))
                except (InputError, ValueError):
                    count = 0
                if not 1 <= count <= MAX_COUNT:
                    raise InputError(f"“{word}”的处数应为 1–{MAX_COUNT} 的整数。")
            counts[indicator.code] = counts.get(indicator.code, 0) + count
        return [Hit(i, counts[i.code]) for i in self.items if i.code in counts]

    def codes_zh(self) -> str:
        """``单项否决 V1–V6；扣分 D01–D12``."""
        veto = [i.code for i in self.items if i.veto]
        scored = [i.code for i in self.items if not i.veto]
        parts = []
        if veto:
            parts.append("单项否决 " + "、".join(veto))
        if scored:
            parts.append("扣分 " + "、".join(scored))
        return "；".join(parts)

    def score(self, hits: list[Hit]) -> tuple[int, bool, bool]:
        """(score, vetoed, passed) for these hits: full score minus the deductions (not below
        0); a veto or a score under the pass mark is 不合格."""
        deductions = sum(h.deduction for h in hits)
        score = max(self.full_score - deductions, 0)
        vetoed = any(h.indicator.veto for h in hits)
        return score, vetoed, not vetoed and score >= self.pass_score


def _where(loc: tuple[Any, ...], raw: Mapping[str, Any]) -> str:
    """``第3项（D02）.points`` for ``("items", 2, "points")``."""
    parts: list[str] = []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "items" and isinstance(rest[1], int):
        index = rest[1]
        items = raw.get("items")
        code = ""
        if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
            code = str(items[index].get("code", ""))
        parts.append(f"第{index + 1}项" + (f"（{code}）" if code else ""))
        rest = rest[2:]
    parts += [str(p) for p in rest]
    return ".".join(parts)


def _problem(err: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "value_error":
        msg = str(err["ctx"]["error"])
    elif kind in ("greater_than_equal", "greater_than"):
        msg = f"应不小于 {err['ctx'].get('ge', err['ctx'].get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        msg = f"应不大于 {err['ctx'].get('le', err['ctx'].get('lt'))}"
    elif kind == "literal_error":
        msg = f"取值无效，可选：{err.get('ctx', {}).get('expected', '')}"
    else:
        msg = _MESSAGES.get(kind, "取值无效")
    where = _where(tuple(err["loc"]), raw)
    return f"{where}：{msg}" if where else msg


def parse_sheet(text: str, *, source: str) -> Sheet:
    """Validate a sheet's TOML text.

    Raises:
        SheetError: not TOML, or not a valid sheet (one Chinese line per problem).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SheetError([f"检查评分表不是有效的 TOML：{exc}"], source) from None
    try:
        data = _SheetFile.model_validate(raw)
    except ValidationError as exc:
        raise SheetError([f"检查评分表有误：{_problem(e, raw)}" for e in exc.errors()], source) from None
    items = tuple(Indicator(i.code, i.title, i.scope, i.veto, i.points or 0,
                            (i.max if i.max is not None else data.full_score) if not i.veto else 0,
                            i.standard) for i in data.items)
    return Sheet(data.name, data.basis, data.full_score, data.pass_score, items)


def load_sheet(path: Path | None = None) -> Sheet:
    """The sheet at ``path`` (``[checks] indicators``), else the shipped one.

    Raises:
        SheetError: the file is missing, unreadable or malformed.
    """
    if path is None:
        text = (resources.files("checks") / "data" / "indicators.toml").read_text(encoding="utf-8")
        return parse_sheet(text, source=SHIPPED)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SheetError([f"找不到检查评分表 {path}（[checks] indicators）"], str(path)) from None
    except UnicodeDecodeError:
        raise SheetError(["检查评分表不是 UTF-8 编码"], str(path)) from None
    except OSError as exc:
        raise SheetError([f"无法读取检查评分表：{exc.strerror or exc}"], str(path)) from None
    return parse_sheet(text, source=str(path))
