"""Rule profiles: every value cites the one article that states it; a silent document
falls back only along its declared parents (参照), else there is no value (未作要求)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import ProfileError
from core.profiles import (
    CATALOG,
    NOT_REQUIRED,
    PROFILE_NAMES,
    MissingValue,
    Quantity,
    _read_file,
    load_profile,
    strictest,
)

ARTICLE = r"第[一二三四五六七八九十百零〇]+条"
JURISDICTIONS = [n for n in PROFILE_NAMES if n != "default"]
YUNNAN_TITLE = "云南省政务新媒体管理办法"


def _own_or_reference(citation: str, short: str) -> bool:
    return bool(re.fullmatch(rf"{short}{ARTICLE}(、{ARTICLE})*", citation)
                or re.fullmatch(rf"参照《[^》]+》{ARTICLE}(、{ARTICLE})*", citation))


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_citation_is_own_article_or_says_canzhao(name: str) -> None:
    profile = load_profile(name)
    assert set(profile.rules) == set(CATALOG)
    for rule_id in CATALOG:
        entry = profile.rule(rule_id)
        if entry.regulated:
            assert _own_or_reference(entry.citation, profile.short), (name, rule_id, entry.citation)
        else:
            assert entry.citation == NOT_REQUIRED
        for key, value in profile.values_of(rule_id).items():
            assert _own_or_reference(value.citation, profile.short), (name, rule_id, key)
            # A value is cited to exactly one article, and that is the article it names.
            assert value.article is not None and value.citation.endswith(value.article)
            assert value.quote


@pytest.mark.parametrize("name", JURISDICTIONS)
def test_a_jurisdiction_states_only_its_own_values(name: str) -> None:
    """Nothing is taken from default or from a document the regulation does not name."""
    profile = load_profile(name)
    parents = {d.name for d in profile.parents}
    for ref, value in profile.resolved.items():
        assert value.source in {name, *parents}, (name, ref, value.source)
        if value.source == name:
            assert value.citation.startswith(profile.short) and value.origin == "own"
        else:
            assert value.citation.startswith("参照《") and value.origin == "parent"


def test_jiangchuan_falls_back_to_yunnan_only() -> None:
    """江川制度第一条 bases itself on 云政办规〔2019〕6号: 参照云南, never 梁平/宝鸡/古丈."""
    jiangchuan = load_profile("jiangchuan")
    assert [d.name for d in jiangchuan.parents] == ["yunnan"]
    for rule_id in CATALOG:
        texts = [jiangchuan.citation(rule_id)] + [v.citation for v in jiangchuan.values_of(rule_id).values()]
        for text in texts:
            assert (text.startswith("江川制度") or text.startswith(f"参照《{YUNNAN_TITLE}》")
                    or text == NOT_REQUIRED), (rule_id, text)
    # 江川制度第十三条 sets no filing time; 云南办法第十七条 does (7个工作日).
    filing = jiangchuan.value("LIFE-1", "filing")
    assert str(filing.quantity) == "7 workdays"
    assert filing.citation == f"参照《{YUNNAN_TITLE}》第十七条"
    assert jiangchuan.citation("LIFE-1").startswith("江川制度")
    # Its own 15-workday announcement is its own.
    assert jiangchuan.value("LIFE-2", "announce").citation == "江川制度第十四条"


def test_silent_document_has_no_value_and_says_so() -> None:
    liangping = load_profile("liangping")
    # 梁平办法 sets no reply periods (古丈第十三条 does, but 古丈 is not 梁平's parent).
    assert liangping.find("REPLY-1", "reply") is None
    assert not liangping.rule("REPLY-5").regulated
    assert liangping.citation("REPLY-5") == NOT_REQUIRED
    with pytest.raises(MissingValue, match=NOT_REQUIRED):
        liangping.value("REPLY-1", "reply")
    # 梁平第二十条 says 及时报告带班领导: "及时" is not turned into a number.
    assert liangping.find("DUTY-3", "report") is None
    # 云南第二十二条 is one post a day (not three a week).
    yunnan = load_profile("yunnan")
    assert str(yunnan.value("FRESH-2", "post_interval").quantity) == "1 days"
    assert yunnan.find("FRESH-2", "posts_per_week") is None
    # Only 梁平第三十二条 has 密码不少于8位.
    for name in ("jiangchuan", "baoji", "yunnan", "guzhang"):
        assert load_profile(name).find("SEC-6", "password_min_length") is None, name
    assert load_profile("liangping").value("SEC-6", "password_min_length").citation == "梁平办法第三十二条"


def test_values_of_one_rule_cite_their_own_articles() -> None:
    """宝鸡: opening notice 第七条, closing notice 第十条 — one article per value."""
    baoji = load_profile("baoji")
    assert baoji.value("LIFE-3", "open_notice").citation == "宝鸡办法第七条"
    assert baoji.value("LIFE-3", "close_notice").citation == "宝鸡办法第十条"
    guzhang = load_profile("guzhang")
    assert guzhang.value("CHECK-1", "annual_report_by").citation == "古丈办法第十五条"
    assert guzhang.value("FRESH-1", "other").citation == "古丈办法第九条"


def test_grades_follow_the_document() -> None:
    assert load_profile("guzhang").value("GRADE-1", "grades").items == ("一般信息", "重要信息")
    assert len(load_profile("liangping").value("GRADE-1", "grades").items) == 3


def test_external_reports_follow_the_articles() -> None:
    liangping = load_profile("liangping")
    assert not liangping.flag("SEC-1", "report_mandatory")          # 研判是否
    baoji = load_profile("baoji")
    assert baoji.value("SEC-3", "report_to").items == ("公安机关",)  # 报警
    assert baoji.flag("SEC-3", "report_mandatory")
    assert baoji.flag("SEC-2", "evidence_first")                     # 保存相关证据、数据后
    yunnan = load_profile("yunnan")
    assert set(yunnan.value("SEC-2", "report_to").items) == {"网信部门", "公安机关", "电信主管部门", "上级主管部门"}
    assert yunnan.flag("SEC-2", "report_mandatory") and yunnan.flag("SEC-2", "evidence_first")


def test_only_liangping_requires_round_the_clock_reading() -> None:
    assert load_profile("liangping").round_the_clock
    for name in ("yunnan", "baoji", "guzhang", "jiangchuan"):
        profile = load_profile(name)
        assert not profile.round_the_clock, name
        assert "7×24" not in profile.basis("DUTY-1", "DUTY-5"), name


def test_default_is_all_canzhao_and_takes_the_strictest_value() -> None:
    default = load_profile("default")
    for ref, value in default.resolved.items():
        assert value.origin == "reference" and value.citation.startswith("参照《"), ref
    for rule_id, keys in CATALOG.items():
        for key, spec in keys.items():
            if spec.kind != "quantity":
                continue
            stated = [Quantity.parse(str(f.rules[rule_id].values[key].value))
                      for f in (_read_file(n, None) for n in JURISDICTIONS)
                      if rule_id in f.rules and key in f.rules[rule_id].values]
            if stated:
                assert default.value(rule_id, key).quantity == strictest(stated, spec.direction), (rule_id, key)
            else:
                assert default.find(rule_id, key) is None, (rule_id, key)


def test_override_wins_and_says_so() -> None:
    profile = load_profile("guzhang", overrides={"REPLY-1.reply": "2 workdays"})
    value = profile.value("REPLY-1", "reply")
    assert value.quantity == Quantity(2, "workdays") and value.overridden
    assert value.citation == "本地配置（原古丈办法第十三条）"
    # An office may set what its own rules leave open; the bot says whose value it is.
    liangping = load_profile("liangping", overrides={"REPLY-1.reply": "5 workdays"})
    assert liangping.value("REPLY-1", "reply").citation == f"本地配置（{NOT_REQUIRED}）"


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"REPLY-9.reply": "2 workdays"}, "不是已知的规则取值"),
    ({"REPLY-1.reply": "two days"}, "无法识别的取值"),
    ({"REPLY-1.reply": "2 hours"}, "单位应为"),
    ({"SEC-2.report_mandatory": "1 days"}, "不能在配置中覆盖"),
])
def test_bad_override_is_refused(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ProfileError, match=fragment):
        load_profile("default", overrides=overrides)


HEAD = 'name = "{name}"\njurisdiction = "某地"\ndocument = "某办法"\nshort = "某办法"\n'


@pytest.mark.parametrize(("body", "fragment"), [
    ('[rules.REPLY-1]\narticle = "第三条"\nsummary = "答复"\nquote = "三日"\n'
     '[rules.REPLY-1.values.reply]\nvalue = "3 workdays"\narticle = "第三条、第四条"\nquote = "3个工作日"\n',
     "只能引用一条条款"),
    ('[rules.SEC-2]\narticle = "第三条"\nsummary = "报告"\nquote = "报警"\n'
     '[rules.SEC-2.values.report_to]\nvalue = ["派出所"]\narticle = "第三条"\nquote = "报警"\n', "未知的报告对象"),
    ('[rules.SEC-2]\narticle = "第三条"\nsummary = "报告"\nquote = "报警"\n'
     '[rules.SEC-2.values.evidence_first]\nvalue = "yes"\narticle = "第三条"\nquote = "保存"\n', "true 或 false"),
    ('[[parents]]\nprofile = "{name}"\narticle = "第一条"\nquote = "根据"\n[rules]\n', "循环引用"),
    ('[rules.REPLY-1]\narticle = "第三条"\nsummary = "答复"\n', "quote"),
])
def test_malformed_profile_is_refused_in_chinese(tmp_path: Path, body: str, fragment: str) -> None:
    (tmp_path / "local.toml").write_text(HEAD.format(name="local") + body.format(name="local"), encoding="utf-8")
    with pytest.raises(ProfileError, match=fragment):
        load_profile("local", directory=tmp_path)


def test_a_local_profile_may_name_a_shipped_parent(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_text(
        HEAD.format(name="local") + '[[parents]]\nprofile = "yunnan"\narticle = "第一条"\nquote = "根据云南办法"\n'
        '[rules.LIFE-2]\narticle = "第九条"\nsummary = "公告"\nquote = "公告10个工作日"\n'
        '[rules.LIFE-2.values.announce]\nvalue = "10 workdays"\narticle = "第九条"\nquote = "公告10个工作日"\n',
        encoding="utf-8")
    local = load_profile("local", directory=tmp_path)
    assert local.value("LIFE-2", "announce").citation == "某办法第九条"
    assert local.value("LIFE-1", "filing").citation == f"参照《{YUNNAN_TITLE}》第十七条"
    assert local.find("REPLY-1", "reply") is None


def test_unknown_profile_lists_the_choices() -> None:
    with pytest.raises(ProfileError, match="liangping"):
        load_profile("chongqing")


def test_quantity_rendering() -> None:
    assert Quantity.parse("3 workdays").zh() == "3个工作日"
    assert Quantity.parse("immediate").zh() == "立即"
    assert Quantity.parse("01-31").zh() == "1月31日前"
