"""Rule profiles: every value cites an article; default is the strictest of all."""

from __future__ import annotations

import re

import pytest

from core.errors import ProfileError
from core.profiles import CATALOG, PROFILE_NAMES, Quantity, _read_file, load_profile, strictest

ARTICLE = re.compile(r"第[一二三四五六七八九十百零〇]+条")
JURISDICTIONS = [n for n in PROFILE_NAMES if n != "default"]


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_loads_complete_and_every_value_cites_an_article(name: str) -> None:
    profile = load_profile(name)
    assert set(profile.rules) == set(CATALOG)
    for rule_id, keys in CATALOG.items():
        entry = profile.rule(rule_id)
        assert ARTICLE.search(entry.citation), (name, rule_id)
        for key in keys:
            value = profile.value(rule_id, key)
            assert ARTICLE.search(value.citation), (name, rule_id, key)


def test_default_takes_the_strictest_value_of_each_key() -> None:
    default = load_profile("default")
    for rule_id, keys in CATALOG.items():
        for key, (_, direction) in keys.items():
            stated = [
                Quantity.parse(f.rules[rule_id].values[key])
                for f in (_read_file(n, None) for n in JURISDICTIONS)
                if rule_id in f.rules and key in f.rules[rule_id].values
            ]
            if stated:
                assert default.value(rule_id, key).quantity == strictest(stated, direction), (rule_id, key)


def test_known_values_and_citations() -> None:
    liangping = load_profile("liangping")
    sens3 = liangping.value("SENS-3", "delete")
    assert (sens3.quantity.amount, sens3.quantity.unit) == (1, "workdays")
    assert sens3.citation == "梁平办法第二十四条"
    guzhang = load_profile("guzhang")
    assert str(guzhang.value("REPLY-1", "reply").quantity) == "3 workdays"
    assert str(guzhang.value("REPLY-4", "max").quantity) == "3 months"
    yunnan = load_profile("yunnan")
    assert str(yunnan.value("REPLY-5", "max_total").quantity) == "30 workdays"
    assert yunnan.value("REPLY-5", "decide").citation == "云南办法第四十五条"


def test_values_a_jurisdiction_does_not_state_cite_their_real_source() -> None:
    liangping = load_profile("liangping")
    # 梁平办法 has no daily-posting rule; the inherited value must not be cited to it.
    value = liangping.value("FRESH-2", "post_interval")
    assert not value.citation.startswith("梁平办法")
    assert liangping.value("FRESH-2", "posts_per_week").citation.startswith("梁平办法")
    # A rule the document does not regulate at all is inherited with its source.
    assert liangping.rule("REPLY-5").inherited
    assert liangping.value("REPLY-5", "decide").citation == "云南办法第四十五条"


def test_override_wins_and_says_so() -> None:
    profile = load_profile("guzhang", overrides={"REPLY-1.reply": "2 workdays"})
    value = profile.value("REPLY-1", "reply")
    assert value.quantity == Quantity(2, "workdays") and value.overridden
    assert value.citation == "本地配置（原古丈办法第十三条）"


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"REPLY-9.reply": "2 workdays"}, "不是已知的规则取值"),
    ({"REPLY-1.reply": "two days"}, "无法识别的取值"),
    ({"REPLY-1.reply": "2 hours"}, "单位应为"),
])
def test_bad_override_is_refused(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ProfileError, match=fragment):
        load_profile("default", overrides=overrides)


def test_unknown_profile_lists_the_choices() -> None:
    with pytest.raises(ProfileError, match="liangping"):
        load_profile("chongqing")


def test_quantity_rendering() -> None:
    assert Quantity.parse("3 workdays").zh() == "3个工作日"
    assert Quantity.parse("immediate").zh() == "立即"
    assert Quantity.parse("01-31").zh() == "1月31日前"
