"""What ``dutybot doctor`` found: one :class:`Finding` per check, and the report that
prints them (one Chinese line each, 正常/警告/错误, then a summary) or gives them as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    """How a check came out."""

    ok = "ok"
    warning = "warning"
    error = "error"

    @property
    def zh(self) -> str:
        """正常, 警告 or 错误."""
        return {"ok": "正常", "warning": "警告", "error": "错误"}[self.value]


@dataclass(frozen=True)
class Finding:
    """One check's result.

    Attributes:
        check: its id (``config``, ``database``, ``schema``, ``calendar``, ``platform``,
            ``clock``, ``disk``, ``http``), for machines.
        name: its Chinese name (配置, 数据库 …).
        level: ok, warning or error.
        detail: one Chinese sentence: what was found and, unless ok, what to do.
    """

    check: str
    name: str
    level: Level
    detail: str


@dataclass
class Report:
    """Every finding, in the order the checks ran; ``note`` says what was not checked."""

    findings: list[Finding] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        """No finding is an error (warnings are allowed)."""
        return all(f.level is not Level.error for f in self.findings)

    def count(self, level: Level) -> int:
        """How many findings are at ``level``."""
        return sum(1 for f in self.findings if f.level is level)

    def summary(self) -> str:
        """The closing line."""
        counts = (f"共 {len(self.findings)} 项检查：正常 {self.count(Level.ok)} 项，"
                  f"警告 {self.count(Level.warning)} 项，错误 {self.count(Level.error)} 项。")
        if not self.ok:
            return counts + "请按“错误”各行的提示处理后再运行 dutybot doctor。"
        if self.count(Level.warning):
            return counts + "可以运行；“警告”各项请尽快处理。"
        return counts + "一切正常。"

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        out = [f"[{f.level.zh}] {f.name}：{f.detail}" for f in self.findings]
        if self.note:
            out.append(self.note)
        return [*out, self.summary()]

    def as_json(self) -> dict[str, Any]:
        """The report for machines."""
        return {"ok": self.ok,
                "checks": [{"check": f.check, "name": f.name, "level": f.level.value,
                            "level_zh": f.level.zh, "detail": f.detail} for f in self.findings],
                "summary": {level.value: self.count(level) for level in Level},
                "note": self.note}
