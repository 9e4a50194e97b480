"""Rule profiles: the values of the DOMAIN.md rules, each citing its article.

A profile file (``core/profiles/<name>.toml``) names a jurisdiction's document and
lists, per rule id, the article, a Chinese summary and the rule's values::

    name = "liangping"
    jurisdiction = "重庆市梁平区"
    document = "重庆市梁平区政府网站和政务新媒体管理办法"
    short = "梁平办法"

    [rules.SENS-3]
    article = "第二十四条"
    summary = "区政府办发现后通知主办单位，主办单位1个工作日内删除"
    values = { delete = "1 workdays" }

Rules a jurisdiction does not regulate are inherited from ``default``, which takes the
strictest value of each and names, per rule, the profile (``source``) it comes from.
The catalog below is the mechanism: which rules and value keys exist, in which unit,
and whether a smaller or larger number is stricter. The numbers live in the files.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import ProfileError

PROFILE_NAMES = ("default", "liangping", "yunnan", "baoji", "guzhang", "jiangchuan")

Unit = Literal[
    "immediate", "minutes", "hours", "days", "workdays", "weeks", "months", "years",
    "count", "chars", "date",
]
UNIT_ZH = {
    "immediate": "立即", "minutes": "分钟", "hours": "小时", "days": "天", "workdays": "个工作日",
    "weeks": "周", "months": "个月", "years": "年", "count": "次", "chars": "位", "date": "",
}

# Direction: "max" means the value is an upper bound (a deadline, an interval): smaller is
# stricter. "min" means a lower bound (posts per week, password length): larger is stricter.
Direction = Literal["max", "min"]

# rule id -> {value key: (allowed units, direction)}. Rules with no values still need a
# citation, because playbooks and reminders name them.
CATALOG: dict[str, dict[str, tuple[tuple[str, ...], Direction]]] = {
    "DUTY-1": {}, "DUTY-2": {"notify": (("immediate", "minutes"), "max")},
    "DUTY-3": {"report": (("immediate", "minutes"), "max")}, "DUTY-4": {}, "DUTY-5": {},
    "SEC-1": {}, "SEC-2": {}, "SEC-3": {}, "SEC-4": {}, "SEC-5": {},
    "SEC-6": {"password_min_length": (("chars",), "min")},
    "SENS-1": {},
    "SENS-2": {"delete": (("immediate", "minutes", "hours"), "max")},
    "SENS-3": {"delete": (("workdays", "days", "hours"), "max")},
    "OP-1": {"report": (("immediate", "minutes", "hours"), "max")},
    "OP-2": {}, "OP-3": {}, "OP-4": {},
    "GRADE-1": {}, "GRADE-2": {},
    "REPLY-1": {"reply": (("workdays", "days"), "max")},
    "REPLY-2": {"reply": (("workdays", "days"), "max")},
    "REPLY-3": {"reply": (("workdays", "days"), "max")},
    "REPLY-4": {"max": (("months", "days"), "max")},
    "REPLY-5": {"decide": (("workdays", "days"), "max"), "max_total": (("workdays", "days"), "max")},
    "REPLY-6": {},
    "FRESH-1": {
        "news": (("days", "weeks", "months"), "max"),
        "notices": (("days", "weeks", "months"), "max"),
        "other": (("days", "weeks", "months", "years"), "max"),
    },
    "FRESH-2": {"posts_per_week": (("count",), "min"), "post_interval": (("days",), "max")},
    "FRESH-3": {"original_interval": (("days", "weeks"), "max")},
    "FRESH-4": {"silence": (("days",), "max")},
    "LIFE-1": {"filing": (("workdays", "days"), "max")},
    "LIFE-2": {"announce": (("workdays", "days"), "min")},
    "LIFE-3": {"open_notice": (("days",), "min"), "close_notice": (("days",), "min")},
    "CHECK-1": {"annual_report_by": (("date",), "max"), "check_interval": (("months",), "max")},
    "CHECK-2": {},
}

_QUANTITY = re.compile(r"^\s*(?:(immediate)|(\d{2}-\d{2})|(\d+)\s+([a-z]+))\s*$")
# To compare values of different units when choosing the strictest.
_APPROX_DAYS = {"immediate": 0, "minutes": 1 / 1440, "hours": 1 / 24, "days": 1, "workdays": 1.4,
                "weeks": 7, "months": 30.5, "years": 365}


@dataclass(frozen=True)
class Quantity:
    """A rule value: ``3 workdays``, ``immediate``, ``8 chars``, or a month-day ``01-31``."""

    amount: int
    unit: str
    month_day: str | None = None

    @classmethod
    def parse(cls, text: str) -> Quantity:
        """Parse ``"3 workdays"``, ``"immediate"`` or ``"01-31"``."""
        m = _QUANTITY.match(text)
        if not m:
            raise ValueError(f"无法识别的取值 {text!r}（应形如 \"3 workdays\"、\"immediate\" 或 \"01-31\"）")
        if m.group(1):
            return cls(0, "immediate")
        if m.group(2):
            return cls(0, "date", m.group(2))
        unit = m.group(4)
        if unit not in UNIT_ZH or unit in ("immediate", "date"):
            raise ValueError(f"未知单位 {unit!r}（可用：{', '.join(k for k in UNIT_ZH if k not in ('immediate', 'date'))}）")
        return cls(int(m.group(3)), unit)

    def sort_key(self) -> float:
        """An approximate size in days, for choosing the strictest of several values."""
        if self.unit == "date":
            assert self.month_day is not None
            month, day = map(int, self.month_day.split("-"))
            return month * 31 + day
        if self.unit in ("count", "chars"):
            return self.amount
        return self.amount * _APPROX_DAYS[self.unit]

    def zh(self) -> str:
        """Chinese rendering: ``3个工作日``, ``立即``, ``1月31日前``."""
        if self.unit == "immediate":
            return "立即"
        if self.unit == "date":
            assert self.month_day is not None
            month, day = map(int, self.month_day.split("-"))
            return f"{month}月{day}日前"
        return f"{self.amount}{UNIT_ZH[self.unit]}"

    def __str__(self) -> str:
        if self.unit == "immediate":
            return "immediate"
        if self.unit == "date":
            return str(self.month_day)
        return f"{self.amount} {self.unit}"


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    article: str = Field(min_length=2)
    summary: str = Field(min_length=2)
    source: str | None = None
    values: dict[str, str] = Field(default_factory=dict)

    @field_validator("article")
    @classmethod
    def _article_shape(cls, v: str) -> str:
        if not re.search(r"第[一二三四五六七八九十百零〇]+条", v):
            raise ValueError(f"条款应写作“第N条”（可带多条，以“、”分隔），收到 {v!r}")
        return v


class _ProfileFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    jurisdiction: str
    document: str
    short: str
    year: int | None = None
    inherits: str | None = None
    rules: dict[str, _RuleFile]


@dataclass(frozen=True)
class RuleValue:
    """One value of one rule, with the citation a reminder shows."""

    rule_id: str
    key: str
    quantity: Quantity
    citation: str
    overridden: bool = False


@dataclass(frozen=True)
class RuleEntry:
    """A rule as a profile states it."""

    rule_id: str
    article: str
    summary: str
    source: str          # profile name of the document the article belongs to
    source_short: str    # e.g. 梁平办法
    values: dict[str, Quantity] = field(default_factory=dict)
    inherited: bool = False
    # Values this jurisdiction does not state come from default, with default's citation.
    value_citations: dict[str, str] = field(default_factory=dict)

    @property
    def citation(self) -> str:
        """``梁平办法第二十四条``."""
        return f"{self.source_short}{self.article}"

    def value_citation(self, key: str) -> str:
        """The article that states ``key``'s value."""
        return self.value_citations.get(key, self.citation)


