"""``dutybot service install`` / ``show`` (issue 19 item 3): the systemd unit of this
installation's ``dutybot run``, the commands printed after it, and the refusals."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot import service_unit
from bot.cli import main
from bot.config import load_settings

HERE_DUTYBOT = Path(sys.executable).parent / "dutybot"


def config_in(folder: Path, *extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "dutybot.toml"
    config.write_text("\n".join(['[bot]', 'adapter = "wecom"', *extra]) + "\n", encoding="utf-8")
    return config


def settings_of(unit: str) -> dict[str, list[str]]:
    """Each ``Key=value`` of the unit, by key (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_prints_the_unit_of_this_installation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backups = tmp_path / "disk2" / "backups"
    config = config_in(tmp_path / "srv", "[backup]", f'dir = "{backups}"',
                       "[incidents]", 'evidence_dir = "证据"')
    code, out, err = run(capsys, "--config", str(config), "service", "show")
    assert code == 0 and err == ""
    unit = settings_of(out)
    program = str(HERE_DUTYBOT) if HERE_DUTYBOT.exists() else f"{sys.executable} -m bot.cli"
    assert unit["ExecStart"] == [f"{program} --config {config.resolve()} run"]
    assert unit["User"] == unit["Group"] == ["dutybot"]
    assert unit["WorkingDirectory"] == [str(config.resolve().parent)]
    # the database's folder, the evidence and the backups, from the config
    srv = config.resolve().parent
    assert unit["ReadWritePaths"] == [f"{srv} {srv / '证据'} {backups.resolve()}"]
    assert unit["ReadOnlyPaths"] == [str(config.resolve())]     # the config stays read-only
    assert unit["Restart"] == ["on-failure"] and unit["RestartSec"] == ["10"]
    assert unit["RestartPreventExitStatus"] == ["2"]
    assert int(unit["TimeoutStopSec"][0]) >= 2 * 60          # two WeCom send timeouts
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"),
                       ("ProtectKernelModules", "yes"), ("ProtectControlGroups", "yes"),
                       ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"), ("RestrictSUIDSGID", "yes"),
                       ("LockPersonality", "yes"), ("SystemCallArchitectures", "native"), ("UMask", "0027"),
                       ("EnvironmentFile", "-/etc/dutybot/dutybot.env"), ("WantedBy", "multi-user.target")]:
        assert unit[key] == [value], key
    assert "MemoryDenyWriteExecute" not in unit                 # see bot/service_unit.py
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dutybot.toml", "srv"]   # nothing written


