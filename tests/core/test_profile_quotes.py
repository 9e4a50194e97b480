"""Every citation in the rule profiles is true to the seed text of the article it names.

The six files in ``core/profiles/`` are read with ``tomllib`` directly (this test does not
import ``core.profiles``). Two groups of tests:

* always run: each value's quote contains the value itself (its number with its unit, or a
  word from :data:`WORD_QUANTITIES`; each reported body; each grade name; a flag's word),
  each value cites exactly one article, and ``default`` holds the strictest value of every
  key, copied from the source it names;
* need the seed texts (``$DUTYBOT_SEEDS_DIR``, else ``<repo>/../shared/seeds``; skipped when
  absent): every rule quote, value quote and parent quote occurs, whitespace removed, in the
  text of the article it cites.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILE_DIR = REPO / "core" / "profiles"
JURISDICTIONS = ("liangping", "yunnan", "baoji", "guzhang", "jiangchuan")
PROFILES = ("default", *JURISDICTIONS)
SEED_PREFIX = {"jiangchuan": "000", "liangping": "001", "baoji": "002", "yunnan": "003", "guzhang": "004"}
ARTICLE_COUNT = {"jiangchuan": 28, "liangping": 36, "baoji": 30, "yunnan": 49, "guzhang": 24}

# ----------------------------------------------------------------------------- catalog
# A copy of the catalog the loader accepts: rule -> key -> (kind, units, direction).
# "max": an upper bound, smaller is stricter; "min": a lower bound, larger is stricter.

Spec = tuple[str, tuple[str, ...], str]


def _q(*units: str, direction: str = "max") -> Spec:
    return ("quantity", units, direction)


BODIES_SPEC: Spec = ("bodies", (), "")
FLAG: Spec = ("flag", (), "")
LABELS: Spec = ("labels", (), "")
CATALOG: dict[str, dict[str, Spec]] = {
    "DUTY-1": {"round_the_clock": FLAG},
    "DUTY-2": {"notify": _q("immediate", "minutes")},
    "DUTY-3": {"report": _q("immediate", "minutes")}, "DUTY-4": {}, "DUTY-5": {},
    "SEC-1": {"report_to": BODIES_SPEC, "report_mandatory": FLAG, "evidence_first": FLAG},
    "SEC-2": {"evidence_first": FLAG, "report_to": BODIES_SPEC, "report_mandatory": FLAG},
    "SEC-3": {"report_to": BODIES_SPEC, "report_mandatory": FLAG, "evidence_first": FLAG},
    "SEC-4": {},
    "SEC-5": {"report_to": BODIES_SPEC, "report_mandatory": FLAG},
    "SEC-6": {"password_min_length": _q("chars", direction="min")},
    "SENS-1": {},
    "SENS-2": {"delete": _q("immediate", "minutes", "hours")},
    "SENS-3": {"delete": _q("workdays", "days", "hours")},
    "OP-1": {"report": _q("immediate", "minutes", "hours"), "report_to": BODIES_SPEC},
    "OP-2": {}, "OP-3": {}, "OP-4": {},
    "GRADE-1": {"grades": LABELS}, "GRADE-2": {},
    "REPLY-1": {"reply": _q("workdays", "days")},
    "REPLY-2": {"reply": _q("workdays", "days")},
    "REPLY-3": {"reply": _q("workdays", "days")},
    "REPLY-4": {"max": _q("months", "days")},
    "REPLY-5": {"decide": _q("workdays", "days"), "max_total": _q("workdays", "days")},
    "REPLY-6": {"comments_open": FLAG},
    "FRESH-1": {"news": _q("days", "weeks", "months"), "notices": _q("days", "weeks", "months"),
                "other": _q("days", "weeks", "months", "years")},
    "FRESH-2": {"posts_per_week": _q("count", direction="min"), "post_interval": _q("days")},
    "FRESH-3": {"original_interval": _q("days", "weeks")},
    "FRESH-4": {"silence": _q("days")},
    "LIFE-1": {"filing": _q("workdays", "days"), "backfill": _q("workdays"), "filing_with": LABELS,
               "open_approval": LABELS, "change_approval": LABELS, "close_approval": LABELS,
               "offline": FLAG},
    "LIFE-2": {"announce": _q("workdays", "days", direction="min")},
    "LIFE-3": {"open_notice": _q("days", direction="min"), "close_notice": _q("days", direction="min")},
    "LIFE-4": {"gov_no_closure": FLAG},
    "LIFE-5": {"place_name_consent": FLAG},
    "CHECK-1": {"annual_report_by": _q("date"), "check_interval": _q("months")},
    "CHECK-2": {},
    "STAFF-1": {"trained_before_duty": FLAG},
    "STAFF-2": {"file_changes": FLAG},
    "STAFF-3": {"annual_training": FLAG},
}
BODIES = ("网信部门", "公安机关", "电信主管部门", "上级主管部门", "平台运营方", "政务公开办公室")

# ------------------------------------------------------------ what a quote must contain

#: How a quote may name a body.
BODY_WORDS = {
    "网信部门": ("网信",),
    "公安机关": ("公安", "报警"),
    "电信主管部门": ("电信",),
    "上级主管部门": ("上一级", "上级"),
    "平台运营方": ("平台",),
    "政务公开办公室": ("政务公开办公室",),
}
#: The Chinese unit words that may follow a number in a quote.
UNIT_WORDS = {
    "workdays": ("个工作日",), "days": ("天", "日"), "weeks": ("周",), "months": ("个月",),
    "years": ("年",), "chars": ("位",), "count": ("次", "条"), "hours": ("小时",),
    "minutes": ("分钟",),
}
#: Quantities written as words: the quote contains the word instead of a digit.
WORD_QUANTITIES = {
    "立即": "immediate", "第一时间": "immediate",
    "每天": "1 days", "每日": "1 days", "每周": "1 weeks", "每月": "1 months",
    "季度": "3 months", "每年": "1 years",
}
#: The words a flag's quote must contain, by (key, value).
FLAG_WORDS = {
    ("round_the_clock", True): ("7×24",),
    ("evidence_first", True): ("保存",),
    ("report_mandatory", True): ("报告", "报警", "备案", "通报", "要求"),
    ("report_mandatory", False): ("是否",),
    ("trained_before_duty", True): ("培训后",),
    ("file_changes", True): ("备案",),
    ("gov_no_closure", True): ("不得关停",),
    ("place_name_consent", True): ("同意",),
    ("comments_open", True): ("不得关闭",),
    ("annual_training", True): ("每年",),
    ("offline", True): ("永久下线",),
}

RULE_QUOTE_MAX = 60
VALUE_QUOTE_MAX = 60
LABELS_QUOTE_MAX = 80     # a grades quote must span every grade name (云南第二十一条: 72)
BRIEF_MAX = 20

ONE_ARTICLE = re.compile(r"^第[一二三四五六七八九十百]+条$")
CN_DIGITS = "一二三四五六七八九"


def cn(n: int) -> str:
    """``第n条``'s numeral: 1 → 一, 10 → 十, 17 → 十七, 21 → 二十一, 40 → 四十."""
    assert 0 < n < 100
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else CN_DIGITS[tens - 1] + "十")
    return head + (CN_DIGITS[ones - 1] if ones else "")


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def articles_of(field: str) -> list[str]:
    return field.split("、")


