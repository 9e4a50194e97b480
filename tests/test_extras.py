"""The chat platforms' libraries and the PostgreSQL driver are extras (issue 19 item 3):
the core installs and runs without them, and choosing a platform whose library is missing
is one Chinese line and exit 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import import_module as REAL_IMPORT
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from bot import extras
from bot.config import load_settings
from bot.runner import build_adapter
from core.db import make_engine
from core.errors import MissingExtra

ROOT = Path(__file__).resolve().parents[1]
CHAT_LIBRARIES = {"python-telegram-bot", "websockets", "psycopg", "psycopg-binary"}

#: Installed as sitecustomize in the child process: importing any of these fails as it
#: does where the library is not installed.
BLOCKER = '''
import sys

BLOCKED = {"telegram", "websockets", "psycopg", "psycopg_binary"}


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''


def project() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        found: dict[str, object] = tomllib.load(f)["project"]
    return found


def test_the_core_dependencies_name_no_chat_library() -> None:
    core = [Requirement(r) for r in project()["dependencies"]]  # type: ignore[attr-defined]
    assert {r.name.lower() for r in core} & CHAT_LIBRARIES == set()
    groups = project()["optional-dependencies"]
    assert isinstance(groups, dict)
    named = {extra: {Requirement(r).name.lower() for r in groups[extra]}
             for extra in ("telegram", "wecom", "dingtalk", "postgres")}
    assert named == {"telegram": {"python-telegram-bot"}, "wecom": set(), "dingtalk": {"websockets"},
                     "postgres": {"psycopg"}}
    # `pip install -e '.[dev]'` (the README, .ci/run) still brings every one of them
    dev = [Requirement(r) for r in groups["dev"]]
    assert any(r.name == "dutybot" and r.extras == {"telegram", "wecom", "dingtalk", "postgres"} for r in dev)


def test_every_0x_dependency_has_an_upper_bound() -> None:
    groups = project()["optional-dependencies"]
    assert isinstance(groups, dict)
    every = [*project()["dependencies"], *(r for extra in groups.values() for r in extra)]  # type: ignore[misc]
    unbounded = []
    for text in every:
        req = Requirement(text)
        floors = [Version(s.version) for s in req.specifier if s.operator in (">=", ">", "==", "~=")]
        if any(v.major == 0 for v in floors) and not any(s.operator in ("<", "<=", "~=", "==")
                                                         for s in req.specifier):
            unbounded.append(text)
    assert unbounded == []


def test_the_extras_are_the_ones_the_adapters_import() -> None:
    assert extras.EXTRAS["telegram"].modules == ("telegram",)
    assert extras.EXTRAS["dingtalk"].modules == ("websockets",)


def test_a_missing_library_is_named_and_another_missing_module_is_not_disguised(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(name: str, package: str | None = None) -> ModuleType:
        if name.startswith("bot.adapters."):
            raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)
        return REAL_IMPORT(name, package)

    monkeypatch.setattr(extras.importlib, "import_module", fails)
    missing = "telegram.ext"
    with pytest.raises(MissingExtra) as caught:
        extras.import_adapter("telegram")
    assert caught.value.message == "使用 Telegram 需要安装扩展：pip install 'dutybot[telegram]'"
    missing = "httpx"      # a core dependency: a broken installation, said as it is
    with pytest.raises(ModuleNotFoundError):
        extras.import_adapter("wecom")


def test_build_adapter_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(name: str, package: str | None = None) -> ModuleType:
        if name.startswith("bot.adapters."):
            raise ModuleNotFoundError("No module named 'websockets'", name="websockets")
        return REAL_IMPORT(name, package)

    monkeypatch.setattr(extras.importlib, "import_module", fails)
    with pytest.raises(MissingExtra) as caught:
        build_adapter("dingtalk", load_settings(None, {}))
    assert caught.value.message == "使用钉钉需要安装扩展：pip install 'dutybot[dingtalk]'"


def test_postgresql_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)     # `import psycopg` fails
    with pytest.raises(MissingExtra) as caught:
        make_engine("postgresql://dutybot@127.0.0.1:5432/dutybot")
    assert caught.value.message == "使用 PostgreSQL 需要安装扩展：pip install 'dutybot[postgres]'"


# ---------------------------------------------------------------- the core alone, in a process


@pytest.fixture
def core_only(tmp_path: Path) -> dict[str, str]:
    """The environment of a process where telegram, websockets and psycopg are not installed."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUTYBOT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return env


def dutybot(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *argv], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_the_blocker_blocks(core_only: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import telegram"], env=core_only, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'telegram'" in done.stderr


def test_the_core_runs_the_demo_without_any_chat_extra(core_only: dict[str, str], tmp_path: Path) -> None:
    done = dutybot(core_only, tmp_path, "demo")
    assert done.returncode == 0, done.stderr
    assert "演示结束，临时数据库已删除" in done.stdout and "【早报】" in done.stdout
    assert "Traceback" not in done.stderr and "内部错误" not in done.stderr


@pytest.mark.parametrize(("argv", "line"), [
    (["run", "--adapter", "telegram"], "dutybot: 使用 Telegram 需要安装扩展：pip install 'dutybot[telegram]'\n"),
    (["run", "--adapter", "dingtalk"], "dutybot: 使用钉钉需要安装扩展：pip install 'dutybot[dingtalk]'\n"),
    (["db", "status"], "dutybot: 使用 PostgreSQL 需要安装扩展：pip install 'dutybot[postgres]'\n"),
])
def test_a_missing_extra_is_one_line_and_exit_2(core_only: dict[str, str], tmp_path: Path, argv: list[str],
                                                line: str) -> None:
    env = {**core_only, "DUTYBOT_DATABASE_URL": "postgresql://dutybot@127.0.0.1:5432/dutybot"} \
        if argv[0] == "db" else core_only
    done = dutybot(env, tmp_path, *argv)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line)
    assert not (tmp_path / "dutybot.db").exists()       # refused before anything was made
