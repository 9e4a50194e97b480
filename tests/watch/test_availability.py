"""Availability: probes of the homepage and columns, the site-down threshold (K failed
probes in a row), slow answers, the month's failure share with the clock moved across a
month end, and the HTTPS certificate's expiry read from a loopback server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import SHANGHAI, FakeClock, fmt_date_zh
from core.fetcher import GuardedFetcher
from roster.models import Site
from tests.watch.conftest import SiteServer
from watch.availability import (
    INDICATORS,
    availability_findings,
    cert_findings,
    certificate_not_after,
    monthly_availability,
    probe_site,
    purge_probes,
    record_probes,
)
from watch.models import ColumnKind, FindingKind, Probe, SiteColumn
from watch.pages import fetcher_for, get_page
from watch.types import WatchPolicy

POLICY = WatchPolicy(timeout_seconds=2, polite_delay_ms=0, down_after=3, slow_ms=5000)
START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
HOME = "<html><body><h1>区政府门户网站</h1></body></html>"


def column(session: Session, site: Site, name: str, url: str, kind: ColumnKind = ColumnKind.news,
           active: bool = True) -> SiteColumn:
    assert site.id is not None
    row = SiteColumn(site_id=site.id, name=name, url=url, kind=kind, active=active, created_at=START)
    session.add(row)
    session.flush()
    return row


def probes(session: Session, site: Site, start: datetime, pattern: str, every: timedelta = timedelta(minutes=5),
           *, elapsed_ms: int = 300, error: str = "连接超时") -> datetime:
    """Homepage probes from ``start``: ``o`` a success, ``x`` a failure; returns the last time."""
    assert site.id is not None
    at = start
    for n, mark in enumerate(pattern):
        at = start + n * every
        ok = mark == "o"
        session.add(Probe(site_id=site.id, url=site.url, at=at, ok=ok, status=200 if ok else None,
                          elapsed_ms=elapsed_ms if ok else None, error="" if ok else error))
    session.flush()
    return at


async def test_a_probe_reads_the_homepage_and_each_active_column(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/", HOME)
    site_server.set("/xwdt/", "<html><ul><li><a href='/1.html'>要闻</a></li></ul></html>")
    site_server.set("/old/", "<html>old</html>")
    with Session(engine) as session:
        site = site_server.site(session)
        news = column(session, site, "新闻动态", site_server.url("/xwdt/"))
        gone = column(session, site, "通知公告", site_server.url("/tzgg/"), ColumnKind.notices)
        column(session, site, "旧栏目", site_server.url("/old/"), active=False)
        columns = list(session.exec(select(SiteColumn)))
        pages = await probe_site(fetcher_for(site), site, columns, POLICY)
        assert [p.url for p in pages] == [site.url, news.url, gone.url]      # not the inactive one
        rows = record_probes(session, site, pages, columns, START)
        assert [(r.column_id, r.ok, r.status, r.error) for r in rows] == [
            (None, True, 200, ""), (news.id, True, 200, ""), (gone.id, False, 404, "HTTP 404（页面不存在）")]
        assert all(r.at == START and r.elapsed_ms is not None for r in rows)


async def test_a_site_down_for_k_probes_in_a_row_is_one_unreachable_finding(
        engine: Engine, site_server: SiteServer) -> None:
    clock = FakeClock(START)
    site_server.set("/", HOME)
    with Session(engine) as session:
        site = site_server.site(session)
        fetcher = fetcher_for(site)

        async def probe_once() -> list[FindingKind]:
            pages = await probe_site(fetcher, site, [], POLICY)
            record_probes(session, site, pages, [], clock.now())
            found = availability_findings(session, site, clock.now(), POLICY, min_probes=10_000)
            clock.advance(timedelta(minutes=5))
            return [f.kind for f in found]

        assert await probe_once() == []
        site_server.set("/", "<html>维护中</html>", 503)
        assert await probe_once() == []                 # one failure: not yet
        assert await probe_once() == []                 # two
        assert await probe_once() == [FindingKind.unreachable]
        down = availability_findings(session, site, clock.now(), POLICY, min_probes=10_000)
        assert len(down) == 1 and down[0].key == availability_findings(
            session, site, clock.now() - timedelta(minutes=5), POLICY, min_probes=10_000)[0].key
        assert down[0].detail.startswith("“区政府门户网站”首页连续3次无法访问（自11月23日 09:05起）")
        assert "HTTP 503" in down[0].detail and down[0].data["failures"] == 3
        assert await probe_once() == [FindingKind.unreachable]          # still one, same key
        site_server.set("/", HOME)
        assert await probe_once() == []                 # back up


def test_probes_after_now_are_not_counted(engine: Engine, site_server: SiteServer) -> None:
    with Session(engine) as session:
        site = site_server.site(session)
        probes(session, site, START, "oooxxx")
        assert availability_findings(session, site, START + timedelta(minutes=14), POLICY, min_probes=10_000) == []
        found = availability_findings(session, site, START + timedelta(minutes=25), POLICY, min_probes=10_000)
        assert [f.kind for f in found] == [FindingKind.unreachable]


async def test_a_slow_homepage_is_reported_from_its_last_probe(engine: Engine, site_server: SiteServer) -> None:
    site_server.set("/", HOME)
    with Session(engine) as session:
        site = site_server.site(session)
        ticks = iter([0.0, 6.2])
        pages = await probe_site(fetcher_for(site), site, [], POLICY, monotonic=lambda: next(ticks))
        record_probes(session, site, pages, [], START)
        found = availability_findings(session, site, START, POLICY, min_probes=10_000)
        assert [f.kind for f in found] == [FindingKind.slow]
        assert found[0].detail == "“区政府门户网站”首页打开缓慢：用时6.2秒，超过5秒"
        probes(session, site, START + timedelta(minutes=5), "o", elapsed_ms=800)
        assert availability_findings(session, site, START + timedelta(minutes=5), POLICY, min_probes=10_000) == []


def test_the_month_share_warns_at_3_and_again_at_5_percent(engine: Engine, site_server: SiteServer) -> None:
    month = datetime(2026, 11, 1, 0, 0, tzinfo=SHANGHAI)
    with Session(engine) as session:
        site = site_server.site(session)
        # 300 probes, 10 failed (3.33%), the last ones fine.
        last = probes(session, site, month, "x" * 10 + "o" * 290)
        found = availability_findings(session, site, last, POLICY)
        assert [(f.kind, f.data["level"], f.data["threshold"]) for f in found] == [
            (FindingKind.availability, "warning", 3.0)]
        assert found[0].data["share"] == pytest.approx(3.33, abs=0.01)
        assert "失败率3.33%，超过预警线3%" in found[0].detail and "2026年11月" in found[0].detail
        # Six more failures: 16 of 306 (5.23%): a second finding, keyed apart.
        last = probes(session, site, last + timedelta(minutes=5), "xxxxxx")
        found = availability_findings(session, site, last, POLICY)
        assert [f.kind for f in found] == [FindingKind.unreachable, FindingKind.availability,
                                           FindingKind.availability]
        month_findings = [f for f in found if f.kind == FindingKind.availability]
        assert [f.data["level"] for f in month_findings] == ["warning", "breach"]
        assert len({f.key for f in month_findings}) == 2
        breach = month_findings[1]
        assert breach.data["threshold"] == 5.0 and "单项否决" in breach.detail and INDICATORS in breach.detail
        assert monthly_availability(session, site, last) == pytest.approx(100 * 290 / 306)


def test_probes_older_than_the_kept_days_are_purged_and_the_month_still_judged(
        engine: Engine, site_server: SiteServer) -> None:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    with Session(engine) as session:
        site = site_server.site(session)
        probes(session, site, now - timedelta(days=401), "xx", every=timedelta(hours=1))   # long gone
        kept = probes(session, site, now - timedelta(days=399), "o")
        probes(session, site, datetime(2026, 11, 1, tzinfo=SHANGHAI), "x" * 20 + "o" * 280)
        session.commit()
        before = monthly_availability(session, site, now)
        assert purge_probes(session, now, keep_days=0) == 0                   # 0: keep everything
        assert purge_probes(session, now, keep_days=400) == 2
        at = [p.at for p in session.exec(select(Probe)).all()]
        assert len(at) == 301 and min(at) == kept
        assert monthly_availability(session, site, now) == before == pytest.approx(100 * 280 / 300)
        assert purge_probes(session, now, keep_days=400) == 0


def test_the_month_is_the_shanghai_calendar_month(engine: Engine, site_server: SiteServer) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 23, 0, tzinfo=SHANGHAI))
    with Session(engine) as session:
        site = site_server.site(session)
        assert monthly_availability(session, site, clock.now()) is None        # no probes yet
        probes(session, site, clock.now(), "xxxxxxxxxo")          # 23:00–23:45 Beijing, 30 November
        assert monthly_availability(session, site, clock.now() + timedelta(minutes=50)) == pytest.approx(10.0)
        clock.set(datetime(2026, 12, 1, 0, 10, tzinfo=SHANGHAI))  # 30 November 16:10 UTC
        assert monthly_availability(session, site, clock.now()) is None        # a new month
        probes(session, site, clock.now(), "o")
        assert monthly_availability(session, site, clock.now()) == 100.0
        # A failure in the first minutes of a month is not yet a month's failure rate.
        clock.advance(timedelta(minutes=5))
        probes(session, site, clock.now(), "x")
        assert [f.kind for f in availability_findings(session, site, clock.now(), POLICY)] == []
        assert [f.data["level"] for f in availability_findings(
            session, site, clock.now(), POLICY, min_probes=2)] == ["warning", "breach"]


# ---- the certificate -------------------------------------------------------------------

def self_signed(tmp: Path, not_after: datetime) -> Callable[[], tuple[ssl.SSLContext, ssl.SSLContext]]:
    """A certificate for 127.0.0.1 valid until ``not_after``: (server context, client context
    that trusts it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime(2026, 1, 1, tzinfo=dt.UTC)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / "cert.pem").write_bytes(pem)
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))

    def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
        return server, ssl.create_default_context(cadata=pem.decode())

    return contexts


