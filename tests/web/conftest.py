"""The web board's test rig: an App on the memory adapter, people of two units, the
district office, an admin, and the board served through httpx's ASGI transport (the
browser tests serve it on loopback instead). The clock is a FakeClock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from bot.http import HttpService
from bot.web.routes import web_routes
from core.clock import FakeClock, parse_local
from incidents.models import Incident
from people.models import Role
from replies.models import ReplyCategory, ReplyChannel
from replies.service import create_item
from roster.sites import add_site, validate
from tests.factories import make_person, roster_days
from watch.models import Finding, FindingKind

BASE = "http://dutybot.test"
LINK = re.compile(r"(https?://\S+/web/login/[A-Za-z0-9_-]+)")
# name: (roles, unit, phone)
PEOPLE = {
    "王芳": ((Role.officer,), "区教育局", "13800000001"),
    "李强": ((Role.leader,), "区教育局", "13800000002"),
    "陈晨": ((Role.officer,), "区卫健委", "13800000003"),
    "孙丽": ((Role.leader,), "区卫健委", "13800000004"),
    "周杰": ((Role.officer,), "区政府办公室", "13800000005"),   # the district office
    "张伟": ((Role.admin,), "区政府办", "13800000006"),
    "孙工": ((Role.support,), "区教育局", "13800000007"),
    "老许": ((Role.external,), "", "13800000008"),
}


UNITS = ("区教育局", "区卫健委")
MARK = {"区教育局": "教育局专用标记", "区卫健委": "卫健委专用标记"}


def web_env(**extra: str) -> dict[str, str]:
    return {"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "周杰", "DUTYBOT_WEB_ENABLED": "true",
            "DUTYBOT_WEB_BASE_URL": BASE, **extra}


def link_in(text: str) -> str:
    found = LINK.search(text)
    assert found, text
    return found.group(1)


@dataclass
class Rig:
    app: App
    adapter: MemoryAdapter
    chat: MemoryChat
    clock: FakeClock
    engine: Engine
    transport: httpx.ASGITransport
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    numbers: dict[str, str] = field(default_factory=dict)   # unit -> its incident

    def client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=self.transport, base_url=BASE, follow_redirects=False)
        self.clients.append(client)
        return client

    async def link(self, name: str) -> str:
        """The sign-in link /web sends ``name`` (a path on the board)."""
        return link_in(await self.chat.send("/web", as_=name)).removeprefix(BASE)

    async def sign_in(self, name: str) -> httpx.AsyncClient:
        client = self.client()
        path = await self.link(name)
        got = await client.post(path, data={"go": "1"}, headers={"Origin": BASE})
        assert got.status_code == 303, got.text
        return client

    async def post(self, client: httpx.AsyncClient, path: str, data: dict[str, str] | None = None,
                   *, csrf: str | None = None, origin: str | None = BASE) -> httpx.Response:
        """A form POST as the page's own form sends it (the CSRF token read from ``/web/duty``)."""
        if csrf is None:
            page = await client.get("/web/duty")
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
        headers = {"Origin": origin} if origin else {}
        return await client.post(path, data={"csrf": csrf, **(data or {})}, headers=headers)

    def incident(self, unit: str) -> Incident:
        with Session(self.engine) as session:
            return session.exec(select(Incident).where(Incident.number == self.numbers[unit])).one()


def build_app(engine: Engine, clock: FakeClock, env: dict[str, str] | None = None) -> tuple[App, MemoryAdapter]:
    with Session(engine) as session:
        for name, (roles, unit, phone) in PEOPLE.items():
            make_person(session, name, roles=roles, now=clock.now(), unit=unit, phone=phone)
        session.commit()
    adapter = MemoryAdapter()
    app = App(load_settings(None, env=web_env() if env is None else env), clock=clock, adapter=adapter, engine=engine)
    return app, adapter


async def open_incidents(chat: MemoryChat) -> dict[str, str]:
    """One open incident per unit, reported by its officer in chat."""
    numbers = {}
    for unit, who, url in (("区教育局", "王芳", "https://www.edu.example.gov.cn/gs/1"),
                           ("区卫健委", "陈晨", "https://www.wjw.example.gov.cn/gs/2")):
        reply = await chat.send(f"/incident new 敏感信息 {url} 公示名单含身份证号", as_=who)
        numbers[unit] = reply.split("已登记 ")[1].split("（")[0]
    return numbers


def populate(rig: Rig) -> None:
    """A roster (today: 王芳 and 李强 by day, 陈晨 and 孙丽 at night), a reply item and a
    watched site with a stale column per unit."""
    now = rig.clock.now()
    with Session(rig.engine) as session:
        roster_days(session, start="2026-11-23", end="2026-11-30", officers=["王芳", "陈晨"],
                    leaders=["李强", "孙丽"], now=now)
        for n, unit in enumerate(UNITS):
            create_item(session=session, calendar=rig.app.calendar, profile=rig.app.profile,
                        category=ReplyCategory.consultation, channel=ReplyChannel.website,
                        summary=f"{MARK[unit]}：咨询办事指南", received_at=now - timedelta(days=20), unit=unit,
                        assignee=None, created_by=None, now=now, actor="test")
            site, _ = add_site(session=session, new=validate(f"{unit}网站", "网站", f"https://www.u{n}.example.gov.cn",
                                                             unit), now=now, actor="test")
            session.add(Finding(site_id=site.id or 0, kind=FindingKind.stale_column.value, key="col-1",
                                url=site.url, detail=f"{MARK[unit]}栏目已 40 天未更新", first_seen=now, last_seen=now))
        session.commit()


@pytest.fixture
async def rig(engine: Engine) -> AsyncIterator[Rig]:
    clock = FakeClock(parse_local("2026-11-23T10:00"))
    app, adapter = build_app(engine, clock)
    chat = MemoryChat(app, adapter)
    service = HttpService(host="127.0.0.1", port=0, routes=web_routes(app), health=app.health)
    made = Rig(app, adapter, chat, clock, engine, httpx.ASGITransport(app=service.app))
    made.numbers = await open_incidents(chat)
    yield made
    for client in made.clients:
        await client.aclose()
