"""A handler on the root logger with everything at DEBUG (the libraries' request lines
included, as with ``dutybot --debug``), put back as it was afterwards."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

#: The loggers that write request lines at DEBUG.
CHATTY = ("httpx", "telegram", "bot")


@contextlib.contextmanager
def root_handler_at_debug(handler: logging.Handler) -> Iterator[logging.Handler]:
    root = logging.getLogger()
    old_level = root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
