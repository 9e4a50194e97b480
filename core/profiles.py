"""Rule profiles: the values of the DOMAIN.md rules, each value citing the article that says it.

A profile file (``core/profiles/<name>.toml``) names a jurisdiction's document and lists
the rules that document regulates. Each rule names its article(s) and a phrase of the
article (``quote``) that shows the rule is there; each value names the ONE article whose
text states it and the phrase that states it::

    name = "liangping"
    jurisdiction = "重庆市梁平区"
    document = "重庆市梁平区政府网站和政务新媒体管理办法"
    short = "梁平办法"

    [rules.SENS-3]
    article = "第二十四条"
    summary = "区政府办公室发现敏感信息后通知主办单位，主办单位1个工作日内删除"
    quote = "主办单位应在1个工作日内删除信息"

    [rules.SENS-3.values.delete]
    value = "1 workdays"
    article = "第二十四条"
    quote = "主办单位应在1个工作日内删除信息"

Provenance (DOMAIN §11, issue 14): a value is the office's own when its document states
it. Where the document is silent, the bot looks along the document's declared
``[[parents]]`` — only documents the regulation itself names as its basis (江川制度第一条
names the 云南 rules) — and shows what it finds there as ``参照《…》第…条``. Where no
parent states it either, there is no value: the bot says 本地规定未作要求 and does not
invent a deadline. A deployment may set a value itself (``[rules.overrides]``), shown as
本地配置. The ``default`` profile is the composite "strictest of every value across the
shipped documents"; it has no document of its own, so everything in it is 参照.

The catalog below is the mechanism: which rules and value keys exist, of which kind, in
which unit, and whether a smaller or larger number is stricter. The values live in files.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

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

# The external bodies a report may go to, by their Chinese names (the JSON of
# ``dutybot playbooks`` and the chat show these as they are).
BODIES = ("网信部门", "公安机关", "电信主管部门", "上级主管部门", "平台运营方", "政务公开办公室")

NOT_REQUIRED = "本地规定未作要求"

# Direction: "max" means the value is an upper bound (a deadline, an interval): smaller is
# stricter. "min" means a lower bound (posts per week, password length): larger is stricter.
Direction = Literal["max", "min"]
Kind = Literal["quantity", "bodies", "flag", "labels"]


@dataclass(frozen=True)
class KeySpec:
    """What a value key holds: its kind, the units a quantity may use, its direction."""

    kind: Kind
    units: tuple[str, ...] = ()
    direction: Direction = "max"


def _q(units: tuple[str, ...], direction: Direction = "max") -> KeySpec:
    return KeySpec("quantity", units, direction)


_BODIES = KeySpec("bodies")
_FLAG = KeySpec("flag")
_LABELS = KeySpec("labels")

# rule id -> {value key: spec}. Rules with no values still need a citation, because
# playbooks and reminders name them.
CATALOG: dict[str, dict[str, KeySpec]] = {
    "DUTY-1": {"round_the_clock": _FLAG},
    "DUTY-2": {"notify": _q(("immediate", "minutes"))},
    "DUTY-3": {"report": _q(("immediate", "minutes"))}, "DUTY-4": {}, "DUTY-5": {},
    "SEC-1": {"report_to": _BODIES, "report_mandatory": _FLAG, "evidence_first": _FLAG},
    "SEC-2": {"evidence_first": _FLAG, "report_to": _BODIES, "report_mandatory": _FLAG},
    "SEC-3": {"report_to": _BODIES, "report_mandatory": _FLAG, "evidence_first": _FLAG},
    "SEC-4": {},
    "SEC-5": {"report_to": _BODIES, "report_mandatory": _FLAG},
    "SEC-6": {"password_min_length": _q(("chars",), "min")},
    "SENS-1": {},
    "SENS-2": {"delete": _q(("immediate", "minutes", "hours"))},
    "SENS-3": {"delete": _q(("workdays", "days", "hours"))},
    "OP-1": {"report": _q(("immediate", "minutes", "hours")), "report_to": _BODIES},
    "OP-2": {}, "OP-3": {}, "OP-4": {},
    "GRADE-1": {"grades": _LABELS}, "GRADE-2": {},
    "REPLY-1": {"reply": _q(("workdays", "days"))},
    "REPLY-2": {"reply": _q(("workdays", "days"))},
    "REPLY-3": {"reply": _q(("workdays", "days"))},
    "REPLY-4": {"max": _q(("months", "days"))},
    "REPLY-5": {"decide": _q(("workdays", "days")), "max_total": _q(("workdays", "days"))},
    "REPLY-6": {"comments_open": _FLAG},
    "FRESH-1": {
        "news": _q(("days", "weeks", "months")),
        "notices": _q(("days", "weeks", "months")),
        "other": _q(("days", "weeks", "months", "years")),
    },
    "FRESH-2": {"posts_per_week": _q(("count",), "min"), "post_interval": _q(("days",))},
    "FRESH-3": {"original_interval": _q(("days", "weeks"))},
    "FRESH-4": {"silence": _q(("days",))},
    # Approvals and filing targets are labels: who agrees, in order; where it is filed.
    "LIFE-1": {"filing": _q(("workdays", "days")), "backfill": _q(("workdays",)),
               "filing_with": _LABELS, "open_approval": _LABELS, "change_approval": _LABELS,
               "close_approval": _LABELS, "offline": _FLAG},
    "LIFE-2": {"announce": _q(("workdays", "days"), "min")},
    "LIFE-3": {"open_notice": _q(("days",), "min"), "close_notice": _q(("days",), "min")},
    # 市县政府系统政务新媒体原则上不得关停 (宝鸡第十条); place names need 同级政府同意 (云南第十六条).
    "LIFE-4": {"gov_no_closure": _FLAG},
    "LIFE-5": {"place_name_consent": _FLAG},
    "CHECK-1": {"annual_report_by": _q(("date",)), "check_interval": _q(("months",))},
    "CHECK-2": {},
    # Staff: training before duty; staff changes filed with the district office.
    "STAFF-1": {"trained_before_duty": _FLAG},
    "STAFF-2": {"file_changes": _FLAG},
    # Training at least once a year (宝鸡第二十六条; 江川第二十七条).
    "STAFF-3": {"annual_training": _FLAG},
}

_QUANTITY = re.compile(r"^\s*(?:(immediate)|(\d{2}-\d{2})|(\d+)\s+([a-z]+))\s*$")
# To compare values of different units when choosing the strictest.
_APPROX_DAYS = {"immediate": 0, "minutes": 1 / 1440, "hours": 1 / 24, "days": 1, "workdays": 1.4,
                "weeks": 7, "months": 30.5, "years": 365}
_ONE_ARTICLE = re.compile(r"^第[一二三四五六七八九十百零〇]+条$")
_ARTICLES = re.compile(r"^第[一二三四五六七八九十百零〇]+条(、第[一二三四五六七八九十百零〇]+条)*$")


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


# ---------------------------------------------------------------------------- file model

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ValueFile(_Strict):
    value: bool | str | list[str]
    article: str
    quote: str = Field(min_length=2, max_length=120)
    source: str | None = None      # default.toml: the profile whose document states it

    @field_validator("article")
    @classmethod
    def _one_article(cls, v: str) -> str:
        if not _ONE_ARTICLE.match(v):
            raise ValueError(f"取值只能引用一条条款（写作“第N条”），收到 {v!r}")
        return v


class _RuleFile(_Strict):
    article: str
    summary: str = Field(min_length=2)
    quote: str = Field(min_length=2, max_length=120)
    brief: str | None = Field(default=None, max_length=24)
    source: str | None = None
    values: dict[str, _ValueFile] = Field(default_factory=dict)

    @field_validator("article")
    @classmethod
    def _article_shape(cls, v: str) -> str:
        if not _ARTICLES.match(v):
            raise ValueError(f"条款应写作“第N条”（可带多条，以“、”分隔），收到 {v!r}")
        return v


class _ParentFile(_Strict):
    profile: str
    article: str
    quote: str = Field(min_length=2)


class _ProfileFile(_Strict):
    name: str
    jurisdiction: str
    document: str
    short: str
    year: int | None = None
    published: date | None = None          # the day the document was issued (公布)
    published_quote: str | None = None     # where the seed text says so
    parents: list[_ParentFile] = Field(default_factory=list)
    rules: dict[str, _RuleFile]


# ------------------------------------------------------------------------- loaded model

Origin = Literal["own", "parent", "reference", "override"]


@dataclass(frozen=True)
class Document:
    """A shipped regulation: enough to cite it."""

    name: str           # profile name
    title: str          # 云南省政务新媒体管理办法
    short: str          # 云南办法


def cite(origin: Origin, doc: Document, article: str) -> str:
    """``梁平办法第二十四条`` for the office's own document, ``参照《…》第…条`` otherwise."""
    if origin == "own":
        return f"{doc.short}{article}"
    return f"参照《{doc.title}》{article}"


