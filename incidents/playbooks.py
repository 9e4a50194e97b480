"""Playbooks and escalation ladders as data (DESIGN property 6).

``incidents/playbooks/<type>.toml`` holds one playbook per incident type: its steps, each
with a Chinese title, the rule it enforces, the owner role, the deadline and where it
counts from, required evidence, prerequisites, and whether it is a report to an outside
authority. ``incidents/playbooks/ladders.toml`` holds the escalation ladder per grade
(GRADE-2). Both are validated by pydantic when loaded; a broken file stops the bot with
one Chinese line per problem.

A step's deadline is either a rule value of the active profile (``value = "delete"`` on
rule SENS-3 → ``1 workdays``, cited to the article that states it) or a literal
``period`` where the rules require the step but set no time; such periods are the
office's own working requirement and are labelled so (``（工作要求）``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError, ProfileError
from core.messages import duration_zh
from core.profiles import CATALOG, NOT_REQUIRED, Profile, Quantity
from core.workdays import WorkdayCalendar
from incidents.models import Grade, IncidentType, Source

# "support": the step asks the 技术保障 of the incident's site or unit (DUTY-2). The bot
# pings them itself when the step's clock starts and marks the step done; when nobody is
# set or reachable, the duty officer does it (by phone) and is told how to set one.
OwnerRole = Literal["officer", "leader", "principal", "support"]
OWNER_ZH = {"officer": "值班员", "leader": "带班领导", "principal": "主要负责人", "support": "值班员→技术保障"}
TIME_UNITS = ("minutes", "hours", "workdays", "days", "months")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepSpec(_Strict):
    """One step of a playbook, as written in the TOML file."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    title: str = Field(min_length=2, max_length=200)
    rule: str = Field(pattern=r"^[A-Z]+-\d+$")
    value: str | None = None                 # a key of the rule's values in the profile
    period: str | None = None                # literal: "immediate", "30 minutes", "1 workdays"
    after: str = "report"                    # "report" or the key of another step
    owner: OwnerRole = "officer"
    requires: tuple[str, ...] = ()
    evidence: bool = False                   # evidence must exist before it is done
    # Republishes corrected content: who did each 审 and 校 is recorded (incidents.signoff).
    signoff: bool = False
    external: str | None = None              # default bodies, 、-separated: 公安机关、网信部门 …
    # A report step whose bodies and whether it is mandatory come from the profile: the
    # first of these rules that states ``report_to`` (and ``report_mandatory``) decides.
    reports: tuple[str, ...] = ()
    # Dropped when that rule's ``report_mandatory`` is true (the 研判 step of 梁平第二十二条).
    unless_mandatory: str | None = None
    # The rule whose ``evidence_first`` value is cited by the evidence gate.
    evidence_rule: str | None = None
    when: Literal["any", "self", "district"] = "any"
    optional: bool = False

    @field_validator("period")
    @classmethod
    def _period(cls, v: str | None) -> str | None:
        if v is None:
            return v
        q = Quantity.parse(v)
        if q.unit not in ("immediate", *TIME_UNITS):
            raise ValueError(f"时限单位 {q.unit!r} 不可用（可用：immediate、{'、'.join(TIME_UNITS)}）")
        return v

    @model_validator(mode="after")
    def _one_period(self) -> StepSpec:
        if self.value is not None and self.period is not None:
            raise ValueError(f"步骤 {self.key}：value 与 period 只能写一个")
        return self


