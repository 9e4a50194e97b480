"""The paging worker: sends the queued ``page`` rows through the cloud provider.

A row travels ``queued`` → claimed (``claimed_until`` = now + lease, in a short
transaction; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers share the
queue) → sent through the provider → ``sent`` with the provider's id (its own
transaction, with the timeline line). A failure the provider may get over (no answer, a
5xx, throttling) is retried with exponential backoff and full jitter, up to ``[paging]
max_attempts``; then, or at once for a refusal (a bad signature, template or number), the
row is ``failed``, the timeline says so and the admins are told in chat. The chat pings
of the ladder never wait for a page: they are outbox rows of their own.

Guarantees, as for the outbox (``bot/outbox.py``): a page is never lost — a row is
``sent`` only after the provider accepted it, and a process that dies holding a claim
leaves it ``queued`` for any worker once the lease ends; it is never queued twice for one
ladder ping (``page.dedupe_key``). The one duplicate window is a crash (or a lost
answer) between the provider accepting the request and the commit that marks it sent:
the page goes out again after the lease — waking someone twice wins over not at all.
A page whose incident was acknowledged (for the acknowledgement ladder) or ended before
it went out is cancelled, not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.paging.aliyun import AliyunClient
from bot.paging.providers import PagingError, Provider, Providers
from bot.paging.settings import PagingSettings
from bot.paging.tencent import TencentSmsClient
from core.clock import Clock, local
from core.db import session_scope
from core.numbering import short_form
from incidents import paging
from incidents.models import TYPE_ZH, Incident, IncidentType
from incidents.paging_models import Page, PageChannel, PageStatus

log = logging.getLogger("dutybot.paging")

#: The longest a template value may be (provider limits on variables); longer is cut.
MAX_VALUE = 20


def build_providers(settings: PagingSettings, *, http: httpx.AsyncClient, clock: Clock) -> Providers:
    """The clients ``[paging]`` asks for (SMS: its ``provider``; voice: Alibaba Cloud)."""
    aliyun = AliyunClient(settings, http=http, clock=clock) if settings.aliyun_access_key_id else None
    sms: Provider | None = (TencentSmsClient(settings, http=http, clock=clock) if settings.provider == "tencent"
                            else aliyun)
    if sms is None:
        raise ValueError("[paging] has no keys for its SMS provider")
    return Providers(sms=sms, voice=aliyun if settings.voice_used() else None)


def template_values(incident: Incident, level: int, now: datetime) -> dict[str, str]:
    """The values a template may name (``[paging] template_params``), each cut to :data:`MAX_VALUE`."""
    rungs = incident.ladder_rungs()
    values = {"number": incident.number, "short": short_form(incident.number, local(now).date()),
              "grade": incident.grade_label, "type": TYPE_ZH.get(IncidentType(incident.type), incident.type),
              "site": incident.site, "rung": str(rungs[level]["label"]) if 0 <= level < len(rungs) else ""}
    return {k: v[:MAX_VALUE] for k, v in values.items()}


@dataclass(frozen=True)
class _Job:
    page_id: int
    channel: str
    phone: str
    out_id: str
    values: dict[str, str]


@dataclass
class PagingReport:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def progressed(self) -> bool:
        return bool(self.sent or self.failed or self.cancelled)


class PageSender:
    """Sends due pages.

    Args:
        engine: the database.
        clock: gives ``now()`` (a FakeClock in tests).
        settings: ``[paging]`` (attempts, backoff).
        providers: the clients (:func:`build_providers`).
        rng: jitter source (seeded in tests).
        on_commit: called after a pass changed rows (wakes the outbox sender for the admins' notices).
        lease_seconds: how long a claim holds before another worker may take the row.
        idle_seconds: the longest :meth:`run` waits between passes.
        http: the HTTP client the providers use, closed by :meth:`aclose`.
    """

    def __init__(self, *, engine: Engine, clock: Clock, settings: PagingSettings, providers: Providers,
                 rng: random.Random | None = None, on_commit: Callable[[], None] = lambda: None,
                 lease_seconds: float = 120.0, idle_seconds: float = 2.0, batch_size: int = 20,
                 http: httpx.AsyncClient | None = None) -> None:
        self.engine, self.clock, self.settings, self.providers = engine, clock, settings, providers
        self.rng = rng or random.Random()
        self.on_commit = on_commit
        self.lease = timedelta(seconds=lease_seconds)
        self.idle_seconds, self.batch_size = idle_seconds, batch_size
        self.http = http
        self._wake = asyncio.Event()

    @classmethod
    def for_settings(cls, *, engine: Engine, clock: Clock, settings: PagingSettings,
                     on_commit: Callable[[], None] = lambda: None) -> PageSender:
        """A sender with its own HTTP client (``[paging] timeout_seconds``)."""
        http = httpx.AsyncClient(timeout=settings.timeout_seconds)
        return cls(engine=engine, clock=clock, settings=settings, on_commit=on_commit, http=http,
                   providers=build_providers(settings, http=http, clock=clock))

    def wake(self) -> None:
        """Start the next pass now (after committing new pages)."""
        self._wake.set()

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; between passes wait for a wake-up or ``idle_seconds``."""
        while not stop.is_set():
            self._wake.clear()
            report = None
            try:
                report = await self.send_due()
            except Exception:
                log.exception("paging pass failed; trying again in %.0fs", self.idle_seconds)
            if report is not None and report.progressed:
                await asyncio.sleep(0)
                continue
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self.idle_seconds, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

    async def send_due(self) -> PagingReport:
        """One pass: claim the due pages and send each once."""
        report = PagingReport()
        jobs = self._claim(report)
        for job in jobs:
            await self._send(job, report)
        if report.progressed or report.retried:
            self.on_commit()
        return report

    def _claim(self, report: PagingReport) -> list[_Job]:
        now = self.clock.now()
        query = (select(Page).where(Page.status == PageStatus.queued, Page.next_attempt_at <= now,
                                    or_(col(Page.claimed_until).is_(None), col(Page.claimed_until) <= now))
                 .order_by(col(Page.id)).limit(self.batch_size))
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        jobs = []
        with session_scope(self.engine) as session:
            for page in session.exec(query).all():
                why = paging.moot(session, page, now)
                if why is not None:
                    paging.cancel(session, page, reason=why, now=now)
                    report.cancelled += 1
                    continue
                page.claimed_until = now + self.lease
                session.add(page)
                incident = session.get(Incident, page.incident_id)
                assert incident is not None and page.id is not None
                jobs.append(_Job(page.id, page.channel, page.phone, page.out_id,
                                 template_values(incident, page.level, now)))
        return jobs

    async def _send(self, job: _Job, report: PagingReport) -> None:
        provider = self.providers.voice if job.channel == PageChannel.voice else self.providers.sms
        try:
            if provider is None:
                raise PagingError("voice calls are not configured ([paging] aliyun_tts_code)", retryable=False,
                                  zh="未配置语音电话（[paging] aliyun_tts_code）")
            if job.channel == PageChannel.voice:
                ref = await provider.call(job.phone, job.values, job.out_id)
            else:
                ref = await provider.send_sms(job.phone, job.values, job.out_id)
        except PagingError as exc:
            self._failed(job, exc, report)
            return
        except Exception as exc:
            log.exception("page %s: unexpected error from the provider", job.page_id)
            self._failed(job, PagingError(f"{type(exc).__name__}", retryable=True, zh="发送时出现意外错误，详见日志"),
                         report)
            return
        with session_scope(self.engine) as session:
            page = self._page(session, job)
            paging.mark_sent(session, page, provider=provider.name, ref=ref, now=self.clock.now())
        log.info("page %s (%s) sent through %s", job.page_id, job.channel, provider.name)
        report.sent += 1

    def _page(self, session: Session, job: _Job) -> Page:
        page = session.get(Page, job.page_id)
        assert page is not None
        return page

    def _failed(self, job: _Job, exc: PagingError, report: PagingReport) -> None:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            page = self._page(session, job)
            attempts = page.attempts + 1
            if exc.retryable and attempts < self.settings.max_attempts:
                ceiling = min(self.settings.backoff_max_seconds,
                              self.settings.backoff_base_seconds * 2 ** (attempts - 1))
                delay = self.rng.uniform(ceiling / 2, ceiling)
                paging.mark_retry(session, page, error=exc.message, next_at=now + timedelta(seconds=delay))
                log.warning("page %s (%s) failed (attempt %d of %d), retry in %.0fs: %s", job.page_id,
                            job.channel, attempts, self.settings.max_attempts, delay, exc.message)
                report.retried += 1
                return
            paging.mark_failed(session, page, error=exc.message, reason=exc.zh, now=now)
        log.warning("page %s (%s) failed for good after %d attempt(s): %s", job.page_id, job.channel,
                    attempts, exc.message)
        report.failed += 1