@dataclass(frozen=True)
class RuleValue:
    """One value of one rule, with where it comes from.

    Exactly one of ``quantity`` / ``items`` / ``flag`` is meaningful, by the key's kind.
    """

    rule_id: str
    key: str
    kind: Kind
    citation: str                   # 梁平办法第二十四条 / 参照《…》第十七条 / 本地配置（原…）
    origin: Origin
    source: str                     # profile name of the document (or "config")
    article: str | None             # None for a value set only in the config
    quote: str | None
    quantity_value: Quantity | None = None
    items: tuple[str, ...] = ()
    flag: bool | None = None

    @property
    def overridden(self) -> bool:
        return self.origin == "override"

    @property
    def quantity(self) -> Quantity:
        """The quantity of a quantity-kind value."""
        if self.quantity_value is None:
            raise ProfileError(f"规则 {self.rule_id}.{self.key} 不是时限或数量")
        return self.quantity_value

    def zh(self) -> str:
        """The value as a person reads it: ``3个工作日``, ``公安机关、网信部门``, ``是``."""
        if self.kind == "quantity":
            return self.quantity.zh()
        if self.kind == "flag":
            return "是" if self.flag else "否"
        return "、".join(self.items)

    def plain(self) -> str | bool | list[str]:
        """The value for JSON: ``"3 workdays"``, ``true``, ``["公安机关"]``."""
        if self.kind == "quantity":
            return str(self.quantity)
        if self.kind == "flag":
            return bool(self.flag)
        return list(self.items)