@dataclass(frozen=True)
class Profile:
    """A complete rule profile: every catalog rule has an entry."""

    name: str
    jurisdiction: str
    document: str
    short: str
    rules: dict[str, RuleEntry]
    overrides: dict[str, Quantity] = field(default_factory=dict)

    def value(self, rule_id: str, key: str) -> RuleValue:
        """The value of ``rule_id``'s ``key``, with its citation; overrides win.

        Raises:
            ProfileError: the rule or key is not in the catalog or not set.
        """
        entry = self.rule(rule_id)
        ref = f"{rule_id}.{key}"
        if ref in self.overrides:
            return RuleValue(rule_id, key, self.overrides[ref],
                             f"本地配置（原{entry.value_citation(key)}）", overridden=True)
        if key not in entry.values:
            raise ProfileError(f"规则 {ref} 在配置档 {self.name} 中没有取值")
        return RuleValue(rule_id, key, entry.values[key], entry.value_citation(key))

    def rule(self, rule_id: str) -> RuleEntry:
        """The entry for ``rule_id``."""
        try:
            return self.rules[rule_id]
        except KeyError:
            raise ProfileError(f"未知规则 {rule_id}") from None

    def citation(self, rule_id: str) -> str:
        """``依据：梁平办法第二十四条`` without the prefix."""
        return self.rule(rule_id).citation


def _profile_text(name: str, directory: Path | None) -> str:
    if directory is not None:
        path = directory / f"{name}.toml"
        if path.exists():
            return path.read_text(encoding="utf-8")
    try:
        return (resources.files("core") / "profiles" / f"{name}.toml").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(
            f"未知的规则配置档 {name!r}（可选：{'、'.join(PROFILE_NAMES)}）"
        ) from None