class PlaybookSpec(_Strict):
    """A playbook file."""

    type: IncidentType
    title: str = Field(min_length=2)
    version: int = Field(ge=1)
    # DUTY-3: opinion and security events are reported to the leader on duty at once.
    inform_leader: bool = False
    # The grade an incident of this type gets when the reporter names none (GRADE-1).
    default_grade: Grade = Grade.general
    steps: tuple[StepSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> PlaybookSpec:
        for source in ("self", "district"):
            keys = [s.key for s in self.steps if s.when in ("any", source)]
            dupes = {k for k in keys if keys.count(k) > 1}
            if dupes:
                raise ValueError(f"步骤键重复：{', '.join(sorted(dupes))}")
        known = {s.key for s in self.steps}
        for step in self.steps:
            for ref in (*step.requires, *([step.after] if step.after != "report" else [])):
                if ref not in known:
                    raise ValueError(f"步骤 {step.key} 引用了不存在的步骤 {ref}")
                if ref == step.key:
                    raise ValueError(f"步骤 {step.key} 不能引用自己")
        return self

    @property
    def name(self) -> str:
        """``sensitive@1``: what an incident records as its playbook."""
        return f"{self.type.value}@{self.version}"

    def steps_for(self, source: Source) -> list[StepSpec]:
        """The steps that apply to an incident found by ``source``."""
        return [s for s in self.steps if s.when in ("any", source.value)]


class RungSpec(_Strict):
    """One rung: who is pinged and how long after the previous rung."""

    role: Literal["officer", "leader", "principal", "district", "support"]
    after_minutes: int = Field(ge=0, le=7 * 24 * 60)


class LadderSpec(_Strict):
    """The escalation ladder of one grade (GRADE-2)."""

    rungs: tuple[RungSpec, ...] = Field(min_length=1)
    # After the top rung, ping it again after these growing intervals until acknowledged.
    repeat_first_minutes: int = Field(ge=1, le=24 * 60)
    repeat_factor: float = Field(ge=1.0, le=10.0)
    repeat_max_minutes: int = Field(ge=1, le=7 * 24 * 60)

    def offsets(self) -> list[timedelta]:
        """Time after the start at which each rung is pinged (cumulative)."""
        total, out = 0, []
        for rung in self.rungs:
            total += rung.after_minutes
            out.append(timedelta(minutes=total))
        return out

    def repeat_after(self, n: int) -> timedelta:
        """The wait before the n-th repeat (n ≥ 1) of the top rung: ``repeat_first_minutes``
        × ``repeat_factor``ⁿ⁻¹, at most ``repeat_max_minutes``. Safe for any ``n``: the
        exponent stops growing once the cap is reached (``2.0 ** 1024`` overflows a float)."""
        first, cap = self.repeat_first_minutes, self.repeat_max_minutes
        exponent = 0
        if self.repeat_factor > 1 and first < cap:
            exponent = min(n - 1, math.ceil(math.log(cap / first, self.repeat_factor)))
        minutes = first * self.repeat_factor ** max(exponent, 0)
        return timedelta(minutes=min(minutes, cap))


class LaddersFile(_Strict):
    rule: str = "GRADE-2"
    general: LadderSpec
    major: LadderSpec
    special: LadderSpec

    def for_grade(self, grade: Grade) -> LadderSpec:
        spec: LadderSpec = getattr(self, grade.value)
        return spec


ROLE_LABEL = {"officer": "值班员", "leader": "带班领导", "principal": "主要负责人", "district": "区政府办公室",
              "support": "技术保障"}


def _problems(exc: ValidationError, where: str) -> list[str]:
    return [f"{where}：{'.'.join(str(p) for p in e['loc']) or '（整个文件）'}：{e['msg']}"
            for e in exc.errors()]


def _read(name: str) -> dict[str, object]:
    text = resources.files("incidents").joinpath("playbooks", name).read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"incidents/playbooks/{name}：TOML 格式错误：{exc}"], None) from None


@cache
def load_playbooks() -> dict[IncidentType, PlaybookSpec]:
    """Every shipped playbook, validated.

    Raises:
        ConfigError: a file is missing or invalid (one line per problem).
    """
    out: dict[IncidentType, PlaybookSpec] = {}
    problems: list[str] = []
    for kind in IncidentType:
        name = f"{kind.value}.toml"
        try:
            spec = PlaybookSpec.model_validate(_read(name))
        except FileNotFoundError:
            problems.append(f"incidents/playbooks/{name}：缺少该类型的处置预案")
            continue
        except ValidationError as exc:
            problems.extend(_problems(exc, f"incidents/playbooks/{name}"))
            continue
        if spec.type != kind:
            problems.append(f"incidents/playbooks/{name}：type 应为 {kind.value}")
        out[kind] = spec
    if problems:
        raise ConfigError(problems, None)
    return out


