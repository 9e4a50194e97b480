"""An office for the checks tests: a whole app over the memory adapter, on a moved clock.

People: 张伟 and 刘洋 (admins of 区政府办), 李强 (leader of 区教育局), 王芳 (officer of 区教育局),
陈晨 (leader of 区卫健委). Sites: 区教育局门户网站 (区教育局) and 健康区卫健 (区卫健委).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from people.models import Role
from roster.models import Site
from tests.factories import make_person

PEOPLE = (("张伟", (Role.admin,), "区政府办"), ("刘洋", (Role.admin,), "区政府办"),
          ("李强", (Role.leader,), "区教育局"), ("王芳", (Role.officer,), "区教育局"),
          ("陈晨", (Role.leader,), "区卫健委"))

Office = Callable[..., tuple[MemoryChat, FakeClock]]


@pytest.fixture
def office(engine: Engine) -> Office:
    """``office(profile, start)`` → (chat, clock) with the people and sites above."""

    def build(profile: str, start: str) -> tuple[MemoryChat, FakeClock]:
        clock = FakeClock(parse_local(start))
        with Session(engine) as session:
            for name, roles, unit in PEOPLE:
                make_person(session, name, roles=roles, unit=unit, now=clock.now())
            session.add(Site(name="区教育局门户网站", kind="website", url="https://jyj.example.gov.cn", unit="区教育局",
                             created_at=clock.now()))
            session.add(Site(name="健康区卫健", kind="wechat", url="jkwj", unit="区卫健委", created_at=clock.now()))
            session.commit()
        adapter = MemoryAdapter()
        settings = load_settings(None, env={"DUTYBOT_RULES_PROFILE": profile})
        return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter), clock

    return build
