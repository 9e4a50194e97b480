"""Secrets and personal data never reach the log (issue 16 item 8): every adapter's
secrets, token-shaped strings, secret query parameters, tracebacks, mobile and ID-card
numbers — through the one filter on every handler (bot/logs.py)."""

from __future__ import annotations

import asyncio
import importlib
import io
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.adapters.redact import FILTER, mask_personal, redact
from bot.config import Settings, load_settings
from bot.instance_lock import ReceiverInUse
from bot.runner import run_adapter
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.serve import serve_asgi
from tests.log_capture import root_handler_at_debug

TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
WECOM_SECRET = "wecom-corp-secret-Zq81xT"
WECOM_TOKEN = "wecomCallbackTok9"
WECOM_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WECOM_ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_SECRET = "dingClientSecret-0ZyX9wvu"
DING_ROBOT_SECRET = "SEC0123456789abcdef0123456789abcdef"
DING_ROBOT_TOKEN = "d1n9r0b0tacc355t0k3n"
DING_CB_TOKEN = "dingCallbackTok7"
DING_CB_AES = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210abcdefg"
DB_PASSWORD = "pg-Passw0rd!x"
WEBHOOK_SECRET = "tg-webhook-secret-42"
ALERT_TOKEN = "alertmanager-bearer-7f3c9a2e51"
SECRETS = (TOKEN, TOKEN.split(":")[1], WECOM_SECRET, WECOM_TOKEN, WECOM_AES, WECOM_ROBOT_KEY,
           DING_SECRET, DING_ROBOT_SECRET, DING_ROBOT_TOKEN, DING_CB_TOKEN, DING_CB_AES,
           DB_PASSWORD, WEBHOOK_SECRET, ALERT_TOKEN)
cli_main = importlib.import_module("bot.cli.main")   # bot.cli exports main() under that name
PHONE, PHONE_MASKED = "13812345678", "138****5678"
ID_NO, ID_MASKED = "53010219900101123X", "530102********123X"


def all_secrets_settings() -> Settings:
    """Every adapter configured, with fake secrets."""
    return Settings.model_validate({
        "database": {"url": f"postgresql+psycopg://dutybot:{DB_PASSWORD}@db.example/dutybot"},
        "telegram": {"token": TOKEN, "webhook_secret": WEBHOOK_SECRET},
        "wecom": {"corp_id": "ww1", "agent_id": 1000002, "secret": WECOM_SECRET,
                  "token": WECOM_TOKEN, "aes_key": WECOM_AES,
                  "robot_webhook": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_ROBOT_KEY}"},
        "dingtalk": {"client_id": "dingabc", "client_secret": DING_SECRET,
                     "robot_secret": DING_ROBOT_SECRET, "callback_token": DING_CB_TOKEN,
                     "callback_aes_key": DING_CB_AES,
                     "robot_webhook": f"https://oapi.dingtalk.com/robot/send?access_token={DING_ROBOT_TOKEN}"},
        "alerts": {"sources": {"prometheus": {"token": ALERT_TOKEN, "kind": "alertmanager",
                                              "unit": "区政府办公室"}}},
    })


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and above, as a service's stderr would show it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    with root_handler_at_debug(handler):
        yield out


def test_every_configured_secret_is_masked_in_messages_and_arguments(captured: io.StringIO) -> None:
    with logs.installed(all_secrets_settings()):
        for secret in SECRETS:
            logging.getLogger("bot.adapters.wecom").info("value in the text %s", secret)
            logging.getLogger("dingtalk").debug(f"value in the format string {secret}")
            logging.getLogger("telegram.ext.Updater").warning("in a dict %s", {"v": secret})
    text = captured.getvalue()
    assert text.count("***") >= 3 * len(SECRETS)
    for secret in SECRETS:
        assert secret not in text, secret


def test_library_urls_with_the_token_and_secret_parameters(captured: io.StringIO) -> None:
    """What python-telegram-bot and httpx print with --debug."""
    with logs.installed(all_secrets_settings()):
        logging.getLogger("httpx").info('HTTP Request: POST https://api.telegram.org/bot%s/getUpdates '
                                        '"HTTP/1.1 200 OK"', TOKEN)
        logging.getLogger("telegram.ext.ExtBot").debug(
            "Calling Bot API endpoint `getMe` at https://api.telegram.org/bot%s", TOKEN)
        logging.getLogger("httpx").info(
            "HTTP Request: GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=%s",
            WECOM_SECRET)
        logging.getLogger("httpx").info(
            "HTTP Request: POST https://oapi.dingtalk.com/robot/send?access_token=%s&timestamp=1&sign=abc%%2B",
            DING_ROBOT_TOKEN)
    text = captured.getvalue()
    for secret in (*SECRETS, "abc%2B"):
        assert secret not in text
    assert "/bot***/getUpdates" in text and "corpsecret=***" in text and "sign=***" in text


def test_unconfigured_token_shaped_strings_and_parameters_are_masked_anyway(
        captured: io.StringIO) -> None:
    other = "5550001112:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw9"
    with logs.installed(None):
        logging.getLogger("x").warning("token %s and ?a=1&secret=s3cr3t&sign=zz and "
                                       "postgresql://u:hunter2@db/x", other)
    text = captured.getvalue()
    for secret in (other, "s3cr3t", "zz&", "hunter2"):
        assert secret not in text
    assert "secret=***" in text and "postgresql://u:***@db/x" in text


def test_phone_and_id_numbers_in_a_message_are_masked(captured: io.StringIO) -> None:
    said = f"我的电话 {PHONE}，备用 139-8765-4321，身份证 {ID_NO}，请回电"
    with logs.installed(None):
        logging.getLogger("bot.dispatcher").info("unbound user %s/%s (%s) said %r",
                                                 "telegram", "555", "新同事", said)
    text = captured.getvalue()
    assert PHONE not in text and "87654321" not in text and ID_NO not in text
    assert PHONE_MASKED in text and "139****4321" in text and ID_MASKED in text
    assert "unbound user telegram/555" in text


