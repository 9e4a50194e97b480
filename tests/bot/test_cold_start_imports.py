"""What ``dutybot run`` does not import at start (issue 21: cold start to ready): libraries
needed only by other commands or later work are imported where they are used, so that a
start does not spend its time (and memory) on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

#: Imported only when used: migrating (alembic, and mako through it), the web board's pages
#: (jinja2, [web] enabled), reading a site's certificate (cryptography.x509), httpx's own
#: command-line program (rich, pygments: never; bot/cli/__init__.py).
NOT_AT_START = ["alembic", "mako", "jinja2", "cryptography.x509", "rich", "pygments", "httpx._main"]


def test_the_start_path_does_not_import_what_it_does_not_use() -> None:
    probe = ("import json, sys\n"
             "import bot.cli, bot.runner, bot.adapters.wecom.adapter, bot.adapters.dingtalk.adapter\n"
             "import httpx\n"
             "assert callable(httpx.AsyncClient)\n"
             f"print(json.dumps([m for m in {NOT_AT_START!r} if sys.modules.get(m) is not None]))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
