"""Who a ladder ping pages, and how (incidents.paging): the grades, the rungs by day and by
night (office time, a window across midnight), a person's quiet hours, mobile numbers."""

from __future__ import annotations

from datetime import time

import pytest

from core.clock import parse_local
from incidents.models import Grade, Incident
from incidents.paging import apply_quiet, channels_for, in_window, normalize_phone
from incidents.paging_models import PageChannel, PagingPolicy, QuietRule

SMS, VOICE = PageChannel.sms, PageChannel.voice
POLICY = PagingPolicy(grades=frozenset({Grade.major, Grade.special}), min_rung=1, night_min_rung=0,
                      channels={Grade.special: (SMS, VOICE), Grade.major: (SMS,)})


def incident(grade: Grade) -> Incident:
    return Incident(number="INC-20261124-001", type="tamper", grade=grade.value, description="x", playbook="p",
                    reported_at=parse_local("2026-11-24T02:00"))


@pytest.mark.parametrize(("text", "expected"), [
    ("13800000000", "13800000000"), ("+86 138-0000-0000", "13800000000"), ("8613800000000", "13800000000"),
    ("0086 13800000000", "13800000000"), ("0571-88000000", None), ("", None), ("12800000000", None),
])
def test_only_mainland_mobile_numbers_are_paged(text: str, expected: str | None) -> None:
    assert normalize_phone(text) == expected


def test_a_window_across_midnight_is_read_in_office_time() -> None:
    night = (time(22, 0), time(7, 0))
    assert in_window(*night, parse_local("2026-11-24T23:30"))
    assert in_window(*night, parse_local("2026-11-24T06:59"))
    assert not in_window(*night, parse_local("2026-11-24T07:00"))
    assert in_window(*night, parse_local("2026-11-24T22:00"))
    assert not in_window(time(9, 0), time(17, 0), parse_local("2026-11-24T17:00"))
    # 15:00 UTC is 23:00 in Beijing: night.
    assert in_window(*night, parse_local("2026-11-24T15:00+00:00"))


def test_grades_and_rungs_by_day_and_by_night() -> None:
    day, night = parse_local("2026-11-24T10:00"), parse_local("2026-11-24T02:00")
    assert channels_for(POLICY, incident(Grade.general), 3, night) == ()          # 一般 never
    assert channels_for(POLICY, incident(Grade.major), 0, day) == ()              # the officer, by day: chat
    assert channels_for(POLICY, incident(Grade.major), 1, day) == (SMS,)
    assert channels_for(POLICY, incident(Grade.major), 0, night) == (SMS,)        # any rung at night
    assert channels_for(POLICY, incident(Grade.special), 2, day) == (SMS, VOICE)
    default_sms = PagingPolicy(grades=frozenset({Grade.general}))
    assert channels_for(default_sms, incident(Grade.general), 1, day) == (SMS,)


def test_quiet_hours_keep_sms_only_or_only_the_highest_grade() -> None:
    at_night, by_day = parse_local("2026-11-24T23:00"), parse_local("2026-11-24T10:00")
    sms_only = QuietRule(start=time(22, 0), end=time(7, 0), sms_only=True)
    assert apply_quiet(sms_only, Grade.special, (SMS, VOICE), at_night) == ((SMS,), "免打扰时段 22:00–07:00 仅短信")
    assert apply_quiet(sms_only, Grade.special, (SMS, VOICE), by_day) == ((SMS, VOICE), "")
    special_only = QuietRule(start=time(22, 0), end=time(7, 0), min_grade=Grade.special)
    assert apply_quiet(special_only, Grade.major, (SMS,), at_night) == ((), "免打扰时段 22:00–07:00")
    assert apply_quiet(special_only, Grade.special, (SMS, VOICE), at_night) == ((SMS, VOICE), "")
    assert apply_quiet(None, Grade.major, (SMS,), at_night) == ((SMS,), "")
