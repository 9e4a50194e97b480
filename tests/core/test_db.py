"""Storage: migrations match the models, the schema check, UTC round trips, audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import bot.models_index  # noqa: F401
from core import audit
from core import db as core_db
from core.clock import SHANGHAI
from core.db import check_schema, head_revision, make_engine, upgrade
from core.errors import SchemaOutOfDate


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                SQLModel.metadata)
    assert diff == []


def test_schema_check_refuses_an_empty_or_old_database(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SchemaOutOfDate, match="dutybot db upgrade"):
        check_schema(eng)
    upgrade(eng, "0001")
    if head_revision() != "0001":
        with pytest.raises(SchemaOutOfDate, match="已过期"):
            check_schema(eng)
    upgrade(eng)
    check_schema(eng)


def test_people_already_on_duty_count_as_trained_after_the_upgrade(tmp_path: Path) -> None:
    """先培训后上岗 is about newcomers: an upgrade does not take existing officers off duty."""
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(eng, "0008")
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO person (name, phone, unit, roles, organization, active, created_at) "
                          "VALUES ('王芳', '', '区政府办', 'officer', '', 1, '2026-03-01 17:00:00.000000')"))
    upgrade(eng)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT trained_on FROM person WHERE name = '王芳'")).scalar() == "2026-03-02"


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with eng.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_instants_round_trip_as_aware_utc_and_audit_is_ordered(engine: Engine) -> None:
    local_time = datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
    with Session(engine) as session:
        audit.record(session=session, at=local_time, entity_type="incident", entity_id="INC-1",
                     action="created", actor="王芳", to_state="reported", url="https://x")
        audit.record(session=session, at=local_time, entity_type="incident", entity_id="INC-1",
                     action="acknowledged", from_state="reported", to_state="acknowledged")
        session.commit()
    with Session(engine) as session:
        events = audit.history(session=session, entity_type="incident", entity_id="INC-1")
    assert [e.action for e in events] == ["created", "acknowledged"]
    assert events[0].at == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert events[0].details() == {"url": "https://x"}
    assert events[0].actor == "王芳"


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        audit.record(session=session, at=datetime(2026, 1, 1), entity_type="x",  # noqa: DTZ001
                     entity_id="1", action="y")
        with pytest.raises(Exception, match="naive"):
            session.commit()


def test_a_connection_idle_a_while_is_pinged_and_replaced_when_the_server_ended_it(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pooled PostgreSQL connection used a moment ago is used without a ping (a round
    trip saved per transaction); one idle for a second or more is pinged first, and when
    the server has ended it (a restart, a failover) the next one is taken: the statement
    never sees the dead connection."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the pool's ping is PostgreSQL's")
    now = [1_000.0]
    monkeypatch.setattr(core_db, "_monotonic", lambda: now[0])
    pings: list[bool] = []
    real_ping = engine.dialect.do_ping

    def counted(dbapi_conn: object) -> bool:
        pings.append(True)
        return real_ping(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    engine.dispose()   # a pool of fresh connections: only this test's clock
    with engine.connect() as conn:
        first = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    now[0] += 0.5
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first
    assert pings == []                              # used half a second ago: no ping
    admin = create_engine(engine.url)
    with admin.connect() as other:                  # the server ends the idle connection
        other.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
    admin.dispose()
    now[0] += 5
    with engine.connect() as conn:
        second = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert second != first and pings
