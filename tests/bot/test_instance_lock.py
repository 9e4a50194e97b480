"""The instance lock: ``dutybot run`` shares it, ``console --live`` takes it alone, and it
ends with its process (SQLite flock; PostgreSQL advisory lock when
``DUTYBOT_TEST_DATABASE_URL`` is set)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.cli import main
from bot.config import Settings, load_settings
from bot.instance_lock import (
    DatabaseInUse,
    Holder,
    ReceiverInUse,
    acquire,
    hold_receiver,
    is_free,
    lock_path,
    named_path,
    receiver_name,
    try_acquire,
)
from bot.runner import receiver_identity
from core.db import make_engine, upgrade

CHILD = """
import sys
from core.db import make_engine
from bot.instance_lock import acquire
url, schema, mode = sys.argv[1:4]
engine = make_engine(url, search_path=schema or None)
lock = acquire(engine, exclusive=mode == "exclusive")
print("ready", flush=True)
sys.stdin.read()
"""


def _where(engine: Engine) -> tuple[str, str]:
    """The URL and schema another process needs to open the same database."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url, ""
    with engine.connect() as conn:
        return url, str(conn.execute(text("SELECT current_schema()")).scalar())


@pytest.fixture
def holder(engine: Engine) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock shared, as ``dutybot run`` does."""
    url, schema = _where(engine)
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, schema, "shared"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    yield child
    if child.poll() is None:
        child.kill()
        child.wait()


def test_services_share_it_and_a_live_console_is_refused(engine: Engine) -> None:
    with acquire(engine, exclusive=False), acquire(engine, exclusive=False):   # two workers
        with pytest.raises(DatabaseInUse) as refused:
            acquire(engine, exclusive=True)
        assert refused.value.holder is Holder.service
        assert "dutybot run 正在使用该数据库" in refused.value.message
        assert "去掉 --live 以演练模式运行" in refused.value.message
    with acquire(engine, exclusive=True):   # released: free again
        pass


def test_a_live_console_keeps_services_and_other_consoles_out(engine: Engine) -> None:
    with acquire(engine, exclusive=True):
        with pytest.raises(DatabaseInUse) as service:
            acquire(engine, exclusive=False)
        assert service.value.holder is Holder.console
        assert "dutybot console --live 正在使用该数据库" in service.value.message
        with pytest.raises(DatabaseInUse) as console:
            acquire(engine, exclusive=True)
        assert console.value.holder is Holder.console
        assert "另一个 dutybot console --live" in console.value.message
    with acquire(engine, exclusive=False):
        pass


def test_release_is_idempotent(engine: Engine) -> None:
    lock = acquire(engine, exclusive=True)
    lock.release()
    lock.release()
    with acquire(engine, exclusive=True):
        pass


def test_the_lock_ends_with_the_process_holding_it(engine: Engine,
                                                   holder: subprocess.Popen[str]) -> None:
    with pytest.raises(DatabaseInUse):
        acquire(engine, exclusive=True)
    holder.kill()          # no clean exit: the lock must still go
    holder.wait()
    with acquire(engine, exclusive=True):
        pass


def test_sqlite_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    assert lock_path(engine) == (tmp_path / "live.db.lock").resolve()
    assert lock_path(make_engine("sqlite://")) is None
    with acquire(make_engine("sqlite://"), exclusive=True), acquire(make_engine("sqlite://"), exclusive=True):
        pass   # an in-memory database is nobody else's


def test_console_live_is_refused_while_run_holds_the_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'dutybot.db'}")
    upgrade(engine)
    script = tmp_path / "s.txt"
    script.write_text(":quit\n", encoding="utf-8")
    with acquire(engine, exclusive=False):
        assert main(["console", "--live", "--script", str(script)]) == 1
        err = capsys.readouterr().err
        assert f"dutybot run 正在使用该数据库（{tmp_path / 'dutybot.db'}）" in err
        assert "请先停止服务或去掉 --live 以演练模式运行" in err
        assert main(["console", "--script", str(script)]) == 0   # a drill needs no lock
    assert main(["console", "--live", "--script", str(script)]) == 0
    engine.dispose()


def test_run_is_refused_while_a_live_console_is_open(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'dutybot.db'}")
    upgrade(engine)
    with acquire(engine, exclusive=True):
        assert main(["run", "--adapter", "console"]) == 1
        assert "dutybot console --live 正在使用该数据库" in capsys.readouterr().err
    engine.dispose()


# ---------------------------------------------------------------- named locks (issue 16 item 9)

TELEGRAM_REFUSAL = ("另一个 dutybot run 已在使用同一个 Telegram 机器人接收消息（轮询模式），"
                    "同一机器人只能有一个进程轮询。如需多个进程，请改用 webhook 模式。")


def test_a_named_lock_has_one_holder(engine: Engine) -> None:
    """Two holders in one process: on SQLite two open file descriptions of the lock file
    (flock is per description), on PostgreSQL two sessions."""
    first = try_acquire(engine, receiver_name("telegram", "123456"))
    assert first is not None
    assert try_acquire(engine, receiver_name("telegram", "123456")) is None
    other = try_acquire(engine, receiver_name("telegram", "654321"))   # another bot: its own
    assert other is not None
    assert is_free(engine, receiver_name("telegram", "123456")) is False
    first.release()
    assert is_free(engine, receiver_name("telegram", "123456")) is True
    again = try_acquire(engine, receiver_name("telegram", "123456"))
    assert again is not None
    again.release()
    other.release()


def test_a_workers_lock_file_goes_with_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    path = named_path(engine, "worker-abc")
    assert path == (tmp_path / "live.db.locks" / "worker-abc.lock").resolve()
    assert named_path(engine, "receive-dingtalk-ding/x y") == path.with_name("receive-dingtalk-ding_x_y.lock")
    assert is_free(engine, "worker-abc") is True            # never made: nobody holds it
    lock = try_acquire(engine, "worker-abc", remove_on_release=True)
    assert lock is not None and path.exists()
    assert is_free(engine, "worker-abc", remove=True) is False and path.exists()
    lock.release()
    assert not path.exists()
    killed = path.with_name("worker-killed.lock")   # a killed worker leaves its file, unlocked
    killed.touch()
    assert is_free(engine, "worker-killed", remove=True) is True
    assert not killed.exists()
    memory = make_engine("sqlite://")
    assert is_free(memory, "worker-abc") is None             # cannot tell
    assert try_acquire(memory, "x") is not None and try_acquire(memory, "x") is not None


def test_hold_receiver_refuses_a_second_poller_in_chinese(tmp_path: Path) -> None:
    settings = load_settings(None, env={"DUTYBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"})
    with hold_receiver(settings, platform="telegram", identity="123456"):
        with (pytest.raises(ReceiverInUse) as refused,
              hold_receiver(settings, platform="telegram", identity="123456")):
            pass
        assert refused.value.message == TELEGRAM_REFUSAL
        with (hold_receiver(settings, platform="dingtalk", identity="dingabc"),
              pytest.raises(ReceiverInUse, match=r"钉钉应用.*Stream 模式.*HTTP 回调模式"),
              hold_receiver(settings, platform="dingtalk", identity="dingabc")):
            pass
    with hold_receiver(settings, platform="telegram", identity="123456"):
        pass


def test_which_modes_poll_or_stream() -> None:
    def settings(**env: str) -> Settings:
        return load_settings(None, env={f"DUTYBOT_{k.upper()}": v for k, v in env.items()})

    assert receiver_identity("telegram", settings(telegram_token="123456:ABC")) == "123456"
    assert receiver_identity("telegram", settings(
        telegram_token="123456:ABC", telegram_mode="webhook",
        telegram_webhook_url="https://bot.example.gov.cn/telegram/webhook")) is None
    assert receiver_identity("dingtalk", settings(dingtalk_client_id="dingabc")) == "dingabc"
    assert receiver_identity("dingtalk", settings(dingtalk_client_id="dingabc",
                                                  dingtalk_mode="callback")) is None
    assert receiver_identity("wecom", settings(wecom_corp_id="ww1")) is None


@pytest.mark.parametrize(("platform", "env", "said"), [
    ("telegram", {"DUTYBOT_TELEGRAM_TOKEN": "123456:ABCDEF"}, TELEGRAM_REFUSAL),
    ("dingtalk", {"DUTYBOT_DINGTALK_CLIENT_ID": "dingabc", "DUTYBOT_DINGTALK_CLIENT_SECRET": "s" * 32},
     "另一个 dutybot run 已在使用同一个钉钉应用接收消息（Stream 模式）"),
])
def test_a_second_dutybot_run_polling_the_same_bot_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        platform: str, env: dict[str, str], said: str) -> None:
    """Refused before it connects anywhere (no network in tests)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    engine = make_engine(f"sqlite:///{tmp_path / 'dutybot.db'}")
    identity = "123456" if platform == "telegram" else "dingabc"
    held = try_acquire(engine, receiver_name(platform, identity))   # the first dutybot run
    assert held is not None
    with held:
        assert main(["run", "--adapter", platform]) == 1
        assert said in capsys.readouterr().err
    with acquire(engine, exclusive=True):   # the refused run let its shared lock go
        pass
    engine.dispose()