@dataclass(frozen=True)
class RuleEntry:
    """A rule as the active profile sees it: its own, a parent's (参照), or not regulated."""

    rule_id: str
    article: str | None        # None: not regulated here nor by a parent
    summary: str
    brief: str
    origin: Origin | None      # own / parent / reference; None when not regulated
    source: str                # profile name of the document ("" when not regulated)
    source_short: str
    citation_text: str

    @property
    def regulated(self) -> bool:
        return self.origin is not None

    @property
    def inherited(self) -> bool:
        """Cited from a document other than the office's own."""
        return self.origin in ("parent", "reference")

    @property
    def citation(self) -> str:
        """``梁平办法第二十四条``, ``参照《…》第四十一条`` or ``本地规定未作要求``."""
        return self.citation_text


class MissingValue(ProfileError):
    """The profile (and its parents) state no value for this key."""

    def __init__(self, rule_id: str, key: str, profile: str) -> None:
        super().__init__(f"{NOT_REQUIRED}：配置档 {profile} 未规定 {rule_id}.{key}"
                         f"（如需设定，请在 dutybot.toml 的 [rules.overrides] 中填写 \"{rule_id}.{key}\"）")
        self.rule_id = rule_id
        self.key = key


@dataclass(frozen=True)
class Profile:
    """A resolved rule profile: every catalog rule has an entry (possibly 未作要求)."""

    name: str
    jurisdiction: str
    document: str
    short: str
    rules: dict[str, RuleEntry]
    resolved: dict[str, RuleValue] = field(default_factory=dict)   # "RULE.key" -> value
    parents: tuple[Document, ...] = ()
    # The day each document of the chain was issued, where its file says (profile name ->
    # date): 云南第四十七条 counts from it.
    published: dict[str, date] = field(default_factory=dict)

    def published_on(self, value: RuleValue) -> date | None:
        """The day the document that states ``value`` was issued (None: not known)."""
        return self.published.get(value.source)

    @property
    def overrides(self) -> dict[str, Quantity]:
        return {ref: v.quantity for ref, v in self.resolved.items() if v.overridden}

    def find(self, rule_id: str, key: str) -> RuleValue | None:
        """The value of ``rule_id``'s ``key``, or None where nothing states it."""
        if rule_id not in CATALOG:
            raise ProfileError(f"未知规则 {rule_id}")
        if key not in CATALOG[rule_id]:
            raise ProfileError(f"规则 {rule_id} 没有取值项 {key!r}")
        return self.resolved.get(f"{rule_id}.{key}")

    def value(self, rule_id: str, key: str) -> RuleValue:
        """The value of ``rule_id``'s ``key``, with its citation; overrides win.

        Raises:
            MissingValue: neither the document, its parents nor the config state it.
            ProfileError: the rule or key is not in the catalog.
        """
        found = self.find(rule_id, key)
        if found is None:
            raise MissingValue(rule_id, key, self.name)
        return found

    def values_of(self, rule_id: str) -> dict[str, RuleValue]:
        """Every stated value of one rule, by key."""
        return {k: v for k in CATALOG[rule_id] if (v := self.resolved.get(f"{rule_id}.{k}"))}

    def flag(self, rule_id: str, key: str) -> bool:
        """A flag's value; an unstated flag is false."""
        found = self.find(rule_id, key)
        return bool(found and found.flag)

    def rule(self, rule_id: str) -> RuleEntry:
        """The entry for ``rule_id``."""
        try:
            return self.rules[rule_id]
        except KeyError:
            raise ProfileError(f"未知规则 {rule_id}") from None

    def citation(self, rule_id: str) -> str:
        """``梁平办法第二十四条`` / ``参照《…》第…条`` / ``本地规定未作要求``."""
        return self.rule(rule_id).citation

    def first_regulated(self, *rule_ids: str) -> RuleEntry:
        """The first of ``rule_ids`` this profile regulates (else the first, 未作要求)."""
        for rule_id in rule_ids:
            if self.rule(rule_id).regulated:
                return self.rule(rule_id)
        return self.rule(rule_ids[0])

    def cited(self, *rule_ids: str) -> str:
        """``梁平办法第二十条（7×24小时值班读网）`` for the first regulated of ``rule_ids``."""
        entry = self.first_regulated(*rule_ids)
        if not entry.regulated:
            return NOT_REQUIRED
        return f"{entry.citation}（{entry.brief}）"

    def basis(self, *rule_ids: str) -> str:
        """``依据：梁平办法第二十条（7×24小时值班读网）``; several groups joined by ``；``."""
        return f"依据：{self.cited(*rule_ids)}"

    @property
    def duty_wording(self) -> str:
        """How the office's own rules name reading duty: 7×24 only where they say so."""
        return "7×24小时值班读网" if self.round_the_clock else "值班值守、日常巡查"

    @property
    def round_the_clock(self) -> bool:
        """Whether the office's rules require 7×24 reading (only 梁平第二十条 does)."""
        return self.flag("DUTY-1", "round_the_clock")


