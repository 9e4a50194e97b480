"""``dutybot web sessions`` lists who is signed in to the board, ``dutybot web revoke`` signs
them out, ``dutybot web ical`` makes and stops a person's subscription address."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.app import open_database
from bot.cli import main
from bot.config import load_settings
from bot.web import auth
from core.clock import SystemClock
from people.models import Role
from tests.factories import make_person


def signed_in(*names: str) -> None:
    """``names`` each signed in once (through a link, as the board does)."""
    engine = open_database(load_settings(None, env={}))
    now = SystemClock().now()
    with Session(engine) as session:
        for name in names:
            person = make_person(session, name, roles=(Role.leader,), now=now, unit="区教育局")
            token = auth.issue_link(session=session, person=person, now=now, minutes=10)
            auth.redeem_link(session=session, token=token, now=now, hours=12, user_agent="Mozilla/5.0 测试")
        session.commit()
    engine.dispose()


def test_sessions_are_listed_and_revoked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "sessions"]) == 0
    assert "当前没有登录值班看板的会话" in capsys.readouterr().out
    signed_in("李强", "孙丽")
    assert main(["web", "sessions"]) == 0
    out = capsys.readouterr().out
    assert "共 2 个" in out and "#1  李强（区教育局）" in out and "#2  孙丽" in out
    assert main(["web", "revoke", "1"]) == 0
    assert "已撤销 1 个会话" in capsys.readouterr().out
    assert main(["web", "revoke", "1"]) == 1
    assert "没有可撤销的会话" in capsys.readouterr().out
    assert main(["web", "revoke", "--person", "孙丽"]) == 0
    main(["web", "sessions"])
    assert "当前没有登录值班看板的会话" in capsys.readouterr().out


def test_revoke_needs_exactly_one_choice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "revoke"]) != 0
    assert "三者选一" in capsys.readouterr().err
    signed_in("李强")
    assert main(["web", "revoke", "--all"]) == 0
    assert "已撤销 1 个会话" in capsys.readouterr().out


def test_ical_address_made_and_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    signed_in("李强")
    assert main(["web", "ical", "李强"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8080/web/ical/" in out and "[web] enabled 未开启" in out
    assert main(["web", "ical", "李强", "--revoke"]) == 0
    assert "已停用 李强 的值班日历订阅地址" in capsys.readouterr().out
    assert main(["web", "ical", "李强", "--revoke"]) == 0
    assert "没有在用的订阅地址" in capsys.readouterr().out
