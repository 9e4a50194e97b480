"""``dutybot accounts posts``: record an account's posts from a platform export."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the posts subcommands under ``dutybot accounts``."""
