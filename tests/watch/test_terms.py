"""Wrong and sensitive terms (watch/terms.py) and the shipped default lexicon."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from roster.models import Site
from watch.models import FindingKind
from watch.terms import CONTEXT, Lexicon, LexiconError, term_findings
from watch.text import visible_text
from watch.types import finding_key

URL = "https://www.cqlp.gov.cn/xwzx/202611/t20261123_1.html"


def site() -> Site:
    return Site(id=7, name="梁平区人民政府网站", url="https://www.cqlp.gov.cn/", unit="区政府办",
                created_at=datetime(2026, 1, 5, tzinfo=UTC))


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


# ---- the file format -----------------------------------------------------------------

def test_a_lexicon_file_has_wrong_sensitive_and_allowed_entries(tmp_path: Path) -> None:
    path = write(tmp_path, "office.txt", "# 本单位词库\n\n县政府办＝县政府办公室   # 全称\n"
                 "办理假证\n!公布署名单位\n  发改局 = 发展改革局  \n")
    lexicon = Lexicon.load([path], include_default=False)
    assert (lexicon.count("wrong"), lexicon.count("sensitive"), lexicon.count("allowed")) == (2, 1, 1)
    assert lexicon.entries["县政府办"].correct == "县政府办公室"
    assert lexicon.entries["发改局"].correct == "发展改革局"
    assert lexicon.entries["办理假证"].kind == "sensitive"
    assert lexicon.entries["县政府办"].source == f"{path}:3"


def test_bad_lines_are_all_reported_in_chinese_with_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.txt", "布署=部署\n=部署\n截止目前=\n甲=乙=丙\n部署=部署\n!\n" + "长" * 51 + "\n")
    with pytest.raises(LexiconError) as caught:
        Lexicon.load([path], include_default=False)
    problems = caught.value.problems
    assert len(problems) == 6
    assert problems[0].startswith(f"词库 {path} 第 2 行“=部署”：“=”前缺少错误写法")
    assert "第 3 行" in problems[1] and "缺少正确写法" in problems[1]
    assert "第 4 行" in problems[2] and "只能有一个“=”" in problems[2]
    assert "第 5 行" in problems[3] and "“!部署”" in problems[3]
    assert "第 6 行" in problems[4] and "缺少例外词" in problems[4]
    assert "第 7 行" in problems[5] and "最多 50 个字" in problems[5]
    assert "第 2 行" in caught.value.message


def test_a_missing_file_and_a_gbk_file_are_named(tmp_path: Path) -> None:
    gbk = write(tmp_path, "gbk.txt", "布署=部署\n", encoding="gbk")
    with pytest.raises(LexiconError) as caught:
        Lexicon.load([str(tmp_path / "none.txt"), gbk])
    assert caught.value.problems[0] == f"词库文件 {tmp_path / 'none.txt'} 不存在"
    assert gbk in caught.value.problems[1] and "不是 UTF-8 编码" in caught.value.problems[1]


def test_duplicates_merge_and_the_office_file_adds_to_and_overrides_the_default(tmp_path: Path) -> None:
    default = Lexicon.load([])
    office = write(tmp_path, "office.txt", "本县特有错词=本县正确写法\n!国家发改委\n"
                   "本县特有错词=本县正确写法\n工信部=工业和信息化部（正式稿件）\n")
    lexicon = Lexicon.load([office])
    assert len(lexicon) == len(default) + 1          # the repeated line merged
    assert lexicon.scan("国家发改委印发通知") == []      # switched off by the office
    assert lexicon.scan("工信部")[0].correct == "工业和信息化部（正式稿件）"
    assert lexicon.scan("本县特有错词")[0].correct == "本县正确写法"
    assert default.scan("国家发改委")[0].correct == "国家发展改革委"


# ---- scanning ------------------------------------------------------------------------

def test_a_hit_has_its_offset_and_about_twenty_characters_of_context() -> None:
    lexicon = Lexicon.parse("布署=部署\n传奇私服\n")
    text = ("按照区委区政府统一安排，区应急管理局近日召开专题会议，认真研究布署今冬明春安全生产工作，"
            "要求各镇街各部门压实责任。")
    (hit,) = lexicon.scan(text)
    assert (hit.term, hit.kind, hit.correct, hit.start) == ("布署", "wrong", "部署", text.index("布署"))
    start = text.index("布署")
    assert hit.context == "…" + text[start - CONTEXT:start + 2 + CONTEXT] + "…"
    assert len(hit.context) == 2 + 2 * CONTEXT + 2
    short = lexicon.scan("首页传奇私服")[0]
    assert (short.kind, short.correct, short.context) == ("sensitive", "", "首页传奇私服")


def test_offsets_are_characters_whatever_comes_before() -> None:
    lexicon = Lexicon.parse("布署=部署\n百家乐\n")
    text = "Ａ😀 e-mail：zfb@cqlp.gov.cn；𠀀区政府布署工作。页脚百家乐"
    hits = lexicon.scan(text)
    assert [text[h.start:h.start + len(h.term)] for h in hits] == ["布署", "百家乐"]


def test_a_wrong_form_inside_a_longer_correct_word_does_not_fire() -> None:
    lexicon = Lexicon.parse("县政府办=县政府办公室\n")
    assert lexicon.scan("县政府办公室关于做好2027年元旦春节期间值班工作的通知") == []
    assert [h.term for h in lexicon.scan("县政府办印发通知，县政府办公室转发")] == ["县政府办"]


def test_exceptions_and_correct_words_cover_false_segmentations() -> None:
    lexicon = Lexicon.load([])
    assert lexicon.scan("市政府公布署名文章的作者名单") == []       # 公布|署名, not 布署
    assert lexicon.scan("市住建部门、区人社部门、县工信部门联合检查") == []
    assert lexicon.scan("原国家旅游局的职责划入文化和旅游部") == []
    assert [h.term for h in lexicon.scan("国家旅游局发布通知")] == ["国家旅游局"]
    # a wrong form that holds its own correct form still fires
    assert [h.correct for h in lexicon.scan("国家市场监管总局发布")] == ["市场监管总局"]


def test_a_correct_official_page_raises_no_alarm() -> None:
    page = """<html><head><title>梁平区人民政府办公室关于做好安全生产工作的通知</title></head><body>
    <p>各镇人民政府、街道办事处，区政府各部门：</p>
    <p>为贯彻落实党中央、国务院决策部署和市委、市政府工作要求，扎实推进“十四五”规划收官，
    谋划“十五五”时期发展，截至目前，区发展改革委、区住建部门已部署专项检查。
    国家发展改革委、国家卫生健康委、工业和信息化部、市场监管总局相关文件已转发。
    原国家卫生计生委的职责由国家卫生健康委承担。请以身作则、再接再厉，坐镇指挥。</p>
    <p>市政府公布署名文章作者名单。账户、账号信息请妥善保管。二〇二六年十一月二十三日</p></body></html>"""
    assert Lexicon.load([]).scan(visible_text(page)) == []


def test_planted_errors_on_a_page_are_all_found() -> None:
    page = """<p>为贯彻党中央国务院决策部署，区政府办公室近日布署了十四五规划中期评估，截止目前已完成。
    国家发改委、住建部有关负责同志出席。全区上下再接再励。二0二六年十一月二十三日</p>
    <div class="ad">百家乐 真人荷官</div>"""
    hits = Lexicon.load([]).scan(visible_text(page))
    assert [(h.term, h.kind) for h in hits] == [
        ("党中央国务院", "wrong"), ("布署", "wrong"), ("十四五规划", "wrong"), ("截止目前", "wrong"),
        ("国家发改委", "wrong"), ("住建部", "wrong"), ("再接再励", "wrong"), ("二0二", "wrong"),
        ("百家乐", "sensitive"), ("真人荷官", "sensitive")]


def test_gbk_page_text_decoded_to_str_is_scanned() -> None:
    raw = '<meta charset="gbk"><p>区政府布署防汛工作，页面底部出现传奇私服广告。</p>'.encode("gbk")
    text = visible_text(raw.decode("gbk"))
    assert [h.term for h in Lexicon.load([]).scan(text)] == ["布署", "传奇私服"]


def test_an_empty_lexicon_and_an_empty_text_find_nothing() -> None:
    assert Lexicon.parse("# 只有注释\n").scan("布署") == []
    assert Lexicon.load([]).scan("") == []


# ---- findings ------------------------------------------------------------------------

def test_one_finding_per_term_with_count_context_and_stable_key() -> None:
    lexicon = Lexicon.parse("布署=部署\n传奇私服\n")
    text = "区政府布署了防汛工作。各镇街要认真布署。页脚：传奇私服"
    found = term_findings(site(), URL, text, lexicon)
    assert [f.kind for f in found] == [FindingKind.wrong_term, FindingKind.sensitive_term]
    wrong, sensitive = found
    assert wrong.site_id == 7 and wrong.url == URL
    assert wrong.key == finding_key(URL, "布署")
    context = "区政府布署了防汛工作。各镇街要认真布署。页脚：传奇…"     # 20 characters after the term
    assert wrong.detail == f"错误表述“布署”，应为“部署”（本页共 2 处）：{context}"
    assert wrong.data == {"term": "布署", "correct": "部署", "count": 2, "context": context}
    assert sensitive.detail.startswith("敏感词“传奇私服”：")
    assert sensitive.key == finding_key(URL, "传奇私服")
    assert term_findings(site(), URL, text, lexicon)[0].key == wrong.key   # the next run: same finding


def test_the_default_lexicon_is_small_documented_and_well_formed() -> None:
    text = resources.files("watch").joinpath("data", "default_lexicon.txt").read_text(encoding="utf-8")
    entries = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert 30 <= len(entries) <= 80
    lexicon = Lexicon.load([])
    assert len(lexicon) == len(entries)                # no duplicates hide in it
    for entry in lexicon.entries.values():
        if entry.kind == "wrong":
            assert lexicon.scan(entry.correct) == [], entry   # a correct form never fires