# -------------------------------------------------------------------------- loading

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


@functools.lru_cache(maxsize=64)
def _toml(text: str) -> dict[str, Any]:
    """``text`` parsed, remembered by its content: a start reads the same few files a dozen
    times (each :func:`load_profile` of a chain, and the settings are loaded more than once).
    Only model validation reads the result, and a file that changes is read anew."""
    return tomllib.loads(text)


def _read_file(name: str, directory: Path | None) -> _ProfileFile:
    try:
        raw = _toml(_profile_text(name, directory))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"规则配置档 {name}.toml 不是有效的 TOML：{exc}") from None
    try:
        data = _ProfileFile.model_validate(raw)
    except ValidationError as exc:
        problems = "；".join(f"{'.'.join(map(str, e['loc']))}：{e['msg']}" for e in exc.errors())
        raise ProfileError(f"规则配置档 {name}.toml 有误：{problems}") from None
    if data.name != name:
        raise ProfileError(f"规则配置档 {name}.toml 的 name 写成了 {data.name!r}")
    _check(data)
    return data


def _check_value(where: str, spec: KeySpec, raw: bool | str | list[str]) -> None:
    if spec.kind == "quantity":
        if not isinstance(raw, str):
            raise ProfileError(f"{where} 应为时限或数量（如 \"3 workdays\"）")
        try:
            q = Quantity.parse(raw)
        except ValueError as exc:
            raise ProfileError(f"{where}：{exc}") from None
        if q.unit not in spec.units:
            raise ProfileError(f"{where} 的单位应为 {'/'.join(spec.units)}，收到 {q.unit}")
    elif spec.kind == "flag":
        if not isinstance(raw, bool):
            raise ProfileError(f"{where} 应为 true 或 false")
    else:
        if not isinstance(raw, list) or not raw or not all(raw):
            raise ProfileError(f"{where} 应为非空的名称列表")
        if spec.kind == "bodies":
            unknown = [x for x in raw if x not in BODIES]
            if unknown:
                raise ProfileError(f"{where}：未知的报告对象 {'、'.join(unknown)}（可用：{'、'.join(BODIES)}）")


