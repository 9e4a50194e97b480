"""Backups and restores (issue 19 item 4): ``dutybot backup`` while the bot writes, the
checked ``dutybot restore`` into an empty target, rotation, and the daily job."""

from __future__ import annotations

import io
import shutil
import tarfile
import threading
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot import backup
from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.backup import BackupError, make_backup
from bot.backup_job import BACKUP_JOB, rotate, run_backup
from bot.cli import main
from bot.config import Settings, load_settings
from bot.held_media import HeldMedia
from bot.restore import RestoreTarget, restore_backup, verify_checksum
from bot.sandbox import sandbox
from core import audit
from core.clock import SHANGHAI, FakeClock
from core.db import alembic_config, check_schema, head_revision, make_engine, session_scope, upgrade
from core.errors import ConfigError
from core.messages import Attachment
from core.outbox import OutboxMessage
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from incidents.evidence import store_attachment, store_text
from incidents.models import Incident, IncidentStatus, IncidentStep, StepStatus
from incidents.stats import compute_incident_stats, render_zh
from people.models import Person, Role
from replies.models import ReplyCategory, ReplyChannel
from replies.service import create_item
from tests.conftest import PG_URL
from tests.factories import make_person, roster_days

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
PHOTO = bytes(range(256)) * 40 + b"\x00\xff tail"
HELD = b"\xff\xd8\xff\xe0 held picture \x00\x01"


def write_config(folder: Path, extra: str = "", url: str = "sqlite:///dutybot.db") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dutybot.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[incidents]\nevidence_dir = "evidence"\n'
                    f'[backup]\ndir = "backups"\n{extra}', encoding="utf-8")
    return path


def seed(engine: Engine, settings: Settings) -> None:
    """People, a week of roster, two incidents with evidence, a held picture, reply items."""
    evidence_dir = settings.resolve(settings.incidents.evidence_dir)
    calendar, profile = WorkdayCalendar.from_dir(None), load_profile("default")
    with session_scope(engine) as session:
        wang = make_person(session, "王芳", now=NOW)
        make_person(session, "李强", roles=(Role.leader,), now=NOW)
        make_person(session, "张伟", roles=(Role.admin,), now=NOW)
        roster_days(session, start="2026-11-23", end="2026-11-29", officers=["王芳"], leaders=["李强"], now=NOW)
        for n, (type_, status) in enumerate((("sensitive", IncidentStatus.closed), ("site_down", IncidentStatus.handling)), 1):
            incident = Incident(number=f"INC-20261120-00{n}", type=type_, unit="区政府办", site="区政府门户网站",
                                playbook=f"{type_}@1", reported_at=NOW - timedelta(days=3, hours=n), status=status,
                                description=f"事件{n}", reporter_id=wang.id, acknowledged_at=NOW - timedelta(days=3),
                                closed_at=NOW - timedelta(days=1) if status == IncidentStatus.closed else None)
            session.add(incident)
            session.flush()
            assert incident.id is not None
            session.add(IncidentStep(incident_id=incident.id, seq=1, key="s1", title="核实", rule_id="SENS-3",
                                     citation="梁平办法第二十四条", owner_role="officer",
                                     due_at=NOW - timedelta(days=2), status=StepStatus.pending))
            store_attachment(session=session, incident=incident, evidence_dir=evidence_dir, person=wang,
                             actor="王芳", now=NOW, attachment=Attachment(f"截图{n}.png", PHOTO + bytes([n]),
                                                                          "image/png", "photo"))
            store_text(session=session, incident=incident, text=f"首页第{n}条", person=wang, actor="王芳", now=NOW)
        for n in range(3):
            create_item(session=session, calendar=calendar, profile=profile, category=ReplyCategory.consultation,
                        channel=ReplyChannel.website, summary=f"网民留言{n}", received_at=NOW, unit="区政府办",
                        assignee=wang, created_by=wang, now=NOW, actor="王芳")
    HeldMedia(evidence_dir / "held", FakeClock(NOW)).hold(
        "memory:u-王芳", (Attachment("待存.jpg", HELD, "image/jpeg", "photo"),))


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[Path, Settings, Engine]]:
    """A deployment in ``tmp_path/src``: its config, settings and migrated, seeded database."""
    config = write_config(tmp_path / "src")
    settings = load_settings(config, env={})
    engine = make_engine(settings.database_url())
    upgrade(engine)
    seed(engine, settings)
    yield config, settings, engine
    engine.dispose()


