"""``dutybot demo`` shows the product (issue 15 item 6): a day and a night of an office
with a gap-free roster, registered sites, an incident through its playbook, an overdue
reply, the handover and the morning briefing, in under 150 lines, every message labelled
with who sees it and their role."""

from __future__ import annotations

import json
import re

import pytest

from bot.cli import main

#: A delivered message: ``[time] → 李强（带班领导，区政府办）、…：`` or ``机器人 → 王芳（值班员，…）：``.
DELIVERED = re.compile(r"^(\[[^\]]+\] )?(机器人 )?→ ")
LABEL = re.compile(r"^(?:(?:\[[^\]]+\] )?(?:机器人 )?→ )?(.+?（[^）]+）|值班群)(?:、|：)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, str]]]:
    import contextlib
    import io
    transcript = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["demo", "--transcript", str(transcript)]) == 0
    records = [json.loads(line) for line in transcript.read_text(encoding="utf-8").splitlines()]
    return out.getvalue(), records


def test_the_demo_fits_on_a_screenful_or_two(demo: tuple[str, list[dict[str, str]]]) -> None:
    out, _ = demo
    assert len(out.splitlines()) < 150
    assert "Traceback" not in out and "演示结束" in out


def test_every_message_says_who_sees_it_and_their_role(demo: tuple[str, list[dict[str, str]]]) -> None:
    out, _ = demo
    delivered = [line for line in out.splitlines() if DELIVERED.match(line)]
    assert len(delivered) > 30
    for line in delivered:
        head = line.split("：", 1)[0]
        for who in re.sub(r"^(\[[^\]]+\] )?(机器人 )?→ ", "", head).split("、"):
            assert who == "值班群" or re.fullmatch(r".+（.+）", who), line
    # each speaker line names the role too
    spoken = [line for line in out.splitlines() if re.match(r"^\[[^\]]+\] [^→]+?（[^）]+）：/", line)]
    assert len(spoken) > 15


def test_the_day_and_night_of_the_office(demo: tuple[str, list[dict[str, str]]]) -> None:
    out, _ = demo
    # the roster has no gaps and the morning briefing goes to leaders, the principal and the group
    assert "值班空缺" not in out and "尚未排班" not in out and "未接班" not in out
    briefing = [line for line in out.splitlines() if "【早报】" in line]
    assert len(briefing) == 2
    assert all("带班领导" in line and "主要负责人" in line and "值班群" in line for line in briefing)
    # the tamper incident: 技术保障 pinged, evidence demanded before the page is taken down
    assert "→ 孙磊（技术保障" in out
    assert "须先保全证据" in out and "保全证据 1 份" in out
    assert re.search(r"INC-20261117-001 已结案", out)
    # the overdue public reply: reminded, then answered late
    assert "【已超期】" in out and "超期办结" in out
    # the handover reaches the night officer; the night report is deleted and closed
    assert "→ 陈晨（值班员" in out and "【交班】" in out
    assert "INC-20261117-002 已结案" in out
    assert "读网超时" not in out   # every round was answered


def test_the_transcript_keeps_every_message_whole(demo: tuple[str, list[dict[str, str]]]) -> None:
    out, records = demo
    cut = [line for line in out.splitlines() if "……（共" in line]
    assert cut, "the short form cuts long messages"
    longest = max((r["text"] for r in records if r["direction"] == "out"), key=len)
    assert len(longest.splitlines()) > 10   # the full card, not the three lines shown
    assert {r["person"] for r in records if r["direction"] == "in"} >= {"王芳", "李强", "陈晨", "刘洋"}


def test_full_shows_whole_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--full"]) == 0
    out = capsys.readouterr().out
    assert "……（共" not in out
    assert len(out.splitlines()) > 150
