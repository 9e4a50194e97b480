"""Migration 0016 (phone paging): the ``page`` table goes and comes back, on SQLite and, when
``DUTYBOT_TEST_DATABASE_URL`` is set, PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from core.db import alembic_config, check_schema, current_revision, upgrade


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_0016_adds_the_page_table_and_a_downgrade_removes_it(engine: Engine) -> None:
    indexes = {i["name"] for i in inspect(engine).get_indexes("page")}
    assert {"ix_page_due", "ix_page_phone", "ix_page_incident_id"} <= indexes
    unique = inspect(engine).get_unique_constraints("page")
    assert any(c["column_names"] == ["dedupe_key"] for c in unique)
    downgrade(engine, "0015")
    assert current_revision(engine) == "0015" and "page" not in inspect(engine).get_table_names()
    upgrade(engine, "0016")
    assert "page" in inspect(engine).get_table_names()
    upgrade(engine)
    check_schema(engine)