@cache
def load_ladders() -> LaddersFile:
    """The escalation ladders per grade."""
    try:
        return LaddersFile.model_validate(_read("ladders.toml"))
    except ValidationError as exc:
        raise ConfigError(_problems(exc, "incidents/playbooks/ladders.toml"), None) from None


def check_against_profile(profile: Profile) -> list[str]:
    """Problems between the playbooks and ``profile`` (unknown rules or values)."""
    problems: list[str] = []
    for spec in load_playbooks().values():
        for step in spec.steps:
            try:
                profile.rule(step.rule)
                if step.value is not None:
                    profile.find(step.rule, step.value)
                for rule_id in (*step.reports, step.unless_mandatory, step.evidence_rule):
                    if rule_id is not None:
                        profile.rule(rule_id)
            except ProfileError as exc:
                problems.append(f"预案 {spec.name} 步骤 {step.key}：{exc.message}")
    return problems


@dataclass(frozen=True)
class StepTiming:
    """A step's period, resolved against the profile."""

    quantity: Quantity | None     # None: no time limit
    citation: str                 # the article that requires the step (and sets the time)
    period_zh: str                # 立即（30分钟内）/ 1个工作日 / 4小时（工作要求）/ 无时限


def step_timing(step: StepSpec, profile: Profile, at_once_minutes: int) -> StepTiming:
    """Where the step's deadline comes from and how it reads."""
    if step.value is not None:
        rv = profile.find(step.rule, step.value)
        if rv is None:
            # The office's rules (and their parents) set no time: none is invented.
            return StepTiming(None, profile.citation(step.rule), f"无时限（{NOT_REQUIRED}）")
        quantity, citation, own = rv.quantity, rv.citation, False
    elif step.period is not None:
        quantity, citation, own = Quantity.parse(step.period), profile.citation(step.rule), True
    else:
        return StepTiming(None, profile.citation(step.rule), "无时限")
    zh = (f"立即（{duration_zh(timedelta(minutes=at_once_minutes))}内）" if quantity.unit == "immediate"
          else quantity.zh())
    return StepTiming(quantity, citation, zh + ("（工作要求）" if own else ""))


@dataclass(frozen=True)
class ResolvedStep:
    """A playbook step as it applies under one profile (what ``dutybot playbooks`` shows)."""

    spec: StepSpec
    after: str                    # "report" or a key of another resolved step
    timing: StepTiming
    mandatory: bool
    mandatory_citation: str       # why it is (or is not) mandatory
    evidence_first: bool
    evidence_citation: str | None
    reports_to: tuple[str, ...]
    reports_citation: str | None

    @property
    def external(self) -> str | None:
        """The bodies as stored on an incident step (``公安机关、网信部门``)."""
        return "、".join(self.reports_to) or None

    @property
    def title(self) -> str:
        """The step's title with ``{bodies}`` filled in (``向公安机关报告``)."""
        return self.spec.title.replace("{bodies}", self.external or "有关部门")

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.spec.key, "title": self.title, "rule": self.spec.rule,
            "owner": self.spec.owner, "after": self.after,
            "deadline": self.timing.period_zh,
            "mandatory": self.mandatory, "mandatory_citation": self.mandatory_citation,
            "evidence_first": self.evidence_first, "evidence_citation": self.evidence_citation,
            "reports_to": list(self.reports_to), "reports_citation": self.reports_citation,
            "signoff": self.spec.signoff,
            "citation": self.timing.citation,
        }


EVIDENCE_PRACTICE = "工作要求（先保全证据再处置，本地规定未作要求）"


