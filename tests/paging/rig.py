"""A whole bot with phone paging, talking to the fake Alibaba Cloud and Tencent Cloud APIs
on loopback; the providers' callbacks are posted to the bot's real HTTP routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from bot.http import HttpService
from bot.paging.callbacks import paging_routes
from core import audit
from core.clock import FakeClock, parse_local
from incidents.models import Incident
from incidents.paging_models import Page
from people.models import Role
from tests.factories import make_person
from tests.fakes.fake_aliyun import FakeAliyun
from tests.fakes.fake_tencent import FakeTencentSms
from tests.fakes.serve import serve_asgi

ALIYUN_ID, ALIYUN_SECRET = "LTAI5tFakeKeyId0001", "fakeAliyunSecret9c1e7b2d4a"
TENCENT_ID, TENCENT_KEY, TENCENT_APP = "AKIDfakeTencentId00001", "fakeTencentKey5f2a8c3e1d", "1400000001"
ALIYUN_TOKEN, TENCENT_TOKEN = "aliyunCb7d1f3a9e5c2b4d6f", "tencentCb2b4d6f8a1c3e5f7a"
SECRETS = (ALIYUN_SECRET, TENCENT_KEY, ALIYUN_TOKEN, TENCENT_TOKEN)
PHONES = {"王芳": "13800000001", "李强": "13800000002", "赵敏": "13800000003", "刘洋": "13800000004",
          "张伟": "13800000005"}
ROLES = {"王芳": Role.officer, "李强": Role.leader, "赵敏": Role.principal, "刘洋": Role.officer,
         "张伟": Role.admin}
TAMPER = "/incident new 篡改 {grade} https://www.example.gov.cn 首页被篡改"


def config(aliyun: str, tencent: str, *, provider: str = "aliyun", extra: str = "") -> str:
    return f"""
[incidents]
district_office = "刘洋"

[paging]
enabled = true
provider = "{provider}"
channels = {{ "特级" = ["sms", "voice"], "重大" = ["sms"] }}
max_attempts = 3
backoff_base_seconds = 10
backoff_max_seconds = 20
aliyun_access_key_id = "{ALIYUN_ID}"
aliyun_access_key_secret = "{ALIYUN_SECRET}"
aliyun_sign_name = "区政府办"
aliyun_sms_template = "SMS_100000001"
aliyun_tts_code = "TTS_100000002"
aliyun_called_show_number = "05718000000"
aliyun_sms_url = "{aliyun}/sms/"
aliyun_voice_url = "{aliyun}/voice/"
aliyun_callback_token = "{ALIYUN_TOKEN}"
tencent_secret_id = "{TENCENT_ID}"
tencent_secret_key = "{TENCENT_KEY}"
tencent_sms_app_id = "{TENCENT_APP}"
tencent_sign_name = "区政府办"
tencent_template_id = "2000001"
tencent_sms_url = "{tencent}/"
tencent_callback_token = "{TENCENT_TOKEN}"
{extra}
[paging.quiet]
"赵敏" = {{ window = "22:00-07:00", sms_only = true }}
"""


@dataclass
class Rig:
    chat: MemoryChat
    engine: Engine
    clock: FakeClock
    aliyun: FakeAliyun
    tencent: FakeTencentSms
    client: httpx.AsyncClient

    @property
    def app(self) -> App:
        return self.chat.app

    async def report(self, grade: str, as_: str = "王芳") -> str:
        """Report a defaced homepage of ``grade``; returns its number."""
        reply = await self.chat.send(TAMPER.format(grade=grade), as_=as_)
        return reply.split("已登记 ")[1].split("（")[0]

    def pages(self) -> list[Page]:
        with Session(self.engine) as session:
            return list(session.exec(select(Page).order_by(col(Page.id))))

    def incident(self, number: str) -> Incident:
        with Session(self.engine) as session:
            return session.exec(select(Incident).where(Incident.number == number)).one()

    def timeline(self, number: str) -> list[str]:
        with Session(self.engine) as session:
            return [str(e.details().get("zh", e.action))
                    for e in audit.history(session=session, entity_type="incident", entity_id=number)]

    async def callback(self, path: str, body: Any) -> httpx.Response:
        return await self.client.post(path, json=body)


@contextlib.asynccontextmanager
async def paging_rig(engine: Engine, tmp_path: Path, start: str, *, provider: str = "aliyun",
                     extra: str = "", phones: dict[str, str] | None = None) -> AsyncIterator[Rig]:
    """The bot at ``start`` (office time) with 王芳 (officer), 李强 (leader), 赵敏 (principal,
    SMS only at night), 刘洋 (district office) and 张伟 (admin)."""
    clock = FakeClock(parse_local(start))
    aliyun = FakeAliyun(access_key_id=ALIYUN_ID, secret=ALIYUN_SECRET, time_source=clock.now)
    tencent = FakeTencentSms(secret_id=TENCENT_ID, secret_key=TENCENT_KEY, app_id=TENCENT_APP,
                             time_source=clock.now)
    numbers = {**PHONES, **(phones or {})}
    with Session(engine) as session:
        for name, role in ROLES.items():
            make_person(session, name, roles=(role,), now=clock.now(), phone=numbers[name],
                        unit="区政府办公室" if name == "刘洋" else "区政府办")
        session.commit()
    async with serve_asgi(aliyun.app) as aliyun_url, serve_asgi(tencent.app) as tencent_url:
        path = tmp_path / "dutybot.toml"
        path.write_text(config(aliyun_url, tencent_url, provider=provider, extra=extra), encoding="utf-8")
        adapter = MemoryAdapter()
        app = App(load_settings(path, env={}), clock=clock, adapter=adapter, engine=engine)
        service = HttpService(host="127.0.0.1", port=0, routes=paging_routes(app), health=app.health)
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dutybot.test") as client:
            try:
                yield Rig(MemoryChat(app, adapter), engine, clock, aliyun, tencent, client)
            finally:
                if app.pager is not None:
                    await app.pager.aclose()
