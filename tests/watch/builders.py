"""Builders for the site-watch tests of the workflow (store, dispatch, run, CLI, chat)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from bot.config import load_settings
from core.outbox import OutboxMessage
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster import service as roster_service
from roster import sites as roster_sites
from roster.models import Site
from roster.sites import add_site, validate
from tests.factories import make_person, roster_days
from watch.dispatch import Workflow
from watch.models import FindingKind
from watch.types import Found, finding_key

UNIT = "区政府办"


def workflow(tmp_path: Path) -> Workflow:
    """The workflow of a default deployment, evidence under ``tmp_path``."""
    settings = load_settings(None, env={})
    calendar = WorkdayCalendar.from_dir(None)
    policy = settings.incidents.policy(on_duty=roster_service, sites=roster_sites)
    return Workflow(calendar=calendar, profile=settings.profile(), incident_policy=policy,
                    evidence_dir=tmp_path / "evidence")


def office(session: Session, now: datetime, *, roster: bool = True) -> dict[str, Person]:
    """王芳 officer, 李强 leader, 张伟 admin of 区政府办; 陈晨 officer of 区教育局, on duty too."""
    people = {
        "王芳": make_person(session, "王芳", roles=(Role.officer,), now=now, unit=UNIT),
        "李强": make_person(session, "李强", roles=(Role.leader,), now=now, unit=UNIT),
        "张伟": make_person(session, "张伟", roles=(Role.admin,), now=now, unit=UNIT),
        "陈晨": make_person(session, "陈晨", roles=(Role.officer,), now=now, unit="区教育局"),
    }
    if roster:
        roster_days(session, start="2026-11-20", end="2026-11-30", officers=["王芳"], leaders=["李强"], now=now)
    return people


def website(session: Session, now: datetime, url: str = "https://www.example.gov.cn/", *,
            name: str = "区政府门户网站", unit: str = UNIT, intranet: bool = False) -> Site:
    site, _ = add_site(session=session, new=validate(name, "网站", url, unit, intranet), now=now, actor="test")
    return site


def found(site: Site, kind: FindingKind, url: str, detail: str, *parts: str, **data: object) -> Found:
    assert site.id is not None
    return Found(kind=kind, site_id=site.id, url=url, detail=detail, key=finding_key(url, *parts), data=dict(data))


def messages(session: Session, name: str | None = None) -> list[OutboxMessage]:
    """Queued messages (to ``name`` when given), oldest first."""
    stmt = select(OutboxMessage).order_by(col(OutboxMessage.id))
    if name is not None:
        person = session.exec(select(Person).where(Person.name == name)).one()
        stmt = stmt.where(OutboxMessage.person_id == person.id)
    return list(session.exec(stmt))