# ------------------------------------------------------------------------ quantities

_QUANTITY = re.compile(r"^(?:(immediate)|(\d{2})-(\d{2})|(\d+) ([a-z]+))$")
_APPROX_DAYS = {"immediate": 0, "minutes": 1 / 1440, "hours": 1 / 24, "days": 1, "workdays": 1.4,
                "weeks": 7, "months": 30.5, "years": 365}


def parse_quantity(text: str) -> tuple[int, str]:
    """``"3 workdays"`` → (3, "workdays"); ``"immediate"`` → (0, "immediate");
    ``"01-31"`` → (131, "date")."""
    m = _QUANTITY.match(text)
    assert m, f"not a quantity: {text!r}"
    if m.group(1):
        return 0, "immediate"
    if m.group(2):
        return int(m.group(2)) * 100 + int(m.group(3)), "date"
    return int(m.group(4)), m.group(5)


def size(text: str) -> float:
    """An approximate size, to compare the strictness of quantities of one key."""
    amount, unit = parse_quantity(text)
    if unit in ("date", "count", "chars"):
        return amount
    return amount * _APPROX_DAYS[unit]


# ---------------------------------------------------------------------------- loading

@cache
def profile(name: str) -> dict[str, Any]:
    with (PROFILE_DIR / f"{name}.toml").open("rb") as fh:
        return tomllib.load(fh)


