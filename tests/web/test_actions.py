"""The board's three actions go through the chat's domain path: the audit log records them as
from chat (same action, actor and wording), the escalation stops, and the incident's chat
cards are edited in place (MemoryAdapter edits)."""

from __future__ import annotations

from sqlmodel import Session, select

from core import audit
from core.schedule import DueItem, DueStatus
from incidents.models import IncidentStep
from tests.web.conftest import Rig


def timeline(rig: Rig, number: str) -> list[tuple[str, str, str]]:
    with Session(rig.engine) as session:
        return [(e.action, e.actor, str(e.details().get("zh", ""))) for e in
                audit.history(session=session, entity_type="incident", entity_id=number)]


def pending_runs(rig: Rig, number: str, prefix: str) -> list[str]:
    with Session(rig.engine) as session:
        return [d.key for d in session.exec(select(DueItem).where(DueItem.ref == f"incident:{number}",
                                                                  DueItem.status == DueStatus.pending))
                if d.key.split(":", 2)[-1].startswith(prefix) or prefix in d.key]


async def test_acknowledge_on_the_board_is_recorded_as_in_chat_and_edits_the_chat_card(rig: Rig) -> None:
    mine, theirs = rig.numbers["区教育局"], rig.numbers["区卫健委"]
    assert pending_runs(rig, mine, "ack")
    client = await rig.sign_in("李强")
    got = await rig.post(client, f"/web/incidents/{mine}/ack")
    assert got.status_code == 303
    page = await client.get(got.headers["location"])
    assert "已确认，升级提醒已停止" in page.text and "确认：李强" in page.text
    await rig.app.drain()
    # The reporter's card in chat is edited in place, not sent again.
    card = next(d for d in rig.adapter.delivered if d.chat_id == "u-王芳" and d.card_key == f"incident:{mine}")
    assert card.edits and "【已确认】李强" in card.text and "已确认" in card.text.splitlines()[0]
    assert not pending_runs(rig, mine, "ack")
    # The same acknowledgement typed in chat, on the other unit's incident, by its leader.
    await rig.chat.send(f"/incident ack {theirs}", as_="孙丽")
    web_event, chat_event = timeline(rig, mine)[-1], timeline(rig, theirs)[-1]
    assert web_event[:2] == ("acknowledged", "李强") and chat_event[:2] == ("acknowledged", "孙丽")
    assert web_event[2] == chat_event[2] == "确认收到（报告后不到1分钟）"


async def test_take_and_step_done_on_the_board(rig: Rig) -> None:
    number = rig.numbers["区教育局"]
    client = await rig.sign_in("李强")
    taken = await rig.post(client, f"/web/incidents/{number}/take")
    assert taken.status_code == 303
    page = await client.get(taken.headers["location"])
    assert "已由您负责处置" in page.text and "负责人：李强" in page.text and "处置中" in page.text
    done = await rig.post(client, f"/web/incidents/{number}/done", {"step": "1", "note": "已删除"})
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "步骤已完成" in page.text and "已完成 11月23日 10:00（李强）" in page.text
    actions = [a for a, _, _ in timeline(rig, number)]
    # Step 2 is optional: with step 1 done every required step is, as in chat.
    assert actions[-4:] == ["acknowledged", "taken", "step_done", "resolved"]
    assert timeline(rig, number)[-2][1:] == ("李强", "完成步骤1：第一时间删除敏感信息；备注：已删除")
    with Session(rig.engine) as session:
        step = session.exec(select(IncidentStep).where(IncidentStep.seq == 1,
                                                       IncidentStep.incident_id == rig.incident("区教育局").id)).one()
    assert step.status == "done"
    await rig.app.drain()
    card = next(d for d in rig.adapter.delivered if d.chat_id == "u-王芳" and d.card_key == f"incident:{number}")
    assert "处置中" in card.text.splitlines()[0] or "李强" in card.text


async def test_a_refused_step_shows_the_chat_reason_and_changes_nothing(rig: Rig) -> None:
    number = rig.numbers["区教育局"]
    client = await rig.sign_in("李强")
    before = timeline(rig, number)
    got = await rig.post(client, f"/web/incidents/{number}/done", {"step": "9"})
    assert got.status_code == 409 and "没有步骤“9”" in got.text
    assert timeline(rig, number) == before
    assert rig.incident("区教育局").acknowledged_at is None


async def test_a_closed_incident_offers_no_actions_and_refuses_them(rig: Rig) -> None:
    number = rig.numbers["区教育局"]
    await rig.chat.send(f"/incident cancel {number} 重复登记", as_="李强")
    client = await rig.sign_in("李强")
    page = await client.get(f"/web/incidents/{number}")
    assert page.status_code == 200 and 'id="ack"' not in page.text and "已撤销" in page.text
    got = await rig.post(client, f"/web/incidents/{number}/take")
    assert got.status_code == 409 and "不能再操作" in got.text
    assert timeline(rig, number)[-1][0] == "cancelled"
