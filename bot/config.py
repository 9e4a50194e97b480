"""Configuration: one TOML file (``dutybot.toml``) plus ``DUTYBOT_…`` environment variables.

Where the file is: ``--config PATH``, else ``$DUTYBOT_CONFIG``, else ``./dutybot.toml``
when it exists, else built-in defaults (the embedded SQLite database in the current
folder). Relative paths in the file are relative to the file's folder.

Environment variables override the file, by section and key:
``DUTYBOT_DATABASE_URL`` → ``[database] url``, ``DUTYBOT_TELEGRAM_TOKEN`` →
``[telegram] token``, ``DUTYBOT_RULES_PROFILE`` → ``[rules] profile`` and so on.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from accounts.duties import DutyPolicy
from bot.paging.settings import PagingSettings
from bot.web.settings import WebSettings
from checks.indicators import Sheet, load_sheet
from checks.service import CheckPolicy
from core.errors import ConfigError, ProfileError
from core.fetcher import GuardedFetcher
from core.netguard import AllowList
from core.office_hours import OfficeHours
from core.profiles import Profile, load_profile
from core.workdays import WorkdayCalendar
from incidents.models import GRADE_ALIASES, TYPE_ALIASES, TYPE_ZH
from incidents.service import NO_SITES, DutyRoster, IncidentPolicy, SiteSupport
from replies.flows import ReminderPolicy
from roster.patterns import ShiftPatterns, ShiftSpec
from roster.spotcheck_plan import SpotCheckPlan
from watch.types import WatchPolicy

CONFIG_NAME = "dutybot.toml"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _time_of_day(value: str) -> str:
    """A clock time ``HH:MM`` between 00:00 and 23:59."""
    if not _HHMM.match(value) or value == "24:00":
        raise ValueError(f"应为 HH:MM 格式的时间（如 08:30），收到 {value!r}")
    return value


TimeOfDay = Annotated[str, AfterValidator(_time_of_day)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = "sqlite:///dutybot.db"


class RulesSettings(_Section):
    profile: str = "default"
    overrides: dict[str, str] = Field(default_factory=dict)


class CalendarSettings(_Section):
    holidays_dir: str = "holidays"
    cutoff: str = "24:00"
    # Office hours on working days: routine reminders (public replies, 一般 incidents'
    # steps) falling outside wait for the next working period; "" sends them at any hour.
    office_hours: str = "09:00-17:30"

    @field_validator("cutoff")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"应为 HH:MM 格式的时间（如 24:00 或 17:30），收到 {v!r}")
        return v

    @field_validator("office_hours")
    @classmethod
    def _office(cls, v: str) -> str:
        if not v.strip():
            return ""
        _window(v)
        start, end = (_hhmm(part.strip()) for part in v.split("-"))
        if not start < end:
            raise ValueError(f"上班时间应早于下班时间（如 09:00-17:30），收到 {v!r}")
        return v

    def office(self, calendar: WorkdayCalendar) -> OfficeHours | None:
        """The office hours on ``calendar``'s working days; None when not set."""
        if not self.office_hours:
            return None
        start, end = (_hhmm(part.strip()) for part in self.office_hours.split("-"))
        return OfficeHours(calendar, start, end)

    def cutoff_time(self) -> time | None:
        """None for 24:00 (end of day), else the office cut-off."""
        if self.cutoff == "24:00":
            return None
        hh, mm = map(int, self.cutoff.split(":"))
        return time(hh, mm)


class BotSettings(_Section):
    adapter: Literal["console", "telegram", "wecom", "dingtalk"] = "console"
    unit: str = Field(default="本单位", min_length=1, max_length=50)
    max_input_chars: int = Field(default=2000, ge=100, le=20000)
    tick_seconds: float = Field(default=5.0, gt=0, le=300)
    # dutybot run --worker: how often a follower asks for the lead (bot.leader).
    leader_check_seconds: float = Field(default=5.0, ge=0.2, le=30)
    # dutybot run --worker: how many workers run; each sends at most 1/workers of the
    # platform's overall rate (Telegram's 30 messages a second are the bot's, not a process's).
    workers: int = Field(default=1, ge=1, le=64)
    invite_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)


