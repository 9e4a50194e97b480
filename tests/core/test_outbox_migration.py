"""Migration 0010 (messages wait for the person): up and down on SQLite, rows kept."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from core.db import alembic_config, check_schema, current_revision, make_engine, upgrade


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("outbox_message")}


ROW = ("INSERT INTO outbox_message (dedupe_key, event_key, person_id, text, buttons, status, attempts, "
       "created_at, next_attempt_at) VALUES ('{key}', 'r', NULL, '提醒', '[]', '{status}', 0, "
       "'2026-11-23 01:00:00.000000', '{due}')")


def test_0010_adds_the_expiry_and_a_downgrade_puts_waiting_rows_back_in_the_queue(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(eng, "0009")
    assert "expires_at" not in columns(eng)
    with eng.begin() as conn:
        conn.execute(text(ROW.format(key="old", status="pending", due="2026-11-23 01:00:00.000000")))
    upgrade(eng, "0010")
    assert "expires_at" in columns(eng)
    with eng.begin() as conn:
        assert conn.execute(text("SELECT status, expires_at FROM outbox_message")).one() == ("pending", None)
        conn.execute(text(ROW.format(key="new", status="waiting", due="2026-11-26 01:00:00.000000")))
        conn.execute(text("UPDATE outbox_message SET expires_at = next_attempt_at WHERE dedupe_key = 'new'"))

    downgrade(eng, "0009")
    assert current_revision(eng) == "0009" and "expires_at" not in columns(eng)
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT dedupe_key, status, next_attempt_at FROM outbox_message "
                                 "ORDER BY id")).all()
    # The old sender knows no waiting rows: back in the queue, due when they were queued.
    assert [tuple(r) for r in rows] == [("old", "pending", "2026-11-23 01:00:00.000000"),
                                        ("new", "pending", "2026-11-23 01:00:00.000000")]
    upgrade(eng)
    check_schema(eng)
    eng.dispose()