def evidence_basis(step: StepSpec, profile: Profile) -> tuple[bool, str | None]:
    """Whether ``step`` waits for evidence under ``profile``, and the reason shown.

    A step marked ``evidence`` in the playbook always waits (the office's working
    practice); where the profile's rule states ``evidence_first`` the gate cites it.
    """
    stated = profile.find(step.evidence_rule, "evidence_first") if step.evidence_rule else None
    if stated is not None and stated.flag:
        return True, stated.citation
    if step.evidence:
        return True, EVIDENCE_PRACTICE
    return False, None


def _reports(step: StepSpec, profile: Profile) -> tuple[tuple[str, ...], str | None, bool | None, str]:
    """Bodies, their citation, mandatory (None: not stated) and the mandatory citation."""
    for rule_id in step.reports:
        bodies = profile.find(rule_id, "report_to")
        if bodies is None:
            continue
        if "report_mandatory" not in CATALOG[rule_id]:
            # The rule only names whom to report to (OP-1 "须第一时间向网信部门报告"): mandatory.
            return bodies.items, bodies.citation, True, bodies.citation
        mandatory = profile.find(rule_id, "report_mandatory")
        if mandatory is None:
            return bodies.items, bodies.citation, None, NOT_REQUIRED
        return bodies.items, bodies.citation, bool(mandatory.flag), mandatory.citation
    default = tuple(b for b in (step.external or "").split("、") if b)
    return default, None, None, NOT_REQUIRED


def _mandatory_report(rule_id: str, profile: Profile) -> bool:
    found = profile.find(rule_id, "report_mandatory")
    return bool(found and found.flag)


def resolve_steps(spec: PlaybookSpec, source: Source, profile: Profile,
                  at_once_minutes: int) -> list[ResolvedStep]:
    """The steps of ``spec`` for an incident found by ``source``, as ``profile`` has them.

    A step dropped under the profile (研判 where reporting is mandatory) passes its place
    in the order to the steps that came after it.
    """
    chosen = spec.steps_for(source)
    dropped = {s.key: s.after for s in chosen
               if s.unless_mandatory and _mandatory_report(s.unless_mandatory, profile)}

    def anchor(key: str) -> str:
        while key in dropped:
            key = dropped[key]
        return key

    out: list[ResolvedStep] = []
    for step in chosen:
        if step.key in dropped:
            continue
        timing = step_timing(step, profile, at_once_minutes)
        evidence, evidence_cite = evidence_basis(step, profile)
        bodies: tuple[str, ...] = ()
        bodies_cite: str | None = None
        mandatory, mandatory_cite = not step.optional, timing.citation
        if step.reports:
            bodies, bodies_cite, stated, stated_cite = _reports(step, profile)
            if stated is None:
                # Mandatory only where an article says so; otherwise the unit decides (研判).
                mandatory, mandatory_cite = False, stated_cite
            else:
                mandatory, mandatory_cite = stated, stated_cite
        elif step.external:
            bodies = tuple(b for b in step.external.split("、") if b)
        out.append(ResolvedStep(step, anchor(step.after), timing, mandatory, mandatory_cite,
                                evidence, evidence_cite, bodies, bodies_cite))
    return out


@dataclass(frozen=True)
class Due:
    at: datetime
    last_day_iso: str | None
    provisional: bool


def due_from(anchor: datetime, quantity: Quantity, *, calendar: WorkdayCalendar,
             at_once_minutes: int) -> Due:
    """The instant a step counted from ``anchor`` is due."""
    if quantity.unit == "immediate":
        return Due(anchor + timedelta(minutes=at_once_minutes), None, False)
    if quantity.unit == "minutes":
        return Due(anchor + timedelta(minutes=quantity.amount), None, False)
    if quantity.unit == "hours":
        return Due(anchor + timedelta(hours=quantity.amount), None, False)
    deadline = calendar.add(anchor, quantity.amount, quantity.unit)
    return Due(deadline.due, deadline.last_day.isoformat(), deadline.provisional)
