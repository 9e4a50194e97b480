"""The shapes of a briefing: sections, their urgency, the built briefing, a provider.

A *provider* is a function ``(session, now, calendar, settings) -> Section | None``
(None: nothing to say). A :class:`Briefing` shows its sections most urgent first, a
one-line 概况 of their counts under the title, each section's count before its list,
and a list longer than ``max_lines`` cut with ``还有 N 项``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from sqlmodel import Session

from core.workdays import WorkdayCalendar


class BriefingConfig(Protocol):
    """What the briefing reads from ``[briefing]`` (``bot.config.BriefingSettings``)."""

    @property
    def max_lines(self) -> int: ...


class Urgency(IntEnum):
    """Where a section goes: lower first. Any int works (``Urgency.overdue - 1``)."""

    context = 0    # who is on duty today: right under the title
    overdue = 10   # a deadline has passed
    today = 20     # due today
    soon = 30      # due tomorrow
    system = 40    # the bot's own trouble: undelivered messages, calendar data
    info = 50      # figures; never needs attention


@dataclass(frozen=True)
class Section:
    """One block of a briefing.

    Attributes:
        key: a stable id (``replies.overdue``) for tests and logs.
        urgency: where it goes (see :class:`Urgency`).
        headline: the count line, ``【超期未答复】3 条``.
        tag: the short count for the 概况 line (``超期3``); empty: not listed there.
        figures: lines shown in full after the headline (a summary's numbers).
        items: the list, most urgent first; the first ``max_lines`` are shown.
        total_items: how many items exist, when a provider passes only the first ones.
        hint: the next action, the block's last line.
    """

    key: str
    urgency: int
    headline: str
    tag: str = ""
    figures: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    total_items: int = 0
    hint: str = ""

    @property
    def needs_attention(self) -> bool:
        """Something to act on (not today's duty, not mere figures)."""
        return Urgency.context < self.urgency < Urgency.info

    def lines(self, max_lines: int) -> list[str]:
        """Headline, figures, at most ``max_lines`` items, ``还有 N 项``, hint."""
        shown = self.items[:max_lines]
        more = max(self.total_items, len(self.items)) - len(shown)
        out = [self.headline, *self.figures, *(f"· {item}" for item in shown)]
        if more > 0:
            out.append(f"  还有 {more} 项")
        return out + ([self.hint] if self.hint else [])


SectionProvider = Callable[[Session, datetime, WorkdayCalendar, Any], "Section | None"]


@dataclass(frozen=True)
class Briefing:
    """A built briefing; :meth:`text` renders it for a phone."""

    title: str
    sections: tuple[Section, ...]   # most urgent first
    max_lines: int
    footer: str = ""
    all_clear: str = ""             # said when no section needs attention

    def text(self, note: str = "") -> str:
        """The message: title (and ``note``), 概况, sections, footer; blocks apart."""
        head = [self.title, *([note] if note else [])]
        tags = [s.tag for s in self.sections if s.tag]
        if tags:
            head.append("概况：" + "，".join(tags))
        if self.all_clear and not any(s.needs_attention for s in self.sections):
            head.append(self.all_clear)
        blocks = [head, *(s.lines(self.max_lines) for s in self.sections)]
        blocks += [[self.footer]] if self.footer else []
        return "\n\n".join("\n".join(block) for block in blocks)

    def section(self, key: str) -> Section | None:
        """The section ``key``, if the briefing has one."""
        return next((s for s in self.sections if s.key == key), None)
