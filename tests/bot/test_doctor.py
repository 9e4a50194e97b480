"""``dutybot doctor`` (issue 19 item 3): one Chinese line per check, 正常/警告/错误, a
summary, exit 1 on any 错误 — against fake platforms on loopback, a fake clock, a
database one revision behind, a config with a missing file."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from freezegun import freeze_time
from sqlalchemy import create_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot import doctor_platform
from bot.cli import main
from bot.doctor import GIB, MIB, DiskUsage, diagnose
from bot.doctor_report import Level, Report
from core.clock import SHANGHAI, FakeClock
from core.db import alembic_config, head_revision, make_engine, upgrade
from core.errors import MissingExtra
from tests.fakes.fake_dingtalk import FakeDingTalk
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.fake_wecom import FakeWeComApi
from tests.fakes.serve import serve_asgi

TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
JUNE = FakeClock(datetime(2026, 6, 10, 10, 0, tzinfo=SHANGHAI))   # the test package covers 2026 only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, *extra: str, migrate: bool = True, port: int | None = None) -> Path:
    """A config beside a migrated SQLite database; ``extra`` lines are appended."""
    config = folder / "dutybot.toml"
    config.write_text("\n".join(['[database]', 'url = "sqlite:///dutybot.db"',
                                 '[http]', f'port = {port or free_port()}', *extra]) + "\n", encoding="utf-8")
    if migrate:
        engine = make_engine(f"sqlite:///{folder / 'dutybot.db'}")
        upgrade(engine)
        engine.dispose()
    return config


def level_of(report: Report, check: str) -> Level:
    (found,) = [f for f in report.findings if f.check == check]
    return found.level


def line_of(report: Report, check: str) -> str:
    (found,) = [line for line, f in zip(report.lines(), report.findings, strict=False) if f.check == check]
    return found


def roomy(_path: Path) -> DiskUsage:
    return DiskUsage(total=100 * GIB, used=40 * GIB, free=60 * GIB)


async def test_a_healthy_console_installation(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    report = await diagnose(config=config, env={}, clock=JUNE, disk_usage=roomy)
    assert report.ok, report.lines()
    assert [f.level for f in report.findings] == [Level.ok] * len(report.findings)
    assert {f.check for f in report.findings} == {"config", "database", "schema", "calendar", "platform",
                                                 "clock", "disk", "http"}
    lines = report.lines()
    assert lines[0] == f"[正常] 配置：{config.resolve()}（规则配置档 default，聊天平台 console）"
    assert f"[正常] 数据库结构：最新（{head_revision()}）" in lines
    assert "控制台" in line_of(report, "platform") and "未检查" in line_of(report, "clock")
    assert lines[-1].startswith(f"共 {len(report.findings)} 项检查：正常 {len(report.findings)} 项，警告 0 项，错误 0 项")


def test_the_command_prints_the_report_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    with freeze_time("2026-06-10 02:00:00", real_asyncio=True):
        code = main(["--config", str(config), "doctor"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith("[正常] 配置：") and "错误 0 项" in out.splitlines()[-1]
    with freeze_time("2026-06-10 02:00:00", real_asyncio=True):
        code = main(["--config", str(config), "doctor", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 0 and body["ok"] is True and body["summary"]["error"] == 0
    assert {c["check"] for c in body["checks"]} >= {"config", "database", "schema", "calendar", "disk", "http"}
    assert body["checks"][0] == {"check": "config", "name": "配置", "level": "ok", "level_zh": "正常",
                                 "detail": f"{config.resolve()}（规则配置档 default，聊天平台 console）"}


def test_a_missing_config_file_is_one_error_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "etc" / "dutybot.toml"
    code = main(["--config", str(missing), "doctor"])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"[错误] 配置：{missing}：找不到配置文件 {missing}（可运行 dutybot init 生成）"
    assert "需要有效的配置，未进行" in lines[1]
    assert lines[2].startswith("共 1 项检查：正常 0 项，警告 0 项，错误 1 项")


async def test_a_config_naming_a_missing_file_is_an_error_and_the_rest_still_runs(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[watch]", 'lexicons = ["本单位词库.txt"]')
    report = await diagnose(config=config, env={}, clock=JUNE, disk_usage=roomy)
    assert not report.ok
    assert level_of(report, "config") is Level.error and "本单位词库.txt" in line_of(report, "config")
    assert level_of(report, "database") is Level.ok and level_of(report, "calendar") is Level.ok


def test_a_database_one_revision_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, migrate=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'dutybot.db'}")
    script = ScriptDirectory.from_config(alembic_config(create_engine("sqlite://")))
    previous = script.get_revision(head_revision()).down_revision
    assert isinstance(previous, str)
    upgrade(engine, previous)
    engine.dispose()
    with freeze_time("2026-06-10 02:00:00", real_asyncio=True):
        code = main(["--config", str(config), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert f"[正常] 数据库：sqlite:///{(tmp_path / 'dutybot.db').resolve()} 可以连接" in lines
    assert (f"[错误] 数据库结构：数据库结构版本 {previous} 已过期（最新 {head_revision()}）：请运行 dutybot db upgrade"
            in lines)
    assert "错误 1 项" in lines[-1]


async def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    config = write_config(tmp_path, migrate=False)
    report = await diagnose(config=config, env={}, clock=JUNE, disk_usage=roomy)
    assert level_of(report, "database") is Level.error
    assert "不存在：请运行 dutybot db upgrade" in line_of(report, "database")
    assert "schema" not in {f.check for f in report.findings}
    assert not (tmp_path / "dutybot.db").exists()


@pytest.mark.parametrize(("now", "level", "words"), [
    (datetime(2026, 10, 31, 12, 0, tzinfo=SHANGHAI), Level.ok, "11 月前后公布"),
    (datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI), Level.warning, "缺少明年（2027 年）"),
    (datetime(2027, 3, 1, 9, 0, tzinfo=SHANGHAI), Level.error, "缺少今年（2027 年）"),
])
async def test_calendar_years(tmp_path: Path, now: datetime, level: Level, words: str) -> None:
    config = write_config(tmp_path)
    report = await diagnose(config=config, env={}, clock=FakeClock(now), disk_usage=roomy)
    assert level_of(report, "calendar") is level and words in line_of(report, "calendar")
    if level is Level.warning:
        assert "暂定" in line_of(report, "calendar") and report.ok


async def test_a_holiday_file_for_next_year_is_enough(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "holidays").mkdir()
    (tmp_path / "holidays" / "2027.toml").write_text(
        'notice = "通知"\n[holidays]\n"元旦" = ["2027-01-01"]\n', encoding="utf-8")
    report = await diagnose(config=config, env={}, clock=FakeClock(datetime(2026, 11, 23, 9, tzinfo=SHANGHAI)),
                            disk_usage=roomy)
    assert level_of(report, "calendar") is Level.ok and "2027.toml" in line_of(report, "calendar")


# ---------------------------------------------------------------- platforms and the clock


def real_now(offset: timedelta = timedelta(0)) -> FakeClock:
    """A fake clock ``offset`` from the real time, which the fake server's Date header tells."""
    return FakeClock(datetime.now(UTC) + offset)


