"""Configuration: file + environment, one clear message per problem."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.config import example_config, load_settings
from core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dutybot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file_use_embedded_sqlite(tmp_path: Path) -> None:
    settings = load_settings(None, env={})
    assert settings.database_url() == f"sqlite:///{tmp_path.resolve() / 'dutybot.db'}"
    assert settings.rules.profile == "default"
    assert settings.calendar.cutoff_time() is None


def test_example_config_is_valid(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, example_config()), env={})
    assert settings.bot.adapter == "console"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = sub / "dutybot.toml"
    path.write_text('[database]\nurl = "sqlite:///data/bot.db"\n', encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.database_url() == f"sqlite:///{sub.resolve() / 'data' / 'bot.db'}"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[rules]\nprofile = "yunnan"\n[calendar]\ncutoff = "24:00"\n')
    settings = load_settings(path, env={
        "DUTYBOT_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db",
        "DUTYBOT_RULES_PROFILE": "liangping",
        "DUTYBOT_CALENDAR_CUTOFF": "17:30",
        "DUTYBOT_TELEGRAM_TOKEN": "123:abc",
    })
    assert settings.database_url() == "postgresql+psycopg://u@127.0.0.1/db"
    assert settings.rules.profile == "liangping"
    assert settings.calendar.cutoff_time() == time(17, 30)
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123:abc"
    assert "123:abc" not in repr(settings)


def test_every_problem_is_reported_with_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\nadapter = "wechat"\nmax_input_chars = "lots"\n'
                           '[calendar]\ncutoff = "25:00"\n[databse]\nurl = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    problems = info.value.problems
    assert len(problems) == 4
    joined = "\n".join(problems)
    assert "bot.adapter：取值无效" in joined
    assert "bot.max_input_chars：应为整数" in joined
    assert "calendar.cutoff：应为 HH:MM" in joined
    assert "databse：不是可识别的配置项" in joined


def test_unknown_profile_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="未知的规则配置档"):
        load_settings(write(tmp_path, '[rules]\nprofile = "nowhere"\n'), env={})


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="不是有效的 TOML"):
        load_settings(write(tmp_path, "[bot\n"), env={})
    with pytest.raises(ConfigError, match="找不到配置文件"):
        load_settings(tmp_path / "nope.toml", env={})
