"""Test doubles for the guarded fetcher (core.netguard): a resolver that answers from a
table, a network that records where it was asked to connect and really connects to a
loopback server, and small threaded servers (HTTP, HTTPS, HTTP/2-only HTTPS, raw TCP) on
127.0.0.1.

With them a test fetches ``http://www.example.test/`` "at" 93.184.216.34 without leaving
the machine, and sees the address the transport connected to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import httpcore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PUBLIC_IP = "93.184.216.34"
OTHER_PUBLIC_IP = "93.184.216.35"


class FakeResolver:
    """Answers names from ``table``; a list of answers is used in turn (the last one
    repeats), so a test can answer a public address first and a private one after."""

    def __init__(self, table: dict[str, Sequence[str] | list[Sequence[str]]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self.table[host]
        if answers and isinstance(answers[0], list | tuple):
            index = min(sum(1 for h, _ in self.calls if h == host), len(answers)) - 1
            return list(answers[index])
        return list(answers)  # type: ignore[arg-type]


class LoopbackNetwork(httpcore.AsyncNetworkBackend):
    """Records each address the transport connects to and connects to 127.0.0.1 instead
    (same port, or ``ports[address]``), so "public" servers are local test servers."""

    def __init__(self, ports: dict[str, int] | None = None) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.ports = ports or {}
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        return await self.inner.connect_tcp("127.0.0.1", self.ports.get(host, port), timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass
class Seen:
    """What a test server saw: request paths and Host headers (``:authority``), TLS server
    names, and the protocol each request came in on (ALPN; None without TLS or ALPN)."""

    paths: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    protocols: list[str | None] = field(default_factory=list)


Route = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


@contextlib.contextmanager
def http_server(route: Route, *, tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, Seen]]:
    """A threaded HTTP(S) server on 127.0.0.1 answering every GET with ``route(handler)``."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            seen.paths.append(self.path)
            seen.hosts.append(self.headers.get("Host", ""))
            tls_socket = self.connection if isinstance(self.connection, ssl.SSLSocket) else None
            seen.protocols.append(tls_socket.selected_alpn_protocol() if tls_socket is not None else None)
            status, headers, body = route(self)
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: seen.server_names.append(name)  # type: ignore[assignment, misc]
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


#: An HTTP/2 route: the request path → status, headers, body.
H2Route = Callable[[str], tuple[int, dict[str, str], bytes]]


def _send_pending(conn: h2.connection.H2Connection, pending: dict[int, bytes]) -> None:
    """Send what flow control allows of each stream's body."""
    for stream_id in list(pending):
        body = pending.pop(stream_id)
        while body:
            size = min(len(body), conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if size <= 0:
                pending[stream_id] = body      # wait for the client's WINDOW_UPDATE
                break
            conn.send_data(stream_id, body[:size], end_stream=size == len(body))
            body = body[size:]


def _serve_h2(sock: ssl.SSLSocket, route: H2Route, seen: Seen) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    pending: dict[int, bytes] = {}
    while data := sock.recv(65536):
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived) and event.headers is not None:
                headers = {str(k): str(v) for k, v in event.headers}
                seen.paths.append(headers[":path"])
                seen.hosts.append(headers[":authority"])
                seen.protocols.append("h2")
                status, extra, body = route(headers[":path"])
                conn.send_headers(event.stream_id, [(":status", str(status)), ("content-length", str(len(body))),
                                                    *((k.lower(), v) for k, v in extra.items())],
                                  end_stream=not body)
                if body:
                    pending[event.stream_id] = body
            elif isinstance(event, h2.events.StreamReset) and event.stream_id is not None:
                pending.pop(event.stream_id, None)      # the client stopped reading
            elif isinstance(event, h2.events.ConnectionTerminated):
                return
        _send_pending(conn, pending)
        sock.sendall(conn.data_to_send())


@contextlib.contextmanager
def h2_server(route: H2Route, *, tls: ssl.SSLContext) -> Iterator[tuple[int, Seen]]:
    """An HTTPS server on 127.0.0.1 that speaks HTTP/2 only: it offers ``h2`` alone in
    ALPN and drops a connection that did not choose it (recording the choice in
    ``seen.protocols``); each request is answered with ``route(path)``."""
    seen = Seen()
    tls.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(raw: socket.socket) -> None:
        raw.settimeout(5)
        with contextlib.suppress(OSError, h2.exceptions.H2Error), \
                tls.wrap_socket(raw, server_side=True) as sock:
            if sock.selected_alpn_protocol() != "h2":
                seen.protocols.append(sock.selected_alpn_protocol())
                return
            _serve_h2(sock, route, seen)

    def accept() -> None:
        listener.settimeout(0.02)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def page(body: bytes = b"<html>ok</html>", status: int = 200, **headers: str) -> Route:
    """A route answering ``body`` (and ``headers``) to every request."""
    return lambda handler: (status, {"Content-Type": "text/html", **headers}, body)


@contextlib.contextmanager
def tcp_server(greeting: bytes | None) -> Iterator[int]:
    """A non-HTTP TCP service on 127.0.0.1: sends ``greeting`` and closes (like SSH or a
    database refusing a stranger), or with None accepts and stays silent."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def run() -> None:
        listener.settimeout(0.02)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            if greeting is None:
                accepted.append(conn)
            else:
                with conn:
                    conn.sendall(greeting)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connections are refused, and no other
    test's server can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@dataclass(frozen=True)
class Certs:
    """A test CA and one server certificate it signed."""

    client: ssl.SSLContext    # trusts only the test CA
    server: ssl.SSLContext    # serves the certificate


def make_certs(tmp: Path, name: str) -> Certs:
    """A CA, and a certificate for ``name`` signed by it (ECDSA, valid for a day)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dutybot test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return Certs(client=client, server=server)