def test_an_exception_carrying_the_token_is_masked_in_the_traceback(captured: io.StringIO) -> None:
    with logs.installed(all_secrets_settings()):
        try:
            raise RuntimeError(f"connect to https://api.telegram.org/bot{TOKEN}/getMe failed, "
                               f"caller {PHONE}")
        except RuntimeError:
            logging.getLogger("bot.adapters.telegram").exception("start failed")
        logging.getLogger("bot").warning("stack", stack_info=True)
    text = captured.getvalue()
    assert "Traceback" in text and "RuntimeError" in text and "start failed" in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text and PHONE not in text


def test_nothing_to_mask_leaves_the_record_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent %d of %s", (3, "INC-1"), None)
    assert FILTER.filter(record)
    assert record.msg == "sent %d of %s" and record.args == (3, "INC-1")


def test_installation_is_undone_and_secrets_restored() -> None:
    handler = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(handler)
    try:
        before = FILTER.secrets
        with logs.installed(all_secrets_settings()):
            assert FILTER in handler.filters and TOKEN in FILTER.secrets
            late = logging.StreamHandler(io.StringIO())
            logging.getLogger("uvicorn.error").addHandler(late)   # made while starting
            with logs.installed(None) as inner:
                inner.refresh()
                assert FILTER in late.filters
            assert FILTER not in late.filters and FILTER in handler.filters
            logging.getLogger("uvicorn.error").removeHandler(late)
        assert FILTER not in handler.filters and FILTER.secrets == before
    finally:
        logging.getLogger().removeHandler(handler)


def test_secrets_of_reads_every_adapter() -> None:
    found = logs.secrets_of(all_secrets_settings())
    for secret in SECRETS:
        assert secret in found, secret


def test_redact_and_mask_personal_shapes() -> None:
    assert redact('{"clientSecret": "abc", "ticket":"t-1"}') == '{"clientSecret": "***", "ticket":"***"}'
    assert redact("host=db password=pw user=u") == "host=db password=*** user=u"
    assert redact("at 2026-11-30 10:00:00, chat -1001234567890") == "at 2026-11-30 10:00:00, chat -1001234567890"
    assert mask_personal("时间戳 1764032400123、编号 MSG-20261123-017、13812345678") == \
        "时间戳 1764032400123、编号 MSG-20261123-017、138****5678"
    assert mask_personal("身份证号：11010519491231002x。") == "身份证号：110105********002x。"
    assert mask_personal("订单 123456789012345678") == "订单 123456789012345678"  # no birth date


def test_dutybot_debug_masks_the_configured_secrets(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """``dutybot --debug …``: an unexpected error's traceback and library debug lines."""
    monkeypatch.setenv("DUTYBOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("DUTYBOT_DINGTALK_CLIENT_SECRET", DING_SECRET)

    def broken(args: object) -> int:
        logging.getLogger("telegram.ext.Application").debug("polling https://api.telegram.org/bot%s/", TOKEN)
        logging.getLogger("bot.adapters.dingtalk").debug("secret is %s", DING_SECRET)
        raise RuntimeError(f"unexpected, token {TOKEN}, phone {PHONE}")

    monkeypatch.setattr(cli_main, "cmd_due", broken)
    caplog.set_level(logging.DEBUG)
    assert cli_main.main(["--debug", "due", "2026-11-02", "--workdays", "1"]) == 1
    text = caplog.text
    assert "unexpected error" in text and "RuntimeError" in text
    for secret in (TOKEN, TOKEN.split(":")[1], DING_SECRET, PHONE):
        assert secret not in text
    assert FILTER.secrets == frozenset()    # undone when main returns


async def test_dutybot_run_with_debug_logging_never_shows_the_token_or_a_phone(
        captured: io.StringIO) -> None:
    """A real ``dutybot run --adapter telegram`` (polling) against the fake Bot API with
    everything at DEBUG: httpx request lines, python-telegram-bot's calls and answers, the
    dispatcher's line about an unbound user who wrote a phone and an ID number. A second
    run for the same bot is refused while the first polls."""
    fake = FakeBotApi(TOKEN)
    async with serve_asgi(fake.app) as url:
        settings = load_settings(None, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN,
                                            "DUTYBOT_TELEGRAM_BASE_URL": url})
        stop = asyncio.Event()
        task = asyncio.create_task(run_adapter(settings, "telegram", out=io.StringIO(), stop=stop))
        fake.push_message(555, 555, f"你好，我的手机 {PHONE}，身份证 {ID_NO}", first_name="新同事")
        for _ in range(1000):
            if fake.sent_to(555):
                break
            await asyncio.sleep(0.01)
        with pytest.raises(ReceiverInUse) as second:
            await run_adapter(settings, "telegram", out=io.StringIO(), stop=asyncio.Event())
        assert second.value.message == ("另一个 dutybot run 已在使用同一个 Telegram 机器人接收消息（轮询模式），"
                                     "同一机器人只能有一个进程轮询。如需多个进程，请改用 webhook 模式。")
        stop.set()
        fake.close()
        assert await asyncio.wait_for(task, timeout=10) == 0
    text = captured.getvalue()
    assert fake.sent_to(555), "the unbound user was answered"
    assert "getUpdates" in text and "/bot***/" in text     # the library did log its URLs
    assert "unbound user" in text
    for secret in (TOKEN, TOKEN.split(":")[1], PHONE, ID_NO):
        assert secret not in text
    assert PHONE_MASKED in text
