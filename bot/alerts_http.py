"""``POST /alerts/{source}``: monitoring systems post their alerts to the bot (issue 19).

Each ``[alerts.sources.<name>]`` of the config is a sender with its own token and kind:

``alertmanager``  a Prometheus Alertmanager ``webhook_config`` (payload version "4":
                  ``alerts[]`` with ``status`` firing/resolved, ``labels``,
                  ``annotations``, ``startsAt``, ``endsAt``, ``fingerprint``).
``uptime_kuma``   an Uptime Kuma webhook notification (JSON): ``heartbeat`` (``status``
                  0 down, 1 up; 2 pending and 3 maintenance change nothing), ``monitor``
                  (``id``, ``name``, ``url``), ``msg``. Its "测试" message (no heartbeat,
                  no monitor) is answered 200 and stores nothing.
``generic``       one alert: ``{"fingerprint", "status": "firing"|"resolved", "title",
                  "detail", "url", "at"}`` (``detail``, ``url`` and ``at`` optional; ``at``
                  an ISO 8601 time with its offset).

The request is refused unread when the source is unknown (404) or its bearer token is
missing or wrong (401, compared in constant time, no detail), refused when the body is
larger than :data:`bot.http.MAX_BODY_BYTES` (413) or not a notification of the source's
kind (400, nothing stored). Otherwise its alerts go to :func:`incidents.alerts.receive`
in one transaction, committed before the answer: 200 means everything is stored; a
storage failure answers 500, so the sender retries (the outbox event keys make a retry
tell nobody twice).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import AlertSourceSettings, Settings
from bot.http import read_body
from core.clock import Clock
from core.db import session_scope
from core.errors import ConfigError, DutybotError
from core.profiles import Profile
from incidents.alerts import AlertEvent, AlertSource, AlertWorkflow, Received, receive
from incidents.grades import grade_names
from incidents.models import Grade, IncidentType

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

PATH = "/alerts/{source}"
#: More alerts in one notification are refused (Alertmanager: set ``max_alerts``).
MAX_ALERTS = 500
#: Labels shown on an Alertmanager alert's incident, in this order, when present.
SHOWN_LABELS = ("alertname", "instance", "job", "severity")
_FRACTION = re.compile(r"(\.\d{6})\d+")


class PayloadError(ValueError):
    """The body is not a notification of the source's kind (English, for the sender's log)."""


# ---- parsing ---------------------------------------------------------------------------

def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object")
    return value


def _text(value: object, what: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise PayloadError(f"{what} must be a non-empty string" if required else f"{what} must be a string")
    return value.strip()


def _strings(value: object, what: str) -> dict[str, str]:
    """A label or annotation map: string values only (others are left out)."""
    if value is None:
        return {}
    return {str(k): v for k, v in _object(value, what).items() if isinstance(v, str)}


def instant(value: object, *, naive_is_utc: bool = False) -> datetime | None:
    """An ISO 8601 / RFC 3339 time (nanoseconds cut to microseconds) as aware UTC; None when
    absent, malformed, or without an offset (unless ``naive_is_utc``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            return None
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _http_url(*candidates: str | None) -> str | None:
    return next((c.strip() for c in candidates if c and re.match(r"^https?://\S+$", c.strip(), re.I)), None)


def parse_alertmanager(data: object) -> list[AlertEvent]:
    """An Alertmanager webhook (version 4): one event per alert of the group."""
    body = _object(data, "the body")
    if str(body.get("version")) != "4":
        raise PayloadError('Alertmanager webhook payload version "4" expected')
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts must be a list")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError(f"more than {MAX_ALERTS} alerts in one notification; set max_alerts")
    events = []
    for n, item in enumerate(alerts):
        alert = _object(item, f"alerts[{n}]")
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f"alerts[{n}].status must be firing or resolved")
        labels = _strings(alert.get("labels"), f"alerts[{n}].labels")
        notes = _strings(alert.get("annotations"), f"alerts[{n}].annotations")
        fingerprint = _text(alert.get("fingerprint"), f"alerts[{n}].fingerprint")
        if not fingerprint:   # before Alertmanager 0.19: the same alert has the same labels
            if not labels:
                raise PayloadError(f"alerts[{n}] has neither a fingerprint nor labels")
            fingerprint = "labels:" + hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:32]
        shown = " ".join(f"{k}={labels[k]}" for k in SHOWN_LABELS if labels.get(k))
        detail = "｜".join(t for t in (notes.get("description") or notes.get("message", ""), shown) if t)
        firing = status == "firing"
        events.append(AlertEvent(
            fingerprint=fingerprint, firing=firing,
            title=notes.get("summary") or notes.get("title") or labels.get("alertname", ""),
            detail=detail, url=_http_url(notes.get("url"), labels.get("url"), labels.get("instance")),
            at=instant(alert.get("startsAt") if firing else alert.get("endsAt"))))
    return events