def _check(data: _ProfileFile) -> None:
    for rule_id, rf in data.rules.items():
        if rule_id not in CATALOG:
            raise ProfileError(f"规则配置档 {data.name}.toml：未知规则 {rule_id}")
        for key, vf in rf.values.items():
            where = f"规则配置档 {data.name}.toml：{rule_id}.{key}"
            if key not in CATALOG[rule_id]:
                raise ProfileError(f"{where} 不是该规则的取值项（可用：{', '.join(CATALOG[rule_id]) or '无'}）")
            _check_value(where, CATALOG[rule_id][key], vf.value)


def _make_value(rule_id: str, key: str, raw: bool | str | list[str], *, citation: str,
                origin: Origin, source: str, article: str | None, quote: str | None) -> RuleValue:
    kind = CATALOG[rule_id][key].kind
    quantity = Quantity.parse(raw) if kind == "quantity" and isinstance(raw, str) else None
    flag = raw if kind == "flag" and isinstance(raw, bool) else None
    items = tuple(raw) if isinstance(raw, list) else ()
    return RuleValue(rule_id, key, kind, citation, origin, source, article, quote,
                     quantity_value=quantity, items=items, flag=flag)


def _chain(name: str, directory: Path | None, seen: tuple[str, ...] = ()) -> list[_ProfileFile]:
    """The document and its declared parents, depth first, each once."""
    if name in seen:
        raise ProfileError(f"规则配置档的上位文件循环引用：{' → '.join((*seen, name))}")
    data = _read_file(name, directory)
    out = [data]
    for parent in data.parents:
        if parent.profile == "default":
            raise ProfileError(f"规则配置档 {name}.toml：default 不是上位文件")
        for more in _chain(parent.profile, directory, (*seen, name)):
            if all(more.name != d.name for d in out):
                out.append(more)
    return out


