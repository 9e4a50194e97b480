"""``[web]``: the web board (值班看板). docs/configuration.md lists the keys; docs/admin.md
(值班看板) says how to expose it behind an HTTPS reverse proxy."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_BASE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(?:/[A-Za-z0-9._~\-/]*)?$")


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Off by default: the board is served by the bot's HTTP service ([http], loopback by
    # default) only when enabled; put an HTTPS reverse proxy in front to reach it from phones.
    enabled: bool = False
    # The address people open (the reverse proxy's), used in the sign-in links /web sends.
    base_url: str = "http://127.0.0.1:8080"
    # How long a sign-in link stays valid (it works once).
    link_minutes: int = Field(default=10, ge=1, le=60)
    # How long a board session lasts after sign-in.
    session_hours: int = Field(default=12, ge=1, le=24 * 30)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not _BASE.match(value):
            raise ValueError(f"应为 http:// 或 https:// 开头的网址（如 https://duty.example.gov.cn），收到 {value!r}")
        return value

    @property
    def secure(self) -> bool:
        """Whether the board is served over https (then its cookie is ``Secure``)."""
        return self.base_url.startswith("https://")

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of :attr:`base_url`, which forms must come from."""
        scheme, _, rest = self.base_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"

    @property
    def prefix(self) -> str:
        """The path the proxy serves the bot under ('' or ``/duty``)."""
        _, _, rest = self.base_url.partition("://")
        path = rest.partition("/")[2]
        return f"/{path}" if path else ""
