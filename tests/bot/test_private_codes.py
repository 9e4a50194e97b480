"""Binding codes and phone numbers stay out of group chats (issue 16 item 3): ``/people``
in a group answers the admin privately and tells the group 已私信发送; an admin the bot
cannot reach privately is asked to use the private chat, and no code is made."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import parse_local
from people.models import ChatIdentity, InviteCode, Person
from tests.incidents.test_incident_chat import build

GROUP = "g-duty"


async def test_invite_and_list_in_a_group_go_to_the_admin_privately(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    said = await chat.send("/people invite 李强", as_="张伟", group=GROUP)
    assert said == "已私信发送。"
    with Session(engine) as session:
        code = session.exec(select(InviteCode)).one().code
    assert code in chat.last("张伟") and "李强 的绑定码" in chat.last("张伟")
    listed = await chat.send("/people list", as_="张伟", group=GROUP)
    assert listed == "已私信发送。" and "13800000000" in chat.last("张伟")
    in_group = [d.text for d in chat.adapter.delivered if d.chat_id == GROUP]
    assert all(code not in t and "13800000000" not in t for t in in_group)
    # In the private chat nothing changes.
    assert "人员名单" in await chat.send("/people list", as_="张伟")


async def test_an_admin_without_a_private_chat_is_asked_to_use_one(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    with Session(engine) as session:
        admin = session.exec(select(Person).where(Person.name == "张伟")).one()
        identity = session.exec(select(ChatIdentity).where(ChatIdentity.person_id == admin.id)).one()
        identity.blocked_at = parse_local("2026-11-23T09:00")     # blocks the bot's private chat
        session.add(identity)
        session.commit()
    said = await chat.send("/people invite 李强", as_="张伟", group=GROUP)
    assert "请在与机器人的私聊中发送该命令" in said
    with Session(engine) as session:
        assert session.exec(select(InviteCode)).all() == []


async def test_whoami_in_a_group_hides_the_phone(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    said = await chat.send("/whoami", as_="王芳", group=GROUP)
    assert "值班员" in said and "13800000000" not in said and "群聊中不显示" in said
    assert "13800000000" in await chat.send("/whoami", as_="王芳")
