"""Shared by the benchmarks: a throw-away PostgreSQL schema.

The benchmarks are run as scripts (``python bench/bench_tick.py``), so they import this
module by its bare name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.db import make_engine


@contextmanager
def pg_schema(url: str) -> Iterator[Engine]:
    """An engine on a fresh schema that is dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, search_path=schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
