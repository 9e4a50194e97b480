"""Keeping evidence (SEC-2): fetching pages from a real local server, storing pages,
attachments and text records, and re-checking them later."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import audit
from core.clock import SHANGHAI
from core.errors import InputError
from core.fetcher import GuardedFetcher
from core.messages import Attachment
from incidents.evidence import (
    EvidenceCheck,
    describe,
    evidence_for,
    store_attachment,
    store_page,
    store_text,
    verify,
)
from incidents.fetch import FetchedPage, fetch_page
from incidents.models import Evidence, Incident
from people.models import Person, Role
from tests.core.fake_net import PUBLIC_IP, FakeResolver, LoopbackNetwork
from tests.factories import make_person

NOW = datetime(2026, 11, 23, 9, 5, tzinfo=SHANGHAI)
NUMBER = "INC-20261123-001"
PAGE = "<html><body><h1>评论区</h1><p>违法有害信息样本</p></body></html>".encode()
NOT_FOUND = b"<html><body>404 Not Found</body></html>"
BIG = 1_200_000
SITE = "evidence.example.test"


class Served:
    """What the local server saw, and a switch that lets slow responses finish."""

    def __init__(self) -> None:
        self.user_agents: list[str] = []
        self.release = threading.Event()


class PageHandler(BaseHTTPRequestHandler):
    served: Served

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              *, length: bool = True, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.served.user_agents.append(self.headers.get("User-Agent", ""))
        if self.path == "/page":
            self._send(200, PAGE)
        elif self.path == "/redirect":
            self._send(302, b"", headers={"Location": "/page"})
        elif self.path == "/missing":
            self._send(404, NOT_FOUND)
        elif self.path == "/big":
            self._send(200, b"x" * BIG, "application/octet-stream")
        elif self.path == "/big-unannounced":
            # HTTP/1.0 without Content-Length: the body ends when the connection closes.
            self._send(200, b"y" * BIG, "text/html", length=False)
        elif self.path == "/huge":
            # Announces 50 MB and then stalls: only the announced length can refuse it fast.
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", "50000000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.served.release.wait(5)
        elif self.path == "/slow":
            self.served.release.wait(5)
            self._send(200, PAGE)
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(200):   # a byte well within each read timeout, never finishing
                if self.served.release.is_set():
                    break
                try:
                    self.wfile.write(b".")
                    self.wfile.flush()
                except OSError:
                    break
                time.sleep(0.05)
        else:
            self._send(404, b"no such test page", "text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    handler = type("Handler", (PageHandler,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        # A public site, as far as the guarded fetcher knows: its name resolves to a public
        # address, and the test network connects to this loopback server instead.
        yield f"http://{SITE}:{httpd.server_address[1]}", served
    finally:
        served.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a developer's HTTP(S)_PROXY must not catch loopback requests.
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c


@pytest.fixture
def db(engine: Engine) -> Iterator[tuple[Session, Incident, Person]]:
    with Session(engine, expire_on_commit=False) as session:
        person = make_person(session, "王芳", roles=(Role.officer,), now=NOW)
        incident = Incident(number=NUMBER, type="illegal", description="政务微博评论区出现违法有害信息",
                            playbook="illegal@1", reported_at=NOW.astimezone(UTC), unit="")
        session.add(incident)
        session.commit()
        yield session, incident, person


async def fetch(url: str, client: httpx.AsyncClient, *, timeout: float = 5,
                max_bytes: int = 10_000_000) -> FetchedPage:
    fetcher = GuardedFetcher(resolver=FakeResolver({SITE: [PUBLIC_IP]}), network=LoopbackNetwork())
    return await fetch_page(url, fetcher=fetcher, timeout=timeout, max_bytes=max_bytes, now=NOW)


# ---- fetching and storing pages ------------------------------------------------------------

async def test_fetch_and_store_a_page(server, client, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, served = server
    session, incident, person = db
    evidence_dir = tmp_path / "evidence"
    page = await fetch(f"{base}/page", client)
    assert (page.status, page.body, page.final_url) == (200, PAGE, f"{base}/page")
    assert page.content_type.startswith("text/html")
    assert page.fetched_at == NOW and page.fetched_at.tzinfo is not None
    assert "dutybot-evidence/1.0" in served.user_agents[-1]
    assert served.user_agents[-1].startswith("Mozilla/5.0")

    ev = store_page(session=session, incident=incident, page=page, evidence_dir=evidence_dir,
                    person=person, actor="王芳")
    digest = hashlib.sha256(PAGE).hexdigest()
    assert ev.id is not None
    assert ev.path == f"{NUMBER}/001-page-{digest[:12]}.html"
    stored = evidence_dir / NUMBER / f"001-page-{digest[:12]}.html"
    assert stored.read_bytes() == PAGE
    assert [p.name for p in (evidence_dir / NUMBER).iterdir()] == [stored.name]  # no temp left
    assert (ev.kind, ev.sha256, ev.size, ev.http_status, ev.url, ev.added_by_id) == (
        "page", digest, len(PAGE), 200, f"{base}/page", person.id)
    assert ev.incident_id == incident.id and ev.filename is None

    events = audit.history(session=session, entity_type="incident", entity_id=NUMBER)
    assert [e.action for e in events] == ["evidence"]
    detail = events[0].details()
    assert detail["evidence_id"] == ev.id
    assert detail["zh"] == "保全证据：" + describe(ev)
    assert detail["zh"].startswith(f"保全证据：网页 {base}/page（HTTP 200，")
    assert "11月23日 09:05" in detail["zh"] and f"SHA-256 {digest[:8]}…" in detail["zh"]
    assert (events[0].actor, events[0].actor_id) == ("王芳", person.id)

    session.commit()   # the row reads back the same (SQLite returns naive instants)
    session.expunge_all()
    again = evidence_for(session=session, incident=incident)
    assert [e.sha256 for e in again] == [digest]
    assert describe(again[0]) == describe(ev)


async def test_redirect_is_followed_and_the_final_address_recorded(server, client, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    session, incident, person = db
    page = await fetch(f"{base}/redirect", client)
    assert (page.url, page.final_url, page.status, page.body) == (
        f"{base}/redirect", f"{base}/page", 200, PAGE)
    ev = store_page(session=session, incident=incident, page=page, evidence_dir=tmp_path,
                    person=person, actor="王芳")
    assert ev.url == f"{base}/redirect"
    event = audit.history(session=session, entity_type="incident", entity_id=NUMBER)[-1]
    assert event.details()["final_url"] == f"{base}/page"


async def test_an_error_page_is_still_kept_with_its_status(server, client, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    session, incident, person = db
    page = await fetch(f"{base}/missing", client)
    assert (page.status, page.body) == (404, NOT_FOUND)
    ev = store_page(session=session, incident=incident, page=page, evidence_dir=tmp_path,
                    person=person, actor="王芳")
    assert ev.http_status == 404
    assert (tmp_path / ev.path).read_bytes() == NOT_FOUND  # type: ignore[operator]
    assert "HTTP 404" in describe(ev)


@pytest.mark.parametrize("url, hint", [
    ("www.example.gov.cn/a", "http:// 或 https://"),
    ("javascript:alert(1)", "http:// 或 https://"),
    ("ftp://www.example.gov.cn/a", "不支持“ftp”"),
    ("file:///etc/passwd", "不支持“file”"),
    ("http://", "缺少域名"),
    ("", "请提供要保全的网址"),
])
async def test_only_http_and_https_are_fetched(url: str, hint: str) -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=b"should not be fetched")

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as c:
        with pytest.raises(InputError) as err:
            await fetch(url, c)
    assert hint in err.value.message
    assert requests == []


async def test_a_body_over_the_limit_is_refused(server, client) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    for path in ("/big", "/big-unannounced"):   # announced by Content-Length, and not
        with pytest.raises(InputError) as err:
            await fetch(f"{base}{path}", client, max_bytes=1_000_000)
        assert f"无法获取网页 {base}{path}：内容超过 1 MB 的上限" in err.value.message
    page = await fetch(f"{base}/big-unannounced", client, max_bytes=BIG)   # exactly fits
    assert len(page.body) == BIG
    with pytest.raises(InputError) as err:   # refused on the announced length, not waited for
        await fetch(f"{base}/huge", client, max_bytes=10_000_000, timeout=0.3)
    assert "内容超过 10 MB 的上限" in err.value.message


async def test_a_slow_server_times_out_in_chinese(server, client) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    started = time.monotonic()
    with pytest.raises(InputError) as err:
        await fetch(f"{base}/slow", client, timeout=0.2)
    assert err.value.message.startswith(f"无法获取网页 {base}/slow：")
    assert "超时" in err.value.message
    assert time.monotonic() - started < 3


async def test_a_trickling_server_is_cut_off_as_a_whole(server, client) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    started = time.monotonic()
    with pytest.raises(InputError) as err:
        await fetch(f"{base}/drip", client, timeout=0.2)
    assert "下载超时" in err.value.message
    assert time.monotonic() - started < 3


async def test_connection_refused_is_explained(client) -> None:  # type: ignore[no-untyped-def]
    # A port bound but not listening refuses connections, and stays ours meanwhile (a port
    # closed again could be taken by a server of another test running in parallel).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(InputError) as err:
            await fetch(f"http://{SITE}:{port}/", client, timeout=1)
    assert err.value.message == f"无法获取网页 http://{SITE}:{port}/：连接被拒绝"


# ---- attachments and text ------------------------------------------------------------------

async def test_store_attachments_and_text_numbered_in_order(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, incident, person = db
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 245_752
    photo = store_attachment(
        session=session, incident=incident, evidence_dir=tmp_path, person=person, actor="王芳",
        now=NOW, note="首页截图",
        attachment=Attachment("screenshot.png", png, "image/png", "photo"))
    text = store_text(session=session, incident=incident, text="  评论区第3楼：某某违法言论  ",
                      person=None, actor="system", now=NOW)
    doc = store_attachment(
        session=session, incident=incident, evidence_dir=tmp_path, person=person, actor="王芳",
        now=NOW, attachment=Attachment("通报.pdf", b"%PDF-1.4 test", "application/pdf", "file"))

    digest = hashlib.sha256(png).hexdigest()
    assert photo.path == f"{NUMBER}/001-photo-{digest[:12]}.png"
    assert (tmp_path / photo.path).read_bytes() == png
    assert (photo.kind, photo.filename, photo.size, photo.sha256, photo.text) == (
        "photo", "screenshot.png", len(png), digest, "首页截图")
    assert describe(photo) == f"照片 screenshot.png（245.8 KB，SHA-256 {digest[:8]}…）：首页截图"

    assert (text.kind, text.path, text.text) == ("text", None, "评论区第3楼：某某违法言论")
    assert text.sha256 == hashlib.sha256("评论区第3楼：某某违法言论".encode()).hexdigest()
    assert text.size == len("评论区第3楼：某某违法言论".encode())
    assert describe(text) == "文字记录：评论区第3楼：某某违法言论"

    assert re.fullmatch(rf"{NUMBER}/003-file-[0-9a-f]{{12}}\.pdf", doc.path or "")
    assert describe(doc).startswith("文件 通报.pdf（13 字节，SHA-256 ")

    assert [e.id for e in evidence_for(session=session, incident=incident)] == [
        photo.id, text.id, doc.id]
    events = audit.history(session=session, entity_type="incident", entity_id=NUMBER)
    assert [e.details()["evidence_id"] for e in events] == [photo.id, text.id, doc.id]
    assert events[1].details()["zh"] == "保全证据：文字记录：评论区第3楼：某某违法言论"
    assert (events[1].actor, events[1].actor_id) == ("system", None)


async def test_an_untrusted_filename_never_leaves_the_evidence_directory(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, incident, person = db
    evidence_dir = tmp_path / "box" / "evidence"
    for name in ("../../etc/passwd", "..\\..\\boot.ini", "/abs/olute.txt", "x\u202egnp.exe",
                 "长" * 300 + ".png", "..", ""):
        ev = store_attachment(session=session, incident=incident, evidence_dir=evidence_dir,
                              person=person, actor="王芳", now=NOW,
                              attachment=Attachment(name, name.encode() + b"!", "application/octet-stream"))
        stored = (evidence_dir / ev.path).resolve()  # type: ignore[operator]
        assert stored.parent == (evidence_dir / NUMBER).resolve()
        assert re.fullmatch(r"\d{3}-file-[0-9a-f]{12}\.[a-z0-9]+", stored.name)
        assert ev.filename is None or ("/" not in ev.filename and "\\" not in ev.filename)
        assert ev.filename is None or len(ev.filename) <= 200
    rows = evidence_for(session=session, incident=incident)
    assert [r.filename for r in rows][:4] == ["passwd", "boot.ini", "olute.txt", "xgnp.exe"]
    assert rows[4].filename == "长" * 200
    assert rows[5].filename is None and rows[6].filename is None
    assert [p.name for p in (tmp_path / "box").iterdir()] == ["evidence"]  # nothing else written
    assert len(list((evidence_dir / NUMBER).iterdir())) == 7


async def test_text_and_attachment_limits(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, incident, person = db
    for bad in ("", "   \n ", "字" * 2001):
        with pytest.raises(InputError):
            store_text(session=session, incident=incident, text=bad, person=person,
                       actor="王芳", now=NOW)
    assert store_text(session=session, incident=incident, text="字" * 2000, person=person,
                      actor="王芳", now=NOW).size == 6000
    with pytest.raises(InputError, match="空"):
        store_attachment(session=session, incident=incident, evidence_dir=tmp_path,
                         person=person, actor="王芳", now=NOW, attachment=Attachment("a.png", b""))
    long_text = "长" * 100
    assert describe(Evidence(incident_id=1, kind="text", text=long_text, sha256="", captured_at=NOW)) \
        == "文字记录：" + "长" * 60 + "……"


async def test_nothing_is_committed_by_the_store_functions(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, incident, person = db
    store_text(session=session, incident=incident, text="待回滚的记录", person=person,
               actor="王芳", now=NOW)
    session.rollback()
    assert evidence_for(session=session, incident=incident) == []
    assert audit.history(session=session, entity_type="incident", entity_id=NUMBER) == []


async def test_a_number_left_by_a_rolled_back_file_is_not_reused(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, incident, person = db
    first = store_attachment(session=session, incident=incident, evidence_dir=tmp_path,
                             person=person, actor="王芳", now=NOW,
                             attachment=Attachment("a.png", b"first", "image/png", "photo"))
    session.rollback()   # the row is gone, the file stays (kept evidence is never deleted)
    assert (tmp_path / first.path).read_bytes() == b"first"  # type: ignore[operator]
    second = store_attachment(session=session, incident=incident, evidence_dir=tmp_path,
                              person=person, actor="王芳", now=NOW,
                              attachment=Attachment("b.png", b"second", "image/png", "photo"))
    assert second.path.startswith(f"{NUMBER}/002-photo-")  # type: ignore[union-attr]
    assert (tmp_path / first.path).read_bytes() == b"first"  # type: ignore[operator]


# ---- verifying -----------------------------------------------------------------------------

async def test_verify_reports_changed_and_missing_files(server, client, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    session, incident, person = db
    page = store_page(session=session, incident=incident, page=await fetch(f"{base}/page", client),
                      evidence_dir=tmp_path, person=person, actor="王芳")
    photo = store_attachment(session=session, incident=incident, evidence_dir=tmp_path,
                             person=person, actor="王芳", now=NOW,
                             attachment=Attachment("shot.png", b"\x89PNG pixels", "image/png", "photo"))
    text = store_text(session=session, incident=incident, text="留言原文", person=person,
                      actor="王芳", now=NOW)
    session.commit()

    def problems() -> list[tuple[int | None, bool, str]]:
        checks = verify(session=session, incident=incident, evidence_dir=tmp_path)
        assert all(isinstance(c, EvidenceCheck) for c in checks)
        return [(c.evidence.id, c.ok, c.problem) for c in checks]

    assert problems() == [(page.id, True, ""), (photo.id, True, ""), (text.id, True, "")]

    (tmp_path / photo.path).write_bytes(b"\x89PNG edited")  # type: ignore[operator]
    assert problems()[1] == (photo.id, False, "内容已被改动（SHA-256 不符）")

    (tmp_path / page.path).unlink()  # type: ignore[operator]
    assert problems()[0] == (page.id, False, "文件缺失")

    text.text = "留言原文（已改）"
    session.add(text)
    session.commit()
    assert problems() == [(page.id, False, "文件缺失"),
                          (photo.id, False, "内容已被改动（SHA-256 不符）"),
                          (text.id, False, "内容已被改动（SHA-256 不符）")]


async def test_verify_refuses_a_path_that_points_outside(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, incident, person = db
    evidence_dir = tmp_path / "evidence"
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    ev = store_attachment(session=session, incident=incident, evidence_dir=evidence_dir,
                          person=person, actor="王芳", now=NOW,
                          attachment=Attachment("a.txt", b"secret", "text/plain"))
    ev.path = "../outside.txt"   # a tampered row
    session.add(ev)
    session.flush()
    [check] = verify(session=session, incident=incident, evidence_dir=evidence_dir)
    assert (check.ok, check.problem) == (False, "文件路径无效")
