"""``dutybot run`` with paging: the worker runs beside the outbox sender (woken when a
ladder ping commits, no drain), and the callback routes answer on the bot's own HTTP
service. Waits only on real loopback I/O, with a deadline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.messages import Inbound
from incidents.models import Incident
from incidents.paging_models import PageStatus
from people.models import Person
from tests.io_wait import eventually
from tests.paging.rig import ALIYUN_TOKEN, PHONES, TAMPER, paging_rig


async def test_the_running_bot_pages_and_takes_the_reply_on_its_http_service(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        app = rig.app
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        try:
            await eventually(lambda: app.running or task.done())
            assert app.http is not None
            await app.handle(Inbound(platform="memory", chat_id="u-王芳", sender_id="u-王芳", sender_name="王芳",
                                     text=TAMPER.format(grade="特级"), update_id="run-1", is_group=False))
            await eventually(lambda: {PHONES["李强"], PHONES["赵敏"]} <= {m["PhoneNumbers"] for m in rig.aliyun.sms})
            await eventually(lambda: any(p.phone == PHONES["李强"] and p.status == PageStatus.sent
                                         for p in rig.pages()))
            base = f"http://127.0.0.1:{app.http.port}"
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(f"{base}/paging/aliyun/{ALIYUN_TOKEN}/sms-up",
                                           json=[{"phone_number": PHONES["李强"], "content": "收到"}])
                wrong = await client.post(f"{base}/paging/aliyun/not-the-token-00000000/sms-up", json=[])
            assert answer.status_code == 200 and wrong.status_code == 404
            with Session(engine) as session:
                incident = session.get(Incident, rig.pages()[0].incident_id)
                assert incident is not None and incident.acknowledged_at is not None
                assert incident.acknowledged_by_id == session.exec(
                    select(Person.id).where(Person.name == "李强")).one()
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)
