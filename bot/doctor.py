"""``dutybot doctor``: is this installation ready to run? One finding per check
(:mod:`bot.doctor_report`), each 正常, 警告 or 错误 with what to do:

* **配置** — the config loads and is valid, the files it names too (holiday files, the
  score sheet, lexicons); the path is shown. Without a valid config nothing else can be
  checked, and the report says so.
* **数据库** — reachable (a SQLite file that does not exist is not created); **数据库结构**
  — at the newest migration, else the command that fixes it (``dutybot db upgrade``).
* **节假日数据** — the holiday data covers this year (else 错误: this year's deadlines are
  provisional) and, from November on, next year (else 警告).
* **平台凭据** and **时钟** — :mod:`bot.doctor_platform`.
* **磁盘** — free space where the database, evidence and backups are written: 警告
  under 1 GiB or 10 %, 错误 under 100 MiB.
* **HTTP 端口** — ``[http] host:port`` is free, or answered by a running dutybot.

A check that fails unexpectedly is an 错误 line of its own; the others still run.
"""

from __future__ import annotations

import errno
import logging
import shutil
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from pathlib import Path
from typing import NamedTuple

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings, load_settings
from bot.doctor_platform import probe
from bot.doctor_report import Finding, Level, Report
from bot.sandbox import sqlite_file
from core.clock import Clock, local
from core.db import check_schema, head_revision, make_engine
from core.errors import ConfigError, DutybotError, SchemaOutOfDate
from core.workdays import WorkdayCalendar
from watch.terms import Lexicon

log = logging.getLogger(__name__)

GIB = 1024 ** 3
MIB = 1024 ** 2
DISK_WARNING_FREE = GIB
DISK_WARNING_SHARE = 0.10
DISK_ERROR_FREE = 100 * MIB


class DiskUsage(NamedTuple):
    """What :func:`shutil.disk_usage` answers."""

    total: int
    used: int
    free: int


DiskProbe = Callable[[Path], DiskUsage]


def _disk_usage(path: Path) -> DiskUsage:
    usage = shutil.disk_usage(path)
    return DiskUsage(usage.total, usage.used, usage.free)


async def diagnose(*, config: Path | None, env: Mapping[str, str], clock: Clock, adapter: str | None = None,
                   disk_usage: DiskProbe = _disk_usage, timeout: float = 10.0) -> Report:
    """Run every check.

    Args:
        config: the config file (None: none was found; the defaults are checked).
        env: the environment (``DUTYBOT_*`` overrides).
        clock: the local clock (the skew check compares it with the platform's).
        adapter: the platform to check (default: the configured ``bot.adapter``).
        disk_usage: how free space is measured (tests give their own).
        timeout: seconds to wait for the platform.
    """
    report = Report()
    try:
        settings, finding = _config(config, env)
    except Exception as exc:
        settings, finding = None, _unexpected("config", "配置", exc)
    report.findings.append(finding)
    if settings is None:
        report.note = "其余检查（数据库、节假日数据、平台、磁盘、端口）需要有效的配置，未进行。"
        return report
    try:
        engine, finding = _database(settings)
    except Exception as exc:
        engine, finding = None, _unexpected("database", "数据库", exc)
    report.findings.append(finding)
    if engine is not None:
        try:
            await _guarded(report, "schema", "数据库结构", lambda: [_schema(engine)])
        finally:
            engine.dispose()
    today = local(clock.now()).date()
    await _guarded(report, "calendar", "节假日数据", lambda: [_calendar(settings, today)])
    platform = adapter or settings.bot.adapter
    await _guarded(report, "platform", "平台凭据",
                   lambda: probe(settings, platform, clock=clock, timeout=timeout))
    await _guarded(report, "disk", "磁盘", lambda: _disks(settings, disk_usage))
    await _guarded(report, "http", "HTTP 端口", lambda: _port(settings, platform, timeout))
    return report


def _unexpected(check: str, name: str, exc: Exception) -> Finding:
    """A check that failed in a way it did not foresee."""
    log.debug("doctor check %s failed", check, exc_info=exc)
    return Finding(check, name, Level.error,
                   f"检查时出现意外错误（{type(exc).__name__}）；加 --debug 可查看详细信息")


