"""Availability of a site: probes of its homepage and columns, what they add up to, and
the expiry of its HTTPS certificate.

Every function works in the caller's transaction (it adds and flushes, never commits) and
takes ``now``; a finding is a :class:`~watch.types.Found`, stored by ``watch.store``.

- :func:`probe_site` fetches the homepage and every active column (politely, per host);
  :func:`record_probes` keeps one :class:`~watch.models.Probe` row per page.
- :func:`availability_findings` reads the homepage probes: ``unreachable`` once the last
  ``down_after`` probes all failed (one finding for the whole outage, keyed by the
  homepage), ``slow`` when the last probe answered after more than ``slow_ms``, and
  ``availability`` when this calendar month's (Asia/Shanghai) share of failed probes
  passes ``month_warn_pct`` and, separately keyed, ``month_fail_pct``. The month's share
  is judged only from a day's worth of probes on (``min_probes``), so one failure in the
  first minutes of a month is not a month's failure rate.
- :func:`certificate_not_after` / :func:`cert_findings`: ``cert_expiry`` within
  ``cert_warn_days`` of the certificate's notAfter, and once it has passed.

The 5% line is the national inspection indicators' (单项否决: a homepage that cannot be
opened), not the office's own regulation: the finding says 参照 and whose document it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, delete, func
from sqlmodel import Session, col, select

from core.clock import SHANGHAI, fmt_date_zh, fmt_short_zh, from_db, local
from core.fetcher import FetchFailed, GuardedFetcher
from roster.models import Site
from watch.models import FindingKind, Probe, SiteColumn
from watch.pages import HostLimiter, Page, get_page
from watch.types import Found, WatchPolicy, finding_key

#: Whose line the 单项否决 threshold is (shown with every month_fail finding).
INDICATORS = "参照国务院办公厅政府信息与政务公开办公室《政府网站与政务新媒体检查指标》"
_PROBE_ERROR_MAX = 200


def _site_id(site: Site) -> int:
    if site.id is None:
        raise ValueError("the site is not saved yet (no id)")
    return site.id


def _pct(value: float) -> str:
    """``3%``, ``4.5%``, ``12.34%``: as few decimals as the value needs."""
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


# ---- probing ---------------------------------------------------------------------------

def probe_urls(site: Site, columns: list[SiteColumn]) -> list[str]:
    """The homepage, then each active column of ``site``, each URL once."""
    urls = [site.url] + [c.url for c in columns if c.active and c.site_id == site.id and c.url]
    return list(dict.fromkeys(urls))


async def probe_site(fetcher: GuardedFetcher, site: Site, columns: list[SiteColumn],
                     policy: WatchPolicy, *, limiter: HostLimiter | None = None,
                     monotonic: Callable[[], float] = time.monotonic) -> list[Page]:
    """Fetch the homepage and each active column of ``site``.

    Args:
        fetcher: :func:`~watch.pages.fetcher_for` the site.
        site: the website.
        columns: its columns (inactive ones and other sites' are skipped).
        policy: timeout, size cap, per-host concurrency and polite delay.
        limiter: shared with other checks running at the same time (default: a new one).
        monotonic: times each request (tests pass a fake).

    Returns:
        One page per URL, the homepage first; failures are pages with ``error``.
    """
    limiter = limiter or HostLimiter.from_policy(policy)

    async def one(url: str) -> Page:
        async with limiter.slot(url):
            return await get_page(fetcher, url, policy, monotonic=monotonic)

    return list(await asyncio.gather(*(one(url) for url in probe_urls(site, columns))))


def record_probes(session: Session, site: Site, pages: list[Page], columns: list[SiteColumn],
                  now: datetime) -> list[Probe]:
    """One :class:`Probe` per page, at ``now``: the homepage's with ``column_id`` None, a
    column's with its id (matched by URL); pages of other URLs are not recorded."""
    site_id = _site_id(site)
    by_url = {c.url: c.id for c in columns if c.site_id == site_id}
    probes: list[Probe] = []
    for page in pages:
        if page.url == site.url:
            column_id = None
        elif page.url in by_url:
            column_id = by_url[page.url]
        else:
            continue
        probes.append(Probe(site_id=site_id, column_id=column_id, url=page.url[:1000], at=now, ok=page.ok,
                            status=page.status, elapsed_ms=page.elapsed_ms,
                            error=page.failure[:_PROBE_ERROR_MAX]))
    session.add_all(probes)
    session.flush()
    return probes


# ---- what the probes add up to ---------------------------------------------------------

def _homepage(site_id: int, now: datetime) -> list[ColumnElement[bool]]:
    return [col(Probe.site_id) == site_id, col(Probe.column_id).is_(None), col(Probe.at) <= now]


def month_start(now: datetime) -> datetime:
    """00:00 Asia/Shanghai on the first of ``now``'s month."""
    day = local(now)
    return datetime(day.year, day.month, 1, tzinfo=SHANGHAI)


def month_counts(session: Session, site: Site, now: datetime) -> tuple[int, int]:
    """Homepage probes this calendar month (Asia/Shanghai) up to ``now``: (all, failed)."""
    rows = session.exec(select(Probe.ok, func.count()).where(
        *_homepage(_site_id(site), now), col(Probe.at) >= month_start(now)).group_by(col(Probe.ok))).all()
    counts = {bool(ok): int(n) for ok, n in rows}
    return counts.get(True, 0) + counts.get(False, 0), counts.get(False, 0)


#: Probes deleted per transaction by :func:`purge_probes` (writers wait for no longer).
PURGE_BATCH = 20_000


def purge_probes(session: Session, now: datetime, keep_days: int) -> int:
    """Delete the probes older than ``keep_days`` days (0: none), a batch per commit;
    how many. Nothing reads them: findings are judged on the current month."""
    if keep_days <= 0:
        return 0
    cutoff = now - timedelta(days=keep_days)
    deleted = 0
    while True:
        ids = session.exec(select(Probe.id).where(col(Probe.at) < cutoff).limit(PURGE_BATCH)).all()
        if not ids:
            return deleted
        session.execute(delete(Probe).where(col(Probe.id).in_(ids)))
        session.commit()
        deleted += len(ids)


def monthly_availability(session: Session, site: Site, now: datetime) -> float | None:
    """The share (percent, 0–100) of this month's homepage probes that succeeded; None
    without probes this month."""
    total, failed = month_counts(session, site, now)
    if not total:
        return None
    return 100.0 * (total - failed) / total


def _outage(session: Session, site_id: int, now: datetime) -> tuple[int, datetime | None]:
    """How many homepage probes have failed since the last success, and the first of them."""
    last_ok: datetime | None = session.exec(select(func.max(Probe.at)).where(
        *_homepage(site_id, now), col(Probe.ok).is_(True))).one()
    since = [*_homepage(site_id, now)] + ([col(Probe.at) > last_ok] if last_ok is not None else [])
    count, first = session.exec(select(func.count(), func.min(Probe.at)).where(*since)).one()
    return int(count), from_db(first)


def availability_findings(session: Session, site: Site, now: datetime, policy: WatchPolicy, *,
                          min_probes: int | None = None) -> list[Found]:
    """``unreachable``, ``slow`` and the month's ``availability`` findings of ``site``
    (module docstring), from its homepage probes up to ``now``.

    Args:
        min_probes: the fewest probes this month before the month's share is judged;
            None: one day's worth at ``policy.availability_minutes``.
    """
    site_id = _site_id(site)
    found: list[Found] = []
    recent = session.exec(select(Probe).where(*_homepage(site_id, now))
                          .order_by(col(Probe.at).desc(), col(Probe.id).desc())
                          .limit(max(1, policy.down_after))).all()
    home_key = finding_key(site.url)
    if len(recent) >= policy.down_after and not any(p.ok for p in recent):
        count, first = _outage(session, site_id, now)
        reason = recent[0].error or "原因不明"
        since = f"（自{fmt_short_zh(first)}起）" if first else ""
        found.append(Found(
            kind=FindingKind.unreachable, site_id=site_id, url=site.url, key=home_key,
            detail=f"“{site.name}”首页连续{count}次无法访问{since}：{reason}",
            data={"failures": count, "since": first.isoformat() if first else None,
                  "error": recent[0].error, "status": recent[0].status}))
    elif recent and recent[0].ok and (recent[0].elapsed_ms or 0) > policy.slow_ms:
        elapsed = recent[0].elapsed_ms or 0
        found.append(Found(
            kind=FindingKind.slow, site_id=site_id, url=site.url, key=home_key,
            detail=(f"“{site.name}”首页打开缓慢：用时{elapsed / 1000:.1f}秒，"
                    f"超过{policy.slow_ms / 1000:g}秒"),
            data={"elapsed_ms": elapsed, "threshold_ms": policy.slow_ms}))
    found.extend(_month_findings(session, site, now, policy, min_probes))
    return found


def _month_findings(session: Session, site: Site, now: datetime, policy: WatchPolicy,
                    min_probes: int | None) -> list[Found]:
    site_id = _site_id(site)
    total, failed = month_counts(session, site, now)
    needed = min_probes if min_probes is not None else max(1, 24 * 60 // max(1, policy.availability_minutes))
    if not total or total < needed:
        return []
    share = 100.0 * failed / total
    loc = local(now)
    month = f"{loc.year:04d}-{loc.month:02d}"
    head = (f"“{site.name}”本月（{loc.year}年{loc.month}月）首页探测{total}次，失败{failed}次，"
            f"失败率{_pct(share)}")
    found: list[Found] = []
    if share > policy.month_warn_pct:
        found.append(Found(
            kind=FindingKind.availability, site_id=site_id, url=site.url,
            key=finding_key(site.url, month, "warn"),
            detail=f"{head}，超过预警线{_pct(policy.month_warn_pct)}，请排查网站可用性",
            data={"share": round(share, 2), "threshold": policy.month_warn_pct, "level": "warning",
                  "month": month, "probes": total, "failed": failed}))
    if share > policy.month_fail_pct:
        found.append(Found(
            kind=FindingKind.availability, site_id=site_id, url=site.url,
            key=finding_key(site.url, month, "fail"),
            detail=(f"{head}，超过{_pct(policy.month_fail_pct)}（首页无法访问属单项否决，"
                    f"{INDICATORS}），请立即处置并保留处置记录"),
            data={"share": round(share, 2), "threshold": policy.month_fail_pct, "level": "breach",
                  "month": month, "probes": total, "failed": failed, "citation": INDICATORS}))
    return found


# ---- the certificate -------------------------------------------------------------------

async def certificate_not_after(url: str, policy: WatchPolicy, *,
                                fetcher: GuardedFetcher | None = None) -> datetime | None:
    """When the certificate of an ``https://`` URL's server expires (aware, UTC).

    The connection goes through ``fetcher``'s address checks (pass
    :func:`~watch.pages.fetcher_for` the site so that an intranet site is allowed). None
    for an ``http://`` URL, or when the certificate cannot be read (availability reports
    a server that cannot be reached).
    """
    fetcher = fetcher or GuardedFetcher()
    try:
        der = await fetcher.peer_certificate(url, timeout=policy.timeout_seconds)
    except FetchFailed:
        return None
    if der is None:
        return None
    from cryptography import x509  # here: certificates are read by the watch, not at start

    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError:
        return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cert_findings(site: Site, url: str, not_after: datetime | None, now: datetime,
                  policy: WatchPolicy) -> list[Found]:
    """A ``cert_expiry`` finding when the certificate of ``url`` expires within
    ``policy.cert_warn_days`` of ``now`` or has expired; one per origin."""
    if not_after is None:
        return []
    left = not_after - now
    if left > timedelta(days=policy.cert_warn_days):
        return []
    days = (local(not_after).date() - local(now).date()).days
    expired = not_after <= now
    when = fmt_date_zh(local(not_after).date())
    if expired:
        detail = (f"“{site.name}”的 HTTPS 证书已于{when}过期，访问者会看到安全警告，"
                  "请尽快更换证书")
    else:
        detail = (f"“{site.name}”的 HTTPS 证书将于{when}过期（还剩{max(days, 0)}天），"
                  "请在到期前续期或更换证书")
    return [Found(kind=FindingKind.cert_expiry, site_id=_site_id(site), url=url,
                  key=finding_key(_origin(url)), detail=detail,
                  data={"not_after": not_after.isoformat(), "days_left": days, "expired": expired,
                        "warn_days": policy.cert_warn_days})]