def test_install_writes_the_unit_and_prints_the_next_commands(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = config_in(tmp_path / "srv")
    target = tmp_path / "systemd" / "quduty.service"
    target.parent.mkdir()
    code, shown, _ = run(capsys, "--config", str(config), "service", "show", "--adapter", "dingtalk",
                         "--user", "quduty")
    code, out, err = run(capsys, "service", "install", "--config", str(config), "--path", str(target),
                         "--adapter", "dingtalk", "--user", "quduty")
    assert code == 0 and err == ""
    text = target.read_text(encoding="utf-8")
    assert text == shown.replace("systemctl edit dutybot", "systemctl edit quduty")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert settings_of(text)["ExecStart"][0].endswith(f"--config {config.resolve()} run --adapter dingtalk")
    assert settings_of(text)["User"] == ["quduty"]
    lines = [line.strip() for line in out.splitlines()]
    srv = config.resolve().parent
    assert lines[0].startswith(f"已写入 {target}（用户 quduty，聊天平台 dingtalk")
    assert (f"id -u quduty >/dev/null 2>&1 || sudo useradd --system --user-group --home-dir {srv} "
            "--no-create-home --shell /usr/sbin/nologin quduty") in lines
    assert f"sudo chown -R quduty:quduty {srv} {srv / 'evidence'} {srv / 'backups'}" in lines
    tail = lines[lines.index("sudo systemctl daemon-reload"):]
    assert tail[:4] == ["sudo systemctl daemon-reload", "sudo systemctl enable --now quduty",
                        "systemctl status quduty", "journalctl -u quduty -f"]


def test_an_existing_unit_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_in(tmp_path / "srv")
    target = tmp_path / "dutybot.service"
    target.write_text("# hand-written\n", encoding="utf-8")
    code, out, err = run(capsys, "--config", str(config), "service", "install", "--path", str(target))
    assert code == 1 and out == ""
    assert err == f"dutybot: {target} 已存在，未改动：确认要覆盖请加 --force\n"
    assert target.read_text(encoding="utf-8") == "# hand-written\n"
    code, _, _ = run(capsys, "--config", str(config), "service", "install", "--path", str(target), "--force")
    assert code == 0 and "ExecStart=" in target.read_text(encoding="utf-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_in(tmp_path / "srv")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run(capsys, "--config", str(config), "service", "install", "--path", str(locked / "d.service"))
    assert code == 1 and "没有写入" in err and "请用 sudo 运行" in err
    assert not (locked / "d.service").exists()


def test_a_folder_that_cannot_be_written_as_root_too(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as root (CI), the refusal is shown by denying write access where it is asked."""
    config = config_in(tmp_path / "srv")
    target = tmp_path / "etc" / "dutybot.service"
    target.parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(service_unit.os, "access",
                        lambda path, mode: False if Path(path) == target.parent else real_access(path, mode))
    code, out, err = run(capsys, "--config", str(config), "service", "install", "--path", str(target))
    assert code == 1 and out == ""
    assert err == f"dutybot: 没有写入 {target} 的权限：请用 sudo 运行，或用 --path 写到别处\n"
    code, _, err = run(capsys, "--config", str(config), "service", "install", "--path",
                       str(tmp_path / "nowhere" / "dutybot.service"))
    assert code == 1 and "不存在" in err


def test_the_console_is_not_a_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dutybot.toml"
    config.write_text("", encoding="utf-8")
    code, out, err = run(capsys, "--config", str(config), "service", "show")
    assert code == 2 and out == ""
    assert err.startswith("dutybot: 配置的聊天平台是 console（控制台），不能作为系统服务运行") and err.count("\n") == 1
    assert run(capsys, "--config", str(config), "service", "show", "--adapter", "telegram")[0] == 0


def test_no_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "service", "show")
    assert code == 2 and "请用 --config 指定" in err


def test_the_environment_file_is_read_like_the_service_will(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = config_in(tmp_path / "srv")
    env_file = tmp_path / "dutybot.env"
    env_file.write_text(f"# secrets\nDUTYBOT_BACKUP_DIR='{tmp_path / 'vault'}'\nDUTYBOT_WECOM_SECRET=x\n",
                        encoding="utf-8")
    code, out, _ = run(capsys, "--config", str(config), "service", "show", "--env-file", str(env_file))
    assert code == 0
    assert settings_of(out)["EnvironmentFile"] == [f"-{env_file}"]
    assert settings_of(out)["ReadWritePaths"][0].endswith(f" {(tmp_path / 'vault').resolve()}")


def test_paths_are_written_for_systemd() -> None:
    assert service_unit._word("/srv/值班 机器人/dutybot") == '"/srv/值班 机器人/dutybot"'
    assert service_unit._word("/srv/100%/db") == "/srv/100%%/db"
    assert service_unit._word("/srv/$HOME") == "/srv/$$HOME"


def test_a_home_folder_is_not_hidden_from_the_service(tmp_path: Path) -> None:
    config = config_in(tmp_path / "srv")
    settings = load_settings(config, {})
    plan = service_unit.plan(settings, config=config, program=("/home/ops/venv/bin/dutybot",))
    text = service_unit.render(plan, version="0.1.0")
    assert "ProtectHome=read-only" in text and "ProtectHome=yes" not in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_in(tmp_path / "srv", "[http]", "port = 443")
    target = tmp_path / "dutybot.service"
    assert run(capsys, "--config", str(config), "service", "install", "--path", str(target))[0] == 0
    text = target.read_text(encoding="utf-8")
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text     # port 443 needs it
    done = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
