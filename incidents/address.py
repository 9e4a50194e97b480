"""An incident's address compared normalised, and the key it is found by.

:func:`normalize_url`: scheme, host case, default port, trailing slash and fragment do not
matter; path and query do. :func:`address_key` is a short digest of that, stored on every
incident (``incident.address_key``, indexed) so that a second report of an address finds
the first without reading every open incident (issue 21); a match is then compared
exactly, so a digest collision costs nothing but the comparison.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

# An address someone means as a page: with a scheme, or a bare domain such as www.x.gov.cn/a.
LOOKS_LIKE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://\S+|(?:[\w-]+\.)+[a-z]{2,}(?:[/:?#]\S*)?)$", re.IGNORECASE)
_DEFAULT_PORTS = {80, 443}
#: Characters of the stored key (hex digits of a SHA-256 digest).
KEY_LENGTH = 32


def normalize_url(text: str) -> str | None:
    """``www.example.gov.cn/a?b=1`` for ``HTTPS://WWW.Example.gov.cn:443/a/?b=1#top``; None
    when ``text`` is not an address (a site or account name)."""
    text = text.strip()
    if not LOOKS_LIKE_URL.match(text):
        return None
    parts = urlsplit(text if "://" in text else f"http://{text}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return None
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port in _DEFAULT_PORTS else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return netloc + path + (f"?{parts.query}" if parts.query else "")


def address_key(address: str | None) -> str | None:
    """The stored key of an address (an incident's ``url or site``): a digest of
    :func:`normalize_url`; None when it is no address."""
    normalized = normalize_url(address) if address else None
    if normalized is None:
        return None
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_LENGTH]
