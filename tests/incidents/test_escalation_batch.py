"""Escalations that share a transaction share their people lookups (issue 21), and never
past it: a person who leaves between two ticks, or earlier in the same transaction, is no
longer pinged. The outbox's one-statement enqueue keeps one row per event and recipient,
and goes when its savepoint is rolled back."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.db import session_scope
from core.messages import Outbound
from core.outbox import Deferred, OutboxMessage, enqueue, enqueue_all
from core.schedule import DueItem, DueStatus
from incidents.escalation import Escalator
from incidents.escalation_batch import begin, incident_with_steps, people_by_id, prefetch
from people.models import Person, Role
from tests.factories import make_person

START = "2026-11-23T10:00"


def build(engine: Engine) -> MemoryChat:
    clock = FakeClock(parse_local(START))
    with Session(engine) as session:
        for name, role, unit in (("王芳", Role.officer, "区政府办"), ("李强", Role.leader, "区政府办"),
                                 ("孙丽", Role.leader, "区政府办"), ("赵敏", Role.principal, "区政府办"),
                                 ("张伟", Role.admin, "区政府办"), ("刘洋", Role.officer, "区政府办公室")):
            make_person(session, name, roles=(role,), now=clock.now(), unit=unit)
        session.commit()
    adapter = MemoryAdapter()
    settings = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋"})
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


async def report(chat: MemoryChat, site: str) -> str:
    reply = await chat.send(f"/incident new 无法访问 @区政府办 https://{site}.example.gov.cn 首页502", as_="王芳")
    assert "已登记 " in reply, reply
    return reply.split("已登记 ")[1].split("（")[0]


def leave(session: Session, name: str) -> None:
    person = session.exec(select(Person).where(Person.name == name)).one()
    person.active = False
    session.add(person)


def leader_pings(chat: MemoryChat, name: str, number: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith("【事件升级·") and number in m]


def queued_to(engine: Engine, prefix: str) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.event_key).startswith(prefix))
                            .order_by(col(OutboxMessage.id))).all()
        names = {p.id: p.name for p in session.exec(select(Person))}
        return [names[r.person_id] for r in rows if r.person_id is not None]


async def test_a_leader_who_leaves_between_two_ticks_is_not_pinged_by_the_second(engine: Engine) -> None:
    chat = build(engine)
    first = await report(chat, "www")
    await chat.app.advance_to(parse_local("2026-11-23T10:05"))
    second = await report(chat, "jyj")
    await chat.app.advance_to(parse_local("2026-11-23T10:16"))   # the first one's leader rung
    assert leader_pings(chat, "孙丽", first) and leader_pings(chat, "李强", first)
    with session_scope(chat.app.engine) as session:
        leave(session, "孙丽")
    await chat.app.advance_to(parse_local("2026-11-23T10:21"))   # the second one's
    assert leader_pings(chat, "李强", second)
    assert not leader_pings(chat, "孙丽", second)


async def test_a_leader_who_leaves_within_the_transaction_is_not_pinged_after(engine: Engine) -> None:
    # Two escalations in one transaction, as in a chunk of the scheduler: between them a
    # leader leaves (pending, then flushed); the second escalation no longer pings them.
    chat = build(engine)
    numbers = [await report(chat, f"site{n}") for n in range(3)]
    app = chat.app
    escalate = Escalator(app.profile, app.incident_policy)
    now = parse_local("2026-11-23T10:16")
    with session_scope(app.engine) as session:
        items = [session.exec(select(DueItem).where(DueItem.key == f"incident:{n}:ack:-:general:1:0")).one()
                 for n in numbers]
        for index, item in enumerate(items):
            with session.begin_nested():
                escalate(session, item, now)
                item.status = DueStatus.done
                session.add(item)
            session.flush()
            session.expunge_all()
            if index == 0:
                leave(session, "孙丽")               # pending: not flushed yet
            elif index == 1:
                leave(session, "李强")
                session.flush()
    assert sorted(queued_to(app.engine, f"incident:{numbers[0]}:ack:")) == ["孙丽", "李强"]
    assert queued_to(app.engine, f"incident:{numbers[1]}:ack:") == ["李强"]
    # Nobody left on the rung: the escalation climbs to the next one that has someone.
    assert "孙丽" not in queued_to(app.engine, f"incident:{numbers[2]}:ack:")
    assert "李强" not in queued_to(app.engine, f"incident:{numbers[2]}:ack:")


@pytest.mark.parametrize("held", [False, True], ids=["at-once", "held"])
def test_one_statement_enqueue_keeps_one_row_per_event_and_recipient(engine: Engine, held: bool) -> None:
    """The same with the rows held back (core.outbox.Deferred, as a chunk of escalations
    run at once queues them): what is read, kept and rolled back is the same."""
    with Session(engine) as session:
        ids = [make_person(session, name, now=parse_local(START)).id for name in ("王芳", "李强")]
        session.commit()
    now = parse_local(START)
    with session_scope(engine) as session, Deferred(session) if held else contextlib.nullcontext() as holder:
        enqueue_all(session=session, now=now, event_key="e:1",
                    messages=[Outbound("一", person_id=i) for i in (*ids, ids[0])])
        enqueue_all(session=session, now=now, event_key="e:1", messages=[Outbound("二", person_id=ids[1])])
        assert enqueue(session=session, now=now, event_key="e:1", message=Outbound("三", person_id=ids[0])) is None
        with session.begin_nested() as savepoint:     # an item that fails: its rows go with it
            enqueue_all(session=session, now=now, event_key="e:2", messages=[Outbound("四", person_id=ids[0])])
            savepoint.rollback()
        enqueue(session=session, now=now, event_key="e:3", message=Outbound("五", person_id=ids[0]))
        enqueue_all(session=session, now=now, event_key="e:3", messages=[Outbound("六", person_id=ids[0])])
        if holder is not None:
            holder.write()
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [(r.event_key, r.person_id, r.text, r.status) for r in rows] == [
        ("e:1", ids[0], "一", "pending"), ("e:1", ids[1], "一", "pending"), ("e:3", ids[0], "五", "pending")]


def outbox_rows(engine: Engine) -> list[tuple[str, int | None, str]]:
    with Session(engine) as session:
        return [(r.event_key, r.person_id, r.text)
                for r in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))]


def test_held_rows_go_in_one_insert_and_not_at_all_when_the_block_fails(engine: Engine) -> None:
    with Session(engine) as session:
        ids = [make_person(session, name, now=parse_local(START)).id for name in ("王芳", "李强")]
        session.commit()
    now = parse_local(START)
    inserts: list[int] = []

    def seen(_conn: object, _cursor: object, statement: str, params: object, *_args: object) -> None:
        if statement.startswith("INSERT INTO outbox_message"):
            inserts.append(len(params) if isinstance(params, list) else 1)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(engine) as session, Deferred(session) as holder:
            for n in range(3):
                enqueue_all(session=session, now=now, event_key=f"e:{n}",
                            messages=[Outbound(f"第{n}条", person_id=i) for i in ids])
            assert inserts == []            # held
            holder.write()
        assert inserts == [6]               # all six with one statement
        assert len(outbox_rows(engine)) == 6
        with pytest.raises(RuntimeError), session_scope(engine) as session, Deferred(session):
            enqueue_all(session=session, now=now, event_key="e:9", messages=[Outbound("不发", person_id=ids[0])])
            raise RuntimeError("the chunk failed")
        assert inserts == [6] and len(outbox_rows(engine)) == 6
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def test_steps_read_ahead_for_a_chunk_are_read_again_once_one_is_removed(engine: Engine) -> None:
    """What ``prefetch`` read stands for the transaction, but not past a step added or
    removed in it: the incident's steps are read again."""
    chat = build(engine)
    number = await report(chat, "www")
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    with session_scope(chat.app.engine) as session:
        prefetch(session, [number])
        begin(session)
        event.listen(chat.app.engine, "before_cursor_execute", seen)
        try:
            steps = incident_with_steps(session, number)[1]
            assert len(steps) > 1 and statements == []                 # from what was read ahead
            session.delete(steps[-1])
            assert incident_with_steps(session, number)[1] == steps[:-1]
            assert any("incident_step" in s for s in statements)     # read again
        finally:
            event.remove(chat.app.engine, "before_cursor_execute", seen)
        session.rollback()


