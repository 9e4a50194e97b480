"""The ``dutybot`` command line (``[project.scripts] dutybot = "bot.cli:main"``).

* :mod:`bot.cli.main` assembles the parser, runs a command and maps errors to exit codes;
  it holds the top-level commands (``init``, ``db``, ``due``, ``rules``, ``calendar``).
* One module per command group adds its commands to the parser: :mod:`~bot.cli.chat`
  (``people``, ``console``, ``run``, ``demo``), :mod:`~bot.cli.incidents`,
  :mod:`~bot.cli.replies`, :mod:`~bot.cli.roster` (``import``, ``export``, ``ical``),
  :mod:`~bot.cli.roster_plan` (``generate``, ``draft``, ``publish``, ``leave``),
  :mod:`~bot.cli.roster_log`, :mod:`~bot.cli.sites`, :mod:`~bot.cli.outbox`,
  :mod:`~bot.cli.backup` (``backup``, ``restore``), :mod:`~bot.cli.service` (``service
  install``, ``service show``: the systemd unit) and :mod:`~bot.cli.doctor`.
* :mod:`bot.cli.common` holds what they share (exit codes, settings, calendar, the
  Chinese argument parser and argument types). The group modules import only it (and
  the domain and bot modules); only :mod:`bot.cli.main` imports the groups.
"""

from __future__ import annotations

import sys

# httpx imports its own command-line program (``httpx._main``: click, rich, pygments)
# whenever those happen to be installed: tens of milliseconds of every ``dutybot`` start
# (issue 21) for a program dutybot never runs. Marked absent here, before anything imports
# httpx, ``import httpx`` takes its own fallback (``httpx.main`` only says to install
# ``httpx[cli]``); everything else of httpx is the same.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from bot.cli.main import build_parser, main  # noqa: E402  (after the line above)

__all__ = ["build_parser", "main"]