async def test_telegram_token_and_clock(tmp_path: Path) -> None:
    fake = FakeBotApi(TOKEN, username="quduty_bot")
    async with serve_asgi(fake.app) as url:
        config = write_config(tmp_path, "[bot]", 'adapter = "telegram"')
        env = {"DUTYBOT_TELEGRAM_TOKEN": TOKEN, "DUTYBOT_TELEGRAM_BASE_URL": url}
        good = await diagnose(config=config, env=env, clock=real_now(), disk_usage=roomy)
        wrong = await diagnose(config=config, env={**env, "DUTYBOT_TELEGRAM_TOKEN": "1:WRONG"},
                               clock=real_now(), disk_usage=roomy)
    host = url.removeprefix("http://")
    assert line_of(good, "platform") == f"[正常] 平台凭据：Telegram 机器人 @quduty_bot 的令牌有效（getMe，{host}）"
    assert level_of(good, "clock") is Level.ok and f"本机时间与 {host} 相差" in line_of(good, "clock")
    assert level_of(wrong, "platform") is Level.error and "拒绝了令牌" in line_of(wrong, "platform")
    assert TOKEN not in "\n".join(good.lines() + wrong.lines()) and "WRONG" not in "\n".join(wrong.lines())


@pytest.mark.parametrize(("offset", "level", "words"), [
    (timedelta(minutes=10), Level.error, "快"),
    (timedelta(seconds=-90), Level.warning, "慢"),
    (timedelta(seconds=0), Level.ok, "相差"),
])
async def test_clock_skew_against_the_platform(tmp_path: Path, offset: timedelta, level: Level,
                                              words: str) -> None:
    fake = FakeWeComApi(corp_id="ww-corp", secret="app-secret")
    async with serve_asgi(fake.app) as url:
        config = write_config(tmp_path, "[bot]", 'adapter = "wecom"')
        env = {"DUTYBOT_WECOM_CORP_ID": "ww-corp", "DUTYBOT_WECOM_SECRET": "app-secret",
               "DUTYBOT_WECOM_AGENT_ID": "1000002", "DUTYBOT_WECOM_API_BASE": url}
        report = await diagnose(config=config, env=env, clock=real_now(offset), disk_usage=roomy)
    assert level_of(report, "platform") is Level.ok and "企业微信应用凭据有效" in line_of(report, "platform")
    assert level_of(report, "clock") is level and words in line_of(report, "clock")
    assert report.ok is (level is not Level.error)


