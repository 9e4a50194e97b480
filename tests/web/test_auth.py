"""Signing in to the web board: /web sends a one-time link privately; it works once, for
[web] link_minutes; the session cookie is HttpOnly and SameSite=Strict (Secure over https)
and ends after [web] session_hours or when revoked; every POST needs the CSRF token and the
board's own Origin. The clock is moved, nothing sleeps."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryChat
from bot.config import load_settings
from bot.http import HttpService
from bot.web import auth
from bot.web.models import WebLoginLink, WebSession
from bot.web.routes import web_routes
from bot.web.settings import WebSettings
from core.clock import FakeClock, parse_local
from core.errors import ConfigError
from tests.web.conftest import BASE, Rig, build_app, link_in, web_env


async def test_web_in_private_chat_sends_a_link_that_signs_in_once(rig: Rig) -> None:
    reply = await rig.chat.send("/web", as_="李强")
    assert "10 分钟内有效，只能使用一次" in reply
    path = link_in(reply).removeprefix(BASE)
    client = rig.client()
    shown = await client.get(path)           # what a link preview fetches: nothing is spent
    assert shown.status_code == 200 and "进入值班看板" in shown.text
    signed = await client.post(path, data={"go": "1"}, headers={"Origin": BASE})
    assert signed.status_code == 303 and signed.headers["location"] == "/web/duty"
    board = await client.get("/web/duty")
    assert board.status_code == 200 and "李强｜区教育局" in board.text
    again = await rig.client().post(path, data={"go": "1"}, headers={"Origin": BASE})
    assert again.status_code == 410 and "只能使用一次" in again.text
    assert (await rig.client().get(path)).status_code == 410


async def test_session_cookie_is_httponly_strict_and_not_secure_over_http(rig: Rig) -> None:
    client = rig.client()
    got = await client.post(await rig.link("李强"), data={"go": "1"}, headers={"Origin": BASE})
    cookie = got.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/web" in cookie
    assert "max-age=43200" in cookie and "secure" not in cookie


def test_https_base_url_makes_the_cookie_secure() -> None:
    web = WebSettings(enabled=True, base_url="https://duty.example.gov.cn/")
    assert web.secure and web.origin == "https://duty.example.gov.cn"
    assert not WebSettings(base_url="http://127.0.0.1:8080").secure


async def test_an_expired_link_is_refused(rig: Rig) -> None:
    path = await rig.link("李强")
    rig.clock.advance(timedelta(minutes=10, seconds=1))
    got = await rig.client().post(path, data={"go": "1"}, headers={"Origin": BASE})
    assert got.status_code == 410 and "请在聊天中重新发送 /web" in got.text


async def test_a_session_ends_after_session_hours(rig: Rig) -> None:
    client = await rig.sign_in("李强")
    rig.clock.advance(timedelta(hours=11, minutes=59))
    assert (await client.get("/web/incidents")).status_code == 200
    rig.clock.advance(timedelta(minutes=2))
    got = await client.get("/web/incidents")
    assert got.status_code == 401 and "发送 /web" in got.text


async def test_only_hashes_of_tokens_are_stored(rig: Rig) -> None:
    path = await rig.link("李强")
    token = path.rsplit("/", 1)[1]
    client = rig.client()
    got = await client.post(path, data={"go": "1"}, headers={"Origin": BASE})
    cookie = got.cookies["dutybot_web"]
    with Session(rig.engine) as session:
        links = [row.token_hash for row in session.exec(select(WebLoginLink))]
        sessions = [row.token_hash for row in session.exec(select(WebSession))]
    assert hashlib.sha256(token.encode()).hexdigest() in links and token not in links
    assert sessions == [hashlib.sha256(cookie.encode()).hexdigest()]


async def test_web_in_a_group_answers_privately(rig: Rig) -> None:
    reply = await rig.chat.send("/web", as_="李强", group="g-duty")
    assert reply == "已私信发送。"
    assert "/web/login/" not in reply
    assert "/web/login/" in rig.chat.last("李强")


async def test_external_and_support_people_get_no_link(rig: Rig) -> None:
    for name in ("老许", "孙工"):
        reply = await rig.chat.send("/web", as_=name)
        assert "/web/login/" not in reply
        assert "值班看板只供" in reply or "外部联系人，不使用本机器人" in reply


async def test_web_not_enabled_says_what_to_configure(engine: Engine) -> None:
    app, adapter = build_app(engine, FakeClock(parse_local("2026-11-23T10:00")), env={})
    reply = await MemoryChat(app, adapter).send("/web", as_="李强")
    assert "值班看板未启用" in reply and "[web]" in reply
    assert web_routes(app) == []


async def test_revoked_session_is_signed_out(rig: Rig) -> None:
    client = await rig.sign_in("李强")
    with Session(rig.engine) as session:
        (row, person), = auth.live_sessions(session=session, now=rig.clock.now())
        assert person.name == "李强"
        assert auth.revoke(session=session, now=rig.clock.now(), actor="张伟", session_id=row.id) == 1
        session.commit()
    assert (await client.get("/web/duty")).status_code == 401


async def test_sign_out_ends_the_session(rig: Rig) -> None:
    client = await rig.sign_in("李强")
    out = await rig.post(client, "/web/logout")
    assert out.status_code == 200 and "已退出" in out.text
    assert (await client.get("/web/duty")).status_code == 401


async def test_a_post_without_the_csrf_token_or_from_elsewhere_changes_nothing(rig: Rig) -> None:
    client = await rig.sign_in("李强")
    number = rig.numbers["区教育局"]
    no_token = await client.post(f"/web/incidents/{number}/ack", data={"go": "1"}, headers={"Origin": BASE})
    wrong = await rig.post(client, f"/web/incidents/{number}/ack", csrf="0" * 40)
    other_site = await rig.post(client, f"/web/incidents/{number}/ack", origin="https://evil.example.com")
    no_origin = await rig.post(client, f"/web/incidents/{number}/ack", origin=None)
    for got in (no_token, wrong, other_site, no_origin):
        assert got.status_code == 403 and "已拒绝" in got.text
    assert rig.incident("区教育局").acknowledged_at is None
    json_body = await client.post(f"/web/incidents/{number}/ack", json={"csrf": "x"}, headers={"Origin": BASE})
    assert json_body.status_code == 400


async def test_a_link_for_another_board_origin_is_refused_without_origin(rig: Rig) -> None:
    path = await rig.link("李强")
    got = await rig.client().post(path, data={"go": "1"}, headers={"Origin": "https://evil.example.com"})
    assert got.status_code == 403
    good = await rig.client().post(path, data={"go": "1"}, headers={"Origin": BASE})
    assert good.status_code == 303       # the refused attempt did not spend the link


async def test_pages_say_how_to_sign_in_without_a_cookie(rig: Rig) -> None:
    got = await rig.client().get("/web/incidents")
    assert got.status_code == 401 and "/web" in got.text
    bogus = rig.client()
    bogus.cookies.set("dutybot_web", "not-a-session", domain="dutybot.test", path="/web")
    assert (await bogus.get("/web/duty")).status_code == 401


async def test_the_http_service_serves_the_board_only_when_enabled(engine: Engine, tmp_path: object) -> None:
    settings = load_settings(None, env=web_env(DUTYBOT_WEB_ENABLED="false"))
    assert settings.web.enabled is False
    clock = FakeClock(parse_local("2026-11-23T10:00"))
    app, _ = build_app(engine, clock)
    service = HttpService(host="127.0.0.1", port=0, routes=web_routes(app), health=app.health)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url=BASE) as client:
        css = await client.get("/web/static/board.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        page = await client.get("/web/duty")
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_a_deactivated_persons_session_and_links_stop_working(rig: Rig) -> None:
    client = await rig.sign_in("李强")
    unused = await rig.link("李强")
    await rig.chat.send("/people deactivate 李强 交接 王芳", as_="张伟")
    assert (await client.get("/web/duty")).status_code == 401
    assert (await rig.client().post(unused, data={"go": "1"}, headers={"Origin": BASE})).status_code == 410


def test_a_bad_base_url_is_a_chinese_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(None, env=web_env(DUTYBOT_WEB_BASE_URL="duty.example.gov.cn"))
    assert "web.base_url" in exc.value.message and "https://" in exc.value.message
