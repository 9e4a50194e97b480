"""The manuals cannot drift from the command line (issue 15 item 7).

Every ``dutybot …`` command in a code block of the manuals must name a sub-command path
that exists (``dutybot roster import FILE`` → ``roster`` → ``import``), and every
``--option`` it uses must be an option of that command, spelled out in full.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from bot.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
MANUALS = ["docs/admin.md", "docs/usage.md", "docs/platforms.md", "docs/accounts.md", "README.md"]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def _is_dutybot(word: str) -> bool:
    return word == "dutybot" or word.endswith("bin/dutybot")


def dutybot_commands(text: str) -> list[list[str]]:
    """The argument lists of every ``dutybot`` run in the code blocks of ``text``: the
    command word of a shell command (after ``$``, ``sudo -u user``, ``exec`` or a
    ``VAR=value``), or the value of an ini line such as ``ExecStart=…/bin/dutybot run``."""
    found = []
    for block in code_blocks(text):
        for line in block.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            try:
                tokens = list(lexer)
            except ValueError:            # not a shell line (TOML, nginx …)
                continue
            command: list[str] = []
            for token in [*tokens, ";"]:
                if token in ("&&", "||", ";", "|", "&"):
                    args = _after_command_word(command)
                    if args is not None:
                        found.append(args)
                    command = []
                else:
                    command.append(token)
    return found


def _after_command_word(words: list[str]) -> list[str] | None:
    while words:
        word = words[0]
        if word in ("$", "exec"):
            words = words[1:]
        elif word == "sudo":
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] in ("-u", "-g") else words[1:]
        elif re.fullmatch(r"[A-Za-z_]+=.*", word):
            value = word.split("=", 1)[1]
            if value.endswith("bin/dutybot"):
                return words[1:]
            words = words[1:]
        else:
            return words[1:] if _is_dutybot(word) else None
    return None


def subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def resolve(args: list[str]) -> tuple[list[str], list[str]]:
    """The sub-command path of ``dutybot <args>`` and what is wrong with it: an unknown
    sub-command or option."""
    parser: argparse.ArgumentParser = build_parser()
    path: list[str] = []
    problems = []
    words = list(args)
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if name not in options(parser):
                problems.append(f"{' '.join(['dutybot', *path])}: no option {name}")
            elif name == "--config" and "=" not in word and words:
                words.pop(0)              # its value, which may look like anything
            continue
        sub = subparsers(parser)
        if sub is None:
            continue                      # a positional value (FILE, 姓名 …)
        if word not in sub.choices:
            problems.append(f"{' '.join(['dutybot', *path])}: no sub-command {word!r}")
            break
        parser = sub.choices[word]
        path.append(word)
    return path, problems


def check(args: list[str]) -> list[str]:
    """What is wrong with ``dutybot <args>``."""
    return resolve(args)[1]


def test_the_extractor() -> None:
    text = "\n".join([
        "```sh",
        "$ dutybot due 2026-09-30 --workdays 1",
        "sudo -u dutybot /srv/dutybot/venv/bin/dutybot --version   # 版本",
        "sudo useradd --home-dir /srv/dutybot dutybot && dutybot db upgrade",
        "echo '30 2 * * * dutybot x | y' | sudo tee /etc/cron.d/dutybot-backup",
        "exec sudo -u dutybot sh -c 'exec /srv/dutybot/venv/bin/dutybot \"$@\"' dutybot",
        "```",
        "```ini",
        "Description=dutybot 值班机器人",
        "User=dutybot",
        "ExecStart=/srv/dutybot/venv/bin/dutybot run",
        "```",
        "正文中的 dutybot people add 不在代码块中。",
    ])
    assert dutybot_commands(text) == [["due", "2026-09-30", "--workdays", "1"], ["--version"],
                                      ["db", "upgrade"], ["run"]]
    assert check(["roster", "imprt", "FILE"]) == ["dutybot roster: no sub-command 'imprt'"]
    assert check(["roster", "import", "FILE", "--chek"]) == ["dutybot roster import: no option --chek"]
    assert check(["--config", "/srv/dutybot/dutybot.toml", "init", "--force"]) == []
    assert check(["people", "trained", "王芳、李强", "2026-11-20"]) == []


@pytest.mark.parametrize("manual", MANUALS)
def test_every_command_in_the_manual_exists(manual: str) -> None:
    commands = dutybot_commands((ROOT / manual).read_text(encoding="utf-8"))
    problems = [f"dutybot {' '.join(args)}\n    {p}" for args in commands for p in check(args)]
    assert problems == [], "\n".join(problems)


def test_the_admin_manual_shows_the_commands_an_admin_needs() -> None:
    commands = dutybot_commands((ROOT / "docs/admin.md").read_text(encoding="utf-8"))
    paths = {" ".join(resolve(args)[0]) for args in commands}
    assert len(commands) > 25
    assert {"init", "db upgrade", "db status", "calendar check", "people add", "people import",
            "people invite", "people trained", "roster import", "roster generate", "roster publish",
            "rules", "run", "outbox"} <= paths


def test_the_admin_manual_commands_parse(capsys: pytest.CaptureFixture[str]) -> None:
    """The admin manual's code blocks hold real commands, not forms with placeholders: each
    one parses as it is written (arguments, their number and types)."""
    for args in dutybot_commands((ROOT / "docs/admin.md").read_text(encoding="utf-8")):
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:     # --version exits 0; a usage error exits 2
            assert exc.code == 0, f"dutybot {' '.join(args)}: {capsys.readouterr().err}"
