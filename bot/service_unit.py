"""The systemd unit of ``dutybot run``: what ``dutybot service install`` writes and
``dutybot service show`` prints (docs/admin.md §1.5).

The unit runs *this* installation's ``dutybot`` (the ``bin/`` of the virtual environment
that runs the command, so an upgrade with that environment's pip is picked up by a
restart) as a dedicated system user, with the config named by its absolute path. The
service may write only where the config says the data is: the SQLite database's folder
(the database, its ``-wal``/``-shm`` files and the instance locks beside it), the
evidence folder and the backup folder (``ReadWritePaths``); the rest of the file system
is read-only (``ProtectSystem=strict``).

Choices worth knowing:

* ``MemoryDenyWriteExecute`` is **off**: libffi closures (ctypes and cffi callbacks) need
  memory that is writable and executable on some builds, and a wheel that uses them
  would crash the service at the first callback, long after the unit was tested.
* ``Restart=on-failure`` but not after exit 2 (``RestartPreventExitStatus=2``): that is a
  bad configuration or refused credentials, which a restart every few seconds cannot
  fix; exit 1 (a database in use by a live console, a platform unreachable at start) may
  pass, so it is retried.
* ``TimeoutStopSec`` leaves the outbox sender time to finish its pass: a send cut off
  mid-flight may arrive twice (the platforms have no idempotency key), so the stop
  allows two of the platform's send timeouts plus the HTTP service's shutdown.
* ``ProtectHome=read-only`` instead of ``yes`` when the program, config or data live
  under ``/home`` or ``/root`` (a service cannot read what ``yes`` hides).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.sandbox import sqlite_file
from core.errors import DutybotError, InputError

DEFAULT_PATH = "/etc/systemd/system/dutybot.service"
DEFAULT_USER = "dutybot"
DEFAULT_ENV_FILE = "/etc/dutybot/dutybot.env"
RESTART_SEC = 10
HTTP_STOP_SECONDS = 10          # bot.http.HttpService.stop waits this long for requests
STOP_MARGIN_SECONDS = 10        # the scheduler's shutdown and the adapter's stop
_HOMES = (Path("/home"), Path("/root"), Path("/run/user"))
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


class ServiceRefused(DutybotError):
    """The unit file cannot be written (exists without ``--force``, folder not writable)."""


@dataclass(frozen=True)
class UnitPlan:
    """Everything the unit says, worked out from the settings and the options.

    Attributes:
        command: ExecStart's program and arguments (``…/bin/dutybot --config … run``).
        user: the system user (and group) the service runs as.
        workdir: WorkingDirectory.
        data_dirs: the folders the service writes (ReadWritePaths), in order.
        env_file: the optional environment file (secrets), ``-`` prefixed in the unit.
        adapter: the chat platform the service runs.
        stop_seconds: TimeoutStopSec.
        low_port: the HTTP port is below 1024 (needs CAP_NET_BIND_SERVICE).
        local_postgres: the database is a PostgreSQL on this machine (start after it).
        under_home: something the service reads lives under a home folder.
        read_only: the program's environment and the config, where they lie inside a
            data folder (ReadOnlyPaths, which wins over the wider ReadWritePaths).
    """

    command: tuple[str, ...]
    user: str
    workdir: Path
    data_dirs: tuple[Path, ...]
    env_file: str
    adapter: str
    stop_seconds: int
    low_port: bool
    local_postgres: bool
    under_home: bool
    read_only: tuple[Path, ...] = ()


def dutybot_program() -> tuple[str, ...]:
    """This installation's ``dutybot``: the console script beside the running Python
    (not resolved: a venv's python is a symlink to the system's), else ``python -m bot.cli``."""
    script = Path(sys.executable).parent / "dutybot"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return (sys.executable, "-m", "bot.cli")


def data_dirs(settings: Settings) -> tuple[Path, ...]:
    """The folders the running service writes: the SQLite database's, evidence, backups."""
    found: list[Path] = []
    database = sqlite_file(settings.database_url())
    if database is not None:
        found.append(database.resolve().parent)
    found.append(settings.resolve(settings.incidents.evidence_dir).resolve())
    found.append(settings.resolve(settings.backup.dir).resolve())
    return tuple(dict.fromkeys(found))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a systemd EnvironmentFile (``#`` comments, quoted values);
    empty when the file is missing or unreadable (the unit marks it optional)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key] = value
    return found


