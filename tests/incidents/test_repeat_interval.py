"""Repeat escalations keep a bounded interval (issue 16 item 7): the growing wait between
repeats is capped at 24 hours whatever a ladder file says, and computing it never
overflows (``2.0 ** 1024`` is beyond a float: an unbounded run used to die after some 85
days of two-hourly repeats). The clock is moved 120 days, never slept."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.scheduler import Scheduler
from core.clock import parse_local
from core.schedule import DueItem, DueStatus
from incidents import escalation
from incidents.playbooks import LaddersFile, LadderSpec, load_ladders
from tests.incidents.test_who_is_pinged import build, number_in, pings


def test_the_growing_interval_is_the_ladder_s_until_its_cap() -> None:
    spec = load_ladders().special   # 15 min × 2ⁿ⁻¹, at most 120 min
    assert [spec.repeat_after(n) for n in range(1, 6)] == [timedelta(minutes=m) for m in (15, 30, 60, 120, 120)]


@pytest.mark.parametrize("n", [1025, 10**6, 10**18])
def test_any_repeat_number_is_safe(n: int) -> None:
    ladders = load_ladders()
    for spec in (ladders.general, ladders.major, ladders.special,
                 ladders.general.model_copy(update={"repeat_factor": 10.0, "repeat_max_minutes": 7 * 24 * 60}),
                 ladders.general.model_copy(update={"repeat_factor": 1.0000001})):
        assert spec.repeat_after(n) <= timedelta(minutes=spec.repeat_max_minutes)
        assert escalation.repeat_interval(spec, n) <= escalation.MAX_REPEAT_INTERVAL == timedelta(hours=24)


def _slow_ladders() -> LaddersFile:
    """The shipped ladders, but repeats that grow tenfold up to a week apart."""
    ladders = load_ladders()

    def slow(spec: LadderSpec) -> LadderSpec:
        return spec.model_copy(update={"repeat_factor": 10.0, "repeat_max_minutes": 7 * 24 * 60})

    return ladders.model_copy(update={"general": slow(ladders.general), "major": slow(ladders.major),
                                      "special": slow(ladders.special)})


@pytest.mark.parametrize("grade", ["", "特级"])
async def test_repeats_over_120_days_stay_at_most_a_day_apart_and_end(engine: Engine, grade: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    slow = _slow_ladders()
    monkeypatch.setattr(escalation, "load_ladders", lambda: slow)
    chat = build(engine, "2026-11-23T09:00", env={"DUTYBOT_INCIDENTS_REPEAT_LIMIT": "20"})
    line = " ".join(w for w in ("/incident new 无法访问", grade, "https://www.example.gov.cn 首页502") if w)
    number = number_in(await chat.send(line, as_="王芳"))
    # Only the escalation processor runs (the daily briefings and rounds of 120 days would
    # make the test slow and say nothing here).
    only = Scheduler(engine=engine, clock=chat.app.clock, on_work=chat.app.sender.wake)
    only.register(escalation.KIND, escalation.Escalator(chat.app.profile, chat.app.incident_policy))
    chat.app.scheduler = only
    await chat.app.advance_to(parse_local("2027-03-23T09:00"))   # 120 days later
    with Session(engine) as session:
        items = list(session.exec(select(DueItem).where(DueItem.ref == f"incident:{number}")
                                  .order_by(col(DueItem.due_at))))
    assert items and not [i.key for i in items if i.status == DueStatus.failed]
    assert not [i.key for i in items if i.status == DueStatus.pending]
    repeats = [i.due_at for i in items if ":ack:" in i.key and int(i.key.rsplit(":", 1)[1]) > 0]
    assert len(repeats) == 21                             # 20 repeats, then the closing note's slot
    gaps = [b - a for a, b in pairwise(repeats)]
    assert max(gaps) == timedelta(hours=24) and min(gaps) < timedelta(hours=24)
    assert repeats[-1] - repeats[0] < timedelta(days=21)
    closing = [m for m in pings(chat, "李强") if m.startswith("【停止重复提醒") and "无人确认" in m]
    assert len(closing) == 1 and "已重复提醒20次" in closing[0]