async def test_wecom_refused_secret(tmp_path: Path) -> None:
    fake = FakeWeComApi(corp_id="ww-corp", secret="app-secret")
    async with serve_asgi(fake.app) as url:
        config = write_config(tmp_path, "[bot]", 'adapter = "wecom"')
        env = {"DUTYBOT_WECOM_CORP_ID": "ww-corp", "DUTYBOT_WECOM_SECRET": "not-it",
               "DUTYBOT_WECOM_AGENT_ID": "1000002", "DUTYBOT_WECOM_API_BASE": url}
        report = await diagnose(config=config, env=env, clock=real_now(), disk_usage=roomy)
    assert line_of(report, "platform") == ("[错误] 平台凭据：企业微信拒绝了应用凭据（errcode 40001：应用 Secret（wecom.secret）"
                                           "无效）：请核对 corp_id、secret 和应用的企业可信IP")
    assert "not-it" not in "\n".join(report.lines())
    assert not report.ok


async def test_dingtalk_credentials(tmp_path: Path) -> None:
    fake = FakeDingTalk(client_id="dingclient001", client_secret="app-secret-7f3c")
    async with serve_asgi(fake.app) as url:
        config = write_config(tmp_path, "[bot]", 'adapter = "dingtalk"')
        env = {"DUTYBOT_DINGTALK_CLIENT_ID": "dingclient001", "DUTYBOT_DINGTALK_CLIENT_SECRET": "app-secret-7f3c",
               "DUTYBOT_DINGTALK_API_BASE": url}
        good = await diagnose(config=config, env=env, clock=real_now(), disk_usage=roomy)
        bad = await diagnose(config=config, env={**env, "DUTYBOT_DINGTALK_CLIENT_SECRET": "x"},
                             clock=real_now(), disk_usage=roomy)
    assert level_of(good, "platform") is Level.ok and "钉钉应用凭据有效" in line_of(good, "platform")
    assert level_of(good, "clock") is Level.ok
    assert level_of(bad, "platform") is Level.error and "请核对 dingtalk.client_id 和 client_secret" in line_of(
        bad, "platform")