def plan(settings: Settings, *, config: Path, user: str = DEFAULT_USER, workdir: Path | None = None,
         adapter: str | None = None, env_file: str = DEFAULT_ENV_FILE,
         program: tuple[str, ...] | None = None, worker: bool = False) -> UnitPlan:
    """The unit for ``settings`` read from ``config``.

    Raises:
        InputError: the platform is the console (not a service), a bad user name, or a
            relative path.
    """
    chosen = adapter or settings.bot.adapter
    if chosen == "console":
        raise InputError("配置的聊天平台是 console（控制台），不能作为系统服务运行："
                         "请在配置中设置 bot.adapter（telegram、wecom 或 dingtalk），或加 --adapter")
    if not _USER_NAME.fullmatch(user):
        raise InputError(f"无效的用户名 {user!r}：应为小写字母、数字、下划线或连字符，如 dutybot")
    if env_file and not env_file.startswith("/"):
        raise InputError(f"环境文件应写绝对路径，收到 {env_file!r}")
    config = config.expanduser().resolve()
    work = (workdir.expanduser().resolve() if workdir is not None else Path(settings.base_dir).resolve())
    program = program or dutybot_program()
    command = (*program, "--config", str(config), "run", *(("--adapter", adapter) if adapter else ()),
               *(("--worker",) if worker else ()))
    dirs = data_dirs(settings)
    timeout = {"telegram": settings.telegram.send_timeout_seconds, "wecom": settings.wecom.send_timeout_seconds,
               "dingtalk": settings.dingtalk.send_timeout_seconds}.get(chosen, 60.0)
    url = make_url(settings.database_url())
    read = [config, work, Path(program[0]), *dirs]
    return UnitPlan(
        command=command, user=user, workdir=work, data_dirs=dirs, env_file=env_file, adapter=chosen,
        stop_seconds=int(2 * timeout) + HTTP_STOP_SECONDS + STOP_MARGIN_SECONDS,
        low_port=0 < settings.http.port < 1024,
        local_postgres=url.get_backend_name() == "postgresql" and url.host in _LOCAL_HOSTS,
        under_home=any(_within(p, home) for p in read for home in _HOMES),
        read_only=tuple(p for p in (Path(program[0]).parent.parent, config) if any(_within(p, d) for d in dirs)))


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or inside it."""
    return path == folder or folder in path.parents


def _escape(value: str) -> str:
    """A value for a unit file: systemd expands ``%`` specifiers, so ``%`` is doubled."""
    if "\n" in value:
        raise InputError(f"路径中不能有换行：{value!r}")
    return value.replace("%", "%%")


def _word(value: str) -> str:
    """One word of a command line or path list, quoted when it holds spaces or quotes."""
    value = _escape(value).replace("$", "$$")
    if re.search(r"[\s\"'\\;]", value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def render(unit: UnitPlan, *, version: str, unit_name: str = "dutybot") -> str:
    """The unit file's text (``unit_name``: the file's name without ``.service``)."""
    after = "network-online.target" + (" postgresql.service" if unit.local_postgres else "")
    caps = ("AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE"
            if unit.low_port else "CapabilityBoundingSet=")
    home = "read-only" if unit.under_home else "yes"
    env = f"EnvironmentFile=-{_escape(unit.env_file)}\n" if unit.env_file else ""
    # The program and the config stay read-only even inside a data folder (/srv/dutybot).
    read_only = (f"ReadOnlyPaths={' '.join(_word(str(p)) for p in unit.read_only)}\n"
                 if unit.read_only else "")
    return f"""\
# Written by `dutybot service install` (dutybot {version}). Regenerate it with the same
# command and --force rather than editing it; local changes belong in a drop-in
# (systemctl edit {unit_name}).
[Unit]
Description=dutybot 值班读网与舆情处置机器人（{unit.adapter}）
Wants=network-online.target
After={after}

[Service]
Type=simple
User={unit.user}
Group={unit.user}
{env}WorkingDirectory={_escape(str(unit.workdir))}
ExecStart={" ".join(_word(w) for w in unit.command)}
Restart=on-failure
RestartSec={RESTART_SEC}
# Exit 2 is a bad configuration or refused credentials: restarting cannot fix it.
RestartPreventExitStatus=2
# On SIGTERM the outbox sender finishes its pass (a send cut off may arrive twice).
TimeoutStopSec={unit.stop_seconds}
UMask=0027

# Sandbox: the file system is read-only except the data folders from the config.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={" ".join(_word(str(d)) for d in unit.data_dirs)}
{read_only}ProtectHome={home}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
ProtectProc=invisible
SystemCallArchitectures=native
# A call outside the usual set fails with EPERM rather than killing the service.
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
{caps}
# MemoryDenyWriteExecute stays off: libffi closures (ctypes, cffi callbacks) in some
# wheels need writable and executable memory and would crash the service.

[Install]
WantedBy=multi-user.target
"""


def setup_commands(unit: UnitPlan, unit_name: str) -> list[str]:
    """The commands the admin runs after the file is written, in order."""
    user, dirs = unit.user, " ".join(_shell(str(d)) for d in unit.data_dirs)
    return [
        f"id -u {user} >/dev/null 2>&1 || sudo useradd --system --user-group "
        f"--home-dir {_shell(str(unit.workdir))} --no-create-home --shell /usr/sbin/nologin {user}",
        f"sudo install -d -o {user} -g {user} -m 750 {dirs}",
        f"sudo chown -R {user}:{user} {dirs}",
        "sudo systemctl daemon-reload",
        f"sudo systemctl enable --now {unit_name}",
        f"systemctl status {unit_name}",
        f"journalctl -u {unit_name} -f",
    ]


def _shell(value: str) -> str:
    """``value`` as one shell word."""
    return value if re.fullmatch(r"[\w@%+=:,./-]+", value) else "'" + value.replace("'", "'\\''") + "'"


def write_unit(path: Path, text: str, *, force: bool) -> None:
    """Write the unit file.

    Raises:
        ServiceRefused: it exists and ``force`` is not set, or it cannot be written.
    """
    folder = path.parent
    if path.exists() and not force:
        raise ServiceRefused(f"{path} 已存在，未改动：确认要覆盖请加 --force")
    if not folder.is_dir():
        raise ServiceRefused(f"目录 {folder} 不存在：请检查 --path")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ServiceRefused(f"没有写入 {path} 的权限：请用 sudo 运行，或用 --path 写到别处")
    try:
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
    except OSError as exc:
        raise ServiceRefused(f"无法写入 {path}：{exc.strerror or exc}") from None


def environment(env_file: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment the service will see: ``base`` overlaid with the env file's
    ``DUTYBOT_*`` values (so the unit is planned from the same settings it will run with)."""
    merged = dict(base)
    if env_file:
        merged.update({k: v for k, v in read_env_file(Path(env_file)).items() if k.startswith("DUTYBOT_")})
    return merged
