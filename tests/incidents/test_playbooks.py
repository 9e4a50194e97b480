"""Playbooks and ladders are data: every type has one, every step cites an article in
every profile, and a broken file is refused with a Chinese line per problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.profiles import NOT_REQUIRED, load_profile
from incidents.models import Grade, IncidentType, Source
from incidents.playbooks import (
    PlaybookSpec,
    ResolvedStep,
    check_against_profile,
    load_ladders,
    load_playbooks,
    resolve_steps,
    step_timing,
)

PROFILES = ("default", "liangping", "yunnan", "baoji", "guzhang", "jiangchuan")


def test_every_type_has_a_playbook_whose_steps_cite_articles_in_every_profile() -> None:
    books = load_playbooks()
    assert set(books) == set(IncidentType)
    for name in PROFILES:
        profile = load_profile(name)
        assert check_against_profile(profile) == []
        for book in books.values():
            for step in book.steps:
                timing = step_timing(step, profile, 30)
                # An article (own or 参照), or an honest 本地规定未作要求 — never an invented one.
                assert (("第" in timing.citation and "条" in timing.citation)
                        or timing.citation == NOT_REQUIRED), (name, book.name, step.key)
                if timing.citation == NOT_REQUIRED and step.value is not None:
                    assert timing.quantity is None, (name, book.name, step.key)


def test_domain_rules_are_in_the_playbooks() -> None:
    books = load_playbooks()
    profile = load_profile("default")
    sensitive = {s.when: s for s in books[IncidentType.sensitive].steps if s.key == "delete"}
    assert step_timing(sensitive["self"], profile, 30).period_zh == "立即（30分钟内）"     # SENS-2
    assert step_timing(sensitive["district"], profile, 30).period_zh == "1个工作日"       # SENS-3
    illegal = books[IncidentType.illegal].steps_for(Source.self_found)
    assert [s.key for s in illegal][:2] == ["preserve", "delete"]                          # SEC-2
    assert illegal[0].evidence and illegal[1].requires == ("preserve",)
    opinion = books[IncidentType.opinion]
    assert opinion.inform_leader and opinion.steps[0].reports == ("OP-1",)                 # OP-1, DUTY-3
    assert {s.rule for s in opinion.steps} >= {"OP-1", "OP-2", "OP-3", "OP-4"}
    counterfeit = resolve_steps(books[IncidentType.counterfeit], Source.self_found, load_profile("yunnan"), 30)
    bodies = {b for s in counterfeit for b in s.reports_to}
    assert {"网信部门", "公安机关", "电信主管部门", "平台运营方", "上级主管部门"} <= bodies     # SEC-5


def test_a_local_override_changes_the_deadline_and_says_so() -> None:
    profile = load_profile("default", overrides={"SENS-3.delete": "2 workdays"})
    step = next(s for s in load_playbooks()[IncidentType.sensitive].steps if s.when == "district")
    timing = step_timing(step, profile, 30)
    assert timing.period_zh == "2个工作日" and timing.citation.startswith("本地配置")


def test_ladders_grow_with_the_grade() -> None:
    ladders = load_ladders()
    general, special = ladders.for_grade(Grade.general), ladders.for_grade(Grade.special)
    assert [r.role for r in general.rungs] == ["officer", "leader", "principal", "district"]
    assert general.offsets()[1].total_seconds() > 0
    assert all(o.total_seconds() == 0 for o in special.offsets())
    waits = [general.repeat_after(n).total_seconds() / 60 for n in range(1, 6)]
    assert waits == [60, 120, 240, 480, 480]


@pytest.mark.parametrize(("change", "needle"), [
    ({"steps": []}, "steps"),
    ({"steps": [{"key": "a", "title": "删除", "rule": "SENS-2", "after": "nope"}]}, "不存在的步骤 nope"),
    ({"steps": [{"key": "a", "title": "删除", "rule": "SENS-2", "period": "3 bananas"}]}, "未知单位"),
    ({"steps": [{"key": "a", "title": "删除", "rule": "SENS-2", "value": "delete", "period": "1 hours"}]},
     "只能写一个"),
])
def test_broken_playbooks_are_refused(change: dict[str, object], needle: str) -> None:
    data: dict[str, object] = {"type": "sensitive", "title": "敏感信息处置", "version": 1,
                               "steps": [{"key": "a", "title": "删除", "rule": "SENS-2"}]} | change
    with pytest.raises(ValidationError) as err:
        PlaybookSpec.model_validate(data)
    assert needle in str(err.value)


def _steps(kind: IncidentType, profile: str, source: Source = Source.self_found) -> dict[str, ResolvedStep]:
    return {s.spec.key: s for s in resolve_steps(load_playbooks()[kind], source, load_profile(profile), 30)}


def test_tamper_flow_follows_each_profile() -> None:
    """梁平第二十二条 lets the unit 研判 first; the take-down waits for evidence everywhere."""
    liangping = _steps(IncidentType.tamper, "liangping")
    assert "decide_external" in liangping
    report = liangping["report_cac_police"]
    assert not report.mandatory and report.mandatory_citation == "梁平办法第二十二条"
    assert report.reports_to == ("网信部门", "公安机关")
    assert report.after == "decide_external"
    take_down = liangping["take_down"]
    assert take_down.evidence_first and take_down.evidence_citation.startswith("工作要求")
    assert load_playbooks()[IncidentType.tamper].default_grade == Grade.major


def test_hack_report_is_mandatory_where_the_article_says_baojing() -> None:
    baoji = _steps(IncidentType.hack, "baoji")
    assert "decide_police" not in baoji                      # no 研判 step: 报警 is required
    police = baoji["report_police"]
    assert police.mandatory and police.reports_to == ("公安机关",)
    assert police.mandatory_citation == "宝鸡办法第二十一条"
    assert police.after == "handle"                          # takes the dropped step's place
    # 古丈办法 says nothing about attacks: the unit decides, and the bot says why.
    guzhang = _steps(IncidentType.hack, "guzhang")
    assert "decide_police" in guzhang and not guzhang["report_police"].mandatory
    assert guzhang["report_police"].mandatory_citation == NOT_REQUIRED


def test_illegal_content_reports_where_each_article_says() -> None:
    yunnan = _steps(IncidentType.illegal, "yunnan")
    report = yunnan["report_police"]
    assert report.mandatory and set(report.reports_to) == {"网信部门", "公安机关", "电信主管部门", "上级主管部门"}
    assert yunnan["delete"].evidence_first and yunnan["delete"].evidence_citation == "云南办法第四十一条"
    baoji = _steps(IncidentType.illegal, "baoji")
    assert baoji["report_police"].reports_to == ("公安机关",) and baoji["report_police"].mandatory
    assert baoji["preserve"].evidence_citation == "宝鸡办法第二十一条"
    jiangchuan = _steps(IncidentType.illegal, "jiangchuan")
    assert jiangchuan["report_police"].mandatory_citation == "参照《云南省政务新媒体管理办法》第四十一条"