async def _guarded(report: Report, check: str, name: str,
                   run: Callable[[], list[Finding] | Awaitable[list[Finding]]]) -> None:
    """Run one check and add its findings; an unexpected failure is its own 错误 line."""
    try:
        result = run()
        findings = await result if isinstance(result, Awaitable) else result
    except Exception as exc:
        findings = [_unexpected(check, name, exc)]
    report.findings.extend(findings)


def _problems(exc: DutybotError) -> str:
    """A config error's problems on one line."""
    return "；".join(exc.problems) if isinstance(exc, ConfigError) else exc.message.replace("\n", " ")


def _config(config: Path | None, env: Mapping[str, str]) -> tuple[Settings | None, Finding]:
    """The settings (None: unusable) and what the config check found."""
    where = str(config) if config is not None else "未找到配置文件"
    try:
        settings = load_settings(config, env)
    except ConfigError as exc:
        return None, Finding("config", "配置", Level.error, f"{where}：{_problems(exc)}")
    what = f"规则配置档 {settings.rules.profile}，聊天平台 {settings.bot.adapter}"
    try:   # the files the config names, read as `dutybot run` reads them at start
        WorkdayCalendar.from_dir(settings.resolve(settings.calendar.holidays_dir))
        settings.check_sheet()
        Lexicon.load(settings.watch_policy().lexicons)
    except DutybotError as exc:
        return settings, Finding("config", "配置", Level.error, f"{where}：{_problems(exc)}")
    if config is None:
        return settings, Finding("config", "配置", Level.warning,
                                 f"未找到配置文件（--config、$DUTYBOT_CONFIG 或当前目录的 dutybot.toml），"
                                 f"按默认设置检查（{what}）")
    return settings, Finding("config", "配置", Level.ok, f"{config.resolve()}（{what}）")


def _database(settings: Settings) -> tuple[Engine | None, Finding]:
    """An engine on the configured database, if it can be reached."""
    url = settings.database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None, Finding("database", "数据库", Level.error,
                             f"数据库文件 {path} 不存在：请运行 dutybot db upgrade（或 dutybot init）")
    if make_url(url).get_backend_name() == "postgresql" and "connect_timeout" not in make_url(url).query:
        url = make_url(url).update_query_dict({"connect_timeout": "10"}).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
    except DutybotError as exc:   # MissingExtra: the PostgreSQL driver is not installed
        return None, Finding("database", "数据库", Level.error, exc.message)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:160]
        return None, Finding("database", "数据库", Level.error, f"无法连接 {shown}：{reason}")
    return engine, Finding("database", "数据库", Level.ok, f"{shown} 可以连接")


def _schema(engine: Engine) -> Finding:
    try:
        check_schema(engine)
    except SchemaOutOfDate as exc:
        return Finding("schema", "数据库结构", Level.error, exc.message)
    return Finding("schema", "数据库结构", Level.ok, f"最新（{head_revision()}）")


def _calendar(settings: Settings, today: date) -> Finding:
    folder = settings.resolve(settings.calendar.holidays_dir)
    calendar = WorkdayCalendar.from_dir(folder)
    this, following = today.year, today.year + 1

    def source(year: int) -> str:
        return "内置日历" if calendar.coverage(year) == "package" else f"本地文件 {folder / f'{year}.toml'}"

    if calendar.coverage(this) is None:
        return Finding("calendar", "节假日数据", Level.error,
                       f"缺少今年（{this} 年）的节假日数据：今年的期限只能按“周末 + 固定日期法定节假日”暂定计算。"
                       f"请升级 chinese-calendar（pip install --upgrade chinese-calendar）或填写 {folder / f'{this}.toml'}")
    if calendar.coverage(following) is None:
        if today.month >= 11:
            return Finding("calendar", "节假日数据", Level.warning,
                           f"缺少明年（{following} 年）的节假日数据：涉及明年的期限暂按“周末 + 固定日期法定节假日”计算，"
                           f"标注“暂定”。国务院公布放假安排后，请升级 chinese-calendar 或填写 {folder / f'{following}.toml'}")
        return Finding("calendar", "节假日数据", Level.ok,
                       f"{this} 年的数据齐全（{source(this)}）；明年的放假安排通常在 11 月前后公布")
    return Finding("calendar", "节假日数据", Level.ok,
                   f"{this} 年（{source(this)}）和 {following} 年（{source(following)}）的数据齐全")


