"""Migration 0020 (issue 21): incidents already stored get the key of their address, so a
second report of an address stored before the upgrade is still found."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import SHANGHAI
from core.db import alembic_config, check_schema, current_revision, make_engine, upgrade
from incidents.address import address_key
from incidents.duplicates import find_duplicate
from incidents.models import Incident

ROW = ("INSERT INTO incident (number, type, grade, source, site, url, description, unit, status, "
       "playbook, ladder, escalation_level, reported_at) VALUES (:number, 'site_down', 'general', "
       "'self_found', :site, :url, '首页打不开', '区教育局', 'reported', 'default', '[]', 0, "
       "'2026-11-23 01:00:00.000000')")


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_0020_keys_the_stored_addresses_and_finds_them(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(eng, "0019")
    stored = [("INC-20261123-001", "www.jw.gov.cn", "HTTPS://WWW.JW.gov.cn:443/a/?b=1#top"),
              ("INC-20261123-002", "www.jw.gov.cn/b", None),
              ("INC-20261123-003", "区教育局门户网站", None)]
    with eng.begin() as conn:
        for number, site, url in stored:
            conn.execute(text(ROW), {"number": number, "site": site, "url": url})
    upgrade(eng)
    check_schema(eng)
    with eng.connect() as conn:
        keys = dict(conn.execute(text("SELECT number, address_key FROM incident")).tuples().all())
    assert keys == {number: address_key(url or site) for number, site, url in stored}
    assert keys["INC-20261123-003"] is None
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    with Session(eng) as session:
        found = find_duplicate(session=session, target="http://www.jw.gov.cn/a?b=1", now=now,
                               window=timedelta(hours=24))
        assert found is not None and found.number == "INC-20261123-001"
        found = find_duplicate(session=session, target="https://www.jw.gov.cn/b/", now=now,
                               window=timedelta(hours=24))
        assert found is not None and found.number == "INC-20261123-002"
        assert find_duplicate(session=session, target="https://www.jw.gov.cn/c", now=now,
                              window=timedelta(hours=24)) is None

    downgrade(eng, "0019")
    assert current_revision(eng) == "0019"
    assert "address_key" not in {c["name"] for c in inspect(eng).get_columns("incident")}
    eng.dispose()


def test_the_key_follows_an_address_given_after_the_incident_was_opened(engine: Engine) -> None:
    """/read 异常 names a registered site, then gives the incident the site's URL."""
    with Session(engine) as session:
        incident = Incident(number="INC-20261123-001", type="site_down", site="区教育局门户网站",
                            description="首页打不开", unit="区教育局", playbook="default",
                            reported_at=datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI))
        session.add(incident)
        session.flush()
        assert incident.address_key is None
        incident.url = "https://www.jw.gov.cn/"
        session.add(incident)
        session.commit()
        stored = session.exec(select(Incident.address_key)).one()
    assert stored == address_key("www.jw.gov.cn") is not None
