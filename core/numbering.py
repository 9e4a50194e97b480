"""Human-friendly ids: ``MSG-20261123-017``, ``INC-20261123-003``."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select


def next_number(*, session: Session, column: Any, prefix: str, day: date) -> str:
    """The next ``PREFIX-YYYYMMDD-NNN`` for ``day`` (Asia/Shanghai date).

    ``column`` is the model's unique number column; the unique constraint settles races.
    """
    stem = f"{prefix}-{day:%Y%m%d}-"
    # A range, not LIKE: both backends answer it from the unique index on the number.
    last = session.exec(select(func.max(column)).where(column >= stem, column < stem + "~")).one()
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{stem}{seq:03d}"


def short_form(number: str, today: date) -> str:
    """``3`` for today's ``INC-<today>-003``; any other day's number unchanged. What a card
    suggests typing (``/incident ack 3``); ``bot.refs`` reads it back."""
    stem, _, seq = number.rpartition("-")
    return str(int(seq)) if stem.endswith(f"-{today:%Y%m%d}") and seq.isdigit() else number
