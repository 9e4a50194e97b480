"""Playbooks and ladders are data: every type has one, every step cites an article in
every profile, and a broken file is refused with a Chinese line per problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.profiles import load_profile
from incidents.models import Grade, IncidentType, Source
from incidents.playbooks import (
    PlaybookSpec,
    check_against_profile,
    load_ladders,
    load_playbooks,
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
                assert "第" in timing.citation and "条" in timing.citation, (name, book.name, step.key)


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
    assert opinion.inform_leader and opinion.steps[0].external == "网信"                   # OP-1, DUTY-3
    assert {s.rule for s in opinion.steps} >= {"OP-1", "OP-2", "OP-3", "OP-4"}
    counterfeit = {s.external for s in books[IncidentType.counterfeit].steps}
    assert {"网信/公安/电信", "平台", "上级"} <= counterfeit                                 # SEC-5


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
