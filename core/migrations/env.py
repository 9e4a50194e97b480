"""Alembic environment: runs on the engine/connection dutybot hands in.

The one place under ``core`` that sees every domain's tables: ``bot.models_index``
registers them on ``SQLModel.metadata``, so autogenerate compares the whole schema. The
kernel modules themselves import no domain.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import bot.models_index  # noqa: F401  (registers every table on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = config.attributes["engine"]
    with engine.begin() as conn:
        _run(conn)
