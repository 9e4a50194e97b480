"""Answering a page acknowledges the incident (issue 19 item 6): an SMS reply through the
Alibaba Cloud SmsUp push or the Tencent Cloud reply callback, or key 1 in an Alibaba voice
call, does what 确认收到 in chat does — the ladder stops and those pinged are told."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.schedule import DueItem, DueStatus
from incidents.paging_models import PageChannel, PageStatus
from tests.paging.rig import ALIYUN_TOKEN, PHONES, TENCENT_TOKEN, paging_rig


def ladder_due(engine: Engine, number: str) -> list[DueItem]:
    with Session(engine) as session:
        return list(session.exec(select(DueItem).where(DueItem.ref == f"incident:{number}",
                                                       DueItem.status == DueStatus.pending,
                                                       DueItem.key.contains(":ack:"))))  # type: ignore[attr-defined]


async def test_an_sms_reply_1_acknowledges_the_incident_and_stops_the_ladder(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        number = await rig.report("特级")
        assert ladder_due(engine, number)                        # the repeats are scheduled
        smsup = [{"phone_number": PHONES["李强"], "content": "1", "send_time": "2026-11-24 02:03:00",
                  "dest_code": "1234", "sequence_id": 1234567890}]
        answer = await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/sms-up", smsup)
        assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "接收成功"}
        incident = rig.incident(number)
        assert incident.status == "acknowledged" and incident.acknowledged_at is not None
        assert ladder_due(engine, number) == []                 # the ladder stopped
        timeline = rig.timeline(number)
        assert "李强 回复短信“1”，确认收到短信提醒" in timeline
        assert any(line.startswith("确认收到（报告后") for line in timeline)
        await rig.app.drain()
        assert any(m.startswith("【已确认】李强") for m in rig.chat.messages("赵敏"))   # told in chat
        sms = next(p for p in rig.pages() if p.phone == PHONES["李强"] and p.channel == PageChannel.sms)
        assert sms.status == PageStatus.acked
        # Two hours later nobody was pinged again about acknowledging, in chat or by phone
        # (an overdue step's own ladder goes on in chat).
        requests = rig.aliyun.requests
        pinged = {name: len(rig.chat.messages(name)) for name in ("李强", "赵敏", "刘洋")}
        await rig.app.advance_to(rig.clock.now() + timedelta(hours=2))
        assert rig.aliyun.requests == requests
        for name, count in pinged.items():
            assert not any("无人确认" in m.split("\n")[0] for m in rig.chat.messages(name)[count:]), name
        # The provider pushes it again (it retries on a lost answer): nothing changes.
        again = await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/sms-up", smsup)
        assert again.status_code == 200 and rig.incident(number).acknowledged_by_id == incident.acknowledged_by_id


async def test_a_tencent_reply_shou_dao_acknowledges_and_other_words_are_only_recorded(
        engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T23:00", provider="tencent") as rig:
        number = await rig.report("重大")
        reply = {"extend": "", "mobile": PHONES["李强"], "nationcode": "86", "sign": "区政府办",
                 "text": "马上到", "time": 1764000000}
        first = await rig.callback(f"/paging/tencent/{TENCENT_TOKEN}/sms-reply", reply)
        assert first.status_code == 200 and first.json() == {"result": 0, "errmsg": "OK"}
        assert rig.incident(number).acknowledged_at is None
        assert any(line.startswith("李强 回复短信：“马上到”（不是确认口令") for line in rig.timeline(number))
        second = await rig.callback(f"/paging/tencent/{TENCENT_TOKEN}/sms-reply", {**reply, "text": " 收到！"})
        assert second.status_code == 200
        incident = rig.incident(number)
        assert incident.acknowledged_at is not None and incident.status == "acknowledged"
        assert "李强 回复短信“收到！”，确认收到短信提醒" in rig.timeline(number)


async def test_key_1_in_the_voice_call_acknowledges(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T03:00") as rig:
        number = await rig.report("特级")
        call = next(p for p in rig.pages() if p.phone == PHONES["刘洋"] and p.channel == PageChannel.voice)
        report = [{"status_code": "200000", "status_msg": "用户听完", "callee": PHONES["刘洋"],
                   "call_id": call.provider_ref, "out_id": f"page-{call.id}", "dtmf": "1",
                   "duration": "21", "voice_type": "voice"}]
        answer = await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/voice-report", report)
        assert answer.status_code == 200 and answer.json()["code"] == 0
        incident = rig.incident(number)
        assert incident.acknowledged_at is not None
        assert "刘洋 在语音电话中按 1，确认收到语音电话提醒" in rig.timeline(number)


async def test_a_call_report_without_a_key_is_recorded_and_acknowledges_nothing(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T03:00") as rig:
        number = await rig.report("特级")
        call = next(p for p in rig.pages() if p.phone == PHONES["李强"] and p.channel == PageChannel.voice)
        report = [{"status_code": "200005", "status_msg": "用户未接听", "callee": PHONES["李强"],
                   "out_id": f"page-{call.id}", "call_id": call.provider_ref}]
        answer = await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/voice-report", report)
        assert answer.status_code == 200
        assert rig.incident(number).acknowledged_at is None
        assert "语音电话结果：李强——用户未接听" in rig.timeline(number)


async def test_a_wrong_token_or_an_unknown_number_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        number = await rig.report("特级")
        smsup = [{"phone_number": PHONES["李强"], "content": "1", "send_time": "2026-11-24 02:03:00",
                  "dest_code": "1234", "sequence_id": 1}]
        wrong = await rig.callback("/paging/aliyun/not-the-token-0000000/sms-up", smsup)
        assert wrong.status_code == 404
        tencent_wrong = await rig.callback(f"/paging/tencent/{ALIYUN_TOKEN}/sms-reply",
                                           {"mobile": PHONES["李强"], "nationcode": "86", "text": "1"})
        assert tencent_wrong.status_code == 404
        stranger = await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/sms-up",
                                      [{**smsup[0], "phone_number": "13999999999"}])
        assert stranger.status_code == 200
        bad = await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/sms-up", {"not": "an array"})
        assert bad.status_code == 400
        assert rig.incident(number).acknowledged_at is None
        # The reporter was not paged: her "1" acknowledges nothing either.
        own = await rig.callback(f"/paging/aliyun/{ALIYUN_TOKEN}/sms-up", [{**smsup[0], "phone_number": PHONES["王芳"]}])
        assert own.status_code == 200 and rig.incident(number).acknowledged_at is None
