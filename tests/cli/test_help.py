"""The ``dutybot`` help screens and usage errors in Chinese, argparse's own words included,
and ``dutybot --version`` (issue 15 item 7).

The walk visits every sub-command of the real parser, so a command added later in any
``bot/cli`` module is checked without being named here.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from bot.cli import build_parser, main
from bot.cli.common import ChineseParser, _columns, _wrap_columns, zh_usage_error

#: argparse's English, as it would appear on a help screen.
ENGLISH_HELP = ("usage:", "positional arguments", "optional arguments", "options:",
                "show this help", "show program's version", "(default:", "subcommands")
#: argparse's English, as it would appear in a usage error.
ENGLISH_ERRORS = re.compile(r"argument|required|unrecognized|invalid|choose from|expected|"
                            r"not allowed|ambiguous|could match|ignored explicit|error:")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of ``parser``: (), ("people",), ("people", "import"), …"""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:   # an alias names the same parser again
                    seen.add(id(child))
                    yield from commands(child, (*path, name))


ALL_COMMANDS = sorted(commands(build_parser()))


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "-h"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and err == ""
    return out


def test_the_walk_reaches_nested_commands() -> None:
    assert {(), ("people",), ("roster", "import"), ("roster", "leave"), ("db", "upgrade"),
            ("calendar", "check")} <= set(ALL_COMMANDS)
    assert len(ALL_COMMANDS) > 40


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "dutybot")
def test_every_help_screen_is_chinese(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                      path: tuple[str, ...]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = help_of(capsys, *path)
    assert out.startswith("用法：dutybot" + "".join(f" {w}" for w in path)), out
    assert [w for w in ENGLISH_HELP if w in out] == [], out
    assert "-h, --help  " in out and "显示此帮助信息并退出" in out
    assert "选项：" in out
    # A section title ends with a Chinese colon, never an ASCII one.
    assert not [line for line in out.splitlines() if re.fullmatch(r"\S.*:", line)], out
    # Measured in terminal columns (a Chinese character takes two): nothing runs past 80,
    # and the help texts start in one column even after a Chinese metavar (姓名, 天数).
    assert [line for line in out.splitlines() if _columns(line) > 80] == []
    starts = {_columns(m.group(1)) for line in out.split("\n\n", 1)[1].splitlines()
              if (m := re.match(r"(  \S.*?\S?\s{2,})\S", line))}
    assert len(starts) <= 1, out


def test_a_sub_command_help_describes_it(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_of(capsys, "roster", "import")
    assert "位置参数：\n  FILE" in out and "只检查，不导入" in out
    assert "导入排班" in out.split("位置参数")[0]     # its help= line is its description


def test_wrapped_usage_lines_up_under_the_first_argument(capsys: pytest.CaptureFixture[str]) -> None:
    lines = help_of(capsys, "due").splitlines()
    assert lines[0].startswith("用法：dutybot due [-h] ")
    # 用法： is six columns wide; continuation lines start under "[-h]".
    assert lines[1].startswith(" " * len("uuuuuudutybot due ") + "[")


def test_wrapping_by_columns() -> None:
    assert _wrap_columns("值班员、带班领导、主要负责人", 12) == ["值班员、带班", "领导、主要负", "责人"]
    # ASCII words stay whole; closing punctuation never starts a line
    assert _wrap_columns("导入 --unit 区政府办，全部", 14) == ["导入 --unit 区", "政府办，全部"]
    assert _wrap_columns("一二三四五，六", 10) == ["一二三四", "五，六"]
    assert _wrap_columns("  ", 10) == []
    assert _wrap_columns("表格（CSV/xlsx；表头", 13) == ["表格（", "CSV/xlsx；表", "头"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    out, _ = capsys.readouterr()
    assert exc.value.code == 0
    assert out == f"dutybot {version('dutybot')}\n"
    assert re.search(r"\n  --version +显示版本号并退出\n", help_of(capsys))   # aligned with the longest option


@pytest.mark.parametrize(("argv", "chinese"), [
    (["nope"], "参数 命令：无效的选项 'nope'（可选：'init', "),
    (["due"], "缺少参数：START"),
    (["due", "2026-10-08"], "以下参数必须给出一个：--workdays --days --months"),
    (["due", "2026-10-08", "--days", "1", "--months", "2"], "参数 --months：不能与参数 --days 同时使用"),
    (["due", "2026-10-08", "--days"], "参数 --days：需要一个值"),
    (["due", "2026-10-08", "--days", "1", "--nonsense"], "无法识别的参数：--nonsense"),
    (["roster", "import"], "缺少参数：FILE"),
    (["roster"], "缺少参数：操作"),
])
def test_usage_errors_are_chinese(capsys: pytest.CaptureFixture[str], argv: list[str], chinese: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == ""
    assert err.startswith("dutybot: 用法错误：") and chinese in err, err
    assert err.count("\n") == 1
    assert not ENGLISH_ERRORS.search(err), err


@pytest.mark.parametrize(("english", "chinese"), [
    ("ambiguous option: --da could match --day, --date", "选项 --da 有歧义，可能是：--day, --date"),
    ("argument --n: invalid int value: 'x'", "参数 --n：应为整数，收到 'x'"),
    ("argument --n: invalid float value: 'x'", "参数 --n：应为数字，收到 'x'"),
    ("argument --when: invalid parse_day value: 'x'", "参数 --when：无效的取值 'x'"),
    ("argument --pair: expected 2 arguments", "参数 --pair：需要 2 个值"),
    ("argument --flag: ignored explicit argument 'x'", "参数 --flag：此选项不接受取值：'x'"),
    ("argument --n: expected at least one argument", "参数 --n：至少需要一个值"),
    ("argument --n: expected at most one argument", "参数 --n：最多只能给一个值"),
    ("已是中文的提示", "已是中文的提示"),
])
def test_argparse_error_sentences(english: str, chinese: str) -> None:
    assert zh_usage_error(english) == chinese


def test_any_parser_made_below_a_chinese_one_is_chinese() -> None:
    """A command module that makes its sub-parsers its own way still gets the Chinese help."""
    top = ChineseParser(prog="dutybot", formatter_class=argparse.RawDescriptionHelpFormatter)
    child = top.add_subparsers(dest="x").add_parser("child", help="子命令",
                                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    child.add_argument("--n", type=int, default=3, help="次数")
    child.add_argument_group("时间范围").add_argument("--since")
    assert isinstance(child, ChineseParser)
    text = top.format_help() + child.format_help() + child.format_usage()
    assert [w for w in ENGLISH_HELP if w in text] == [], text
    assert "次数（默认：3）" in text and "时间范围：" in text and "子命令\n" in child.format_help()
    quiet = ChineseParser(prog="quiet", add_help=False)
    assert "-h" not in quiet.format_help()