def load_profile(
    name: str,
    *,
    overrides: dict[str, str] | None = None,
    directory: Path | None = None,
) -> Profile:
    """Load a profile by name and resolve every rule and value along its lawful chain.

    Args:
        name: one of :data:`PROFILE_NAMES` (or a file in ``directory``).
        overrides: ``{"REPLY-1.reply": "2 workdays"}`` from the deployment's config.
        directory: an extra folder searched before the shipped profiles.

    Returns:
        A profile with an entry for every rule in :data:`CATALOG`; values only where a
        document of the chain (or the config) states them.

    Raises:
        ProfileError: unknown profile, malformed file, bad parent, bad override.
    """
    chain = _chain(name, directory)
    own = chain[0]
    documents = {d.name: Document(d.name, d.document, d.short) for d in chain}
    composite = own.name == "default"
    if composite:
        named = {n for r in own.rules.values() for n in (r.source, *(v.source for v in r.values.values()))}
        for source_name in sorted(n for n in named if n is not None):
            if source_name not in documents:
                data = _read_file(source_name, directory)
                documents[source_name] = Document(data.name, data.document, data.short)
        if any(r.source is None for r in own.rules.values()):
            raise ProfileError("规则配置档 default.toml：每条规则都须写明 source")

    rules: dict[str, RuleEntry] = {}
    resolved: dict[str, RuleValue] = {}
    for rule_id, keys in CATALOG.items():
        for depth, doc in enumerate(chain):
            rf = doc.rules.get(rule_id)
            if rf is None:
                continue
            origin: Origin = "reference" if composite else ("own" if depth == 0 else "parent")
            src = documents[(rf.source or doc.name) if composite else doc.name]
            rules[rule_id] = RuleEntry(rule_id, rf.article, rf.summary, rf.brief or rf.summary,
                                       origin, src.name, src.short, cite(origin, src, rf.article))
            break
        else:
            rules[rule_id] = RuleEntry(rule_id, None, NOT_REQUIRED, NOT_REQUIRED, None, "", "",
                                       NOT_REQUIRED)
        for key in keys:
            for depth, doc in enumerate(chain):
                holder = doc.rules.get(rule_id)
                vf = holder.values.get(key) if holder is not None else None
                if vf is None or holder is None:
                    continue
                origin = "reference" if composite else ("own" if depth == 0 else "parent")
                src = documents[(vf.source or holder.source or doc.name) if composite else doc.name]
                resolved[f"{rule_id}.{key}"] = _make_value(
                    rule_id, key, vf.value, citation=cite(origin, src, vf.article), origin=origin,
                    source=src.name, article=vf.article, quote=vf.quote)
                break

    for ref, text in (overrides or {}).items():
        rule_id, _, key = ref.partition(".")
        if rule_id not in CATALOG or key not in CATALOG[rule_id]:
            raise ProfileError(f"rules.overrides 中的 {ref!r} 不是已知的规则取值（形如 \"REPLY-1.reply\"）")
        spec = CATALOG[rule_id][key]
        if spec.kind != "quantity":
            raise ProfileError(f"rules.overrides.{ref} 不是时限或数量，不能在配置中覆盖")
        try:
            q = Quantity.parse(text)
        except ValueError as exc:
            raise ProfileError(f"rules.overrides.{ref}：{exc}") from None
        if q.unit not in spec.units:
            raise ProfileError(f"rules.overrides.{ref} 的单位应为 {'/'.join(spec.units)}")
        before = resolved.get(ref)
        citation = f"本地配置（原{before.citation}）" if before else f"本地配置（{NOT_REQUIRED}）"
        resolved[ref] = RuleValue(rule_id, key, "quantity", citation, "override", "config",
                                  None, None, quantity_value=q)
    published = {d.name: d.published for d in chain if d.published is not None}
    for source_name in documents:
        if source_name not in published and composite:
            data = _read_file(source_name, directory)
            if data.published is not None:
                published[source_name] = data.published
    return Profile(own.name, own.jurisdiction, own.document, own.short, rules, resolved,
                   tuple(documents[d.name] for d in chain[1:]), published)


def strictest(values: list[Quantity], direction: Direction) -> Quantity:
    """The strictest of several values of one key."""
    pick = min if direction == "max" else max
    return pick(values, key=Quantity.sort_key)