def test_people_the_session_holds_are_not_read_again_unless_stale(engine: Engine) -> None:
    """``people_by_id`` answers from the session's own loaded objects (a new incident's
    ping names the people its ladder snapshot just read) — exactly what a query would
    return — and asks the database for the rest, and for objects a rolled-back savepoint
    expired or the session is deleting."""

    with Session(engine) as session:
        ids = [make_person(session, name, roles=(Role.officer,), now=parse_local(START)).id
               for name in ("王芳", "李强")]
        unbound = Person(name="孙丽", roles="officer", created_at=parse_local(START))   # no chat account
        session.add(unbound)
        session.commit()
        ids.append(unbound.id)
    wang, li, sun = ids
    assert wang is not None and li is not None and sun is not None
    selects: list[list[object]] = []   # each SELECT's parameters

    def seen(_conn: object, _cursor: object, statement: str, parameters: object, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(list(parameters.values()) if isinstance(parameters, dict)
                           else list(parameters))   # type: ignore[call-overload]

    with Session(engine) as session:
        held = session.exec(select(Person).where(Person.name == "王芳")).one()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert set(people_by_id(session, [wang, li])) == {wang, li}
            assert selects == [[li]]                # only 李强 is read
            selects.clear()
            held.active = False                     # a pending change is the session's view
            assert people_by_id(session, [wang])[wang].active is False and selects == []
            with session.begin_nested() as nested:
                held.name = "王芳芳"
                session.flush()
                nested.rollback()                   # expires what the savepoint touched
            assert people_by_id(session, [wang])[wang].name == "王芳" and len(selects) == 1
            session.delete(session.get(Person, sun))
            assert people_by_id(session, [sun]) == {}   # the query flushes the delete first
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        session.rollback()