async def test_a_certificate_expiring_in_10_days_is_warned(
        engine: Engine, tmp_path: Path, make_site_server: Callable[..., SiteServer]) -> None:
    # Verified by a real TLS handshake, the certificate must be valid by the real clock:
    # its dates are set from it, and the check is then made at an explicit "now".
    now = datetime.now(dt.UTC).replace(microsecond=0)
    expires = now + timedelta(days=10)
    server_context, client_context = self_signed(tmp_path, expires)()
    server = make_site_server(tls=server_context)
    server.set("/", HOME)
    with Session(engine) as session:
        site = server.site(session)
        fetcher = fetcher_for(site, GuardedFetcher(ssl_context=client_context))
        assert (await get_page(fetcher, site.url, POLICY)).ok          # the test CA is trusted
        not_after = await certificate_not_after(site.url, POLICY, fetcher=fetcher)
        assert not_after == expires
        found = cert_findings(site, site.url, not_after, now, POLICY)
        assert [(f.kind, f.data["days_left"], f.data["expired"]) for f in found] == [
            (FindingKind.cert_expiry, 10, False)]
        day = fmt_date_zh(expires.astimezone(SHANGHAI).date())
        assert found[0].detail == f"“区政府门户网站”的 HTTPS 证书将于{day}过期（还剩10天），请在到期前续期或更换证书"
        # 20 days ahead: nothing yet; the day after it expired: expired.
        assert cert_findings(site, site.url, not_after, now - timedelta(days=10), POLICY) == []
        late = cert_findings(site, site.url, not_after, expires + timedelta(days=1), POLICY)
        assert late[0].data["expired"] and f"已于{day}过期" in late[0].detail
        assert late[0].key == found[0].key


async def test_an_expired_certificate_is_still_dated(
        engine: Engine, tmp_path: Path, make_site_server: Callable[..., SiteServer]) -> None:
    expired = datetime(2026, 6, 30, 16, 0, tzinfo=dt.UTC)
    server_context, _ = self_signed(tmp_path, expired)()
    server = make_site_server(tls=server_context)
    with Session(engine) as session:
        site = server.site(session)
        assert await certificate_not_after(site.url, POLICY, fetcher=fetcher_for(site)) == expired


async def test_the_certificate_of_a_loopback_site_not_registered_intranet_is_not_read(
        engine: Engine, tmp_path: Path, make_site_server: Callable[..., SiteServer]) -> None:
    server_context, _ = self_signed(tmp_path, START + timedelta(days=3))()
    server = make_site_server(tls=server_context)
    with Session(engine) as session:
        site = server.site(session, intranet=False)
        assert await certificate_not_after(site.url, POLICY, fetcher=fetcher_for(site)) is None
        assert await certificate_not_after(site.url, POLICY) is None
        assert await certificate_not_after("http://www.example.test/", POLICY) is None   # not https
    assert server.hits == []