def parse_uptime_kuma(data: object) -> list[AlertEvent]:
    """An Uptime Kuma webhook: a monitor down (0) or up (1); nothing for its test message,
    a pending (2) or maintenance (3) heartbeat."""
    body = _object(data, "the body")
    heartbeat, monitor = body.get("heartbeat"), body.get("monitor")
    if heartbeat is None and monitor is None:
        _text(body.get("msg"), "msg", required=True)   # the 测试 button: just a message
        return []
    beat, mon = _object(heartbeat, "heartbeat"), _object(monitor, "monitor")
    status = beat.get("status")
    if isinstance(status, bool) or status not in (0, 1, 2, 3):
        raise PayloadError("heartbeat.status must be 0, 1, 2 or 3")
    if status not in (0, 1):
        return []
    name = _text(mon.get("name"), "monitor.name")
    ident = mon.get("id")
    if isinstance(ident, int | str) and not isinstance(ident, bool) and str(ident).strip():
        fingerprint = f"monitor:{ident}"
    elif name:
        fingerprint = f"name:{name}"
    else:
        raise PayloadError("monitor has neither an id nor a name")
    url = mon.get("url") if isinstance(mon.get("url"), str) else None
    return [AlertEvent(
        fingerprint=fingerprint, firing=status == 0, title=f"{name or fingerprint}：监测报告" +
        ("无法访问" if status == 0 else "恢复正常"),
        detail=_text(beat.get("msg"), "heartbeat.msg") or _text(body.get("msg"), "msg"),
        url=_http_url(url), at=instant(beat.get("time"), naive_is_utc=True))]


def parse_generic(data: object) -> list[AlertEvent]:
    """The generic shape: one alert (docs/admin.md)."""
    body = _object(data, "the body")
    status = body.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError("status must be firing or resolved")
    at = body.get("at")
    when = instant(at)
    if at is not None and when is None:
        raise PayloadError("at must be an ISO 8601 time with its offset")
    url = _text(body.get("url"), "url")
    if url and _http_url(url) is None:
        raise PayloadError("url must start with http:// or https://")
    return [AlertEvent(fingerprint=_text(body.get("fingerprint"), "fingerprint", required=True),
                       firing=status == "firing", title=_text(body.get("title"), "title", required=True),
                       detail=_text(body.get("detail"), "detail"), url=url or None, at=when)]


PARSERS: dict[str, Callable[[object], list[AlertEvent]]] = {
    "alertmanager": parse_alertmanager, "uptime_kuma": parse_uptime_kuma, "generic": parse_generic}


# ---- the route -------------------------------------------------------------------------

@dataclass(frozen=True)
class ConfiguredSource:
    """A source as the route sees it: its token, kind, and what its alerts open."""

    token: SecretStr
    kind: str
    source: AlertSource


def configured_sources(settings: Settings, profile: Profile) -> dict[str, ConfiguredSource]:
    """``[alerts.sources]`` checked against the rule profile.

    Raises:
        ConfigError: a source's grade is one the profile does not have (古丈: no 特级).
    """
    found, problems = {}, []
    names = grade_names(profile)
    for name, entry in settings.alerts.sources.items():
        grade = Grade(entry.grade) if entry.grade else None
        if grade is not None and grade not in names.allowed:
            problems.append(f"alerts.sources.{name}.grade：当前规则配置档没有此等级（可用：{names.choices()}）")
        found[name] = _configured(name, entry, grade)
    if problems:
        raise ConfigError(problems, settings.source)
    return found


