"""``[paging]``: phone paging (电话/短信提醒) through Alibaba Cloud or Tencent Cloud.

Flat keys, so that every one has a ``DUTYBOT_PAGING_…`` variable
(``DUTYBOT_PAGING_ALIYUN_ACCESS_KEY_SECRET``); the quiet rules are ``[paging.quiet]``,
keyed by person name. docs/configuration.md lists them; docs/admin.md (电话/短信提醒)
says where each value comes from.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from incidents.models import GRADE_ALIASES, Grade
from incidents.paging_models import PageChannel, PagingPolicy, QuietRule

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
#: The values a template may ask for, by name (``template_params``, ``tts_params``).
TEMPLATE_VALUES = ("number", "short", "grade", "type", "site", "rung")
Channel = Literal["sms", "voice"]


def parse_window(value: str) -> tuple[time, time]:
    """``22:00-07:00`` → (22:00, 07:00).

    Raises:
        ValueError: not two HH:MM times, or the same time twice (Chinese message).
    """
    parts = [p.strip() for p in re.split(r"[-–—~～]", value.strip())]
    matches = [_HHMM.match(p) for p in parts]
    if len(parts) != 2 or not all(matches):
        raise ValueError(f"时段应写成 HH:MM-HH:MM（如 22:00-07:00），收到 {value!r}")
    start, end = (time(int(m.group(1)), int(m.group(2))) for m in matches if m)
    if start == end:
        raise ValueError(f"时段 {value!r} 的开始和结束相同")
    return start, end


def _grade(value: str) -> Grade:
    found = GRADE_ALIASES.get(value.strip())
    if found is None:
        raise ValueError(f"未知的等级 {value!r}，可用：一般、重大、特级")
    return found


def _token(v: SecretStr | None) -> SecretStr | None:
    if v is not None and v.get_secret_value() and not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", v.get_secret_value()):
        raise ValueError("回调令牌应为 16–128 个字母、数字、下划线或连字符（可用 openssl rand -hex 24 生成）")
    return v


class QuietSettings(BaseModel):
    """One person's quiet hours: ``王芳 = { window = "22:00-07:00", sms_only = true }``."""

    model_config = ConfigDict(extra="forbid")
    window: str
    sms_only: bool = False
    only: str = ""   # in the window only this grade or higher pages (e.g. 特级)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        parse_window(v)
        return v

    @field_validator("only")
    @classmethod
    def _only(cls, v: str) -> str:
        return _grade(v).value if v.strip() else ""

    @model_validator(mode="after")
    def _says_something(self) -> QuietSettings:
        if not self.sms_only and not self.only:
            raise ValueError("免打扰规则需写明 sms_only = true 或 only = \"特级\"（至少一项）")
        return self

    def rule(self) -> QuietRule:
        start, end = parse_window(self.window)
        return QuietRule(start=start, end=end, sms_only=self.sms_only,
                         min_grade=Grade(self.only) if self.only else None)


class PagingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # Who sends the SMS: aliyun (阿里云短信) or tencent (腾讯云短信). Voice calls: Alibaba Cloud only.
    provider: Literal["aliyun", "tencent"] = "aliyun"
    # Which pings page: these grades from rung min_rung up (0 officer, 1 leader on duty,
    # 2 principal, 3 district office); at night from night_min_rung up.
    grades: list[str] = Field(default_factory=lambda: ["重大", "特级"], validate_default=True)
    min_rung: int = Field(default=1, ge=0, le=10)
    night: str = "22:00-07:00"
    night_min_rung: int = Field(default=0, ge=0, le=10)
    # How, per grade (default: SMS): e.g. { 特级 = ["sms", "voice"], 重大 = ["sms"] }.
    channels: dict[str, list[Channel]] = Field(default_factory=lambda: {"特级": ["sms", "voice"], "重大": ["sms"]},
                                               validate_default=True)
    # Whether the repeats after the top rung page too; whether an overdue step's ladder
    # pages (default: only the acknowledgement ladder and manual escalations page).
    repeats: bool = True
    steps: bool = False
    # Sending: attempts before a page is given up; backoff between them.
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_base_seconds: float = Field(default=10, gt=0, le=3600)
    backoff_max_seconds: float = Field(default=300, gt=0, le=86400)
    timeout_seconds: float = Field(default=15, gt=0, le=120)
    # A reply is matched to the pages of the last reply_window_hours.
    reply_window_hours: int = Field(default=24, ge=1, le=24 * 7)
    # The template variables, in order (Tencent's TemplateParamSet is a list; Alibaba's
    # TemplateParam and TtsParam use the names): number, short, grade, type, site, rung.
    template_params: list[str] = Field(default_factory=lambda: ["number", "grade", "type"])
    tts_params: list[str] = Field(default_factory=lambda: ["number", "grade", "type"])

    # 阿里云 (dysmsapi SendSms, dyvmsapi SingleCallByTts): RAM user AccessKey.
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: SecretStr | None = None
    aliyun_sign_name: str = ""                 # 短信签名
    aliyun_sms_template: str = ""              # SMS_123456789
    aliyun_tts_code: str = ""                  # TTS_123456789 (voice calls)
    aliyun_called_show_number: str = ""        # 主叫显号 (voice calls)
    aliyun_play_times: int = Field(default=2, ge=1, le=3)
    aliyun_region: str = "cn-hangzhou"
    aliyun_sms_url: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_voice_url: str = "https://dyvmsapi.aliyuncs.com/"
    # Path secret of /paging/aliyun/<token>/sms-up and /voice-report (the callbacks).
    aliyun_callback_token: SecretStr | None = None

    # 腾讯云 (sms SendSms 2021-01-11): API key of a sub-user.
    tencent_secret_id: str = ""
    tencent_secret_key: SecretStr | None = None
    tencent_sms_app_id: str = ""               # SmsSdkAppId
    tencent_sign_name: str = ""
    tencent_template_id: str = ""
    tencent_region: str = "ap-guangzhou"
    tencent_sms_url: str = "https://sms.tencentcloudapi.com/"
    # Path secret of /paging/tencent/<token>/sms-reply.
    tencent_callback_token: SecretStr | None = None

    # Quiet hours by person name: [paging.quiet] 王芳 = { window = "22:00-07:00", sms_only = true }
    quiet: dict[str, QuietSettings] = Field(default_factory=dict)

    @field_validator("grades", "template_params", "tts_params", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [v for v in re.split(r"[、,，\s]+", value) if v] if isinstance(value, str) else value

    @field_validator("grades")
    @classmethod
    def _grades(cls, v: list[str]) -> list[str]:
        return [_grade(g).value for g in v]

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        found = {_grade(g).value: list(dict.fromkeys(c)) for g, c in v.items()}
        if any(not c for c in found.values()):
            raise ValueError("每个等级至少一种方式（sms 或 voice）")
        return found

    @field_validator("night")
    @classmethod
    def _night(cls, v: str) -> str:
        parse_window(v)
        return v

    @field_validator("template_params", "tts_params")
    @classmethod
    def _params(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if p not in TEMPLATE_VALUES]
        if bad:
            raise ValueError(f"未知的模板变量 {'、'.join(bad)}，可用：{'、'.join(TEMPLATE_VALUES)}")
        return v

    @field_validator("aliyun_callback_token", "tencent_callback_token")
    @classmethod
    def _tokens(cls, v: SecretStr | None) -> SecretStr | None:
        return _token(v)

    @model_validator(mode="after")
    def _complete(self) -> PagingSettings:
        if not self.enabled:
            return self
        missing = []
        if self.provider == "aliyun":
            missing += [k for k in ("aliyun_access_key_id", "aliyun_access_key_secret", "aliyun_sign_name",
                                    "aliyun_sms_template") if not self._set(k)]
        else:
            missing += [k for k in ("tencent_secret_id", "tencent_secret_key", "tencent_sms_app_id",
                                    "tencent_sign_name", "tencent_template_id") if not self._set(k)]
        if self.voice_used():
            missing += [k for k in ("aliyun_access_key_id", "aliyun_access_key_secret", "aliyun_tts_code",
                                    "aliyun_called_show_number") if not self._set(k) and k not in missing]
        if missing:
            raise ValueError("启用电话/短信提醒（enabled = true）还需填写：" + "、".join(f"paging.{k}" for k in missing)
                             + ("（语音电话只能通过阿里云拨打）" if self.voice_used() else ""))
        return self

    def _set(self, key: str) -> bool:
        value = getattr(self, key)
        return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)

    def voice_used(self) -> bool:
        """Whether any grade that pages asks for voice calls."""
        return any("voice" in c for g, c in self.channels.items() if g in self.grades)

    def policy(self) -> PagingPolicy:
        """The domain's view (``IncidentPolicy.paging``)."""
        start, end = parse_window(self.night)
        return PagingPolicy(
            grades=frozenset(Grade(g) for g in self.grades), min_rung=self.min_rung, night_start=start,
            night_end=end, night_min_rung=self.night_min_rung,
            channels={Grade(g): tuple(PageChannel(c) for c in chans) for g, chans in self.channels.items()},
            repeats=self.repeats, steps=self.steps, quiet={name: q.rule() for name, q in self.quiet.items()})
