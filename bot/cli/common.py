"""Helpers every ``dutybot`` sub-command module shares: the exit codes, the settings of
this run, the working-day calendar they configure, arguments read in Chinese terms, and
the parser that reports usage errors in Chinese.

Every module of :mod:`bot.cli` imports these from here, and this module imports none of
them, so the command modules never reach back into the entry point.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, time
from typing import Any, Literal, NoReturn

from bot.config import Settings, find_config, load_settings
from core import words_zh
from core.clock import SystemClock, check_year_range, local
from core.errors import InputError
from core.workdays import WorkdayCalendar

EXIT_OK = 0
EXIT_REFUSED = 1  # a refused operation, such as an out-of-date database
EXIT_USAGE = 2    # bad input or usage


def cli_settings(args: argparse.Namespace) -> Settings:
    """The configuration named by ``--config``, ``$DUTYBOT_CONFIG`` or ``./dutybot.toml``."""
    return load_settings(find_config(args.config, os.environ))


def cli_calendar(settings: Settings, cutoff: time | Literal["default"] | None = "default") -> WorkdayCalendar:
    """The working-day calendar with the configured holiday files and cut-off."""
    cut = settings.calendar.cutoff_time() if cutoff == "default" else cutoff
    return WorkdayCalendar.from_dir(settings.resolve(settings.calendar.holidays_dir), cutoff=cut)


def parse_day(text: str, what: str, today: date | None = None) -> date:
    """A day argument as the chat reads it (``2026-12-03``, ``12-03``, ``12月3日``, ``明天``,
    ``下周一``, ``本周五``: :func:`core.words_zh.parse_day`), counted from ``today`` (default:
    today in Beijing time); ``what`` names it in the error (``开始日期``).

    Raises:
        InputError: not a day, or a year outside 2000–2100 (:func:`core.clock.check_year_range`).
    """
    if today is None:
        today = local(SystemClock().now()).date()
    try:
        day = words_zh.parse_day(text, today)
    except InputError:
        raise InputError(f"无效的{what} {text!r}：应为 YYYY-MM-DD 或 {words_zh.DAY_EXAMPLES} 等，"
                         "如 2026-11-01") from None
    return check_year_range(day, what)


def parse_cutoff(text: str) -> time | None:
    """A ``HH:MM`` cut-off time; ``24:00`` (the end of the day) is ``None``.

    Raises:
        InputError: not a time.
    """
    if text == "24:00":
        return None
    try:
        hh, mm = text.split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise InputError(f"无效的截止时刻 {text!r}：应为 HH:MM，如 17:30 或 24:00") from None


def positive_int(text: str) -> int:
    """argparse ``type=`` for a positive integer, with a Chinese error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为正整数，收到 {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"应为正整数，收到 {value}")
    return value


def pad(text: str, width: int) -> str:
    """Left-justify ``text`` to ``width`` terminal columns (CJK characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - used)


class ChineseParser(argparse.ArgumentParser):
    """argparse in Chinese: help screens (用法：, 位置参数, 选项, ``-h/--help``) and usage
    errors in one Chinese line (exit 2).

    A sub-parser made by ``add_subparsers().add_parser(...)`` is a ChineseParser too
    (argparse makes it of the parent's class unless ``parser_class=`` says otherwise), so
    every command module gets the Chinese help without asking; the ``help=`` of a
    sub-command is also the description on its own help screen.
    """

    def __init__(self, prog: str | None = None, **kwargs: Any) -> None:
        add_help = kwargs.pop("add_help", True)
        kwargs["formatter_class"] = chinese_formatter(kwargs.get("formatter_class", argparse.HelpFormatter))
        super().__init__(prog, add_help=False, **kwargs)
        # The two default groups are titled in English when argparse makes them.
        self._positionals.title = HELP_SECTIONS_ZH["positional arguments"]
        self._optionals.title = HELP_SECTIONS_ZH["options"]
        self.register("action", "parsers", _ChineseSubParsersAction)
        if add_help:
            dash = "-" if "-" in self.prefix_chars else self.prefix_chars[0]
            self.add_argument(dash + "h", dash * 2 + "help", action="help", default=argparse.SUPPRESS,
                              help="显示此帮助信息并退出")

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """As argparse's, with a Chinese help line for ``action="version"``."""
        if kwargs.get("action") == "version":
            kwargs.setdefault("help", "显示版本号并退出")
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"dutybot: 用法错误：{zh_usage_error(message)}（查看帮助：{self.prog} -h）\n")


# The titles argparse gives its sections (``options`` was ``optional arguments`` before 3.10).
HELP_SECTIONS_ZH = {
    "positional arguments": "位置参数",
    "options": "选项",
    "optional arguments": "选项",
    "subcommands": "子命令",
}

# argparse's error sentences (its gettext strings, Python 3.11), in the order to apply them.
_USAGE_ERRORS_ZH: list[tuple[re.Pattern[str], str]] = [(re.compile(p), zh) for p, zh in (
    (r"^argument (.+?): ", r"参数 \1："),
    (r"the following arguments are required: ", "缺少参数："),
    (r"one of the arguments (.+) is required", r"以下参数必须给出一个：\1"),
    (r"unrecognized arguments: ", "无法识别的参数："),
    (r"invalid choice: (.+?) \(choose from (.+)\)", r"无效的选项 \1（可选：\2）"),
    (r"unknown parser (.+?) \(choices: (.+)\)", r"无效的选项 \1（可选：\2）"),
    (r"expected one argument", "需要一个值"),
    (r"expected at most one argument", "最多只能给一个值"),
    (r"expected at least one argument", "至少需要一个值"),
    (r"expected (\d+) arguments?", r"需要 \1 个值"),
    (r"not allowed with argument (.+)", r"不能与参数 \1 同时使用"),
    (r"ambiguous option: (.+?) could match (.+)", r"选项 \1 有歧义，可能是：\2"),
    (r"invalid int value: (.+)", r"应为整数，收到 \1"),
    (r"invalid float value: (.+)", r"应为数字，收到 \1"),
    (r"invalid \S+ value: (.+)", r"无效的取值 \1"),
    (r"ignored explicit argument (.+)", r"此选项不接受取值：\1"),
    (r"can't open '(.+)': (.+)", r"无法打开文件 '\1'：\2"),
    (r"unexpected option string: ", "无法识别的选项："),
)]