def _configured(name: str, entry: AlertSourceSettings, grade: Grade | None) -> ConfiguredSource:
    return ConfiguredSource(token=entry.token, kind=entry.kind, source=AlertSource(
        name=name, type_=IncidentType(entry.incident_type), unit=entry.unit, grade=grade, site=entry.site))


def authorized(headers: Mapping[str, str], token: SecretStr) -> bool:
    """``Authorization: Bearer <token>`` with this source's token (constant-time compare)."""
    scheme, _, given = headers.get("authorization", "").strip().partition(" ")
    match = hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode())
    return scheme.lower() == "bearer" and match


class AlertIntake:
    """Serves :data:`PATH` for the configured sources.

    Args:
        engine: the database the alerts and incidents are stored in.
        clock: gives the time of receipt.
        sources: by name (:func:`configured_sources`).
        workflow: calendar, rule profile and incidents policy for opening incidents.
        on_commit: called after a notification is stored (wakes the outbox sender).
    """

    def __init__(self, *, engine: Engine, clock: Clock, sources: Mapping[str, ConfiguredSource],
                 workflow: AlertWorkflow, on_commit: Callable[[], None] = lambda: None) -> None:
        self._engine, self._clock, self._sources = engine, clock, dict(sources)
        self._workflow, self._on_commit = workflow, on_commit

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self._post, methods=["POST"])] if self._sources else []

    async def _post(self, request: Request) -> Response:
        name = request.path_params["source"]
        configured = self._sources.get(name)
        if configured is None:
            return Response(status_code=404)
        if not authorized(request.headers, configured.token):
            log.warning("refused alerts for source %s: missing or wrong token (from %s)", name,
                        request.client.host if request.client else "?")
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = await read_body(request)
        if body is None:
            return Response(status_code=413)
        try:
            events = PARSERS[configured.kind](json.loads(body))
        except (ValueError, RecursionError) as exc:   # PayloadError, JSONDecodeError, UnicodeDecodeError
            reason = str(exc) if isinstance(exc, PayloadError) else "the body is not JSON"
            log.warning("refused alerts for source %s: %s", name, reason)
            return JSONResponse({"error": reason}, status_code=400)
        if not events:
            return JSONResponse({"received": 0, "alerts": []})
        try:
            results = await asyncio.to_thread(self._store, configured.source, events)
        except DutybotError as exc:
            log.warning("refused alerts for source %s: %s", name, exc.message)
            return JSONResponse({"error": "an alert was refused"}, status_code=400)
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("error %s: alerts for source %s were not stored; the sender will retry",
                          error_id, name)
            return JSONResponse({"error": "not stored", "error_id": error_id}, status_code=500)
        self._on_commit()
        log.info("stored %d alert(s) for source %s", len(results), name)
        return JSONResponse({"received": len(results), "alerts": [
            {"fingerprint": r.fingerprint, "outcome": r.outcome.value, "incident": r.incident_number}
            for r in results]})

    def _store(self, source: AlertSource, events: Sequence[AlertEvent]) -> list[Received]:
        with session_scope(self._engine) as session:
            return receive(session=session, source=source, events=events, workflow=self._workflow,
                           now=self._clock.now())


def alert_routes(app: App) -> list[BaseRoute]:
    """The alert intake of ``app`` (no route when no source is configured).

    Raises:
        ConfigError: a source's grade is one the rule profile does not have.
    """
    sources = configured_sources(app.settings, app.profile)
    intake = AlertIntake(engine=app.engine, clock=app.clock, sources=sources, on_commit=app.sender.wake,
                         workflow=AlertWorkflow(calendar=app.calendar, profile=app.profile,
                                                policy=app.incident_policy))
    return intake.routes()
