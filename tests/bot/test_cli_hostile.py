"""The CLI meets hostile input (issue 16 item 7): dates outside 2000–2100 and names with
hidden characters get a Chinese line and exit 2, never ``内部错误``."""

from __future__ import annotations

import pytest

from bot.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "said"), [
    (("due", "9999-12-31", "--workdays", "3"), "开始时间超出范围：9999年（只能处理 2000—2100 年的日期）。"),
    (("due", "0001-01-01T00:00", "--days", "3"), "开始时间超出范围：0001年"),
    (("due", "9999-12-31T23:59", "--months", "1"), "开始时间超出范围：9999年"),
    (("roster", "export", "--from", "9999-01-01", "--to", "9999-01-02", "--xlsx", "x.xlsx"), "开始日期超出范围"),
    (("replies", "stats", "--from", "1999-12-01", "--to", "2026-11-30"), "开始日期超出范围：1999年"),
    (("incident", "stats", "--from", "2026-11-01", "--to", "2101-01-01"), "结束日期超出范围：2101年"),
])
def test_dates_outside_2000_2100_are_refused_in_chinese(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                                        said: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and said in err and "内部错误" not in err


def test_a_person_whose_name_hides_characters_is_not_added(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "people", "add", "王\u200b芳")
    assert code == 2 and "姓名含有不可见或控制字符，请重新输入" in err
    code, _, err = run(capsys, "people", "add", "王芳", "--unit", "区政府\u202e办")
    assert code == 2 and "单位名称含有不可见或控制字符，请重新输入" in err