def rules(name: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = profile(name).get("rules", {})
    return found


def values(name: str, rule_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = rules(name).get(rule_id, {}).get("values", {})
    return found


def _rule_cases() -> list[Any]:
    return [pytest.param(p, r, id=f"{p}-{r}") for p in PROFILES for r in rules(p)]


def _value_cases() -> list[Any]:
    return [pytest.param(p, r, k, id=f"{p}-{r}-{k}")
            for p in PROFILES for r in rules(p) for k in values(p, r)]


def _parent_cases() -> list[Any]:
    return [pytest.param(p, i, id=f"{p}-parent-{parent['profile']}")
            for p in PROFILES for i, parent in enumerate(profile(p).get("parents", []))]


def _default_key_cases() -> list[Any]:
    return [pytest.param(r, k, id=f"{r}-{k}") for r, keys in CATALOG.items() for k in keys]


# ------------------------------------------------------------------ always-run tests

@pytest.mark.parametrize("name", PROFILES)
def test_profile_shape(name: str) -> None:
    data = profile(name)
    assert data["name"] == name
    for field in ("jurisdiction", "document", "short"):
        assert isinstance(data.get(field), str) and data[field], (name, field)
    assert set(data) <= {"name", "jurisdiction", "document", "short", "year", "published", "published_quote",
                         "parents", "rules"}
    assert ("published" in data) == ("published_quote" in data), name
    for parent in data.get("parents", []):
        assert set(parent) == {"profile", "article", "quote"}, (name, parent)
        assert parent["profile"] in JURISDICTIONS and parent["profile"] != name, parent
        assert ONE_ARTICLE.match(parent["article"]), parent
    unknown = set(data["rules"]) - set(CATALOG)
    assert not unknown, f"{name}: rules not in the catalog: {unknown}"


@pytest.mark.parametrize(("name", "rule_id"), _rule_cases())
def test_rule_fields(name: str, rule_id: str) -> None:
    rule = rules(name)[rule_id]
    allowed = {"article", "summary", "quote", "brief", "values"} | ({"source"} if name == "default" else set())
    assert set(rule) <= allowed, set(rule) - allowed
    assert all(ONE_ARTICLE.match(a) for a in articles_of(rule["article"])), rule["article"]
    assert isinstance(rule["summary"], str) and len(rule["summary"]) >= 2
    assert 2 <= len(rule["quote"]) <= RULE_QUOTE_MAX, rule["quote"]
    if "brief" in rule:
        assert 2 <= len(rule["brief"]) <= BRIEF_MAX, rule["brief"]
    if name == "default":
        assert rule.get("source") in JURISDICTIONS, rule.get("source")
    unknown = set(rule.get("values", {})) - set(CATALOG[rule_id])
    assert not unknown, f"{rule_id} has no keys {unknown} (catalog: {list(CATALOG[rule_id])})"


@pytest.mark.parametrize(("name", "rule_id", "key"), _value_cases())
def test_value_is_well_formed_and_cites_one_article(name: str, rule_id: str, key: str) -> None:
    entry = values(name, rule_id)[key]
    allowed = {"value", "article", "quote"} | ({"source"} if name == "default" else set())
    assert set(entry) == allowed, f"fields {set(entry)}, expected {allowed}"
    # (b) exactly one article per value.
    assert ONE_ARTICLE.match(entry["article"]), f"a value cites ONE article, not {entry['article']!r}"
    if name != "default":
        assert entry["article"] in articles_of(rules(name)[rule_id]["article"]), (
            f"{entry['article']} is not among the rule's articles {rules(name)[rule_id]['article']}")
    kind, units, _ = CATALOG[rule_id][key]
    value = entry["value"]
    limit = LABELS_QUOTE_MAX if kind == "labels" else VALUE_QUOTE_MAX
    assert 2 <= len(entry["quote"]) <= limit, entry["quote"]
    if kind == "quantity":
        assert isinstance(value, str)
        assert parse_quantity(value)[1] in units, f"{value!r}: unit not in {units}"
    elif kind == "flag":
        assert isinstance(value, bool)
    elif kind == "bodies":
        assert isinstance(value, list) and value and set(value) <= set(BODIES), value
        assert len(set(value)) == len(value), value
    elif rule_id == "GRADE-1":
        assert isinstance(value, list) and 2 <= len(value) <= 3 and all(value), value
    else:
        assert isinstance(value, list) and 1 <= len(value) <= 4 and all(value), value
        assert len(set(value)) == len(value), value


@pytest.mark.parametrize(("name", "rule_id", "key"), _value_cases())
def test_value_quote_states_the_value(name: str, rule_id: str, key: str) -> None:
    """(a) The quote contains the number/word that gives the value."""
    entry = values(name, rule_id)[key]
    kind = CATALOG[rule_id][key][0]
    value, quote = entry["value"], squeeze(entry["quote"])
    if kind == "quantity":
        words = [w for w, meant in WORD_QUANTITIES.items() if meant == value and w in quote]
        amount, unit = parse_quantity(value)
        if unit == "immediate":
            assert words, f"{quote!r} says neither 立即 nor 第一时间"
        elif unit == "date":
            month, day = divmod(amount, 100)
            assert f"{month}月{day}日" in quote, f"{quote!r} lacks {month}月{day}日"
        else:
            pattern = rf"(?<!\d){amount}(?:{'|'.join(UNIT_WORDS[unit])})"
            assert re.search(pattern, quote) or words, (
                f"{quote!r} has neither {amount} followed by {'/'.join(UNIT_WORDS[unit])} "
                f"nor a word meaning {value!r}")
    elif kind == "bodies":
        for body in value:
            assert any(w in quote for w in BODY_WORDS[body]), f"{quote!r} does not name {body}"
    elif kind == "labels":
        for label in value:
            assert label in quote, f"{quote!r} does not contain {label}"
    else:
        flag_words = FLAG_WORDS.get((key, value))
        assert flag_words, f"no word stands for {key} = {value}; add one to FLAG_WORDS"
        assert any(w in quote for w in flag_words), f"{quote!r} contains none of {flag_words}"
        if key == "report_mandatory" and value:
            assert "是否" not in quote, f"{quote!r} leaves the report to judgement"


def test_only_the_jurisdiction_that_names_a_parent_has_one() -> None:
    with_parents = {n: [p["profile"] for p in profile(n).get("parents", [])] for n in PROFILES}
    assert with_parents == {n: (["yunnan"] if n == "jiangchuan" else []) for n in PROFILES}


def test_default_covers_exactly_the_regulated_rules() -> None:
    regulated = {r for n in JURISDICTIONS for r in rules(n)}
    assert set(rules("default")) == regulated


@pytest.mark.parametrize("rule_id", sorted(rules("default")))
def test_default_rule_copies_its_source(rule_id: str) -> None:
    rule = rules("default")[rule_id]
    source = rule["source"]
    assert rule_id in rules(source), f"{source} does not regulate {rule_id}"
    own = rules(source)[rule_id]
    assert (rule["article"], rule["quote"]) == (own["article"], own["quote"])


@pytest.mark.parametrize(("rule_id", "key"), _default_key_cases())
def test_default_value_is_the_strictest(rule_id: str, key: str) -> None:
    """(c) default holds the strictest stated value, copied from the source it names."""
    stated = {n: values(n, rule_id)[key] for n in JURISDICTIONS if key in values(n, rule_id)}
    entry = values("default", rule_id).get(key)
    if not stated:
        assert entry is None, f"no document states {rule_id}.{key}, default must not either"
        return
    assert entry is not None, f"{rule_id}.{key} is stated by {sorted(stated)} but absent from default"
    source = entry["source"]
    assert source in stated, f"{source} does not state {rule_id}.{key}"
    for field in ("value", "article", "quote"):
        assert entry[field] == stated[source][field], (field, entry[field], stated[source][field])
    kind, _, direction = CATALOG[rule_id][key]
    found = [v["value"] for v in stated.values()]
    if kind == "quantity":
        pick = min if direction == "max" else max
        assert size(entry["value"]) == pick(size(v) for v in found), (entry["value"], found)
    elif kind == "flag":
        assert entry["value"] is any(found), (entry["value"], found)
    elif kind == "bodies":
        assert len(entry["value"]) == max(len(v) for v in found), (entry["value"], found)
    elif rule_id == "GRADE-1":
        assert source == "liangping", "GRADE-1 grades come from 梁平 (three grades)"
    else:   # an approval chain or filing targets: the longest any document names
        assert len(entry["value"]) == max(len(v) for v in found), (entry["value"], found)


def test_review_findings_stay_fixed() -> None:
    """Values the review found cited to articles that do not state them."""
    assert [n for n in JURISDICTIONS if "password_min_length" in values(n, "SEC-6")] == ["liangping"]
    assert [n for n in JURISDICTIONS if "filing" in values(n, "LIFE-1")] == ["yunnan"]
    assert "posts_per_week" not in values("yunnan", "FRESH-2")
    assert values("yunnan", "FRESH-2")["post_interval"]["value"] == "1 days"
    assert values("guzhang", "GRADE-1")["grades"]["value"] == ["一般信息", "重要信息"]
    assert [n for n in JURISDICTIONS if "round_the_clock" in values(n, "DUTY-1")] == ["liangping"]
    assert all("report" not in values(n, "DUTY-3") for n in PROFILES), "及时 is not a time limit"
    assert [n for n in JURISDICTIONS if "STAFF-1" in rules(n)] == ["liangping", "yunnan"]
    assert [n for n in JURISDICTIONS if "STAFF-2" in rules(n)] == ["liangping"]
    lifecycle = values("baoji", "LIFE-3")
    assert (lifecycle["open_notice"]["article"], lifecycle["close_notice"]["article"]) == ("第七条", "第十条")


# ------------------------------------------------------------------- seed-text tests

# Read at import: tests/conftest.py clears DUTYBOT_* variables before each test runs.
_SEEDS_ENV = os.environ.get("DUTYBOT_SEEDS_DIR")


def seeds_dir() -> Path | None:
    candidate = Path(_SEEDS_ENV) if _SEEDS_ENV else REPO.parent / "shared" / "seeds"
    return candidate if candidate.is_dir() else None


_HEADER = re.compile(r"(?:^|(?<=\s))(第[一二三四五六七八九十百]+条)")
# 古丈's seed lost the numbers after 第十六条; its headers start lines, in this order.
_GUZHANG_HEADER = re.compile(r"^(第[一二三四五六七八九十百]+条|第十|十九|第二十)(?=\s)", re.M)
GUZHANG_MARKERS = ([f"第{cn(i)}条" for i in range(1, 17)]
                   + ["第十", "第十", "十九", "第二十条", "第二十", "第二十", "第二十", "第二十"])


def split_articles(text: str, guzhang: bool = False) -> dict[str, str]:
    """``{"第一条": text of 第一条, …}``; article headers must run 1, 2, 3, … in order."""
    matches = list((_GUZHANG_HEADER if guzhang else _HEADER).finditer(text))
    markers = [m.group(1) for m in matches]
    expected = GUZHANG_MARKERS if guzhang else [f"第{cn(i)}条" for i in range(1, len(markers) + 1)]
    assert markers == expected, f"unexpected article headers: {markers}"
    out = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out[f"第{cn(i + 1)}条"] = squeeze(text[m.start():end])
    return out


@cache
def _seed_articles(name: str) -> dict[str, str]:
    directory = seeds_dir()
    assert directory is not None
    (path,) = directory.glob(f"{SEED_PREFIX[name]}_*.txt")
    return split_articles(path.read_text(encoding="utf-8"), guzhang=name == "guzhang")


@pytest.fixture
def seed_articles() -> Any:
    if seeds_dir() is None:
        pytest.skip("seed texts not found (set DUTYBOT_SEEDS_DIR)")
    return _seed_articles


def _assert_in_article(articles: dict[str, str], cited: str, quote: str, where: str) -> None:
    wanted = squeeze(quote)
    for article in articles_of(cited):
        assert article in articles, f"{where}: the seed has no {article}"
    assert any(wanted in articles[a] for a in articles_of(cited)), (
        f"{where}: {quote!r} is not in {cited}")


@pytest.mark.parametrize("name", JURISDICTIONS)
def test_seed_splits_into_its_articles(name: str, seed_articles: Any) -> None:
    articles = seed_articles(name)
    assert len(articles) == ARTICLE_COUNT[name]


@pytest.mark.parametrize("name", [n for n in JURISDICTIONS if "published" in profile(n)])
def test_published_date_is_in_the_seed(name: str, seed_articles: Any) -> None:
    data = profile(name)
    quote = data["published_quote"]
    day = data["published"]
    assert quote == f"{day.year}年{day.month}月{day.day}日", (quote, day)
    directory = seeds_dir()
    assert directory is not None
    (path,) = directory.glob(f"{SEED_PREFIX[name]}_*.txt")
    assert quote in path.read_text(encoding="utf-8")


def test_account_rules_are_where_the_articles_put_them() -> None:
    """Issue 18: approvals, 不得关停, place names, comments, annual training."""
    assert [n for n in JURISDICTIONS if "LIFE-4" in rules(n)] == ["baoji"]
    assert [n for n in JURISDICTIONS if "LIFE-5" in rules(n)] == ["yunnan"]
    assert [n for n in JURISDICTIONS if "comments_open" in values(n, "REPLY-6")] == ["baoji"]
    assert sorted(n for n in JURISDICTIONS if "STAFF-3" in rules(n)) == ["baoji", "jiangchuan"]
    assert [n for n in JURISDICTIONS if "backfill" in values(n, "LIFE-1")] == ["yunnan"]
    assert "open_approval" not in values("yunnan", "LIFE-1"), "第十七条 names no approval for opening"
    assert values("baoji", "LIFE-1")["close_approval"]["value"][-1] == "省政府办公厅"


def test_guzhang_lost_numbers_map_to_the_right_articles(seed_articles: Any) -> None:
    articles = seed_articles("guzhang")
    assert "网络安全等级保护制度" in articles["第十七条"]
    assert "每个季度实行一次政府网站普查" in articles["第二十一条"]
    assert "本办法自发布之日起执行" in articles["第二十四条"]


@pytest.mark.parametrize(("name", "rule_id"), _rule_cases())
def test_rule_quote_is_in_the_cited_article(name: str, rule_id: str, seed_articles: Any) -> None:
    rule = rules(name)[rule_id]
    document = rule["source"] if name == "default" else name
    _assert_in_article(seed_articles(document), rule["article"], rule["quote"], f"{name} {rule_id}")


@pytest.mark.parametrize(("name", "rule_id", "key"), _value_cases())
def test_value_quote_is_in_the_cited_article(name: str, rule_id: str, key: str, seed_articles: Any) -> None:
    entry = values(name, rule_id)[key]
    document = entry["source"] if name == "default" else name
    _assert_in_article(seed_articles(document), entry["article"], entry["quote"], f"{name} {rule_id}.{key}")


@pytest.mark.parametrize(("name", "index"), _parent_cases())
def test_parent_is_named_in_the_cited_article(name: str, index: int, seed_articles: Any) -> None:
    parent = profile(name)["parents"][index]
    _assert_in_article(seed_articles(name), parent["article"], parent["quote"], f"{name} parent")
