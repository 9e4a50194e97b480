"""Phone paging end to end (issue 19 item 6): a ladder ping that the rule says pages goes out
as an SMS (and a voice call) through the fake Alibaba Cloud or Tencent Cloud API, each
request's signature checked by the fake; what happened is on the incident's timeline.
The clock is a FakeClock; nothing sleeps; nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter
from bot.app import App
from bot.config import load_settings
from incidents.paging_models import Page, PageStatus
from tests.paging.rig import PHONES, paging_rig


async def test_a_special_incident_at_night_sends_the_sms_through_the_fake_provider_with_a_valid_signature(
        engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        number = await rig.report("特级")
        # Every rung of a 特级 incident hears at once; at night every rung is paged too.
        sms = {m["PhoneNumbers"]: m for m in rig.aliyun.sms}
        assert set(sms) >= {PHONES["李强"], PHONES["赵敏"], PHONES["刘洋"]}
        assert PHONES["王芳"] not in sms                       # the reporter is not paged about her own report
        assert rig.aliyun.refused == []                        # every request passed the signature check
        leader = sms[PHONES["李强"]]
        assert (leader["SignName"], leader["TemplateCode"]) == ("区政府办", "SMS_100000001")
        assert json.loads(leader["TemplateParam"]) == {"number": number, "grade": "特级", "type": "篡改/挂马"}
        # 特级 pages by voice call too — except 赵敏, whose quiet hours allow SMS only.
        called = {c["CalledNumber"] for c in rig.aliyun.calls}
        assert PHONES["李强"] in called and PHONES["刘洋"] in called and PHONES["赵敏"] not in called
        assert rig.aliyun.calls[0]["TtsCode"] == "TTS_100000002"
        assert rig.aliyun.calls[0]["CalledShowNumber"] == "05718000000"
        # The chat pings went out as before.
        assert rig.chat.last("李强").startswith("【事件报告·带班领导】")
        timeline = rig.timeline(number)
        queued = next(line for line in timeline if line.startswith("电话/短信提醒（特级·带班领导·夜间）"))
        assert "李强（短信、语音电话）" in queued
        assert any("赵敏（短信，免打扰时段 22:00–07:00 仅短信）" in line for line in timeline)
        assert "短信已发出：李强" in timeline and "语音电话已拨出：李强" in timeline
        pages = [p for p in rig.pages() if p.phone == PHONES["李强"]]
        assert {(p.channel, p.status) for p in pages} == {("sms", PageStatus.sent), ("voice", PageStatus.sent)}
        assert all(p.provider == "aliyun" and p.provider_ref for p in pages)
        # What an officer sees: the timeline of /incident show.
        shown = await rig.chat.send(f"/incident show {number}", as_="王芳")
        assert "系统 短信已发出：李强" in shown and "系统 语音电话已拨出：李强" in shown


async def test_a_rung_never_pages_twice_and_another_pass_sends_nothing(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        await rig.report("特级")
        before = (len(rig.aliyun.sms), len(rig.aliyun.calls), rig.aliyun.requests)
        report = await rig.app.pager.send_due()   # type: ignore[union-attr]
        assert not report.progressed
        assert (len(rig.aliyun.sms), len(rig.aliyun.calls), rig.aliyun.requests) == before
        keys = [p.dedupe_key for p in rig.pages()]
        assert len(keys) == len(set(keys))


async def test_a_general_incident_in_the_day_pages_nobody(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T10:00") as rig:
        reply = await rig.chat.send("/incident new 无法访问 https://www.example.gov.cn 首页打不开", as_="王芳")
        number = reply.split("已登记 ")[1].split("（")[0]
        assert rig.incident(number).grade == "general"
        await rig.app.advance_to(rig.clock.now() + timedelta(minutes=20))   # the leader's rung fires in chat
        assert any(m.startswith("【事件升级·带班领导】") for m in rig.chat.messages("李强"))
        assert rig.pages() == [] and rig.aliyun.requests == 0
        assert not any("电话/短信提醒" in line for line in rig.timeline(number))


async def test_a_major_incident_in_the_day_pages_the_leader_by_sms_only_not_the_officer(
        engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T10:00") as rig:
        await rig.report("重大")
        assert [m["PhoneNumbers"] for m in rig.aliyun.sms] == [PHONES["李强"]]   # rung 1 up in the day
        assert rig.aliyun.calls == []                                           # 重大: SMS only


async def test_a_person_with_quiet_hours_gets_the_sms_only_and_without_a_number_the_timeline_says_so(
        engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T23:30", phones={"刘洋": "0571-8800000"}) as rig:
        number = await rig.report("特级")
        assert [m["PhoneNumbers"] for m in rig.aliyun.sms].count(PHONES["赵敏"]) == 1
        assert PHONES["赵敏"] not in {c["CalledNumber"] for c in rig.aliyun.calls}
        assert PHONES["李强"] in {c["CalledNumber"] for c in rig.aliyun.calls}
        assert any("刘洋 未登记手机号码（或登记的不是手机号），未能电话/短信提醒" in line for line in rig.timeline(number))
        assert rig.chat.messages("刘洋")                       # the chat ping still reached him


async def test_a_provider_5xx_is_retried_then_recorded_failed_and_the_chat_escalation_goes_on(
        engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T23:00") as rig:
        rig.aliyun.fail_next(503, times=10)
        number = await rig.report("重大")
        pager = rig.app.pager
        assert pager is not None
        page = next(p for p in rig.pages() if p.phone == PHONES["李强"])
        assert (page.status, page.attempts) == (PageStatus.queued, 1) and "HTTP 503" in (page.last_error or "")
        for _ in range(2):                                     # backoff at most 20 s in this config
            rig.clock.advance(timedelta(seconds=21))
            await pager.send_due()
        page = next(p for p in rig.pages() if p.id == page.id)
        assert (page.status, page.attempts) == (PageStatus.failed, 3)
        # /metrics shows them: failed in the last day, none waiting.
        exposition = rig.app.metrics.exposition().decode()
        failed = len([p for p in rig.pages() if p.status == PageStatus.failed])
        assert f'dutybot_pages_failed_last_day{{channel="sms"}} {failed:.1f}' in exposition
        assert "dutybot_pages_queued_oldest_age_seconds 0.0" in exposition
        assert rig.aliyun.requests == 3 * len([p for p in rig.pages()])
        assert "短信提醒未能发出：李强——阿里云暂时无法服务（HTTP 503）；聊天提醒照常进行" in rig.timeline(number)
        await rig.app.drain()
        assert any(m.startswith(f"【电话/短信提醒失败】{number}（重大）给 李强 的短信未能发出")
                   for m in rig.chat.messages("张伟"))
        # The ladder does not wait for the pages: 15 minutes on, the principal hears in chat.
        await rig.app.advance_to(rig.clock.now() + timedelta(minutes=16))
        assert any(m.startswith("【事件升级·主要负责人】") for m in rig.chat.messages("赵敏"))


async def test_pages_queued_before_a_crash_are_sent_once_after_the_restart(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        pager = rig.app.pager
        rig.app.pager = None                                   # the worker dies before its first pass
        number = await rig.report("特级")
        assert rig.aliyun.requests == 0
        queued = rig.pages()
        assert queued and {p.status for p in queued} == {PageStatus.queued}
        rig.clock.advance(timedelta(seconds=30))
        exposition = rig.app.metrics.exposition().decode()           # what monitoring sees meanwhile
        sms = len([p for p in queued if p.channel == "sms"])
        assert f'dutybot_pages_queued{{channel="sms"}} {sms:.1f}' in exposition
        assert "dutybot_pages_queued_oldest_age_seconds 30.0" in exposition
        # One of them had been claimed by the dead worker: it waits for its lease to end.
        with Session(engine) as session:
            held = session.get(Page, queued[0].id)
            assert held is not None
            held.claimed_until = rig.clock.now() + timedelta(seconds=120)
            session.add(held)
            session.commit()
        assert pager is not None
        await pager.aclose()
        # The restart: a new process on the same database.
        restarted = App(load_settings(tmp_path / "dutybot.toml", env={}), clock=rig.clock,
                        adapter=MemoryAdapter(), engine=engine)
        assert restarted.pager is not None
        try:
            first = await restarted.pager.send_due()
            assert first.sent == len(queued) - 1
            rig.clock.advance(timedelta(seconds=121))
            second = await restarted.pager.send_due()
            assert second.sent == 1
            third = await restarted.pager.send_due()
            assert not third.progressed
        finally:
            await restarted.pager.aclose()
        assert {p.status for p in rig.pages()} == {PageStatus.sent}
        sent = [(m["PhoneNumbers"]) for m in rig.aliyun.sms] + [c["CalledNumber"] for c in rig.aliyun.calls]
        assert len(sent) == len(queued)                        # each page exactly once
        assert rig.timeline(number).count("短信已发出：李强") == 1


async def test_tencent_sends_the_sms_with_a_valid_tc3_signature(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T23:00", provider="tencent") as rig:
        number = await rig.report("重大")
        assert rig.tencent.refused == [] and len(rig.tencent.sms) >= 1
        to_leader = next(m for m in rig.tencent.sms if m["PhoneNumberSet"] == [f"+86{PHONES['李强']}"])
        assert to_leader["TemplateParamSet"] == [number, "重大", "篡改/挂马"]
        assert to_leader["SmsSdkAppId"] == "1400000001" and to_leader["TemplateId"] == "2000001"
        page = next(p for p in rig.pages() if p.phone == PHONES["李强"])
        assert to_leader["SessionContext"] == f"page-{page.id}"
        assert page.provider == "tencent" and (page.provider_ref or "").startswith("sn-")
        assert rig.aliyun.requests == 0


async def test_a_refused_signature_is_failed_at_once_not_retried(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T23:00", provider="tencent") as rig:
        rig.tencent.secret_key = "the-key-was-rotated"          # Tencent no longer accepts ours
        number = await rig.report("重大")
        page = next(p for p in rig.pages() if p.phone == PHONES["李强"])
        assert (page.status, page.attempts) == (PageStatus.failed, 1)
        assert rig.tencent.refused[0] == "AuthFailure.SignatureFailure"
        assert ("短信提醒未能发出：李强——腾讯云拒绝发送：签名校验失败，请核对 SecretKey"
                "（错误码 AuthFailure.SignatureFailure）；聊天提醒照常进行") in rig.timeline(number)


async def test_an_incident_acknowledged_before_its_pages_went_out_cancels_them(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        pager = rig.app.pager
        rig.app.pager = None
        number = await rig.report("特级")
        await rig.chat.send(f"/incident ack {number}", as_="李强")
        rig.app.pager = pager
        assert pager is not None
        report = await pager.send_due()
        assert report.sent == 0 and report.cancelled == len(rig.pages())
        assert rig.aliyun.requests == 0
        assert "事件已有人确认，不再发送短信：赵敏" in rig.timeline(number)
        assert {p.status for p in rig.pages()} == {PageStatus.cancelled}
        with Session(engine) as session:
            assert session.exec(select(Page).where(Page.status == PageStatus.queued)).first() is None


async def test_pages_that_could_not_go_out_for_two_hours_are_cancelled_not_sent(engine: Engine,
                                                                                tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T02:00") as rig:
        pager = rig.app.pager
        rig.app.pager = None                                   # no worker: paging was off, say
        number = await rig.report("特级")
        queued = rig.pages()
        assert queued and {p.status for p in queued} == {PageStatus.queued}
        rig.clock.advance(timedelta(hours=2, minutes=1))       # 04:01: the worker is back
        rig.app.pager = pager
        assert pager is not None
        report = await pager.send_due()
        # the 02:00 pages are not sent at 04:01; the ones the ladder queued since may go
        stale = [p for p in rig.pages() if p.id in {q.id for q in queued}]
        assert {p.status for p in stale} == {PageStatus.cancelled}
        assert report.cancelled == len(queued)
        assert "排队超过 2 小时仍未发出，已过时，不再发送短信：李强" in rig.timeline(number)
        assert rig.aliyun.requests == report.sent


async def test_a_regrade_to_special_pages_the_rungs_it_tells_at_once(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-24T10:00") as rig:
        reply = await rig.chat.send("/incident new 无法访问 https://www.example.gov.cn 首页打不开", as_="王芳")
        number = reply.split("已登记 ")[1].split("（")[0]
        assert rig.aliyun.requests == 0                              # 一般, by day: chat only
        await rig.chat.send(f"/incident grade {number} 特级", as_="李强")
        # 特级 tells every rung at once: the principal and the district office are paged (and called).
        assert {PHONES["赵敏"], PHONES["刘洋"]} <= {m["PhoneNumbers"] for m in rig.aliyun.sms}
        assert PHONES["赵敏"] in {c["CalledNumber"] for c in rig.aliyun.calls}   # 10:00: no quiet hours
        assert PHONES["李强"] not in {m["PhoneNumbers"] for m in rig.aliyun.sms}  # he re-graded it himself
        assert any(line.startswith("电话/短信提醒（特级·主要负责人）") for line in rig.timeline(number))


async def test_a_manual_escalation_pages_the_next_rung(engine: Engine, tmp_path: Path) -> None:
    async with paging_rig(engine, tmp_path, "2026-11-25T10:00") as rig:
        number = await rig.report("重大")
        assert [m["PhoneNumbers"] for m in rig.aliyun.sms] == [PHONES["李强"]]
        await rig.chat.send(f"/incident escalate {number} 需要主要负责人决定", as_="王芳")
        assert [m["PhoneNumbers"] for m in rig.aliyun.sms] == [PHONES["李强"], PHONES["赵敏"]]