class RepliesSettings(_Section):
    remind_lead_workdays: int = Field(default=1, ge=0, le=10)
    remind_time: TimeOfDay = "09:00"
    escalate_leader_hours: float = Field(default=4, ge=0, le=24 * 14)
    escalate_principal_hours: float = Field(default=24, ge=0, le=24 * 30)

    def policy(self, office_hours: OfficeHours | None = None) -> ReminderPolicy:
        """The domain's view of these settings (``Settings.reply_policy`` adds the office hours)."""
        hh, mm = map(int, self.remind_time.split(":"))
        return ReminderPolicy(self.remind_lead_workdays, time(hh, mm),
                              timedelta(hours=self.escalate_leader_hours),
                              timedelta(hours=self.escalate_principal_hours), office_hours)


class AccountsSettings(_Section):
    """New-media accounts (issue 18): the reminders of account duties and the daily checks
    of posting cadence. These are the office's working practice, not article values."""

    remind_lead_workdays: int = Field(default=2, ge=0, le=10)
    remind_time: TimeOfDay = "09:00"
    escalate_leader_hours: float = Field(default=24, ge=0, le=24 * 14)
    check_time: TimeOfDay = "09:00"
    warn_days_ahead: int = Field(default=2, ge=0, le=14)
    feed_fetch_minutes: int = Field(default=60, ge=0, le=24 * 60)

    def duty_policy(self, office_hours: OfficeHours | None = None) -> DutyPolicy:
        """The domain's view of the reminder settings (``Settings.account_duty_policy``
        adds the office hours)."""
        hh, mm = map(int, self.remind_time.split(":"))
        return DutyPolicy(self.remind_lead_workdays, time(hh, mm),
                          timedelta(hours=self.escalate_leader_hours), office_hours)


def _month_day(value: str) -> str:
    """A day of the year ``MM-DD``."""
    try:
        date(2024, *map(int, value.split("-")))
    except (TypeError, ValueError):
        raise ValueError(f"应为 MM-DD 格式的日期（如 11-01），收到 {value!r}") from None
    if not re.fullmatch(r"\d{2}-\d{2}", value):
        raise ValueError(f"应为 MM-DD 格式的日期（如 11-01），收到 {value!r}")
    return value


class ChecksSettings(_Section):
    """Periodic checks (issue 18 item 4): the score sheet, and the office's working practice
    for rectification periods and reminders (no article sets them)."""

    indicators: str = ""                     # a score sheet file; "": the shipped one
    rectify_workdays: int = Field(default=10, ge=1, le=60)
    remind_lead_workdays: int = Field(default=2, ge=0, le=10)
    training_remind_from: Annotated[str, AfterValidator(_month_day)] = "11-01"

    def policy(self, calendar: WorkdayCalendar, office_hours: OfficeHours | None = None) -> CheckPolicy:
        """The domain's view of these settings (``Settings.check_policy`` adds the office hours)."""
        month, day = map(int, self.training_remind_from.split("-"))
        return CheckPolicy(calendar, office_hours, self.rectify_workdays, self.remind_lead_workdays, (month, day))