def _size(count: float) -> str:
    return f"{count / GIB:.1f} GiB" if count >= GIB else f"{count / MIB:.0f} MiB"


def _disks(settings: Settings, disk_usage: DiskProbe) -> list[Finding]:
    """Free space under the database's folder (SQLite), the evidence and the backups."""
    places: dict[Path, list[str]] = {}
    database = sqlite_file(settings.database_url())
    if database is not None:
        places.setdefault(database.resolve().parent, []).append("数据库")
    places.setdefault(settings.resolve(settings.incidents.evidence_dir).resolve(), []).append("证据")
    places.setdefault(settings.resolve(settings.backup.dir).resolve(), []).append("备份")
    found = []
    for folder, labels in places.items():
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        usage = disk_usage(existing)
        share = usage.free / usage.total if usage.total else 0.0
        detail = f"{folder} 剩余 {_size(usage.free)}（{share:.0%}）"
        if existing != folder:
            detail += "；目录尚不存在，按其所在磁盘计算"
        level = (Level.error if usage.free < DISK_ERROR_FREE
                 else Level.warning if usage.free < DISK_WARNING_FREE or share < DISK_WARNING_SHARE
                 else Level.ok)
        if level is not Level.ok:
            detail += "：请清理旧备份或扩容（证据文件是处置记录的一部分，不要删除）"
        found.append(Finding("disk", f"磁盘（{'、'.join(labels)}）", level, detail))
    return found


def _calls_back(settings: Settings, platform: str) -> bool:
    """Whether the platform (or an alert source) needs the HTTP service to receive."""
    return bool(platform == "wecom" or (platform == "telegram" and settings.telegram.mode == "webhook")
                or (platform == "dingtalk" and (settings.dingtalk.mode == "callback"
                                                or settings.dingtalk.callback_token is not None))
                or settings.alerts.sources)


async def _port(settings: Settings, platform: str, timeout: float) -> list[Finding]:
    return [await _port_finding(settings, platform, timeout)]


async def _port_finding(settings: Settings, platform: str, timeout: float) -> Finding:
    host, port = settings.http.host, settings.http.port
    if not settings.http.enabled and not _calls_back(settings, platform):
        return Finding("http", "HTTP 端口", Level.ok, "HTTP 服务已关闭（[http] enabled = false）")
    if port == 0:
        return Finding("http", "HTTP 端口", Level.ok, "端口为 0：启动时自动选择空闲端口")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return Finding("http", "HTTP 端口", Level.error,
                           f"无法在 {host}:{port} 上监听（{exc.strerror or exc}）：请检查 [http] host 和 port")
    else:
        return Finding("http", "HTTP 端口", Level.ok, f"{host}:{port} 空闲，dutybot run 可以监听")
    running = await _dutybot_answers(host, port, timeout)
    if running is not None:
        return Finding("http", "HTTP 端口", Level.ok, f"{host}:{port} 由正在运行的 dutybot 使用（{running}）")
    return Finding("http", "HTTP 端口", Level.error,
                   f"{host}:{port} 已被其他程序占用：dutybot run 将无法启动。请在 [http] 中换一个 port")


async def _dutybot_answers(host: str, port: int, timeout: float) -> str | None:
    """The platform a dutybot serving ``/healthz`` on ``host:port`` reports, else None."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    netloc = f"[{target}]:{port}" if ":" in target else f"{target}:{port}"
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(f"http://{netloc}/healthz")
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if response.status_code == 200 and isinstance(body, dict) and body.get("status") == "ok":
        return f"平台 {body.get('platform', '未知')}"
    return None
