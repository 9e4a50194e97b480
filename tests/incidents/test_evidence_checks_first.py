"""``/incident evidence 编号 网址`` checks the incident and the person before fetching
(issue 16 item 2): a missing, ended or other unit's incident is refused and the page is
never requested. The address is allow-listed, so only the check can stop the fetch."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from incidents.models import Incident, IncidentStatus
from tests.core.fake_net import http_server, page
from tests.incidents.test_incident_chat import build, number_in


async def test_a_refused_evidence_command_fetches_nothing(engine: Engine) -> None:
    with http_server(page(b"<html>intranet notice</html>")) as (port, seen):
        chat = build(engine, "2026-11-23T10:00", env={"DUTYBOT_INCIDENTS_FETCH_ALLOW": f"127.0.0.1:{port}"})
        url = f"http://127.0.0.1:{port}/"
        number = number_in(await chat.send("/incident new 内容错误 @区政府办 https://www.example.gov.cn/a 错字",
                                           as_="王芳"))
        closed = number_in(await chat.send("/incident new 内容错误 @区政府办 https://www.example.gov.cn/b 错字",
                                           as_="王芳"))
        with Session(engine) as session:
            row = session.exec(select(Incident).where(Incident.number == closed)).one()
            row.status, row.closed_at = IncidentStatus.closed, row.reported_at
            session.add(row)
            session.commit()

        missing = await chat.send(f"/incident evidence 99 {url}", as_="王芳")
        assert "99" in missing and "保全证据" not in missing.split("\n")[0]
        assert "不能再操作" in await chat.send(f"/incident evidence {closed} {url}", as_="王芳")
        other = await chat.send(f"/incident evidence {number} {url}", as_="陈晨")   # 区教育局
        assert f"抱歉，{number} 属于区政府办，您（区教育局）不能保全证据" in other
        assert seen.paths == []
        # The same command by the unit's own officer fetches and keeps the page.
        kept = await chat.send(f"/incident evidence {number} {url}", as_="王芳")
        assert f"已为 {number} 保全证据 1 份" in kept
        assert seen.paths == ["/"]