class WatchSettings(_Section):
    """Site watch (issue 17): how often each check runs and its limits (docs/configuration.md)."""

    enabled: bool = True
    availability_minutes: int = Field(default=5, ge=1, le=24 * 60)
    freshness_minutes: int = Field(default=360, ge=5, le=7 * 24 * 60)
    links_minutes: int = Field(default=1440, ge=15, le=30 * 24 * 60)
    content_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    down_after: int = Field(default=3, ge=1, le=100)
    slow_ms: int = Field(default=5000, ge=100, le=120_000)
    month_warn_pct: float = Field(default=3.0, gt=0, le=100)
    month_fail_pct: float = Field(default=5.0, gt=0, le=100)
    cert_warn_days: int = Field(default=14, ge=1, le=365)
    fresh_warn_days: int = Field(default=3, ge=0, le=60)
    crawl_depth: int = Field(default=2, ge=0, le=10)
    crawl_max_pages: int = Field(default=200, ge=1, le=100_000)
    per_host_concurrency: int = Field(default=2, ge=1, le=32)
    polite_delay_ms: int = Field(default=500, ge=0, le=60_000)
    timeout_seconds: float = Field(default=15, gt=0, le=120)
    max_bytes: int = Field(default=5_000_000, ge=10_000, le=200_000_000)
    lexicons: list[str] = Field(default_factory=list, max_length=50)
    # Availability probes older than this many days are deleted at night (0: never).
    probe_keep_days: int = Field(default=400, ge=0, le=36_500)

    def policy(self, resolve: Callable[[str], Path] | None = None) -> WatchPolicy:
        """The domain's view; lexicon paths made absolute with ``resolve`` (the config's folder)."""
        paths = tuple(str(resolve(p) if resolve else p) for p in self.lexicons)
        return WatchPolicy(
            availability_minutes=self.availability_minutes, freshness_minutes=self.freshness_minutes,
            links_minutes=self.links_minutes, content_minutes=self.content_minutes, down_after=self.down_after,
            slow_ms=self.slow_ms, month_warn_pct=self.month_warn_pct, month_fail_pct=self.month_fail_pct,
            cert_warn_days=self.cert_warn_days, fresh_warn_days=self.fresh_warn_days, crawl_depth=self.crawl_depth,
            crawl_max_pages=self.crawl_max_pages, per_host_concurrency=self.per_host_concurrency,
            polite_delay_ms=self.polite_delay_ms, timeout_seconds=self.timeout_seconds, max_bytes=self.max_bytes,
            lexicons=paths, probe_keep_days=self.probe_keep_days)


class BriefingSettings(_Section):
    time: TimeOfDay = "08:30"
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    # The duty group's chat id on the active platform; empty: leaders only.
    group_chat_id: str = ""
    max_lines: int = Field(default=5, ge=1, le=50)


class OutboxSettings(_Section):
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_base_seconds: float = Field(default=2.0, gt=0, le=600)
    backoff_max_seconds: float = Field(default=600.0, gt=0, le=86400)
    batch_size: int = Field(default=50, ge=1, le=1000)
    # A message to a person bound on no chat platform waits this long for them to bind
    # (bot/waiting.py), then it is given up.
    unbound_wait_hours: int = Field(default=72, ge=1, le=24 * 30)


