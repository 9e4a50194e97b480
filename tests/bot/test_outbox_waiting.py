"""Messages wait for the person: a row to someone bound on no platform waits for the
binding (the admins hear once), goes out in order when they bind, and expires with one
summary; a sender leaves alone a row its platform cannot reach but another can."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import bot.cli
from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from bot.outbox import OutboxSender
from bot.waiting import EXPIRED_REASON
from core.clock import FakeClock
from core.db import make_engine, session_scope, upgrade
from core.outbox import OutboxMessage, OutboxStatus
from people.models import ChatIdentity, InviteCode, Person, Role
from people.service import ensure_identity
from tests.bot.test_outbox import FakeAdapter, put, row, sender_for
from tests.factories import make_person


class ConsoleAdapter(FakeAdapter):
    platform: ClassVar[str] = "console"


class WeComAdapter(FakeAdapter):
    platform: ClassVar[str] = "wecom"


@pytest.fixture
def people(engine: Engine, clock: FakeClock) -> dict[str, int]:
    """李强 and 孙丽 (admins, bound on memory), 赵敏 (bound nowhere), 王芳 (bound on wecom only)."""
    with session_scope(engine) as s:
        ids = {name: make_person(s, name, roles=(Role.admin,), now=clock.now()).id
               for name in ("李强", "孙丽")}
        ids["赵敏"] = make_person(s, "赵敏", now=clock.now(), platform=None).id
        ids["王芳"] = make_person(s, "王芳", now=clock.now(), platform="wecom").id
    return {k: v for k, v in ids.items() if v is not None}


def notices(engine: Engine, prefix: str) -> list[OutboxMessage]:
    with Session(engine) as s:
        query = (select(OutboxMessage).where(OutboxMessage.event_key.startswith(prefix))
                 .order_by(OutboxMessage.id))
        return list(s.exec(query).all())


async def test_a_message_to_a_person_bound_nowhere_waits_and_the_admins_hear_once(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    ids = [put(engine, clock, f"提醒{n}", f"r:{n}", person=people["赵敏"]) for n in (1, 2)]
    adapter = FakeAdapter()
    sender = sender_for(engine, adapter, clock)
    report = await sender.deliver_due()
    assert report.waiting == 2 and report.dead == 0
    for rid in ids:
        waiting = row(engine, rid)
        assert waiting.status == OutboxStatus.waiting and waiting.attempts == 0
        assert waiting.expires_at == waiting.next_attempt_at == clock.now() + timedelta(hours=72)
        assert waiting.claimed_until is None
    clock.advance(timedelta(hours=5))
    ids.append(put(engine, clock, "提醒3", "r:3", person=people["赵敏"]))
    await sender.deliver_due()
    await sender.deliver_due()
    assert row(engine, ids[2]).status == OutboxStatus.waiting
    assert notices(engine, "outbox-dead:") == []                   # no notice per message
    told = notices(engine, "unbound:")
    assert {n.person_id for n in told} == {people["李强"], people["孙丽"]} and len(told) == 2
    assert {n.event_key for n in told} == {f"unbound:{people['赵敏']}:{ids[0]}"}
    assert adapter.texts("u-李强") == [
        "【人员未绑定】赵敏尚未绑定聊天账号，发给其的消息将保留72小时，绑定后自动送达。"
        "请运行 dutybot people invite 赵敏 或在聊天中发送 /people invite 赵敏 生成绑定码。"]
    assert adapter.texts("u-孙丽") == adapter.texts("u-李强")


async def test_waiting_messages_expire_after_the_configured_hours_with_one_summary(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    ids = [put(engine, clock, f"提醒{n}", f"r:{n}", person=people["赵敏"]) for n in (1, 2, 3)]
    adapter = FakeAdapter()
    dead: list[int | None] = []
    sender = sender_for(engine, adapter, clock, unbound_wait_hours=2)
    sender.on_dead = lambda r: dead.append(r.id)
    await sender.deliver_due()
    await sender.deliver_due()
    clock.advance(timedelta(hours=1, minutes=59))
    await sender.deliver_due()
    assert {row(engine, rid).status for rid in ids} == {OutboxStatus.waiting}
    clock.advance(timedelta(minutes=1))
    assert (await sender.deliver_due()).expired == 3
    for rid in ids:
        assert (row(engine, rid).status, row(engine, rid).last_error) == (OutboxStatus.dead, EXPIRED_REASON)
    assert dead == ids
    await sender.deliver_due()
    await sender.deliver_due()
    assert notices(engine, "outbox-dead:") == []
    [summary, _] = notices(engine, "unbound-expired:")             # one per admin
    assert summary.event_key == f"unbound-expired:{people['赵敏']}:{ids[0]}"
    assert adapter.texts("u-李强")[-1].startswith(
        "【消息已过期】3 条发给赵敏的消息已过期未送达：赵敏尚未绑定聊天账号，保留期（2小时）已满。")
    assert len(adapter.texts("u-李强")) == 2                        # 【人员未绑定】, then this


async def test_binding_through_the_chat_delivers_the_waiting_messages_in_order(
        engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin, Role.officer), now=clock.now())
        chen = make_person(session, "陈晨", roles=(Role.officer,), now=clock.now(), platform=None)
        session.commit()
        assert chen.id is not None
        chen_id = chen.id
    adapter = MemoryAdapter()
    chat = MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine),
                      adapter)
    for text in ("甲", "乙", "丙"):
        put(engine, clock, text, f"r:{text}", person=chen_id)
        clock.advance(timedelta(minutes=10))
        await chat.app.drain()
    told = chat.pop("张伟")
    assert len(told) == 1 and told[0].startswith("【人员未绑定】陈晨尚未绑定聊天账号")
    await chat.send("/people invite 陈晨", as_="张伟")
    with Session(engine) as session:
        code = session.exec(select(InviteCode)).one().code
    reply = await chat.send(f"/bind {code}", as_="陈晨")
    assert "绑定成功" in reply and "您绑定前有 3 条消息在等待送达" in reply
    got = chat.messages("陈晨")
    assert got[:3] == ["甲", "乙", "丙"] and got[3].startswith("绑定成功")
    assert "消息已过期" not in "".join(chat.pop("张伟"))
    clock.advance(timedelta(days=5))                               # nothing left to expire
    await chat.app.drain()
    assert chat.pop("张伟") == []
    with Session(engine) as session:
        statuses = {r.status for r in session.exec(select(OutboxMessage).where(
            OutboxMessage.person_id == chen_id))}
    assert statuses == {OutboxStatus.sent}


async def waiting_for_zhao(engine: Engine, clock: FakeClock, people: dict[str, int],
                           event: str) -> tuple[int | None, FakeAdapter, OutboxSender]:
    """A 提醒 to 赵敏 (bound nowhere), after a pass: waiting."""
    rid = put(engine, clock, "提醒", event, person=people["赵敏"])
    adapter = FakeAdapter()
    sender = sender_for(engine, adapter, clock)
    await sender.deliver_due()
    assert row(engine, rid).status == OutboxStatus.waiting
    return rid, adapter, sender


async def test_an_account_bound_without_a_code_releases_the_waiting_messages(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """The console binds its people with ``ensure_identity``, which puts their waiting
    messages back in the queue."""
    rid, adapter, sender = await waiting_for_zhao(engine, clock, people, "r:1")
    with session_scope(engine) as s:
        zhao = s.get(Person, people["赵敏"])
        assert zhao is not None
        ensure_identity(session=s, person=zhao, platform="memory", external_id="u-赵敏", now=clock.now())
    await sender.deliver_due()
    assert adapter.texts("u-赵敏") == ["提醒"]
    assert row(engine, rid).status == OutboxStatus.sent and row(engine, rid).expires_at is None


async def test_an_account_added_behind_the_bots_back_is_noticed_within_ten_seconds(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """An identity written straight into the database (a restore, a script) releases
    nothing itself: the sender looks at waiting rows every 10 s, not on every pass."""
    _, adapter, sender = await waiting_for_zhao(engine, clock, people, "r:2")
    with session_scope(engine) as s:
        s.add(ChatIdentity(person_id=people["赵敏"], platform="memory", external_id="u-赵敏",
                           chat_id="u-赵敏", bound_at=clock.now()))
    clock.advance(timedelta(seconds=9))
    await sender.deliver_due()
    assert adapter.texts("u-赵敏") == []
    clock.advance(timedelta(seconds=1))
    await sender.deliver_due()
    await sender.deliver_due()
    assert adapter.texts("u-赵敏") == ["提醒"]


async def test_a_sender_leaves_rows_for_a_person_bound_only_on_another_platform(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """The console started on a database whose people are bound to WeCom."""
    with session_scope(engine) as s:
        on_console = make_person(s, "张伟", now=clock.now(), platform="console")
    wang = put(engine, clock, "给王芳", "r:w", person=people["王芳"])
    zhang = put(engine, clock, "给张伟", "r:z", person=on_console.id)
    console = ConsoleAdapter()
    sender = sender_for(engine, console, clock)
    report = await sender.deliver_due()
    assert report.claimed == 1 and console.texts("u-张伟") == ["给张伟"]
    assert (await sender.deliver_due()).claimed == 0               # not claimed again and again
    left = row(engine, wang)
    assert (left.status, left.claimed_until, left.attempts) == (OutboxStatus.pending, None, 0)
    assert console.calls == ["u-张伟"]
    assert notices(engine, "outbox-dead:") == [] and notices(engine, "unbound:") == []
    wecom = WeComAdapter()
    await sender_for(engine, wecom, clock).deliver_due()           # WeCom's own sender delivers it
    assert wecom.texts("u-王芳") == ["给王芳"] and row(engine, zhang).status == OutboxStatus.sent


async def test_a_person_whose_only_account_blocked_the_bot_is_not_waited_for(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    with session_scope(engine) as s:
        ident = s.exec(select(ChatIdentity).where(ChatIdentity.person_id == people["王芳"])).one()
        ident.blocked_at = clock.now()
    rid = put(engine, clock, "提醒", "r:1", person=people["王芳"])
    await sender_for(engine, ConsoleAdapter(), clock).deliver_due()
    assert row(engine, rid).status == OutboxStatus.dead
    assert row(engine, rid).last_error == "收件人已屏蔽机器人（平台 wecom）"
    assert len(notices(engine, "outbox-dead:")) == 2


async def test_notices_to_an_admin_bound_nowhere_wait_and_never_cause_notices(
        engine: Engine, clock: FakeClock) -> None:
    with session_scope(engine) as s:
        make_person(s, "孙丽", roles=(Role.admin,), now=clock.now(), platform=None)
        other = make_person(s, "赵敏", now=clock.now(), platform=None)
    put(engine, clock, "提醒", "r:1", person=other.id)
    sender = sender_for(engine, FakeAdapter(), clock, unbound_wait_hours=1)
    for _ in range(3):
        await sender.deliver_due()
    [told] = notices(engine, "unbound:")                           # about 赵敏, to 孙丽: it waits
    assert told.status == OutboxStatus.waiting
    clock.advance(timedelta(hours=1))
    for _ in range(3):
        await sender.deliver_due()
    [summary] = notices(engine, "unbound-expired:")                # about 赵敏's message only
    assert summary.event_key.startswith(f"unbound-expired:{other.id}:")
    assert notices(engine, "outbox-dead:") == []
    assert row(engine, told.id).status == OutboxStatus.dead


def test_cli_lists_waiting_rows_and_retries_an_expired_one(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        person = make_person(s, "赵敏", now=clock.now(), platform=None)
    waiting, expired = (put(engine, clock, text, text, person=person.id) for text in ("等着", "过期了"))
    with session_scope(engine) as s:
        for rid, status in ((waiting, OutboxStatus.waiting), (expired, OutboxStatus.dead)):
            stored = s.get(OutboxMessage, rid)
            assert stored is not None
            stored.status, stored.expires_at = status, clock.now() + timedelta(hours=72)
            stored.next_attempt_at = stored.expires_at
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", url)
    assert bot.cli.main(["outbox"]) == 0
    out = capsys.readouterr().out
    assert "等待绑定 1 条" in out and "\n等待绑定：\n" in out and "保留至 11月26日 09:00" in out
    assert f"#{waiting}  赵敏" in out and "绑定聊天账号后自动送达" in out
    assert bot.cli.main(["outbox", "retry", str(waiting)]) == 2    # not dead: it still waits
    assert "“等待绑定”" in capsys.readouterr().err
    assert bot.cli.main(["outbox", "retry", str(expired)]) == 0
    assert (row(engine, expired).status, row(engine, expired).expires_at) == (OutboxStatus.pending, None)
    engine.dispose()
