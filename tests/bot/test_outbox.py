"""The outbox sender: never lose a message, never send one twice, retry, give up loudly."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import bot.cli
from bot.adapters.base import Adapter, Capabilities, RateWindow
from bot.config import OutboxSettings
from bot.outbox import OutboxSender
from core.clock import FakeClock
from core.db import make_engine, session_scope, upgrade
from core.errors import AdapterError
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from people.models import ChatIdentity, Role
from tests.factories import make_person

TELEGRAM_LIMITS = (RateWindow("global", 30, 1.0), RateWindow("chat", 1, 1.0),
                   RateWindow("group", 20, 60.0))


@dataclass
class FakeAdapter(Adapter):
    """Records what it sends; fails on demand (``failures[chat_id]`` is a queue of errors)."""

    platform: ClassVar[str] = "memory"
    sent: list[tuple[str, str, bool]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    edits: list[tuple[str, str, str]] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    fail_edit: bool = False
    hang: asyncio.Event | None = None   # set: send never returns (a process about to die)

    async def start(self, handler: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        if self.hang is not None:
            self.hang.set()
            await asyncio.Event().wait()
        self.calls.append(chat_id)
        queue = self.failures.get(chat_id)
        if queue:
            raise queue.pop(0)
        self.sent.append((chat_id, message.text, is_group))
        return f"m{len(self.sent)}"

    async def edit(self, chat_id: str, message_ref: str, message: Outbound) -> None:
        if self.fail_edit:
            raise AdapterError("message to edit not found", retryable=False)
        self.edits.append((chat_id, message_ref, message.text))

    def texts(self, chat_id: str) -> list[str]:
        return [text for chat, text, _ in self.sent if chat == chat_id]


class EditingAdapter(FakeAdapter):
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, edit=True)


class LimitedAdapter(FakeAdapter):
    limits: ClassVar[tuple[RateWindow, ...]] = TELEGRAM_LIMITS


def sender_for(engine: Engine, adapter: Adapter, clock: FakeClock, **settings: Any) -> OutboxSender:
    async def sleep(seconds: float) -> None:  # a pass waiting for a rate slot moves the clock
        clock.advance(timedelta(seconds=seconds))

    return OutboxSender(engine=engine, adapter=adapter, clock=clock,
                        settings=OutboxSettings(**settings), rng=random.Random(7),
                        time_source=lambda: clock.now().timestamp(), sleep=sleep)


@pytest.fixture
def people(engine: Engine, clock: FakeClock) -> dict[str, int]:
    """王芳 and 张伟 (officers), 李强 (admin), 赵敏 (not bound to any platform)."""
    with session_scope(engine) as s:
        ids = {name: make_person(s, name, now=clock.now()).id for name in ("王芳", "张伟")}
        ids["李强"] = make_person(s, "李强", roles=(Role.admin,), now=clock.now()).id
        ids["赵敏"] = make_person(s, "赵敏", now=clock.now(), platform=None).id
    return {k: v for k, v in ids.items() if v is not None}


def put(engine: Engine, clock: FakeClock, text: str, event: str, *, person: int | None = None,
        chat: str | None = None, card: str | None = None) -> int | None:
    with session_scope(engine) as s:
        row = enqueue(session=s, now=clock.now(), event_key=event,
                      message=Outbound(text=text, person_id=person, chat_id=chat, card_key=card))
        s.flush()
        return row.id if row else None


def row(engine: Engine, row_id: int | None) -> OutboxMessage:
    assert row_id is not None
    with Session(engine) as s:
        found = s.get(OutboxMessage, row_id)
        assert found is not None
        return found


def admin_notices(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        query = select(OutboxMessage).where(OutboxMessage.event_key.startswith("outbox-dead:"))
        return list(s.exec(query).all())


class AcceptThenDie(FakeAdapter):
    """The platform accepts the message, then the process dies before it records that."""

    def __init__(self, delivered: list[tuple[str, str, bool]], accepted: asyncio.Event) -> None:
        super().__init__(sent=delivered)
        self.accepted = accepted

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        ref = await super().send(chat_id, message, is_group=is_group)
        self.accepted.set()
        await asyncio.Event().wait()                 # killed here, before the commit
        return ref


async def test_crash_between_platform_accept_and_commit_redelivers_once_after_the_lease(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """The one duplicate window the module docstring allows: at-least-once, never lost,
    and no third copy."""
    rid = put(engine, clock, "今晚 20:00 轮到您值班", "shift:1", person=people["王芳"])
    delivered: list[tuple[str, str, bool]] = []      # what 王芳's phone shows
    accepted = asyncio.Event()
    first = asyncio.ensure_future(
        sender_for(engine, AcceptThenDie(delivered, accepted), clock).deliver_due())
    await asyncio.wait_for(accepted.wait(), 5)
    first.cancel()                                   # the process dies after the platform said ok
    with pytest.raises(asyncio.CancelledError):
        await first
    assert delivered == [("u-王芳", "今晚 20:00 轮到您值班", False)]
    died = row(engine, rid)
    assert died.status == OutboxStatus.pending and died.claimed_until is not None
    restarted = sender_for(engine, FakeAdapter(sent=delivered), clock)
    assert (await restarted.deliver_due()).claimed == 0   # the dead worker's lease still holds
    clock.advance(timedelta(seconds=121))
    assert (await restarted.deliver_due()).sent == 1
    assert (await restarted.deliver_due()).claimed == 0
    clock.advance(timedelta(hours=1))
    assert (await restarted.deliver_due()).claimed == 0
    assert delivered == [("u-王芳", "今晚 20:00 轮到您值班", False)] * 2
    assert row(engine, rid).status == OutboxStatus.sent


async def test_same_event_for_same_person_twice_is_one_message(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    assert put(engine, clock, "新舆情", "inc:7:new", person=people["王芳"]) is not None
    assert put(engine, clock, "新舆情", "inc:7:new", person=people["王芳"]) is None
    adapter = FakeAdapter()
    await sender_for(engine, adapter, clock).deliver_due()
    assert adapter.texts("u-王芳") == ["新舆情"]


async def test_claim_of_a_dead_worker_expires_after_the_lease(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    rid = put(engine, clock, "请确认", "inc:8", person=people["王芳"])
    entered = asyncio.Event()
    hanging = FakeAdapter(hang=entered)
    task = asyncio.ensure_future(sender_for(engine, hanging, clock).deliver_due())
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()                                    # the worker dies inside send()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert row(engine, rid).claimed_until is not None
    adapter = FakeAdapter()
    other = sender_for(engine, adapter, clock)
    assert (await other.deliver_due()).claimed == 0  # still leased to the dead worker
    clock.advance(timedelta(seconds=121))
    await other.deliver_due()
    await other.deliver_due()
    assert adapter.texts("u-王芳") == ["请确认"]
    assert row(engine, rid).status == OutboxStatus.sent


async def test_transient_failure_is_retried_after_backoff_not_before(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    rid = put(engine, clock, "提醒", "r:1", person=people["王芳"])
    adapter = FakeAdapter(failures={"u-王芳": [AdapterError("timeout"), AdapterError("timeout")]})
    sender = sender_for(engine, adapter, clock, backoff_base_seconds=2.0)
    start = clock.now()
    assert (await sender.deliver_due()).retried == 1
    first = row(engine, rid)
    assert first.attempts == 1 and first.last_error == "timeout"
    assert timedelta(0) < first.next_attempt_at - start <= timedelta(seconds=2)
    clock.set(first.next_attempt_at - timedelta(milliseconds=1))
    assert (await sender.deliver_due()).claimed == 0
    clock.set(first.next_attempt_at)
    assert (await sender.deliver_due()).retried == 1
    second = row(engine, rid)
    assert second.attempts == 2
    assert second.next_attempt_at - first.next_attempt_at <= timedelta(seconds=4)
    clock.set(second.next_attempt_at)
    assert (await sender.deliver_due()).sent == 1
    assert adapter.texts("u-王芳") == ["提醒"] and row(engine, rid).status == OutboxStatus.sent


async def test_retries_back_off_exponentially_with_full_jitter_up_to_the_cap(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """After failure k the row waits uniform(0, min(max, base·2^(k-1))) seconds."""
    rid = put(engine, clock, "提醒", "r:backoff", person=people["王芳"])
    adapter = FakeAdapter(failures={"u-王芳": [AdapterError("timeout")] * 6})
    settings = OutboxSettings(backoff_base_seconds=3.0, backoff_max_seconds=20.0, max_attempts=10)
    sender = OutboxSender(engine=engine, adapter=adapter, clock=clock, settings=settings,
                          rng=random.Random(2026), time_source=lambda: clock.now().timestamp())
    same_seed = random.Random(2026)
    ceilings = [3.0, 6.0, 12.0, 20.0, 20.0, 20.0]      # 3·2^(k-1), capped at 20 from k = 4
    expected = [timedelta(seconds=same_seed.uniform(0, c)) for c in ceilings]
    waited = []
    for attempt in range(1, 7):
        failed_at = clock.now()
        assert (await sender.deliver_due()).retried == 1
        stored = row(engine, rid)
        assert stored.attempts == attempt
        waited.append(stored.next_attempt_at - failed_at)
        clock.set(stored.next_attempt_at)
    assert waited == expected
    assert len(set(waited)) == 6                      # jittered: no two waits alike
    assert max(waited) <= timedelta(seconds=20)       # never longer than backoff_max_seconds
    assert (await sender.deliver_due()).sent == 1
    assert adapter.texts("u-王芳") == ["提醒"]


async def test_permanent_failure_is_dead_and_the_admin_is_told(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    text = "关于INC-20261123-001的处置要求：请于今日17:30前完成核查并回复处理结果"
    rid = put(engine, clock, text, "inc:1:assign", person=people["王芳"])
    adapter = FakeAdapter(failures={"u-王芳": [AdapterError("Bad Request", retryable=False)]})
    dead: list[int | None] = []
    sender = sender_for(engine, adapter, clock)
    sender.on_dead = lambda r: dead.append(r.id)
    assert (await sender.deliver_due()).dead == 1
    assert row(engine, rid).status == OutboxStatus.dead and dead == [rid]
    await sender.deliver_due()                       # the notice goes out like any message
    [notice] = adapter.texts("u-李强")
    assert "收件人：王芳" in notice and f"内容：{text[:40]}……\n" in notice
    assert "1 次" in notice and "Bad Request" in notice and "dutybot outbox" in notice
    assert adapter.texts("u-王芳") == []


async def test_max_attempts_exhausted_is_dead_and_the_admin_is_told(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    rid = put(engine, clock, "提醒", "r:2", person=people["王芳"])
    adapter = FakeAdapter(failures={"u-王芳": [AdapterError("502 Bad Gateway")] * 10})
    sender = sender_for(engine, adapter, clock, max_attempts=3)
    for _ in range(3):
        clock.set(max(clock.now(), row(engine, rid).next_attempt_at))
        await sender.deliver_due()
    assert row(engine, rid).status == OutboxStatus.dead and row(engine, rid).attempts == 3
    [notice] = admin_notices(engine)
    assert notice.person_id == people["李强"] and "3 次" in notice.text
    assert notice.event_key == f"outbox-dead:{rid}"


async def test_blocked_by_the_user_marks_the_identity_and_stops(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    rid = put(engine, clock, "提醒", "r:3", person=people["王芳"])
    blocked = AdapterError("Forbidden: bot was blocked by the user", retryable=False,
                           permanent_reason="blocked")
    adapter = FakeAdapter(failures={"u-王芳": [blocked]})
    sender = sender_for(engine, adapter, clock)
    await sender.deliver_due()
    assert row(engine, rid).status == OutboxStatus.dead
    with Session(engine) as s:
        ident = s.exec(select(ChatIdentity).where(ChatIdentity.person_id == people["王芳"])).one()
        assert ident.blocked_at == clock.now()
    later = put(engine, clock, "第二条", "r:4", person=people["王芳"])
    clock.advance(timedelta(hours=1))
    await sender.deliver_due()
    await sender.deliver_due()
    assert row(engine, later).status == OutboxStatus.dead
    assert "屏蔽" in (row(engine, later).last_error or "")
    assert adapter.calls.count("u-王芳") == 1               # not called again: no retry loop
    assert len(admin_notices(engine)) == 2 and len(adapter.texts("u-李强")) == 2


class WeComAdapter(FakeAdapter):
    platform: ClassVar[str] = "wecom"


async def test_a_row_for_a_platform_its_person_is_not_bound_on_is_dead_and_the_admin_is_told(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """A person bound elsewhere is not waited for when the row names its platform (a
    person bound nowhere waits: tests/bot/test_outbox_waiting.py)."""
    with session_scope(engine) as s:
        queued = enqueue(session=s, now=clock.now(), event_key="r:5", platform="wecom",
                         message=Outbound(text="提醒", person_id=people["王芳"]))
        assert queued is not None
        s.flush()
        rid = queued.id
    adapter = WeComAdapter()
    await sender_for(engine, adapter, clock).deliver_due()
    assert row(engine, rid).status == OutboxStatus.dead
    assert row(engine, rid).last_error == "收件人未绑定账号（平台 wecom）"
    assert "王芳" in admin_notices(engine)[0].text


async def test_a_dead_notice_does_not_notify_again(engine: Engine, clock: FakeClock) -> None:
    with session_scope(engine) as s:
        admin = make_person(s, "孙丽", roles=(Role.admin,), now=clock.now())
    put(engine, clock, "提醒", "r:6", chat="g-duty")
    adapter = FakeAdapter(failures={"g-duty": [AdapterError("chat not found", retryable=False)],
                                    "u-孙丽": [AdapterError("user not found", retryable=False)]})
    sender = sender_for(engine, adapter, clock)
    for _ in range(3):
        await sender.deliver_due()
    [notice] = admin_notices(engine)                 # the admin's chat fails too: the notice dies
    assert notice.person_id == admin.id and notice.status == OutboxStatus.dead
    assert adapter.calls == ["g-duty", "u-孙丽"]


async def test_unexpected_adapter_error_is_retried_and_logged(
        engine: Engine, clock: FakeClock, people: dict[str, int],
        caplog: pytest.LogCaptureFixture) -> None:
    rid = put(engine, clock, "提醒", "r:7", person=people["王芳"])
    adapter = FakeAdapter(failures={"u-王芳": [RuntimeError("socket closed"), RuntimeError("x")]})
    with caplog.at_level(logging.ERROR, logger="dutybot.outbox"):
        assert (await sender_for(engine, adapter, clock).deliver_due()).retried == 1
    assert f"outbox row {rid}" in caplog.text and "socket closed" in caplog.text
    assert "RuntimeError" in (row(engine, rid).last_error or "")


async def test_retry_after_holds_one_chat_while_another_goes_out(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    slow = put(engine, clock, "给王芳", "r:8", person=people["王芳"])
    put(engine, clock, "给张伟", "r:8", person=people["张伟"])
    adapter = LimitedAdapter(failures={"u-王芳": [AdapterError("429", retry_after=30),
                                                  AdapterError("429", retry_after=30)]})
    sender = sender_for(engine, adapter, clock)
    report = await sender.deliver_due()
    assert report.retried == 1 and report.sent == 1 and adapter.texts("u-张伟") == ["给张伟"]
    assert row(engine, slow).next_attempt_at >= clock.now() + timedelta(seconds=30)
    assert sender.limiter.blocked_until("u-王芳") == clock.now().timestamp() + 30
    adapter.failures.clear()
    clock.advance(timedelta(seconds=29))
    await sender.deliver_due()
    assert adapter.texts("u-王芳") == []
    clock.advance(timedelta(seconds=1))
    await sender.deliver_due()
    assert adapter.texts("u-王芳") == ["给王芳"]


async def test_busy_chat_waits_and_does_not_stall_others(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    for n in range(3):
        put(engine, clock, f"王芳{n}", f"b:{n}", person=people["王芳"])
    adapter = LimitedAdapter()
    sender = sender_for(engine, adapter, clock)
    assert (await sender.deliver_due()).sent == 1               # 1 per chat per second
    put(engine, clock, "张伟0", "b:9", person=people["张伟"])
    report = await sender.deliver_due()
    assert report.sent == 1 and adapter.texts("u-张伟") == ["张伟0"]
    assert report.retry_in is not None and 0.9 < report.retry_in <= 1.1
    clock.advance(timedelta(seconds=report.retry_in))
    await sender.deliver_due()
    clock.advance(timedelta(seconds=1.1))
    await sender.deliver_due()
    assert adapter.texts("u-王芳") == ["王芳0", "王芳1", "王芳2"]  # in order


async def test_busy_chat_is_set_aside_so_a_small_batch_reaches_others(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    put(engine, clock, "王芳0", "s:0", person=people["王芳"])
    put(engine, clock, "王芳1", "s:1", person=people["王芳"])
    put(engine, clock, "张伟0", "s:2", person=people["张伟"])
    adapter = LimitedAdapter()
    sender = sender_for(engine, adapter, clock, batch_size=1)
    assert (await sender.deliver_due()).sent == 1
    report = await sender.deliver_due()                     # 王芳1 must wait a second
    assert (report.sent, report.set_aside) == (0, 1) and report.progressed
    assert (await sender.deliver_due()).sent == 1           # the next pass skips 王芳
    assert adapter.texts("u-张伟") == ["张伟0"]


async def test_global_limit_makes_the_pass_wait_for_the_next_second(
        engine: Engine, clock: FakeClock) -> None:
    """Every chat would wait as long: the pass waits for the slots and sends in order."""
    for n in range(35):
        put(engine, clock, f"群消息{n}", f"g:{n}", chat=f"g{n}")
    adapter = LimitedAdapter()
    sender = sender_for(engine, adapter, clock)
    start = clock.now()
    report = await sender.deliver_due()
    assert (report.sent, report.deferred) == (35, 0)
    assert [text for _, text, _ in adapter.sent] == [f"群消息{n}" for n in range(35)]
    assert all(is_group for _, _, is_group in adapter.sent)
    assert clock.now() - start >= timedelta(seconds=1)   # the last five waited a second


class TightAdapter(FakeAdapter):
    limits: ClassVar[tuple[RateWindow, ...]] = (RateWindow("global", 2, 1.0),
                                                RateWindow("chat", 1, 1.0))


async def test_a_nearly_ready_chat_keeps_its_turn_for_the_last_global_slot(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    """Otherwise a younger row of another chat takes the slot and chats drift behind."""
    adapter = TightAdapter()
    sender = sender_for(engine, adapter, clock)
    start = clock.now()
    put(engine, clock, "甲1", "t:1", chat="g-a")
    await sender.deliver_due()
    clock.advance(timedelta(seconds=0.05))
    put(engine, clock, "乙1", "t:2", chat="g-b")
    await sender.deliver_due()
    put(engine, clock, "乙2", "t:3", chat="g-b")       # older: free again at +1.07 s
    put(engine, clock, "丙1", "t:4", chat="g-c")       # younger: a global slot frees at +1.02 s
    clock.set(start + timedelta(seconds=1.03))
    report = await sender.deliver_due()
    assert report.sent == 0 and report.deferred == 2
    clock.set(start + timedelta(seconds=1.08))
    await sender.deliver_due()
    assert [text for _, text, _ in adapter.sent] == ["甲1", "乙1", "乙2", "丙1"]


async def test_a_retrying_row_holds_back_later_rows_to_the_same_person(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    put(engine, clock, "第一条", "o:1", person=people["王芳"])
    adapter = FakeAdapter(failures={"u-王芳": [AdapterError("timeout")]})
    sender = sender_for(engine, adapter, clock)
    put(engine, clock, "第二条", "o:2", person=people["王芳"])
    await sender.deliver_due()
    await sender.deliver_due()
    assert adapter.texts("u-王芳") == []                          # 第二条 waits behind 第一条
    adapter.failures.clear()
    clock.advance(timedelta(minutes=5))
    await sender.deliver_due()
    assert adapter.texts("u-王芳") == ["第一条", "第二条"]


async def test_card_update_edits_the_first_message(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    card = "incident:INC-20261123-001"
    adapter = EditingAdapter()
    sender = sender_for(engine, adapter, clock)
    put(engine, clock, "状态：待确认", "c:1", person=people["王芳"], card=card)
    await sender.deliver_due()
    second = put(engine, clock, "状态：已确认", "c:2", person=people["王芳"], card=card)
    report = await sender.deliver_due()
    assert report.edited == 1 and adapter.edits == [("u-王芳", "m1", "状态：已确认")]
    assert len(adapter.sent) == 1 and row(engine, second).platform_message_id == "m1"
    put(engine, clock, "状态：已办结", "c:3", person=people["王芳"], card=card)
    await sender.deliver_due()
    assert adapter.edits[-1] == ("u-王芳", "m1", "状态：已办结")


async def test_card_update_without_edit_or_after_a_failed_edit_sends_anew(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    for adapter in (FakeAdapter(), EditingAdapter(fail_edit=True)):
        sender = sender_for(engine, adapter, clock)
        key = type(adapter).__name__ + str(adapter.fail_edit)
        put(engine, clock, "v1", f"{key}:1", person=people["王芳"], card=key)
        await sender.deliver_due()
        put(engine, clock, "v2", f"{key}:2", person=people["王芳"], card=key)
        await sender.deliver_due()
        assert adapter.texts("u-王芳") == ["v1", "v2"] and adapter.edits == []


async def test_run_wakes_on_demand_and_stops(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    adapter = FakeAdapter()
    sender = sender_for(engine, adapter, clock)
    sender.idle_seconds = 30.0          # only wake() can make the second message prompt
    stop = asyncio.Event()
    task = asyncio.ensure_future(sender.run(stop))

    async def until_sent(n: int) -> None:
        while len(adapter.sent) < n:
            await asyncio.sleep(0)

    put(engine, clock, "一", "w:1", person=people["王芳"])
    sender.wake()
    await asyncio.wait_for(until_sent(1), 5)
    put(engine, clock, "二", "w:2", person=people["张伟"])
    sender.wake()
    await asyncio.wait_for(until_sent(2), 5)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_postgres_workers_skip_rows_locked_by_another(
        engine: Engine, clock: FakeClock, people: dict[str, int]) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    locked = put(engine, clock, "甲", "l:1", person=people["王芳"])
    put(engine, clock, "乙", "l:2", person=people["王芳"])
    put(engine, clock, "丙", "l:3", person=people["张伟"])
    adapter = FakeAdapter()
    with Session(engine) as other_worker:             # holds a row lock, as a claim in flight
        other_worker.exec(select(OutboxMessage).where(OutboxMessage.id == locked)
                          .with_for_update()).one()
        await sender_for(engine, adapter, clock).deliver_due()
        assert adapter.sent == [("u-张伟", "丙", False)]   # 乙 waits behind the locked 甲
        other_worker.rollback()
    await sender_for(engine, adapter, clock).deliver_due()
    assert adapter.texts("u-王芳") == ["甲", "乙"]


def test_cli_lists_dead_rows_and_retries_them(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        person = make_person(s, "王芳", now=clock.now())
    rid = put(engine, clock, "请于今日17:30前完成核查", "cli:1", person=person.id)
    put(engine, clock, "还在排队", "cli:2", chat="g-duty")
    with session_scope(engine) as s:
        dead = s.get(OutboxMessage, rid)
        assert dead is not None
        dead.status, dead.attempts, dead.last_error = OutboxStatus.dead, 8, "502 Bad Gateway"
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", url)

    assert bot.cli.main(["outbox"]) == 0
    out = capsys.readouterr().out
    assert "待发送 1 条" in out and "已放弃 1 条" in out
    assert f"#{rid}  王芳｜已尝试 8 次" in out and "请于今日17:30前完成核查" in out
    assert "502 Bad Gateway" in out and "群聊 g-duty" in out and "11月23日 09:00" in out
    assert bot.cli.main(["outbox", "--failed", "--limit", "5"]) == 0
    out = capsys.readouterr().out
    assert "王芳" in out and "群聊 g-duty" not in out

    assert bot.cli.main(["outbox", "retry", str(rid)]) == 0
    assert "已放回待发送队列" in capsys.readouterr().out
    assert (row(engine, rid).status, row(engine, rid).attempts) == (OutboxStatus.pending, 0)
    assert bot.cli.main(["outbox", "retry", str(rid)]) == 2
    assert "只有已放弃的消息" in capsys.readouterr().err
    assert bot.cli.main(["outbox", "retry", "999"]) == 1
    assert "找不到" in capsys.readouterr().err
    engine.dispose()