class TelegramSettings(_Section):
    token: SecretStr | None = None
    # The Bot API server: its root (https://tg-api.example.gov.cn), or a URL ending in /bot.
    base_url: str | None = None
    mode: Literal["polling", "webhook"] = "polling"
    # The public https URL Telegram posts updates to (the reverse proxy forwards it to
    # /telegram/webhook on the HTTP service). Required in webhook mode.
    webhook_url: str | None = None
    # Telegram sends it back in X-Telegram-Bot-Api-Secret-Token; empty: a new random one
    # at every start (the bot registers the webhook itself).
    webhook_secret: SecretStr | None = None
    proxy: str | None = None
    poll_timeout: int = Field(default=30, ge=0, le=50)
    # How long a send waits for Telegram's answer (a resend after a lost answer may
    # duplicate: Telegram has no idempotency key; docs/security.md).
    send_timeout_seconds: float = Field(default=60, gt=0, le=600)

    @field_validator("webhook_secret")
    @classmethod
    def _secret_chars(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", v.get_secret_value()):
            raise ValueError("只能包含字母、数字、下划线和连字符，1–256 个字符")
        return v

    @model_validator(mode="after")
    def _webhook_has_url(self) -> TelegramSettings:
        if self.mode == "webhook" and not (self.webhook_url or "").startswith("https://"):
            raise ValueError("webhook 模式需要 webhook_url（以 https:// 开头的公网地址）")
        return self


class WeComSettings(_Section):
    # 企业微信 self-built app (自建应用): from the admin console.
    corp_id: str = ""
    agent_id: int | None = None
    secret: SecretStr | None = None
    # The app's callback settings (接收消息): Token and EncodingAESKey.
    token: SecretStr | None = None
    aes_key: SecretStr | None = None
    api_base: str = "https://qyapi.weixin.qq.com"
    # A group robot (群机器人) webhook URL for broadcasts to the duty group; messages
    # addressed to the chat id "robot" (e.g. briefing.group_chat_id = "robot") use it.
    robot_webhook: SecretStr | None = None
    # How long a send waits for WeCom's answer; longer than WeCom's own slow moments, so
    # that a slow answer is not taken for a failure and sent again (docs/security.md).
    send_timeout_seconds: float = Field(default=60, gt=0, le=600)


class DingTalkSettings(_Section):
    # stream (default, recommended): the bot opens a connection to DingTalk (no public
    # URL, nothing to replay); callback: DingTalk posts to /dingtalk/callback on the HTTP
    # service (each signed timestamp accepted once, see docs/security.md).
    mode: Literal["stream", "callback"] = "stream"
    # Encrypted HTTP callbacks (事件订阅 HTTP 推送) at /dingtalk/events, served when both
    # are set: the console's token and 43-character aes_key; the plaintext must end with
    # callback_owner_key (empty: client_id, an app's 事件订阅; a corp id for a callback
    # registered through the old 注册回调 API).
    callback_token: SecretStr | None = None
    callback_aes_key: SecretStr | None = None
    callback_owner_key: str = ""
    # The app's credentials (Client ID = AppKey, Client Secret = AppSecret).
    client_id: str = ""
    client_secret: SecretStr | None = None
    # The app robot's code (usually the same as client_id).
    robot_code: str = ""
    api_base: str = "https://api.dingtalk.com"
    # A custom robot (自定义机器人) for broadcasts to the duty group: its webhook URL and
    # signing secret (加签); messages addressed to the chat id "robot" use it.
    robot_webhook: SecretStr | None = None
    robot_secret: SecretStr | None = None
    # How long a send waits for DingTalk's answer (docs/security.md).
    send_timeout_seconds: float = Field(default=60, gt=0, le=600)


class HttpSettings(_Section):
    # Where the HTTP service listens under `dutybot run` (platform callbacks, /healthz,
    # /readyz, /metrics); a reverse proxy in front terminates TLS. `enabled = false` turns
    # it off for platforms that need no callback (Telegram polling, DingTalk Stream, console).
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # /readyz fails when the oldest pending outbox message was queued longer ago than this,
    # when the scheduler has not ticked for [bot] tick_seconds plus tick_grace_seconds, and
    # when the platform has been unreachable for platform_grace_seconds.
    ready_outbox_max_age_seconds: int = Field(default=900, ge=10, le=7 * 86400)
    ready_tick_grace_seconds: float = Field(default=60, ge=0, le=3600)
    ready_platform_grace_seconds: float = Field(default=300, ge=0, le=86400)


class LoggingSettings(_Section):
    # text: one readable line per event (the default); json: one JSON object per line,
    # for a log collector. `dutybot --log-format` overrides it.
    format: Literal["text", "json"] = "text"


class BackupSettings(_Section):
    """``dutybot backup`` and the scheduled backup (bot/backup_job.py, docs/admin.md §7)."""

    # Where archives are written (relative: to the config file's folder); better another disk.
    dir: str = "backups"
    # Rotation after each backup into ``dir``: keep the newest ``keep`` archives and none
    # older than ``keep_days`` days (0: no limit of that kind); the newest is always kept.
    keep: int = Field(default=14, ge=0, le=100_000)
    keep_days: int = Field(default=0, ge=0, le=36_500)
    # A daily backup at this time (HH:MM, Beijing time) while the bot runs; "": none.
    schedule: str = ""

    @field_validator("schedule")
    @classmethod
    def _daily_time(cls, v: str) -> str:
        return _time_of_day(v.strip()) if v.strip() else ""


_ALERT_SOURCE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


class AlertSourceSettings(_Section):
    """One monitoring system posting to ``/alerts/<name>``: ``[alerts.sources.<name>]``."""

    # Sent as ``Authorization: Bearer <token>``; compared in constant time.
    token: SecretStr
    kind: Literal["alertmanager", "uptime_kuma", "generic"] = "generic"
    # What its alerts open: the incident type (site_down, 无法访问 …), the unit, the grade
    # (empty: the type's default), the site named when an alert carries no address.
    incident_type: str = "site_down"
    unit: str = Field(default="", max_length=100)
    grade: str = ""
    site: str = Field(default="", max_length=200)

    @field_validator("token")
    @classmethod
    def _token_chars(cls, v: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[\x21-\x7e]{16,256}", v.get_secret_value()):
            raise ValueError("令牌应为 16–256 个字符（字母、数字或符号，不含空格），"
                             "可用 openssl rand -hex 32 生成")
        return v

    @field_validator("incident_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        found = TYPE_ALIASES.get(v.strip())
        if found is None:
            raise ValueError(f"未知的事件类型 {v!r}，可用：{'、'.join(TYPE_ZH.values())}")
        return found.value

    @field_validator("grade")
    @classmethod
    def _known_grade(cls, v: str) -> str:
        if not v.strip():
            return ""
        found = GRADE_ALIASES.get(v.strip())
        if found is None:
            raise ValueError(f"未知的等级 {v!r}，可用：一般、重大、特级")
        return found.value


class AlertsSettings(_Section):
    # Monitoring systems that may post alerts to POST /alerts/<name> (bot/alerts_http.py).
    sources: dict[str, AlertSourceSettings] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _source_names(cls, v: dict[str, AlertSourceSettings]) -> dict[str, AlertSourceSettings]:
        bad = [name for name in v if not _ALERT_SOURCE.fullmatch(name)]
        if bad:
            raise ValueError(f"告警来源名称 {'、'.join(bad)} 无效：应为小写字母、数字、下划线或连字符，至多 40 个字符")
        tokens = [s.token.get_secret_value() for s in v.values()]
        if len(set(tokens)) != len(tokens):
            raise ValueError("每个告警来源应使用不同的令牌")
        return v


class IncidentsSettings(_Section):
    # What a deadline of "at once" (立即) means, for escalation: minutes from its anchor.
    at_once_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # A step's owner is reminded this long before its deadline (0: no reminder).
    remind_before_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # Until the roster exists: names of the leaders on duty (、 or , separated); empty:
    # the active leaders of the incident's unit (all leaders if the unit has none).
    leaders_on_duty: str = ""
    # The district office's people (top rung of every ladder; their reports count as
    # 区政府办公室通报, SENS-3).
    district_office: str = ""
    # After every rung of a ladder was told, it is repeated (to the unit's leader on duty
    # and principal) at most this many times, then one closing note; the intervals are in
    # incidents/playbooks/ladders.toml.
    repeat_limit: int = Field(default=2, ge=0, le=20)
    evidence_dir: str = "evidence"
    # A report naming an address that an open incident, or one reported within this many
    # hours, already has is offered as that incident (合并 / 分开); 0: open incidents only.
    duplicate_window_hours: int = Field(default=24, ge=0, le=24 * 90)
    fetch_timeout_seconds: float = Field(default=15, gt=0, le=120)
    fetch_max_bytes: int = Field(default=10_000_000, ge=10_000, le=200_000_000)
    # Intranet hosts evidence may be fetched from (internal, loopback and reserved
    # addresses are refused otherwise): names, *.suffixes, name:port, IPs, IP:port, CIDRs.
    # In the environment: comma or space separated (core.netguard, docs/security.md).
    fetch_allow: list[str] = Field(default_factory=list, max_length=200)

    @field_validator("fetch_allow", mode="before")
    @classmethod
    def _allow_entries(cls, value: object) -> object:
        entries = re.split(r"[、,，\s]+", value) if isinstance(value, str) else value
        if isinstance(entries, list):
            entries = [e for e in entries if not isinstance(e, str) or e.strip()]
            AllowList.parse(e for e in entries if isinstance(e, str))   # ValueError: Chinese
        return entries

    def fetcher(self) -> GuardedFetcher:
        """The guarded fetcher for evidence pages, with ``fetch_allow``."""
        return GuardedFetcher(allow=AllowList.parse(self.fetch_allow))

    def names(self, field: str) -> list[str]:
        """A name-list setting split on 、 , ， and spaces."""
        return [n for n in re.split(r"[、,，\s]+", getattr(self, field)) if n]

    def policy(self, *, on_duty: DutyRoster, sites: SiteSupport = NO_SITES,
               office_hours: OfficeHours | None = None) -> IncidentPolicy:
        """The domain's view of these settings; ``on_duty`` is who the roster has on duty
        (the composition root passes the roster's answer; there is no silent default),
        ``sites`` the site registry (who supports a site), ``office_hours`` when routine
        pings may go out (``Settings.office_hours``)."""
        return IncidentPolicy(at_once_minutes=self.at_once_minutes,
                              remind_before=timedelta(minutes=self.remind_before_minutes),
                              leaders_on_duty=tuple(self.names("leaders_on_duty")),
                              district_office=tuple(self.names("district_office")),
                              on_duty=on_duty, sites=sites, repeat_limit=self.repeat_limit,
                              office_hours=office_hours)


class ShiftEntry(_Section):
    name: str = Field(min_length=1, max_length=20)
    start: TimeOfDay
    end: TimeOfDay
    officers: int = Field(default=1, ge=1, le=10)


def _window(value: str) -> str:
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError(f"应为 HH:MM-HH:MM（如 09:00-11:30），收到 {value!r}")
    for part in parts:
        _time_of_day(part.strip())
    return value


# Reading-round windows when none are configured: 7×24 reading (梁平办法第二十条 "7×24小时读网检查，
# 不定时阅读") spreads rounds over day and night; daily patrols (日常巡查巡检) keep office hours.
ROUND_WINDOWS_7X24 = ["09:00-11:30", "14:30-17:00", "20:00-22:30", "06:30-08:00"]
ROUND_WINDOWS_DAILY = ["09:00-11:30", "14:30-17:00"]


class SpotCheckPlanEntry(_Section):
    """``[roster.spotcheck_plan]``: spot-checks (DUTY-4) drawn ahead at random times inside
    ``windows``; ``per_week`` per listed unit, or in all (a unit on duty drawn at the time)
    when ``units`` is empty. Off while ``per_week`` is 0. ``seed``: reproducible draws, for
    drills only (unset, the times cannot be worked out)."""

    per_week: int = Field(default=0, ge=0, le=50)
    windows: list[Annotated[str, AfterValidator(_window)]] = Field(default_factory=lambda: ["08:30-17:30"], min_length=1)
    units: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)
    workdays_only: bool = False
    seed: str | None = None


class RosterSettings(_Section):
    workday_shifts: list[ShiftEntry] = Field(default_factory=lambda: [
        ShiftEntry(name="白班", start="08:30", end="17:30"), ShiftEntry(name="夜班", start="17:30", end="08:30")])
    restday_shifts: list[ShiftEntry] = Field(default_factory=lambda: [
        ShiftEntry(name="全天", start="08:30", end="08:30")])
    # Swaps need the leader on duty's approval after the other person accepts.
    swap_needs_approval: bool = True
    # Gap warnings: a shift without an officer or a leader this many days ahead, and the day before.
    gap_warning_days: int = Field(default=7, ge=1, le=60)
    # Reminders: the evening before (at this time) and this many minutes before a shift.
    evening_reminder_time: TimeOfDay = "20:00"
    remind_before_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # Check-in (接班) within this many minutes of the shift start; then the officer is
    # reminded, and after checkin_escalate_minutes more the leader on duty is told.
    checkin_minutes: int = Field(default=30, ge=5, le=24 * 60)
    checkin_escalate_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Reading rounds (读网): one prompt at a random time inside each window that falls in a
    # shift; answered within round_answer_minutes. Unset: the profile decides — around the
    # clock where the office's rules require 7×24 reading (梁平办法第二十条), office-hours
    # patrols (日常巡查) otherwise.
    round_windows: list[Annotated[str, AfterValidator(_window)]] | None = None
    round_answer_minutes: int = Field(default=30, ge=5, le=24 * 60)
    round_seed: str = "dutybot"
    # Spot-checks (DUTY-4): the officer on duty must confirm within this many minutes.
    spotcheck_confirm_minutes: int = Field(default=15, ge=1, le=24 * 60)
    spotcheck_plan: SpotCheckPlanEntry = Field(default_factory=SpotCheckPlanEntry)
    # Rest rules (roster.rest): the office's own setting — no regulation in DOMAIN.md sets
    # duty or rest hours. Back-to-back shifts are one continuous stretch; 0 switches a rule off.
    max_continuous_hours: int = Field(default=24, ge=0, le=24 * 7)
    min_rest_hours: int = Field(default=8, ge=0, le=72)
    # /handover more than this many minutes before the shift ends asks for confirmation (0: never).
    handover_early_minutes: int = Field(default=30, ge=0, le=24 * 60)

    # Whether the shifts must cover the whole day: set from the rule profile when the
    # settings are loaded (7×24 only where the office's rules say so, 梁平办法第二十条).
    _round_the_clock: bool = PrivateAttr(default=True)

    @model_validator(mode="after")
    def _patterns_are_sound(self) -> RosterSettings:
        # The profile is not known yet: check what holds for every profile (no overlaps);
        # load_settings checks 24-hour coverage once it knows the profile.
        try:
            patterns = self.patterns(round_the_clock=False)
        except ConfigError as exc:
            raise ValueError("；".join(exc.problems)) from None
        longest = max((*patterns.workday, *patterns.restday), key=lambda s: s.length)
        if self.max_continuous_hours and longest.length > timedelta(hours=self.max_continuous_hours):
            raise ValueError(f"max_continuous_hours（{self.max_continuous_hours}小时）短于班次“{longest.name}”"
                             f"（{longest.length.total_seconds() / 3600:g}小时），任何人值这个班都会超限")
        return self

    def patterns(self, *, round_the_clock: bool | None = None) -> ShiftPatterns:
        """The domain's shift patterns.

        Raises:
            ConfigError: the shifts overlap, or (7×24) leave gaps or do not chain.
        """
        def specs(entries: list[ShiftEntry]) -> tuple[ShiftSpec, ...]:
            return tuple(ShiftSpec(e.name, _hhmm(e.start), _hhmm(e.end), e.officers) for e in entries)
        whole_day = self._round_the_clock if round_the_clock is None else round_the_clock
        return ShiftPatterns(specs(self.workday_shifts), specs(self.restday_shifts), whole_day)

    def spotcheck_policy(self) -> SpotCheckPlan:
        """``[roster.spotcheck_plan]`` for ``roster.spotcheck_plan``."""
        entry = self.spotcheck_plan
        return SpotCheckPlan(entry.per_week, tuple(_span(w) for w in entry.windows), tuple(entry.units),
                             entry.workdays_only, timedelta(minutes=self.spotcheck_confirm_minutes), entry.seed)

    def windows(self, *, round_the_clock: bool = True) -> list[tuple[time, time]]:
        """The reading-round windows as times: the configured ones, else the profile's kind."""
        chosen = self.round_windows
        if chosen is None:
            chosen = ROUND_WINDOWS_7X24 if round_the_clock else ROUND_WINDOWS_DAILY
        return [(_hhmm(a.strip()), _hhmm(b.strip())) for a, b in (w.split("-") for w in chosen)]


def _hhmm(text: str) -> time:
    hh, mm = map(int, text.split(":"))
    return time(hh, mm)


def _span(window: str) -> tuple[time, time]:
    """``08:30-17:30`` as two times."""
    a, b = window.split("-")
    return _hhmm(a.strip()), _hhmm(b.strip())


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    replies: RepliesSettings = Field(default_factory=RepliesSettings)
    accounts: AccountsSettings = Field(default_factory=AccountsSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    checks: ChecksSettings = Field(default_factory=ChecksSettings)
    briefing: BriefingSettings = Field(default_factory=BriefingSettings)
    incidents: IncidentsSettings = Field(default_factory=IncidentsSettings)
    roster: RosterSettings = Field(default_factory=RosterSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    paging: PagingSettings = Field(default_factory=PagingSettings)   # 电话/短信提醒 (bot/paging/)
    web: WebSettings = Field(default_factory=WebSettings)   # 值班看板 (bot/web/)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
    dingtalk: DingTalkSettings = Field(default_factory=DingTalkSettings)

    # Where the file was (None: defaults only); relative paths resolve against base_dir.
    source: str | None = Field(default=None, exclude=True)
    base_dir: str = Field(default=".", exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def database_url(self) -> str:
        """The SQLAlchemy URL, with a relative SQLite path made absolute."""
        url = self.database.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rest = url.removeprefix("sqlite:///")
            if rest and rest != ":memory:":
                return "sqlite:///" + str(self.resolve(rest).resolve())
        return url

    def office_hours(self, calendar: WorkdayCalendar) -> OfficeHours | None:
        """``[calendar] office_hours`` on ``calendar``'s working days (None: not set)."""
        return self.calendar.office(calendar)

    def check_policy(self, calendar: WorkdayCalendar) -> CheckPolicy:
        """``[checks]`` with the office hours their reminders wait for."""
        return self.checks.policy(calendar, self.office_hours(calendar))

    def check_sheet(self) -> Sheet:
        """The score sheet of ``[checks] indicators`` (else the shipped one).

        Raises:
            SheetError: the file is missing, unreadable or malformed.
        """
        path = self.checks.indicators.strip()
        return load_sheet(self.resolve(path) if path else None)

    def watch_policy(self) -> WatchPolicy:
        """``[watch]`` with lexicon paths resolved against the config file's folder."""
        return self.watch.policy(self.resolve)

    def account_duty_policy(self, calendar: WorkdayCalendar) -> DutyPolicy:
        """``[accounts]`` reminders with the office hours they wait for."""
        return self.accounts.duty_policy(self.office_hours(calendar))

    def reply_policy(self, calendar: WorkdayCalendar) -> ReminderPolicy:
        """``[replies]`` with the office hours their reminders wait for."""
        return self.replies.policy(self.office_hours(calendar))

    def profile(self) -> Profile:
        """The active rule profile with the configured overrides.

        Raises:
            ConfigError: the profile is unknown or an override is invalid.
        """
        try:
            return load_profile(self.rules.profile, overrides=self.rules.overrides)
        except ProfileError as exc:
            raise ConfigError([exc.message], self.source) from None


_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不是可识别的配置项（请检查拼写）",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "string_type": "应为字符串",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "dict_type": "应为一个表（[节]）",
    "model_type": "应为一个表（[节]）",
    "string_too_short": "不能为空",
    "string_too_long": "过长",
}


def _zh(err: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        msg = f"取值无效，可选：{allowed}"
    elif kind in ("greater_than_equal", "greater_than"):
        msg = f"应不小于 {err['ctx'].get('ge', err['ctx'].get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        msg = f"应不大于 {err['ctx'].get('le', err['ctx'].get('lt'))}"
    elif kind == "value_error":
        msg = str(err["ctx"]["error"])
    else:
        msg = _MESSAGES.get(kind, err["msg"])
    got = err.get("input")
    suffix = "" if kind in ("missing", "value_error") or isinstance(got, dict) else f"（收到 {got!r}）"
    return f"{key}：{msg}{suffix}"


def _env_overlay(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    sections = [name for name in Settings.model_fields if name not in ("source", "base_dir")]
    for name, value in env.items():
        if not name.startswith("DUTYBOT_") or name in ("DUTYBOT_CONFIG",):
            continue
        rest = name.removeprefix("DUTYBOT_").lower()
        for section in sections:
            if rest.startswith(section + "_"):
                table = raw.setdefault(section, {})
                if isinstance(table, dict):
                    table[rest.removeprefix(section + "_")] = value
                break


def find_config(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, or None to run on defaults."""
    if explicit:
        return Path(explicit)
    if env.get("DUTYBOT_CONFIG"):
        return Path(env["DUTYBOT_CONFIG"])
    here = Path.cwd() / CONFIG_NAME
    return here if here.exists() else None


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the file (if any), overlay the environment, validate.

    Raises:
        ConfigError: one Chinese line per problem, each naming its key.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    source = None
    if path is not None:
        source = str(path)
        if not path.exists():
            raise ConfigError([f"找不到配置文件 {path}（可运行 dutybot init 生成）"], source)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"不是有效的 TOML：{exc}"], source) from None
        except UnicodeDecodeError:
            raise ConfigError(["文件不是 UTF-8 编码"], source) from None
        base_dir = path.resolve().parent
    _env_overlay(raw, env)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_zh(e) for e in exc.errors()], source) from None
    settings.source = source
    settings.base_dir = str(base_dir)
    profile = settings.profile()  # a bad profile or override is a config error, found at start-up
    settings.roster._round_the_clock = profile.round_the_clock
    try:
        settings.roster.patterns()
    except ConfigError as exc:
        raise ConfigError(exc.problems, source) from None
    return settings


def example_config() -> str:
    """The commented example written by ``dutybot init``."""
    return resources.files("bot").joinpath("example_config.toml").read_text(encoding="utf-8")
