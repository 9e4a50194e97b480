"""``/metrics``: what a running bot tells Prometheus.

Each :class:`~bot.app.App` owns one :class:`Metrics` with its own
:class:`~prometheus_client.CollectorRegistry` (tests build many Apps; the library's global
registry would mix them). Three sources feed it:

* **Counters kept in this process** (they start at 0 at every start; Prometheus'
  ``rate()``/``increase()`` handle the reset):
  ``dutybot_messages_sent_total{platform}`` and ``dutybot_messages_failed_total{platform}``
  (every failed delivery attempt), counted by the outbox sender (:class:`DeliveryCounters`);
  ``dutybot_escalations_total{run, rung}``, counted when the transaction that queued a
  ladder rung's pings commits (:meth:`Metrics.escalation_fired`, handed to
  :class:`incidents.escalation.Escalator` as its hook — the domain never imports the bot).
* **Gauges read from the database at scrape time** (:class:`StateCollector`): the outbox
  by status and platform (count, oldest age), the due-item lag, open incidents by type and
  grade, overdue reply items, open site-watch findings by kind and the last hour's probes,
  phone pages waiting to go out (count, oldest age) and those failed in the last day.
  They are the same for every worker on one database. When the database does not answer,
  ``dutybot_database_up`` is 0 and these gauges are left out.
* **This worker** (``dutybot run --worker`` only): ``dutybot_worker_leader`` is 1 on the
  worker that leads (:mod:`bot.leader`), 0 on the others.
* **The process**: prometheus-client's process, platform and garbage-collector collectors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.clock import Clock
from core.outbox import OutboxMessage, OutboxStatus
from core.schedule import DueItem, DueStatus
from incidents.models import OPEN_STATUSES, Incident
from incidents.paging_models import Page, PageStatus
from replies.models import ReplyItem, ReplyStatus
from watch.models import Finding, FindingStatus, Probe

log = logging.getLogger(__name__)

#: The outbox statuses shown as a queue (``sent`` rows are the sent counter).
QUEUE_STATUSES = (OutboxStatus.pending, OutboxStatus.waiting, OutboxStatus.dead)
PROBE_WINDOW = timedelta(hours=1)
PAGE_FAILED_WINDOW = timedelta(days=1)


class DeliveryCounters:
    """Messages sent and failed, by platform; the outbox sender increments them."""

    def __init__(self) -> None:
        self.sent = Counter("dutybot_messages_sent", "Messages the chat platform accepted "
                            "(sends and card edits).", ["platform"], registry=None)
        self.failed = Counter("dutybot_messages_failed", "Delivery attempts that failed "
                              "(each retry counts once).", ["platform"], registry=None)


class _Live(Collector):
    """Collects whatever ``source()`` gives now (the App's current outbox sender)."""

    def __init__(self, source: Callable[[], Iterable[Counter]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        for counter in self.source():
            yield from counter.collect()


class StateCollector(Collector):
    """Gauges computed from the database at each scrape.

    Args:
        engine: the database.
        clock: gives "now" for ages and windows.
        platform: the active platform (outbox rows with no platform go to it).
        last_tick: when the scheduler last ticked (None: not yet).
    """

    def __init__(self, *, engine: Engine, clock: Clock, platform: str,
                 last_tick: Callable[[], datetime | None], leader: Callable[[], bool] | None = None) -> None:
        self.engine, self.clock, self.platform, self.last_tick = engine, clock, platform, last_tick
        self.leader = leader

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        up = GaugeMetricFamily("dutybot_database_up", "1 when the database answered this scrape.")
        try:
            families = self._from_database(now)
        except Exception as exc:
            log.warning("metrics: the database did not answer: %s", exc)
            up.add_metric([], 0)
            families = []
        else:
            up.add_metric([], 1)
        yield up
        yield from families
        tick = GaugeMetricFamily("dutybot_scheduler_last_tick_age_seconds",
                                 "Seconds since this process's scheduler last ticked.")
        last = self.last_tick()
        if last is not None:
            tick.add_metric([], max(0.0, (now - last).total_seconds()))
        yield tick
        if self.leader is not None:
            leads = GaugeMetricFamily("dutybot_worker_leader", "1 when this worker (dutybot run --worker) "
                                      "leads: runs the cron jobs and the single receiving connection.")
            leads.add_metric([], 1 if self.leader() else 0)
            yield leads

    def _from_database(self, now: datetime) -> list[Metric]:
        depth = GaugeMetricFamily("dutybot_outbox_messages", "Outbox messages not sent, by "
                                  "status (pending, waiting, dead) and platform.",
                                  labels=["status", "platform"])
        oldest = GaugeMetricFamily("dutybot_outbox_oldest_age_seconds", "Age of the oldest "
                                   "outbox message, by status and platform.",
                                   labels=["status", "platform"])
        lag = GaugeMetricFamily("dutybot_due_items_lag_seconds", "Seconds the oldest due "
                                "item (deadline, reminder, escalation) has waited past its time.")
        due = GaugeMetricFamily("dutybot_due_items_due", "Due items whose time has come and "
                                "that have not run yet.")
        incidents = GaugeMetricFamily("dutybot_incidents_open", "Open incidents by type and "
                                      "grade.", labels=["type", "grade"])
        overdue = GaugeMetricFamily("dutybot_reply_items_overdue", "Public messages still "
                                    "unanswered after their deadline.")
        findings = GaugeMetricFamily("dutybot_watch_findings_open", "Open site-watch "
                                     "findings by kind.", labels=["kind"])
        probes = GaugeMetricFamily("dutybot_watch_probes_last_hour", "Site availability "
                                   "probes in the last hour, by result.", labels=["result"])
        pages = GaugeMetricFamily("dutybot_pages_queued", "Phone pages (SMS, voice) waiting to "
                                  "go out, by channel.", labels=["channel"])
        pages_age = GaugeMetricFamily("dutybot_pages_queued_oldest_age_seconds", "Age of the "
                                      "oldest phone page waiting to go out.")
        pages_failed = GaugeMetricFamily("dutybot_pages_failed_last_day", "Phone pages given up "
                                         "in the last 24 hours (failed for good), by channel.",
                                         labels=["channel"])
        with Session(self.engine) as session:
            rows = session.exec(
                select(OutboxMessage.status, OutboxMessage.platform, func.count(),
                       func.min(OutboxMessage.created_at))
                .where(col(OutboxMessage.status).in_(QUEUE_STATUSES))
                .group_by(col(OutboxMessage.status), col(OutboxMessage.platform))).all()
            merged: dict[tuple[str, str], tuple[int, datetime]] = {}
            for status, platform, count, first in rows:
                key = (str(status), platform or self.platform)
                had = merged.get(key)
                merged[key] = (count, first) if had is None else (had[0] + count, min(had[1], first))
            for (status, platform), (count, first) in sorted(merged.items()):
                depth.add_metric([status, platform], count)
                oldest.add_metric([status, platform], _age(now, first))
            first_due, due_count = session.exec(
                select(func.min(DueItem.due_at), func.count())
                .where(DueItem.status == DueStatus.pending, DueItem.due_at <= now)).one()
            lag.add_metric([], _age(now, first_due) if first_due is not None else 0.0)
            due.add_metric([], due_count)
            for kind, grade, count in session.exec(
                    select(Incident.type, Incident.grade, func.count())
                    .where(col(Incident.status).in_(OPEN_STATUSES))
                    .group_by(col(Incident.type), col(Incident.grade))).all():
                incidents.add_metric([kind, grade], count)
            overdue.add_metric([], session.exec(
                select(func.count()).select_from(ReplyItem)
                .where(ReplyItem.status == ReplyStatus.open, ReplyItem.due_at < now)).one())
            for kind, count in session.exec(
                    select(Finding.kind, func.count()).where(Finding.status == FindingStatus.open)
                    .group_by(col(Finding.kind))).all():
                findings.add_metric([kind], count)
            results = dict(session.exec(
                select(Probe.ok, func.count()).where(Probe.at >= now - PROBE_WINDOW)
                .group_by(col(Probe.ok))).all())
            probes.add_metric(["ok"], results.get(True, 0))
            probes.add_metric(["failed"], results.get(False, 0))
            first_page = None
            for channel, count, first in session.exec(
                    select(Page.channel, func.count(), func.min(Page.created_at))
                    .where(Page.status == PageStatus.queued).group_by(col(Page.channel))).all():
                pages.add_metric([channel], count)
                first_page = first if first_page is None else min(first_page, first)
            pages_age.add_metric([], _age(now, first_page) if first_page is not None else 0.0)
            for channel, count in session.exec(
                    select(Page.channel, func.count())
                    .where(Page.status == PageStatus.failed, Page.created_at >= now - PAGE_FAILED_WINDOW)
                    .group_by(col(Page.channel))).all():
                pages_failed.add_metric([channel], count)
        return [depth, oldest, lag, due, incidents, overdue, findings, probes, pages, pages_age, pages_failed]


def _age(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds())


class Metrics:
    """One App's registry: its counters, the database gauges and the process.

    Args:
        engine: the database.
        clock: the App's clock.
        platform: the active platform.
        counters: the current outbox sender's counters (read at each scrape).
        last_tick: when the scheduler last ticked.
        leader: with several workers, whether this one leads (``dutybot_worker_leader``).
    """

    def __init__(self, *, engine: Engine, clock: Clock, platform: str,
                 counters: Callable[[], DeliveryCounters],
                 last_tick: Callable[[], datetime | None], leader: Callable[[], bool] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.escalations = Counter("dutybot_escalations", "Escalation ladder rungs fired, by "
                                   "run (ack: nobody acknowledged; step: a step overdue; "
                                   "repeat: a repeat after the top rung) and rung (0 = first).",
                                   ["run", "rung"], registry=self.registry)

        def current() -> Iterable[Counter]:
            sender = counters()
            return (sender.sent, sender.failed)

        self.registry.register(_Live(current))
        self.registry.register(StateCollector(engine=engine, clock=clock, platform=platform,
                                              last_tick=last_tick, leader=leader))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def escalation_fired(self, session: Session, run: str, level: int) -> None:
        """The escalation hook: count the rung once its transaction commits (a processor
        that fails and is retried counts once, when it finally goes through)."""
        child = self.escalations.labels(run=run, rung=str(level))
        event.listen(session, "after_commit", lambda _session: child.inc(), once=True)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
