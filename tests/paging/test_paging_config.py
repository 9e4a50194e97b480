"""``[paging]``: validated at start-up with Chinese messages; its secrets come from the
environment too and never reach the log, not even while pages are being sent."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot import logs
from bot.config import load_settings
from core.errors import ConfigError
from incidents.models import Grade
from incidents.paging_models import PageChannel
from tests.paging.rig import ALIYUN_TOKEN, SECRETS, paging_rig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dutybot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_paging_is_off_by_default_and_the_defaults_make_a_policy() -> None:
    settings = load_settings(None, env={})
    assert settings.paging.enabled is False
    policy = settings.paging.policy()
    assert policy.grades == frozenset({Grade.major, Grade.special})
    assert policy.channels[Grade.special] == (PageChannel.sms, PageChannel.voice)
    assert (policy.min_rung, policy.night_min_rung, policy.steps) == (1, 0, False)


def test_enabling_without_keys_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, '[paging]\nenabled = true\nprovider = "tencent"\n'), env={})
    text = "\n".join(raised.value.problems)
    assert "paging.tencent_secret_key" in text and "paging.tencent_template_id" in text
    assert "paging.aliyun_tts_code" in text and "语音电话只能通过阿里云拨打" in text


def test_bad_values_get_chinese_lines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, '[paging]\ngrades = ["紧急"]\nnight = "22点到7点"\n'
                                      'template_params = ["number", "phone"]\n'
                                      '[paging.quiet]\n"王芳" = { window = "22:00-07:00" }\n'), env={})
    text = "\n".join(raised.value.problems)
    assert "未知的等级 '紧急'" in text and "时段应写成 HH:MM-HH:MM" in text
    assert "未知的模板变量 phone" in text and "sms_only = true 或 only" in text


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    env = {"DUTYBOT_PAGING_ALIYUN_ACCESS_KEY_SECRET": "from-the-env-secret",
           "DUTYBOT_PAGING_GRADES": "特级"}
    settings = load_settings(write(tmp_path, '[paging]\naliyun_access_key_id = "LTAIid"\n'), env=env)
    assert settings.paging.aliyun_access_key_secret is not None
    assert settings.paging.aliyun_access_key_secret.get_secret_value() == "from-the-env-secret"
    assert settings.paging.grades == ["special"]
    assert "from-the-env-secret" in logs.secrets_of(settings)


async def test_secrets_never_reach_the_log_while_paging(engine: Engine, tmp_path: Path) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
            with logs.installed(rig.app.settings):
                assert set(SECRETS) <= logs.secrets_of(rig.app.settings)
                rig.aliyun.fail_next(500)
                await rig.report("特级")
                await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/sms-up",
                                   [{"phone_number": "13800000002", "content": "1"}])
                await rig.callback("/paging/aliyun/wrong-token-000000000/sms-up", [])
                logging.getLogger("uvicorn.access").info('"POST /paging/aliyun/%s/sms-up HTTP/1.1" 200', ALIYUN_TOKEN)
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    text = out.getvalue()
    assert "page 1 (sms) failed (attempt 1 of 3)" in text        # the log did run
    for secret in SECRETS:
        assert secret not in text, secret
    assert "13800000002" not in text                                # phone numbers are masked too
