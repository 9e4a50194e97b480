"""The composition root: the one place that wires config, storage, domains and the adapter.

Nothing else constructs services. ``App`` owns the engine, the working-day calendar,
the rule profile, the dispatcher, the outbox sender and the scheduler; ``run()`` starts
them for real, ``drain()`` and ``advance_to()`` drive them step by step for the console
drill mode and tests.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

import bot.models_index  # noqa: F401  (every table on SQLModel.metadata; core imports no domain)
from accounts import retime as accounts_retime
from accounts.cadence import register_cadence
from accounts.lifecycle import register_lifecycle
from bot import health, logs, one_use
from bot.adapters.base import Adapter
from bot.alerts_http import alert_routes
from bot.backup_job import register_backup
from bot.chat_alias import record_move, record_reachability
from bot.config import Settings
from bot.delivery import RATE_MARGIN_SECONDS
from bot.dispatcher import Dispatcher, DispatchResult, Handler
from bot.handlers import default_handlers
from bot.http import HttpService
from bot.leader import WorkerRole, share_limits
from bot.metrics import Metrics
from bot.outbox import OutboxSender
from bot.paging.callbacks import paging_routes
from bot.paging.sender import PageSender
from bot.ratelimit import RateLimiter
from bot.scheduler import Scheduler
from bot.web.routes import web_routes
from briefing.flows import register_briefing
from checks.flows import register_checks
from core.clock import Clock
from core.db import check_schema, current_revision, make_engine, session_scope, upgrade
from core.errors import ConfigError
from core.messages import Inbound, Outbound
from core.office_hours import OfficeHours
from core.workdays import WorkdayCalendar
from incidents import duplicates as incident_duplicates
from incidents import escalation as incident_escalation
from incidents import retime as incident_retime
from incidents.playbooks import check_against_profile
from people.filings import register_filing_reminders
from replies import flows as replies_flows
from replies import retime as replies_retime
from roster import changes as roster_changes
from roster import service as roster_service
from roster import sites as roster_sites
from roster import training as roster_training
from roster.gaps import register_gap_warnings
from roster.lifecycle import LifecyclePolicy
from roster.reminders import register_reminders
from roster.rounds import RoundPolicy, register_rounds
from roster.spotcheck import register_spotchecks
from roster.spotcheck_plan import register_spotcheck_plan
from watch.dispatch import Workflow as WatchWorkflow
from watch.schedule import register_watch

log = logging.getLogger(__name__)

#: The cron job deleting expired held pictures and files.
HELD_SWEEP_JOB = "bot.held_media_sweep"
#: Said, outside the database, when an update could not be stored (disk full …).
STORE_FAILED_TEXT = ("抱歉，消息未能保存（错误编号 {error_id}），请稍后重发；"
                     "如一直失败请联系管理员。")
#: How many update ids are remembered as apologised for (a redelivery gets no second one).
APOLOGY_MEMORY = 1024


def open_database(settings: Settings, *, auto_create: bool = True) -> Engine:
    """The engine, with the schema checked.

    A brand-new embedded SQLite database is created on the spot (nothing to lose); any
    other database must already be at the newest migration.

    Raises:
        SchemaOutOfDate: with the command that fixes it.
    """
    url = settings.database_url()
    engine = make_engine(url)
    if auto_create and url.startswith("sqlite") and current_revision(engine) is None:
        log.info("creating the embedded database at %s", url)
        upgrade(engine)
    check_schema(engine)
    return engine


#: The update ledger's scope of site-watch claims (several workers; :meth:`App._claim_site`).
SITE_CLAIMS = "watch:site"


class App:
    """The running bot.

    Args:
        settings: validated configuration.
        clock: the clock every part reads.
        adapter: the chat platform.
        engine: an engine to use (default: from the settings, schema checked).
        handlers: the commands (default: all of them).
        worker: one of several ``dutybot run --worker`` processes on the database
            (:mod:`bot.leader`): cron jobs only while leading, site-watch checks shared
            site by site.
        receiver: with ``worker``, the lock name of a receiving connection that must be
            single (Telegram polling, DingTalk Stream): held, and received on, by the leader.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        adapter: Adapter,
        engine: Engine | None = None,
        handlers: Sequence[Handler] | None = None,
        worker: bool = False,
        receiver: str | None = None,
    ) -> None:
        self.settings, self.clock, self.adapter = settings, clock, adapter
        self.running = False
        self.http: HttpService | None = None
        self._apologized: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.engine = engine if engine is not None else open_database(settings)
        self.calendar = WorkdayCalendar.from_dir(
            settings.resolve(settings.calendar.holidays_dir), cutoff=settings.calendar.cutoff_time())
        self.profile = settings.profile()
        # Incidents ask the roster who is on duty, and the site registry who supports a
        # site, through this policy (they never import them).
        self.incident_policy = settings.incidents.policy(on_duty=roster_service, sites=roster_sites,
                                                         office_hours=settings.office_hours(self.calendar))
        # Several workers share the platform's overall rate (bot.leader.share_limits).
        shared = share_limits(adapter.limits, settings.bot.workers) if worker else adapter.limits
        self.sender = OutboxSender(engine=self.engine, adapter=adapter, clock=clock, settings=settings.outbox,
                                   limiter=RateLimiter(shared, margin=RATE_MARGIN_SECONDS) if shared != adapter.limits
                                   else None)
        # Issue 19: ladder pings that also page by SMS or voice call ([paging]); their worker.
        self.pager: PageSender | None = None
        if settings.paging.enabled:
            self.incident_policy = replace(self.incident_policy, paging=settings.paging.policy())
            self.pager = PageSender.for_settings(engine=self.engine, clock=clock, settings=settings.paging,
                                                 on_commit=self.sender.wake)
        self.role = (WorkerRole(self.engine, adapter, check_seconds=settings.bot.leader_check_seconds,
                                receiver=receiver) if worker else None)
        self.scheduler = Scheduler(engine=self.engine, clock=clock, on_work=self.wake_senders,
                                   is_leader=self.role.is_leader if self.role is not None else None)
        # /metrics: this App's own registry (bot.metrics); it reads whichever sender runs.
        self.metrics = Metrics(engine=self.engine, clock=clock, platform=adapter.platform,
                               counters=lambda: self.sender.counters,
                               last_tick=lambda: self.scheduler.last_tick_at,
                               leader=self.role.is_leader if self.role is not None else None)
        self._register_domains()
        self.dispatcher = Dispatcher(
            engine=self.engine, clock=clock, settings=settings, calendar=self.calendar,
            profile=self.profile, incident_policy=self.incident_policy,
            handlers=handlers if handlers is not None else default_handlers(), on_commit=self.wake_senders)
        adapter.configure(commands=self.dispatcher.menu(), on_chat_moved=self.chat_moved,
                          on_reachability=self.reachability, claim_once=self.claim_once)
        # Held pictures and files (bot/held_media.py) expire 10 minutes after receipt: deleted
        # when their sender's are read, and by this sweep (at start, then every 15 minutes,
        # with the other 15-minute jobs so the drill mode takes no extra steps).
        self.scheduler.register_cron(HELD_SWEEP_JOB, self._sweep_held, run_at_start=True, minute="*/15")

    def wake_senders(self) -> None:
        """New outbox rows or pages were committed: start the senders' next passes now."""
        self.sender.wake()
        if self.pager is not None:
            self.pager.wake()

    def _sweep_held(self, session: Session, fire: datetime, now: datetime) -> None:
        remaining = self.dispatcher.held.sweep(now)
        log.debug("held media swept; %d item(s) still held", remaining)

    def _register_domains(self) -> None:
        """Hand each domain's due-item processors and cron jobs to the scheduler."""
        self.scheduler.register(replies_flows.REMIND_KIND, replies_flows.process_reminder)
        problems = check_against_profile(self.profile)
        if problems:
            raise ConfigError(problems, self.settings.source)
        self.scheduler.register(incident_escalation.KIND,
                                incident_escalation.Escalator(self.profile, self.incident_policy,
                                                              on_fired=self.metrics.escalation_fired),
                                # Reads and writes only through the session; what it
                                # writes (pings, the rung reached) is re-derived if lost.
                                at_once=True, rerun_if_lost=True)
        # A held second report of an address (合并 / 分开 unanswered) is merged after 30 minutes.
        self.scheduler.register(incident_duplicates.KIND, incident_duplicates.process_expiry)
        register_briefing(self.scheduler, calendar=self.calendar, settings=self.settings.briefing, platform=self.adapter.platform,
                          profile=self.profile)
        register_rounds(self.scheduler, profile=self.profile, policy=RoundPolicy(
            windows=tuple(self.settings.roster.windows(round_the_clock=self.profile.round_the_clock)), seed=self.settings.roster.round_seed,
            answer=timedelta(minutes=self.settings.roster.round_answer_minutes)))
        register_spotchecks(self.scheduler, profile=self.profile)
        register_spotcheck_plan(self.scheduler, plan=self.settings.roster.spotcheck_policy(), profile=self.profile,
                                calendar=self.calendar)
        register_reminders(self.scheduler, policy=LifecyclePolicy.from_settings(self.settings.roster), profile=self.profile)
        self.scheduler.register(roster_changes.EXPIRE_KIND, roster_changes.process_expiry)
        # A new year's holiday data re-times what was counted as 暂定 (at start, then every 15 minutes).
        replies_retime.register_retime(self.scheduler, calendar=self.calendar, profile=self.profile,
                                       policy=self.settings.reply_policy(self.calendar))
        incident_retime.register_retime(self.scheduler, calendar=self.calendar, profile=self.profile,
                                        policy=self.incident_policy)
        register_gap_warnings(self.scheduler, calendar=self.calendar, patterns=self.settings.roster.patterns(),
                              days=self.settings.roster.gap_warning_days, citation=self.profile.cited("DUTY-1", "DUTY-5"),
                              training_basis=(self.profile.basis(roster_training.RULE)
                                              if roster_training.required(self.profile) else ""))
        # STAFF-2: open 人员变动备案 items, once a working day at the start of office hours.
        register_filing_reminders(self.scheduler, profile=self.profile,
                                  office_hours=self.settings.office_hours(self.calendar) or OfficeHours(self.calendar))
        # CHECK-1, STAFF-3: rectification and annual-report reminders; the year's report duties; training.
        register_checks(self.scheduler, profile=self.profile, policy=self.settings.check_policy(self.calendar),
                        sheet=self.settings.check_sheet())
        # FRESH-2/3/4: the accounts' posting cadence, checked daily; their feeds read periodically.
        register_cadence(self.scheduler, profile=self.profile, calendar=self.calendar,
                         check_time=self.settings.accounts.check_time,
                         warn_days_ahead=self.settings.accounts.warn_days_ahead,
                         policy=self.settings.account_duty_policy(self.calendar),
                         feed_fetch_minutes=self.settings.accounts.feed_fetch_minutes,
                         fetcher=self.settings.incidents.fetcher())
        # LIFE-1/5, REPLY-6: account duty reminders; standing duties swept daily at office open.
        register_lifecycle(self.scheduler, profile=self.profile, calendar=self.calendar,
                           policy=self.settings.account_duty_policy(self.calendar))
        # A new year's holiday data re-times account duties counted as 暂定.
        accounts_retime.register_retime(self.scheduler, calendar=self.calendar,
                                        policy=self.settings.account_duty_policy(self.calendar))
        # Issue 17: site watch reads the registered websites on its schedules ([watch]).
        register_watch(self.scheduler, enabled=self.settings.watch.enabled, policy=self.settings.watch_policy(),
                       profile=self.profile, fetcher=self.settings.incidents.fetcher(),
                       claim=self._claim_site if self.role is not None else None,
                       workflow=WatchWorkflow(calendar=self.calendar, profile=self.profile,
                                              incident_policy=self.incident_policy,
                                              evidence_dir=self.settings.resolve(self.settings.incidents.evidence_dir)))
        # Issue 19: the daily backup at [backup] schedule, on a thread of its own (None: off).
        self.backups = register_backup(self.scheduler, settings=self.settings, engine=self.engine)

    async def chat_moved(self, old: str, new: str) -> None:
        """The platform gave chat ``old`` the id ``new``: remember it, re-address the queue."""
        with session_scope(self.engine) as session:
            moved = record_move(session, platform=self.adapter.platform, old=old, new=new,
                                now=self.clock.now())
        if moved:
            self.sender.wake()

    async def reachability(self, chat_id: str, is_group: bool, reachable: bool) -> None:
        """The bot was blocked or removed from ``chat_id`` (or let back in): record it,
        tell the admins."""
        with session_scope(self.engine) as session:
            changed = record_reachability(session, platform=self.adapter.platform, chat_id=chat_id,
                                          is_group=is_group, reachable=reachable, now=self.clock.now())
        if changed:
            self.sender.wake()

    def claim_once(self, key: str, keep: timedelta, bound: str = "") -> bool:
        """Record the adapter's one-use ``key`` (a callback signature, bound to a hash of
        the request's body) for every worker on the database; False when it was used
        before with another body (a replay)."""
        return one_use.claim(self.engine, scope=one_use.scope_for(self.adapter.platform),
                             key=key, now=self.clock.now(), keep=keep, bound=bound)

    def _claim_site(self, key: str) -> bool:
        """Several workers: the first to claim a site's check at one fire time runs it."""
        return one_use.claim(self.engine, scope=SITE_CLAIMS, key=key, now=self.clock.now(), keep=timedelta(days=2))

    def health(self) -> dict[str, object]:
        """For ``/healthz`` (liveness): no I/O, the process answers."""
        return {"platform": self.adapter.platform}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """For ``/readyz``: database, scheduler, outbox and platform (:mod:`bot.health`)."""
        return health.readiness(engine=self.engine, now=self.clock.now(), settings=self.settings,
                                last_tick=self.scheduler.last_tick_at, sender=self.sender)

    async def handle(self, inbound: Inbound) -> DispatchResult:
        """The adapter's entry point for every inbound update.

        Never raises: an update that could not be stored (``stored=False``: the database
        refused it, or anything unexpected escaped the dispatcher) is not marked
        processed, so a redelivery is handled; the person gets an apology with the error
        id sent straight through the adapter (the outbox is in the same database), once
        per update however often the platform redelivers it. Callback adapters answer
        such an update with 5xx so that the platform redelivers it.
        """
        try:
            with logs.update_id(f"{inbound.platform}:{inbound.update_id}"):
                result = await self.dispatcher.dispatch(inbound)
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("error %s: update %s/%s from %s failed outside the handler; it is "
                          "not marked processed", error_id, inbound.platform, inbound.update_id,
                          inbound.sender_id)
            result = DispatchResult(error_id=error_id, stored=False)
        if not result.stored:
            await self._apologize_directly(inbound, result.error_id or "-")
        return result

    async def _apologize_directly(self, inbound: Inbound, error_id: str) -> None:
        """Tell the sender their message was not saved, bypassing the outbox."""
        key = (inbound.platform, inbound.update_id)
        if key in self._apologized:
            return  # the platform redelivered it and it failed again: one apology is enough
        if inbound.is_group and not inbound.is_button and self.dispatcher.route(inbound.text)[2] is None:
            return  # group chatter not addressed to the bot
        self._apologized[key] = None
        while len(self._apologized) > APOLOGY_MEMORY:
            self._apologized.popitem(last=False)
        text = STORE_FAILED_TEXT.format(error_id=error_id)
        try:
            await self.adapter.send(inbound.chat_id, Outbound(text), is_group=inbound.is_group)
        except Exception:
            log.exception("could not send the apology for error %s to %s/%s", error_id,
                          inbound.platform, inbound.chat_id)

    async def drain(self) -> int:
        """Deliver everything that is due now; returns how many messages went out."""
        total = 0
        for _ in range(1000):
            if self.pager is not None:   # pages first: they are what wakes people
                await self.pager.send_due()
            report = await self.sender.deliver_due()
            total += report.sent + report.edited
            if not report.more_now:
                break
        return total

    async def advance_to(self, target: datetime) -> list[str]:
        """Drill mode: move the fake clock to ``target``, running all due work in order,
        delivering what each step says before the next."""
        log_lines: list[str] = []
        while True:
            nxt = self.scheduler.next_event_at()
            if nxt is None or nxt > target:
                break
            log_lines += self.scheduler.advance_to(nxt)
            await self.drain()
        log_lines += self.scheduler.advance_to(target)
        await self.drain()
        return log_lines

    async def start_http(self) -> None:
        """Serve the HTTP service (``/healthz``, ``/readyz``, ``/metrics`` and the platform's
        and alert sources' routes) on ``[http] host/port``: always, unless ``[http] enabled
        = false`` and nothing calls back.

        Raises:
            ConfigError: the address cannot be listened on (in use, not allowed).
        """
        routes = [*self.adapter.http_routes(), *alert_routes(self), *paging_routes(self),   # issue 19
                  *web_routes(self)]   # issue 20: the web board ([web] enabled)
        if not routes and not self.settings.http.enabled:
            return
        host, port = self.settings.http.host, self.settings.http.port
        self.http = HttpService(host=host, port=port, routes=routes, health=self.health,
                                ready=self.readiness, metrics=self.metrics.exposition)
        try:
            await self.http.start()
        except OSError as exc:
            self.http = None
            why = "地址已被占用" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ConfigError([f"HTTP 服务无法在 {host}:{port} 上监听（{why}）：请在 [http] 中"
                               "换一个 port；不需要健康检查和指标时可设置 [http] enabled = false"],
                              self.settings.source) from None

    def http_note(self) -> str | None:
        """The Chinese line saying where health and metrics answer (None: no HTTP service)."""
        if self.http is None:
            return None
        base = f"http://{self.settings.http.host}:{self.http.port}"
        return f"健康检查：{base}/healthz、{base}/readyz；监控指标：{base}/metrics"

    async def stop_http(self) -> None:
        """Stop the HTTP service, if it runs (its requests in flight finish first)."""
        if self.http is not None:
            await self.http.stop()
            self.http = None

    def settle(self) -> int:
        """Once started: collect the start-up's garbage, then move every object left (the
        modules, the profile, the playbooks: what lives as long as the process) out of the
        garbage collector's view, so that its full collections scan only what the work
        since made (:func:`gc.freeze`). A burst of due items allocates enough to set off
        full collections, and each one walked the whole start-up heap: measured, the cost
        per escalation grew by a fifth from 100 to 1,000 due (issue 21). Returns how many
        objects were frozen."""
        gc.collect()
        gc.freeze()
        frozen = gc.get_freeze_count()
        log.debug("heap settled: %d objects frozen", frozen)
        return frozen

    async def run(self, stop: asyncio.Event, *, on_started: Callable[[], None] | None = None) -> None:
        """Run until ``stop`` is set: adapter, scheduler (after catch-up) and sender;
        ``on_started`` is called once everything runs."""
        if self.role is not None:   # a sole worker leads before its catch-up runs the cron jobs
            await self.role.try_lead()
        self.scheduler.catch_up()
        await self.start_http()
        try:
            if self.role is not None:
                await self.role.start(self.handle)
            else:
                await self.adapter.start(self.handle)
        except BaseException:
            await self.stop_http()
            if self.role is not None:
                self.role.close()
            raise
        self.scheduler.start(tick_seconds=self.settings.bot.tick_seconds)
        sender = asyncio.create_task(self.sender.run(stop), name="outbox-sender")
        pager = (asyncio.create_task(self.pager.run(stop), name="page-sender")
                 if self.pager is not None else None)
        leading = self.role.run(stop) if self.role is not None else None
        log.info("dutybot running on %s", self.adapter.platform)
        self.running = True
        if on_started is not None:
            on_started()
        self.settle()
        try:
            await stop.wait()
        finally:
            self.running = False
            gc.unfreeze()   # what settle() froze is the collector's again once the bot stops
            await self.scheduler.shutdown()
            await sender  # ends after its current pass: nothing is cut off mid-send
            if pager is not None and self.pager is not None:
                await pager
                await self.pager.aclose()
            await self.stop_http()
            await self.adapter.stop()
            if leading is not None and self.role is not None:
                await leading
                self.role.close()
            self.engine.dispose()