async def test_an_unreachable_platform_names_the_host(tmp_path: Path) -> None:
    closed = free_port()
    config = write_config(tmp_path, "[bot]", 'adapter = "wecom"')
    env = {"DUTYBOT_WECOM_CORP_ID": "ww-corp", "DUTYBOT_WECOM_SECRET": "app-secret",
           "DUTYBOT_WECOM_AGENT_ID": "1000002", "DUTYBOT_WECOM_API_BASE": f"http://127.0.0.1:{closed}"}
    report = await diagnose(config=config, env=env, clock=real_now(), disk_usage=roomy)
    assert line_of(report, "platform").startswith(f"[错误] 平台凭据：无法连接 127.0.0.1:{closed}（连接失败：")
    assert level_of(report, "clock") is Level.warning and "对时" in line_of(report, "clock")
    assert level_of(report, "http") is Level.ok      # the other checks ran


async def test_a_platform_without_its_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(platform: str) -> None:
        raise MissingExtra("telegram", "Telegram")

    monkeypatch.setattr(doctor_platform, "import_adapter", no_library)
    config = write_config(tmp_path, "[bot]", 'adapter = "telegram"')
    report = await diagnose(config=config, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN}, clock=JUNE, disk_usage=roomy)
    assert line_of(report, "platform") == "[错误] 平台凭据：使用 Telegram 需要安装扩展：pip install 'dutybot[telegram]'"


# ---------------------------------------------------------------- disk, port, isolation


@pytest.mark.parametrize(("free", "total", "level"), [
    (60 * GIB, 100 * GIB, Level.ok),
    (5 * GIB, 100 * GIB, Level.warning),       # under 10 %
    (500 * MIB, 2 * GIB, Level.warning),       # under 1 GiB
    (50 * MIB, 100 * GIB, Level.error),        # under 100 MiB
])
async def test_disk_space(tmp_path: Path, free: int, total: int, level: Level) -> None:
    config = write_config(tmp_path, "[backup]", f'dir = "{tmp_path / "backups"}"',
                          "[incidents]", f'evidence_dir = "{tmp_path / "evidence"}"')
    (tmp_path / "evidence").mkdir()
    asked: list[Path] = []

    def usage(path: Path) -> DiskUsage:
        asked.append(path)
        return DiskUsage(total=total, used=total - free, free=free)

    report = await diagnose(config=config, env={}, clock=JUNE, disk_usage=usage)
    disks = [(f.name, f.level) for f in report.findings if f.check == "disk"]
    assert disks == [("磁盘（数据库）", level), ("磁盘（证据）", level), ("磁盘（备份）", level)]
    # the backup folder does not exist yet: measured where it will be made
    assert asked == [tmp_path.resolve(), (tmp_path / "evidence").resolve(), tmp_path.resolve()]
    assert report.ok is (level is not Level.error)


async def test_a_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        config = write_config(tmp_path, port=port)
        report = await diagnose(config=config, env={}, clock=JUNE, disk_usage=roomy, timeout=0.5)
    assert line_of(report, "http") == (f"[错误] HTTP 端口：127.0.0.1:{port} 已被其他程序占用：dutybot run 将无法启动。"
                                       "请在 [http] 中换一个 port")


async def test_a_port_used_by_a_running_dutybot(tmp_path: Path) -> None:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "platform": "wecom"})

    async with serve_asgi(Starlette(routes=[Route("/healthz", healthz)])) as url:
        port = int(url.rsplit(":", 1)[1])
        report = await diagnose(config=write_config(tmp_path, port=port), env={}, clock=JUNE, disk_usage=roomy)
    assert line_of(report, "http") == f"[正常] HTTP 端口：127.0.0.1:{port} 由正在运行的 dutybot 使用（平台 wecom）"


async def test_a_check_that_breaks_does_not_stop_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("bot.doctor._calendar", broken)
    report = await diagnose(config=write_config(tmp_path), env={}, clock=JUNE, disk_usage=roomy)
    assert line_of(report, "calendar") == "[错误] 节假日数据：检查时出现意外错误（RuntimeError）；加 --debug 可查看详细信息"
    assert [f.check for f in report.findings] == ["config", "database", "schema", "calendar", "platform", "clock",
                                                  "disk", "disk", "disk", "http"]
    assert level_of(report, "http") is Level.ok