def table_rows(engine: Engine) -> dict[str, set[tuple[object, ...]]]:
    """Every row of every table (but Alembic's)."""
    with engine.connect() as conn:
        names = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        return {name: {tuple(row) for row in conn.execute(text(f'SELECT * FROM "{name}"'))} for name in names}


def ids(engine: Engine, table: str) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text(f"SELECT id FROM {table} ORDER BY id"))]


def stats_text(engine: Engine) -> str:
    with Session(engine) as session:
        return render_zh(compute_incident_stats(session=session, start=date(2026, 11, 1), end=date(2026, 11, 30), now=NOW))


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def only_archive(folder: Path) -> Path:
    found = sorted(folder.glob("dutybot-backup-*.tar.gz"))
    assert len(found) == 1, found
    return found[0]


class Writer(threading.Thread):
    """Inserts reply items and audit events through the services until ``stop`` is set;
    ``written`` counts the committed ones (``changed`` is notified after each)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="test-writer")
        self.engine, self.stop, self.changed, self.written = engine, threading.Event(), threading.Condition(), 0
        self.error: BaseException | None = None
        self.calendar, self.profile = WorkdayCalendar.from_dir(None), load_profile("default")

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                # Two minutes apart: the day's MSG- numbers stay within three digits.
                now = NOW + timedelta(minutes=2 * (self.written + 1))
                with session_scope(self.engine) as session:
                    create_item(session=session, calendar=self.calendar, profile=self.profile,
                                category=ReplyCategory.error_report, channel=ReplyChannel.error_portal,
                                summary=f"找错留言{self.written}", received_at=now, unit="区政府办", assignee=None,
                                created_by=None, now=now, actor="test")
                    audit.record(session=session, at=now, entity_type="test", entity_id=self.written, action="written")
                with self.changed:
                    self.written += 1
                    self.changed.notify_all()
        except BaseException as exc:
            self.error = exc
            with self.changed:
                self.changed.notify_all()

    def one_more(self) -> None:
        """Wait until another write has been committed."""
        with self.changed:
            target = self.written + 1
            assert self.changed.wait_for(lambda: self.written >= target or self.error is not None, timeout=60)
        assert self.error is None, self.error


def test_a_backup_taken_while_writing_restores_one_consistent_moment(
        source: tuple[Path, Settings, Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config, settings, engine = source
    monkeypatch.setattr(backup, "SQLITE_PAGES_PER_STEP", 8)   # many steps, progress between them
    writer = Writer(engine)
    writer.start()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.strip().startswith("数据库已复制 ") and line.endswith("%"):
            writer.one_more()   # a write commits in the middle of the copy

    try:
        writer.one_more()
        result, _ = run_backup(settings, now=NOW, progress=progress)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None
    assert sum(line.endswith("%") and "数据库已复制" in line for line in lines) >= 3, lines
    assert result.path == settings.resolve("backups") / "dutybot-backup-20261123-090000.tar.gz"
    assert result.evidence_files == 4 and result.database_kind == "sqlite" and result.revision == head_revision()

    target = tmp_path / "restored"
    assert main(["--config", str(config), "restore", str(result.path), "--to", str(target)]) == 0
    out = capsys.readouterr().out
    assert "恢复完成" in out and f'url = "sqlite:///{target / "dutybot.db"}"' in out
    restored = make_engine(f"sqlite:///{target / 'dutybot.db'}")
    try:
        check_schema(restored)
        # Every row the copy has is in the source as it is; the writes form a prefix, and
        # those committed during the copy are not in it.
        copy, live = table_rows(restored), table_rows(engine)
        assert copy.keys() == live.keys()
        assert all(copy[name] <= live[name] for name in copy), [n for n in copy if not copy[n] <= live[n]]
        for table in ("reply_item", "audit_event"):
            got, have = ids(restored, table), ids(engine, table)
            assert got == have[:len(got)] and len(have) > len(got)
        assert len(ids(restored, "reply_item")) >= 3 + 1   # the seeded ones and the first write
        # The same statistics, roster and (seeded) reply items.
        assert stats_text(restored) == stats_text(engine)
        for table in ("shift", "shift_assignment", "person", "incident", "evidence"):
            assert copy[table] == live[table] and copy[table], table
    finally:
        restored.dispose()
    assert files_under(target / "evidence") == files_under(settings.resolve("evidence"))


def test_evidence_and_held_files_come_back_byte_for_byte(source: tuple[Path, Settings, Engine],
                                                        tmp_path: Path) -> None:
    _config, settings, _engine = source
    result = make_backup(database_url=settings.database_url(), evidence_dir=settings.resolve("evidence"),
                         folder=tmp_path / "out", now=NOW)
    target = RestoreTarget(f"sqlite:///{tmp_path / 'new' / 'bot.db'}", tmp_path / "new" / "evidence", tmp_path / "new")
    done = restore_backup(archive=result.path, target=target)
    before, after = files_under(settings.resolve("evidence")), files_under(tmp_path / "new" / "evidence")
    assert after == before
    assert PHOTO + b"\x01" in after.values() and HELD in after.values()
    assert any(name.startswith("held/") for name in after)
    assert done.evidence_files == 4 and done.evidence_problems == [] and not done.upgraded


def test_restore_warns_of_evidence_that_was_already_missing(source: tuple[Path, Settings, Engine],
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, settings, _engine = source
    next(settings.resolve("evidence").glob("INC-20261120-001/*.png")).unlink()
    assert main(["--config", str(config), "backup"]) == 0
    archive = only_archive(settings.resolve("backups"))
    assert main(["--config", str(config), "restore", str(archive), "--to", str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert "1 份证据文件缺失" in err and "INC-20261120-001" in err and "文件缺失" in err


def test_a_flipped_byte_is_refused(source: tuple[Path, Settings, Engine], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config, settings, _engine = source
    assert main(["--config", str(config), "backup"]) == 0
    archive = only_archive(settings.resolve("backups"))
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x10
    archive.write_bytes(data)
    capsys.readouterr()
    target = tmp_path / "new"
    assert main(["--config", str(config), "restore", str(archive), "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert "校验失败" in err and "请换用另一份备份" in err
    assert not target.exists()

    # The checksum rewritten to match: the archive itself is found damaged.
    backup.checksum_path(archive).write_text(f"{backup.sha256_of(archive)}  {archive.name}\n", encoding="ascii")
    assert main(["--config", str(config), "restore", str(archive), "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert "不能用来恢复" in err or "已损坏" in err, err
    assert not target.exists()

    backup.checksum_path(archive).unlink()
    assert main(["--config", str(config), "restore", str(archive), "--to", str(target)]) == 1
    assert "找不到校验文件" in capsys.readouterr().err


def test_a_file_that_differs_from_the_manifest_is_refused(source: tuple[Path, Settings, Engine],
                                                          tmp_path: Path) -> None:
    _config, settings, _engine = source
    result = run_backup(settings, now=NOW)[0]
    # Rebuilt with one evidence file changed and a matching checksum: only the manifest knows.
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(result.path, "r:gz") as old, tarfile.open(forged, "w:gz") as new:
        for member in old:
            body = old.extractfile(member)
            assert body is not None
            data = body.read()
            if member.name.endswith(".png"):
                data = data[:-1] + b"X"
            new.addfile(member, io.BytesIO(data))
    backup.checksum_path(forged).write_text(f"{backup.sha256_of(forged)}  forged.tar.gz\n", encoding="ascii")
    verify_checksum(forged)
    with pytest.raises(BackupError, match=r"内容与清单不符.*png：SHA-256 或大小与清单不符"):
        restore_backup(archive=forged, target=RestoreTarget(f"sqlite:///{tmp_path / 'n' / 'd.db'}",
                                                            tmp_path / "n" / "evidence", tmp_path / "n"))
    assert not (tmp_path / "n").exists()


def test_restore_into_a_non_empty_target_is_refused(source: tuple[Path, Settings, Engine], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config, settings, _engine = source
    assert main(["--config", str(config), "backup"]) == 0
    archive = only_archive(settings.resolve("backups"))
    capsys.readouterr()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "note.txt").write_text("keep me", encoding="utf-8")
    assert main(["--config", str(config), "restore", str(archive), "--to", str(busy)]) == 1
    err = capsys.readouterr().err
    assert f"目录 {busy} 不是空的" in err and "用 --to 指定一个空目录" in err
    assert [p.name for p in busy.iterdir()] == ["note.txt"]
    # The configured database and evidence folder are in use: refused too, both named.
    assert main(["--config", str(config), "restore", str(archive)]) == 1
    err = capsys.readouterr().err
    assert "恢复目标不是空的" in err and "数据库文件" in err and "证据目录" in err and "先停止服务" in err


def test_an_older_schema_is_upgraded_and_a_newer_one_refused(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    older = script.get_revision(head_revision()).down_revision
    assert isinstance(older, str)
    settings = load_settings(write_config(tmp_path / "old"), env={})
    engine = make_engine(settings.database_url())
    upgrade(engine, older)
    old = run_backup(settings, now=NOW)[0]
    lines: list[str] = []
    done = restore_backup(archive=old.path, target=RestoreTarget(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a"),
                          progress=lines.append)
    assert done.upgraded and done.revision == head_revision() and old.revision == older
    assert f"数据库结构已升级：{older} → {head_revision()}" in lines
    check_schema(make_engine(f"sqlite:///{tmp_path / 'a.db'}"))

    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f0ffffffffff'"))
    engine.dispose()
    newer = run_backup(settings, now=NOW + timedelta(seconds=1))[0]
    with pytest.raises(BackupError, match=r"结构版本 f0ffffffffff 比本程序新.*请先把 dutybot 升级"):
        restore_backup(archive=newer.path, target=RestoreTarget(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b"))
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "b").exists()


def test_rotation_keeps_the_newest_by_count_and_age(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    names = [f"dutybot-backup-202611{day:02d}-033000.tar.gz" for day in range(10, 24)]
    names.append("dutybot-backup-20261123-033000-2.tar.gz")   # a second one that second
    for name in names:
        (folder / name).write_bytes(b"x")
        backup.checksum_path(folder / name).write_text("0" * 64, encoding="ascii")
    (folder / "notes.txt").write_text("not a backup", encoding="utf-8")
    removed = rotate(folder=folder, keep=3, keep_days=0, now=NOW)
    assert len(removed) == len(names) - 3
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted(["notes.txt", *[n + s for n in (names[-3], names[-2], names[-1]) for s in ("", ".sha256")]])
    # By age: older than 1 day goes, but the newest always stays.
    assert [p.name for p in rotate(folder=folder, keep=0, keep_days=1, now=NOW)] == [names[-3]]
    assert [p.name for p in rotate(folder=folder, keep=0, keep_days=1, now=NOW + timedelta(days=30))] == [names[-2]]
    assert sorted(p.name for p in folder.glob("*.tar.gz")) == [names[-1]]


def test_backup_command_rotates_only_its_own_folder(source: tuple[Path, Settings, Engine], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config, settings, _engine = source
    config.write_text(config.read_text(encoding="utf-8") + "keep = 2\n", encoding="utf-8")
    for _ in range(3):
        assert main(["--config", str(config), "backup"]) == 0
    out = capsys.readouterr().out
    assert "正在复制 SQLite 数据库" in out and "正在打包证据文件" in out and "备份完成" in out
    assert "已删除旧备份 1 份（保留最近 2 份的备份）" in out
    assert len(list(settings.resolve("backups").glob("*.tar.gz"))) == 2
    assert len(list(settings.resolve("backups").glob("*.sha256"))) == 2
    elsewhere = tmp_path / "usb"
    for _ in range(3):
        assert main(["--config", str(config), "backup", "--to", str(elsewhere)]) == 0
    assert len(list(elsewhere.glob("*.tar.gz"))) == 3   # a one-off copy is never rotated
    assert not list(elsewhere.glob("*.part")) and oct(elsewhere.stat().st_mode & 0o777) == "0o700"


def test_the_scheduled_backup_runs_when_the_clock_passes_its_time(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "bot", 'schedule = "03:30"\n'), env={})
    engine = make_engine(settings.database_url())
    upgrade(engine)
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=SHANGHAI))
    app = App(settings, clock=clock, adapter=MemoryAdapter(), engine=engine)
    assert app.backups is not None
    folder = settings.resolve("backups")
    app.scheduler.advance_to(datetime(2026, 11, 23, 3, 29, tzinfo=SHANGHAI))
    assert app.backups.wait(timeout=60) is None and not folder.exists()
    log = app.scheduler.advance_to(datetime(2026, 11, 23, 3, 31, tzinfo=SHANGHAI))
    assert any(line.endswith("cron bot.backup") for line in log), log
    result = app.backups.wait(timeout=60)
    assert result is not None and app.backups.last_error is None
    assert result.path == folder / "dutybot-backup-20261123-033000.tar.gz"
    verify_checksum(result.path)
    # Not again the same day; again the next.
    app.scheduler.advance_to(datetime(2026, 11, 24, 3, 0, tzinfo=SHANGHAI))
    app.backups.wait(timeout=60)
    assert len(list(folder.glob("*.tar.gz"))) == 1
    app.scheduler.advance_to(datetime(2026, 11, 24, 3, 30, tzinfo=SHANGHAI))
    app.backups.wait(timeout=60)
    assert sorted(p.name for p in folder.glob("*.tar.gz"))[-1] == "dutybot-backup-20261124-033000.tar.gz"
    engine.dispose()


def test_a_failed_scheduled_backup_is_told_to_the_admins_once(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "bot", 'schedule = "03:30"\n'), env={})
    engine = make_engine(settings.database_url())
    upgrade(engine)
    with session_scope(engine) as session:
        make_person(session, "张伟", roles=(Role.admin,), now=NOW)
        make_person(session, "王芳", now=NOW)
    settings.resolve("backups").write_text("not a folder", encoding="utf-8")   # the backup cannot be written
    clock = FakeClock(datetime(2026, 11, 23, 3, 0, tzinfo=SHANGHAI))
    app = App(settings, clock=clock, adapter=MemoryAdapter(), engine=engine)
    assert app.backups is not None
    app.scheduler.advance_to(datetime(2026, 11, 23, 3, 31, tzinfo=SHANGHAI))
    assert app.backups.wait(timeout=60) is None and app.backups.last_error is not None
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
        told = {session.get(Person, row.person_id).name for row in rows if row.person_id}  # type: ignore[union-attr]
    assert told == {"张伟"} and len(rows) == 1
    assert rows[0].text.startswith("【备份失败】11月23日 03:30 的定时备份没有完成。") and "dutybot backup" in rows[0].text
    engine.dispose()


def test_no_schedule_no_job(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "bot"), env={})
    engine = make_engine(settings.database_url())
    upgrade(engine)
    app = App(settings, clock=FakeClock(NOW), adapter=MemoryAdapter(), engine=engine)
    assert app.backups is None and BACKUP_JOB not in app.scheduler._crons
    engine.dispose()


def test_a_missing_pg_dump_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "pg", url="postgresql+psycopg://dutybot@127.0.0.1:5432/dutybot")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["--config", str(config), "backup"]) == 1
    err = capsys.readouterr().err
    assert "找不到 pg_dump" in err and "postgresql-client" in err
    assert not (tmp_path / "pg" / "backups").exists()


def test_a_bad_schedule_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"backup\.schedule：应为 HH:MM"):
        load_settings(write_config(tmp_path / "bad", 'schedule = "3.30"\n'), env={})


# ---- PostgreSQL ----------------------------------------------------------------------------

def _pg_reason() -> str | None:
    if not PG_URL:
        return "DUTYBOT_TEST_DATABASE_URL not set"
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not installed (Debian package postgresql-client)" if missing else None


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two new databases on the test server, a source and an empty target; dropped after."""
    assert PG_URL
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    names = [f"dutybot_bk_{uuid.uuid4().hex[:10]}_{part}" for part in ("src", "dst")]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"cannot create a database on the test server: {exc}")
    base = make_engine(PG_URL).url
    try:
        src, dst = (base.set(database=name).render_as_string(hide_password=False) for name in names)
        yield src, dst
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.skipif(_pg_reason() is not None, reason=_pg_reason() or "")
def test_postgresql_backup_with_pg_dump_restores_into_an_empty_database(
        pg_databases: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src_url, dst_url = pg_databases
    config = write_config(tmp_path / "pg", url=src_url)
    settings = load_settings(config, env={})
    engine = make_engine(src_url)
    upgrade(engine)
    seed(engine, settings)
    assert main(["--config", str(config), "backup"]) == 0
    out = capsys.readouterr().out
    assert "数据库是 PostgreSQL：正在用 pg_dump 导出" in out and "自定义格式" in out
    archive = only_archive(settings.resolve("backups"))
    # Not into the live database (it has tables), nor into SQLite.
    assert main(["--config", str(config), "restore", str(archive), "--to", str(tmp_path / "x")]) == 1
    assert "这是 PostgreSQL 数据库的备份" in capsys.readouterr().err
    assert main(["--config", str(config), "restore", str(archive), "--database", src_url,
                 "--to", str(tmp_path / "y")]) == 1
    assert "张数据表" in capsys.readouterr().err
    assert main(["--config", str(config), "restore", str(archive), "--database", dst_url,
                 "--to", str(tmp_path / "new")]) == 0
    assert "正在用 pg_restore 恢复到空数据库" in capsys.readouterr().out
    restored = make_engine(dst_url)
    try:
        check_schema(restored)
        assert table_rows(restored) == table_rows(engine)
        assert stats_text(restored) == stats_text(engine)
        with Session(restored) as session:
            assert {p.name for p in session.exec(select(Person))} == {"王芳", "李强", "张伟"}
    finally:
        restored.dispose()
        engine.dispose()
    assert files_under(tmp_path / "new" / "evidence") == files_under(settings.resolve("evidence"))


def test_archive_names_do_not_collide(tmp_path: Path) -> None:
    (tmp_path / "dutybot-backup-20261123-090000.tar.gz").write_bytes(b"")
    assert backup.archive_name(NOW, tmp_path) == "dutybot-backup-20261123-090000-2.tar.gz"
    assert backup.archive_name(NOW + timedelta(seconds=1), tmp_path) == "dutybot-backup-20261123-090001.tar.gz"


def test_a_drill_never_backs_up(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "bot", 'schedule = "03:30"\n'), env={})
    with sandbox(settings, empty=True) as box:
        assert box.settings.backup.schedule == "" and settings.backup.schedule == "03:30"
