"""Shared fixtures: no network, a migrated database per test (SQLite, and PostgreSQL when
``DUTYBOT_TEST_DATABASE_URL`` is set), a fake clock.

The suite runs under pytest-xdist (``-n auto`` in pyproject.toml): every worker is its own
process, so nothing here may be shared between tests except through the test's own
``tmp_path`` (per worker and test) or a PostgreSQL schema made for that one test."""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core import workdays
from core.clock import SHANGHAI, FakeClock
from core.db import make_engine, upgrade

PG_URL = os.environ.get("DUTYBOT_TEST_DATABASE_URL")
#: The pytest-xdist worker running this process (``gw0``, ``gw1``, …), ``main`` without
#: xdist; it names the PostgreSQL schemas a worker makes, so leftovers can be traced.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

#: The last year whose holiday arrangement the suite takes from ``chinese-calendar``.
#: The tests were written when the State Council had published 2026 and not 2027; what
#: they say about 2027 (provisional, fixed-date holidays only) must not change when a
#: newer release of the package adds 2027. tests/core/test_new_year_data.py shows what
#: happens when it does.
PACKAGE_KNOWN_THROUGH = 2026
_CAPPED_PACKAGE = workdays.HolidayPackage(through=PACKAGE_KNOWN_THROUGH)


def _is_local(address: object) -> bool:
    if isinstance(address, str | bytes):
        return True  # a unix socket path
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach beyond this machine."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    def guarded_ex(self: socket.socket, address: object) -> int:
        if not _is_local(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_ex)


@pytest.fixture(autouse=True)
def _package_years_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every calendar consults the package only up to :data:`PACKAGE_KNOWN_THROUGH`."""
    monkeypatch.setattr(workdays, "PACKAGE", _CAPPED_PACKAGE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "site_watch: the App schedules site watch (see _site_watch_off)")
    config.addinivalue_line("markers", "configured_http_port: the HTTP service listens where the "
                                       "settings say (see _http_on_a_free_port)")


@pytest.fixture(autouse=True)
def _http_on_a_free_port(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The HTTP service that ``dutybot run`` serves in every mode listens, in a test, on a
    free loopback port instead of the configured 8080 (tests run in parallel, beside a
    developer's own bot); ``@pytest.mark.configured_http_port`` keeps the configured one."""
    if request.node.get_closest_marker("configured_http_port") is not None:
        return
    from bot import http

    bind = http._listening_socket
    monkeypatch.setattr(http, "_listening_socket", lambda host, port: bind("127.0.0.1", 0))


@pytest.fixture(autouse=True)
def _site_watch_off(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Site watch (issue 17) fetches every registered website on its schedules; an App a
    test builds schedules it only when the test asks (``@pytest.mark.site_watch``), so a
    test that registers ``https://www.example.gov.cn`` and moves the clock fetches nothing."""
    if request.node.get_closest_marker("site_watch") is None:
        monkeypatch.setattr("bot.app.register_watch", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's dutybot.toml or DUTYBOT_* variables."""
    for name in list(os.environ):
        if name.startswith("DUTYBOT_") and name != "DUTYBOT_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _backends() -> list[object]:
    params: list[object] = ["sqlite"]
    params.append(pytest.param("postgresql", marks=pytest.mark.skipif(
        not PG_URL, reason="DUTYBOT_TEST_DATABASE_URL not set")))
    return params


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """This worker's connection to the PostgreSQL test database, to make and drop schemas."""
    assert PG_URL
    admin = make_engine(PG_URL)
    yield admin
    admin.dispose()


@pytest.fixture(params=_backends())
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated database, thrown away after the test: a SQLite file in the test's
    ``tmp_path``, or a PostgreSQL schema of its own (unique across workers and runs)."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    assert PG_URL
    admin: Engine = request.getfixturevalue("pg_admin")
    schema = f"t_{WORKER}_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(PG_URL, search_path=schema)
    try:
        upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at Monday 2026-11-23 09:00 Beijing time."""
    return FakeClock(datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI))