def _read_file(name: str, directory: Path | None) -> _ProfileFile:
    try:
        raw = tomllib.loads(_profile_text(name, directory))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"规则配置档 {name}.toml 不是有效的 TOML：{exc}") from None
    try:
        data = _ProfileFile.model_validate(raw)
    except ValidationError as exc:
        problems = "；".join(f"{'.'.join(map(str, e['loc']))}：{e['msg']}" for e in exc.errors())
        raise ProfileError(f"规则配置档 {name}.toml 有误：{problems}") from None
    if data.name != name:
        raise ProfileError(f"规则配置档 {name}.toml 的 name 写成了 {data.name!r}")
    return data


def _entries(data: _ProfileFile, shorts: dict[str, str]) -> dict[str, RuleEntry]:
    out: dict[str, RuleEntry] = {}
    for rule_id, rf in data.rules.items():
        if rule_id not in CATALOG:
            raise ProfileError(f"规则配置档 {data.name}.toml：未知规则 {rule_id}")
        values: dict[str, Quantity] = {}
        for key, text in rf.values.items():
            if key not in CATALOG[rule_id]:
                raise ProfileError(
                    f"规则配置档 {data.name}.toml：规则 {rule_id} 没有取值项 {key!r}"
                    f"（可用：{', '.join(CATALOG[rule_id]) or '无'}）")
            try:
                q = Quantity.parse(text)
            except ValueError as exc:
                raise ProfileError(f"规则配置档 {data.name}.toml：{rule_id}.{key}：{exc}") from None
            units, _ = CATALOG[rule_id][key]
            if q.unit not in units:
                raise ProfileError(
                    f"规则配置档 {data.name}.toml：{rule_id}.{key} 的单位应为 {'/'.join(units)}，收到 {q.unit}")
            values[key] = q
        source = rf.source or data.name
        if source not in shorts:
            raise ProfileError(f"规则配置档 {data.name}.toml：{rule_id} 的 source {source!r} 不是已知配置档")
        out[rule_id] = RuleEntry(rule_id, rf.article, rf.summary, source, shorts[source], values)
    return out


def load_profile(
    name: str,
    *,
    overrides: dict[str, str] | None = None,
    directory: Path | None = None,
) -> Profile:
    """Load a profile by name, fill the rules it lacks from ``default``, apply overrides.

    Args:
        name: one of :data:`PROFILE_NAMES` (or a file in ``directory``).
        overrides: ``{"REPLY-1.reply": "2 workdays"}`` from the deployment's config.
        directory: an extra folder searched before the shipped profiles.

    Returns:
        A profile with an entry for every rule in :data:`CATALOG`.

    Raises:
        ProfileError: unknown profile, malformed file, missing rule, bad override.
    """
    shorts = {n: _read_file(n, directory).short for n in PROFILE_NAMES}
    data = _read_file(name, directory)
    shorts.setdefault(data.name, data.short)
    rules = _entries(data, shorts)
    if name != "default":
        base = load_profile("default", directory=directory)
        for rule_id, entry in base.rules.items():
            if rule_id not in rules:
                rules[rule_id] = RuleEntry(entry.rule_id, entry.article, entry.summary,
                                           entry.source, entry.source_short, entry.values,
                                           inherited=True)
            else:
                # A jurisdiction that states a rule but not all its values takes the rest
                # from default, cited to default's source, never to its own article.
                own = rules[rule_id]
                missing = {k: v for k, v in entry.values.items() if k not in own.values}
                if missing:
                    rules[rule_id] = RuleEntry(
                        own.rule_id, own.article, own.summary, own.source, own.source_short,
                        own.values | missing, own.inherited,
                        {k: entry.value_citation(k) for k in missing})
    absent = [r for r in CATALOG if r not in rules]
    if absent:
        raise ProfileError(f"规则配置档 {name}.toml 缺少规则：{', '.join(absent)}")
    parsed: dict[str, Quantity] = {}
    for ref, text in (overrides or {}).items():
        rule_id, _, key = ref.partition(".")
        if rule_id not in CATALOG or key not in CATALOG[rule_id]:
            raise ProfileError(f"rules.overrides 中的 {ref!r} 不是已知的规则取值（形如 \"REPLY-1.reply\"）")
        try:
            q = Quantity.parse(text)
        except ValueError as exc:
            raise ProfileError(f"rules.overrides.{ref}：{exc}") from None
        if q.unit not in CATALOG[rule_id][key][0]:
            raise ProfileError(f"rules.overrides.{ref} 的单位应为 {'/'.join(CATALOG[rule_id][key][0])}")
        parsed[ref] = q
    return Profile(data.name, data.jurisdiction, data.document, data.short, rules, parsed)


def strictest(values: list[Quantity], direction: Direction) -> Quantity:
    """The strictest of several values of one key."""
    pick = min if direction == "max" else max
    return pick(values, key=Quantity.sort_key)
