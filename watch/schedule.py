"""Site watch under ``dutybot run``: each check on its own schedule (``[watch]``).

:func:`register_watch` hands the scheduler one cron job per check — availability every
``availability_minutes``, freshness, links and content on theirs — when ``[watch]
enabled``. A job with no registered website does one query and nothing else. Otherwise
the job's fire is committed before the network is touched (the fetches never hold the
database's write lock) and :func:`watch.run.run_checks` runs to the end on this thread
(or a helper thread when this one already runs an event loop, as the drill mode does);
it opens its own short sessions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.fetcher import GuardedFetcher
from core.profiles import Profile
from core.schedule import CronRegistry
from roster.models import Site
from watch.availability import purge_probes
from watch.dispatch import Workflow
from watch.run import CHECKS, run_checks
from watch.status import watched_sites
from watch.terms import Lexicon
from watch.types import WatchPolicy

log = logging.getLogger(__name__)

JOB = "watch.{check}"
#: The minute past the hour an hourly-or-slower check starts, so they do not all start
#: together (availability runs every few minutes from minute 0).
OFFSET = {"availability": 0, "freshness": 10, "links": 20, "content": 30}
#: The hour a daily-or-slower check starts (the links crawl: at night).
NIGHT_HOUR = 2
_T = TypeVar("_T")
#: ``claim(key)``: True when this worker is the first to claim ``key`` (a site's check at
#: one fire time) among the workers sharing the database.
Claim = Callable[[str], bool]
#: Sites claimed at a time by one worker (the rest stay for whoever is free first).
CLAIM_CHUNK = 10


def cron_fields(minutes: int, offset: int = 0) -> dict[str, object]:
    """Cron fields for "every ``minutes``": ``*/N`` minutes within an hour, every whole
    number of hours (rounded) from an hour, every whole number of days from a day on
    (at :data:`NIGHT_HOUR`)."""
    if minutes < 60:
        return {"minute": f"*/{max(1, minutes)}"}
    if minutes < 24 * 60:
        return {"hour": f"*/{max(1, round(minutes / 60))}", "minute": str(offset)}
    return {"day": f"*/{max(1, round(minutes / (24 * 60)))}", "hour": str(NIGHT_HOUR), "minute": str(offset)}


def every(policy: WatchPolicy) -> dict[str, int]:
    """Each check's period in minutes."""
    return {"availability": policy.availability_minutes, "freshness": policy.freshness_minutes,
            "links": policy.links_minutes, "content": policy.content_minutes}


def run_blocking(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to the end from synchronous code: on this thread, or on a helper
    thread when this one already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def watch_job(session: Session, fire: datetime, now: datetime, *, check: str, policy: WatchPolicy,
              profile: Profile, fetcher: GuardedFetcher, workflow: Workflow, lexicon: Lexicon | None,
              claim: Claim | None = None) -> int:
    """One scheduled run of ``check`` on every registered website; how many findings it saw.

    With ``claim`` (several workers share the database): every worker runs each fire and
    checks only the sites it claims for that fire, :data:`CLAIM_CHUNK` at a time, until
    none is left — a faster worker takes more; each site is checked once per fire.
    """
    sites = watched_sites(session)
    if not sites:
        return 0
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    for site in sites:      # kept as read: a commit must not expire them into a new transaction
        session.expunge(site)
    session.commit()
    chunks: Iterable[list[Site]]
    if claim is None:
        chunks = [sites]
    else:
        stamp = fire.isoformat(timespec="minutes")
        chunks = ([s for s in sites[i:i + CLAIM_CHUNK] if claim(f"{check}:{s.id}:{stamp}")]
                  for i in range(0, len(sites), CLAIM_CHUNK))
    checked = found = 0
    for chunk in chunks:
        if not chunk:
            continue
        checked += len(chunk)
        found += len(run_blocking(run_checks(engine, sites=chunk, policy=policy, profile=profile, fetcher=fetcher,
                                             now=now, workflow=workflow, checks={check}, lexicon=lexicon)))
    log.info("site watch %s: %d of %d site(s) checked here, %d finding(s)", check, checked, len(sites), found)
    return found


#: When old probes are deleted: every night at 03:50, after the links crawl has started.
PURGE_AT = {"hour": "3", "minute": "50"}


def purge_job(session: Session, fire: datetime, now: datetime, *, keep_days: int) -> int:
    """The nightly purge of probes older than ``keep_days`` days; how many went."""
    deleted = purge_probes(session, now, keep_days)
    if deleted:
        log.info("site watch: %d probe(s) older than %d days deleted", deleted, keep_days)
    return deleted


def register_watch(scheduler: CronRegistry, *, enabled: bool, policy: WatchPolicy, profile: Profile,
                   fetcher: GuardedFetcher, workflow: Workflow, claim: Claim | None = None) -> None:
    """Register the four checks on their schedules (nothing when not ``enabled``).

    ``claim``: several workers share the database; the checks are shared jobs whose sites
    each worker claims (:func:`watch_job`). The purge stays with the leader.

    Raises:
        LexiconError: a lexicon file of ``policy.lexicons`` cannot be read (at start,
            not at the first content check).
        ValueError: a job is already registered.
    """
    if not enabled:
        return
    lexicon = Lexicon.load(policy.lexicons)
    for check, minutes in every(policy).items():
        assert check in CHECKS
        job = partial(watch_job, check=check, policy=policy, profile=profile, fetcher=fetcher, workflow=workflow,
                      lexicon=lexicon if check in ("content", "links") else None, claim=claim)
        fields: dict[str, Any] = cron_fields(minutes, OFFSET[check])
        scheduler.register_cron(JOB.format(check=check), job, run_at_start=False, shared=claim is not None, **fields)
    if policy.probe_keep_days:
        scheduler.register_cron(JOB.format(check="purge"), partial(purge_job, keep_days=policy.probe_keep_days),
                                run_at_start=False, hour=PURGE_AT["hour"], minute=PURGE_AT["minute"])