def zh_usage_error(message: str) -> str:
    """One of argparse's English error sentences in Chinese; anything else unchanged."""
    for pattern, zh in _USAGE_ERRORS_ZH:
        message = pattern.sub(zh, message)
    return message


class ChineseHelpFormatter(argparse.HelpFormatter):
    """Help screens with argparse's own words in Chinese: ``用法：`` and the section titles."""

    USAGE = "用法："

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headings: set[str] = set()

    def add_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                  groups: Iterable[argparse._MutuallyExclusiveGroup], prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, self.USAGE if prefix is None else prefix)

    def _format_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                      groups: Iterable[argparse._MutuallyExclusiveGroup], prefix: str | None) -> str:
        if prefix != self.USAGE:
            return super()._format_usage(usage, actions, groups, prefix)
        # argparse indents wrapped usage lines by len(prefix); 用法： takes six columns, not three.
        stand_in = "u" * (len(self.USAGE) * 2)
        text = super()._format_usage(usage, actions, groups, stand_in)
        return self.USAGE + text[len(stand_in):]

    def start_section(self, heading: str | None) -> None:
        heading = HELP_SECTIONS_ZH.get(heading, heading) if heading else heading
        if heading:
            self._headings.add(heading)
        super().start_section(heading)

    def format_help(self) -> str:
        text = super().format_help()
        # argparse ends a section title with an ASCII colon; a Chinese title takes ：.
        for heading in self._headings:
            text = text.replace(f"\n{heading}:\n", f"\n{heading}：\n")
        return text

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        # ArgumentDefaultsHelpFormatter appends this, should a command ask for it.
        return text.replace(" (default: %(default)s)", "（默认：%(default)s）") if text else text

    # argparse lines the help texts up by len(); a Chinese metavar (姓名, 天数) is twice as
    # wide on screen, so both the column and each line's padding are measured in columns.
    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS:
            invocations = [self._format_action_invocation(action)]
            invocations += [self._format_action_invocation(a) for a in self._iter_indented_subactions(action)]
            widest = max(_columns(text) for text in invocations) + self._current_indent
            self._action_max_length = max(self._action_max_length, widest)

    def _format_action(self, action: argparse.Action) -> str:
        text = super()._format_action(action)
        invocation = self._format_action_invocation(action)
        extra = _columns(invocation) - len(invocation)
        head, newline, rest = text.partition("\n")
        start = " " * self._current_indent + invocation
        if extra and head.startswith(start + " " * (extra + 2)):
            head = start + head[len(start) + extra:]
        return head + newline + rest

    # argparse wraps with textwrap, which counts characters and breaks only at spaces: a
    # Chinese line came out twice as wide as the terminal. These wrap by columns.
    def _split_lines(self, text: str, width: int) -> list[str]:
        if isinstance(self, argparse.RawTextHelpFormatter):
            return super()._split_lines(text, width)
        return _wrap_columns(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if isinstance(self, argparse.RawDescriptionHelpFormatter):
            return super()._fill_text(text, width, indent)
        return "\n".join(indent + line for line in _wrap_columns(text, width - len(indent)))


def _columns(text: str) -> int:
    """Terminal columns ``text`` takes (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# What a line is broken between: a run of ASCII (a word, an option, a number) or one other
# character, each with the closing punctuation that may not start a line.
_CLOSING = "，。、；：？！）》」』”’"
_WRAP_TOKEN = re.compile(rf"(?:[!-~]+|[^\s!-~])[{_CLOSING}]*")


def _wrap_columns(text: str, width: int) -> list[str]:
    """``text`` with its whitespace collapsed, in lines of at most ``width`` columns."""
    lines: list[str] = []
    line, used, space = "", 0, False
    for match in re.finditer(rf"(\s+)|{_WRAP_TOKEN.pattern}", text.strip()):
        if match.group(1):
            space = True
            continue
        token = match.group(0)
        gap = 1 if space and line else 0
        if line and used + gap + _columns(token) > width:
            lines.append(line)
            line, used, gap = "", 0, 0
        line += " " * gap + token
        used += gap + _columns(token)
        space = False
    return [*lines, line] if line else lines


@functools.cache
def chinese_formatter(base: type[argparse.HelpFormatter]) -> type[argparse.HelpFormatter]:
    """``base`` (``RawDescriptionHelpFormatter`` …) with :class:`ChineseHelpFormatter`'s words."""
    if issubclass(base, ChineseHelpFormatter):
        return base
    return type(f"Chinese{base.__name__}", (ChineseHelpFormatter, base), {})


class _ChineseSubParsersAction(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Sub-commands whose one-line ``help=`` also describes them on their own help screen."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if kwargs.get("help") and "description" not in kwargs:
            kwargs["description"] = kwargs["help"]
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        return parser
