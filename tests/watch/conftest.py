"""A fixture website on 127.0.0.1 for the site-watch tests.

``site_server`` serves a table of ``path -> Reply`` (status, headers, body, delay) that a
test may change between requests, and records every request (path, User-Agent). The site
it serves is registered as an intranet site (``site_server.site(session)``), so the guarded
fetcher may read it; nothing here reaches beyond the machine. ``make_site_server`` gives
more servers (an external site, an HTTPS one with a test certificate).
"""

from __future__ import annotations

import contextlib
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import Session

from core.clock import SHANGHAI
from roster.models import Site
from roster.sites import add_site, validate

NOT_FOUND = "<html><body><h1>404</h1><p>页面不存在</p></body></html>".encode()


@dataclass
class Reply:
    """What the server answers for one path; ``delay`` seconds before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (the size cap, a timeout) is expected, not an error."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Hit:
    """One request the server saw."""

    method: str
    path: str
    user_agent: str


class SiteServer:
    """A threaded HTTP(S) server on 127.0.0.1 answering from :attr:`routes`.

    A path is looked up with its query first, then without; unknown paths get 404.
    """

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.routes: dict[str, Reply] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- the table ---------------------------------------------------------------------

    def set(self, path: str, body: bytes | str = b"", status: int = 200, *,
            headers: dict[str, str] | None = None, delay: float = 0.0,
            content_type: str | None = "text/html; charset=utf-8") -> None:
        """Answer ``path`` with ``body`` (a str is sent as UTF-8)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        all_headers = {"Content-Type": content_type} if content_type else {}
        all_headers.update(headers or {})
        with self._lock:
            self.routes[path] = Reply(status, all_headers, data, delay)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer ``path`` with a redirect to ``location``."""
        self.set(path, b"", status, headers={"Location": location}, content_type=None)

    def remove(self, path: str) -> None:
        """Forget ``path``: it answers 404 from now on."""
        with self._lock:
            self.routes.pop(path, None)

    def reply_for(self, path: str) -> Reply:
        with self._lock:
            found = self.routes.get(path) or self.routes.get(path.split("?", 1)[0])
        return found or Reply(404, {"Content-Type": "text/html; charset=utf-8"}, NOT_FOUND)

    def count(self, path: str) -> int:
        """How many requests ``path`` got."""
        return sum(1 for hit in self.hits if hit.path == path)

    # ---- addresses and the registered site ---------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return f"{self.origin}{path}"

    def site(self, session: Session, *, name: str = "区政府门户网站", unit: str = "区政府办",
             intranet: bool = True, path: str = "/", now: datetime | None = None) -> Site:
        """Register this server as a website (intranet by default: it is on loopback)."""
        when = now or datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
        site, _ = add_site(session=session, new=validate(name, "网站", self.url(path), unit, intranet),
                           now=when, actor="test")
        session.flush()
        return site

    # ---- running -----------------------------------------------------------------------

    def start(self) -> SiteServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def _answer(self, with_body: bool) -> None:
                server.hits.append(Hit(self.command, self.path, self.headers.get("User-Agent", "")))
                reply = server.reply_for(self.path)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                self.send_response(reply.status)
                for key, value in {"Content-Length": str(len(reply.body)), **reply.headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                if with_body:
                    with contextlib.suppress(OSError):
                        self.wfile.write(reply.body)

            def do_GET(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

        httpd = _Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self.port = int(httpd.server_address[1])
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def site_server() -> Iterator[SiteServer]:
    """A fixture website on 127.0.0.1 (empty: every path 404 until a test sets it)."""
    with SiteServer() as server:
        yield server


@pytest.fixture
def make_site_server() -> Iterator[Callable[..., SiteServer]]:
    """More servers: ``make_site_server()`` or ``make_site_server(tls=context)``."""
    servers: list[SiteServer] = []

    def make(*, tls: ssl.SSLContext | None = None) -> SiteServer:
        server = SiteServer(tls=tls).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
