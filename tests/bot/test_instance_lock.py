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
from bot.instance_lock import DatabaseInUse, Holder, acquire, lock_path
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
