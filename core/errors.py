"""The one root error of dutybot, and the kernel's own errors.

Every error the product raises on purpose derives from :class:`DutybotError`.
It carries a Chinese ``message`` that can be shown to a person as it is, and
data fields that callers can inspect. The tree::

    DutybotError
    ├── ConfigError               dutybot.toml or environment is invalid (one line per problem)
    ├── CalendarError             a date the working-day calendar cannot answer for
    │   └── CalendarDataError     a holiday override file is malformed
    ├── ProfileError              a rule profile file is unknown or malformed
    ├── SchemaOutOfDate           the database needs ``dutybot db upgrade``
    ├── InputError                bad user input (CLI or chat); message is the usage hint
    ├── MissingExtra              an optional part (a pip extra) this configuration needs is not installed
    ├── NotFound                  a referenced entity does not exist
    ├── PermissionDenied          the person lacks a role the command needs
    └── AdapterError              a chat platform failed; ``retryable`` says whether to retry

Domains subclass these (for example ``IncidentNotFound(NotFound)``).
"""

from __future__ import annotations


class DutybotError(Exception):
    """Root of every error dutybot raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(DutybotError):
    """The configuration is invalid; ``problems`` holds one Chinese line per problem."""

    def __init__(self, problems: list[str], path: str | None = None) -> None:
        where = f"（{path}）" if path else ""
        super().__init__(f"配置有误{where}：\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems
        self.path = path


class CalendarError(DutybotError):
    """The working-day calendar cannot answer."""


class CalendarDataError(CalendarError):
    """A holiday override file is malformed."""


class ProfileError(DutybotError):
    """A rule profile is unknown or malformed."""


class SchemaOutOfDate(DutybotError):
    """The database schema is older (or newer) than this program expects."""


class InputError(DutybotError):
    """Bad input from a person; the message says how to do it right."""


class MissingExtra(DutybotError):
    """The configuration needs an optional part that is not installed (a chat platform's
    library, the PostgreSQL driver); the message is the one line saying what to install.

    Args:
        extra: the pip extra that provides it (``telegram``, ``postgres`` …).
        what: what needs it, as a person names it (``Telegram``, ``PostgreSQL``).
    """

    def __init__(self, extra: str, what: str) -> None:
        gap = " " if what.isascii() else ""     # 使用 Telegram 需要…, 使用钉钉需要…
        super().__init__(f"使用{gap}{what}{gap}需要安装扩展：pip install 'dutybot[{extra}]'")
        self.extra = extra
        self.what = what


class NotFound(DutybotError):
    """A referenced entity does not exist."""


class PermissionDenied(DutybotError):
    """The person lacks a role the action needs."""


class AdapterError(DutybotError):
    """A chat platform call failed.

    Args:
        message: what failed, for logs.
        retryable: whether sending again later may succeed (network, 5xx, 429).
        retry_after: seconds the platform asked us to wait, when it said so.
        permanent_reason: a short code for permanent failures (e.g. ``blocked``).
        migrated_to: the chat's new id when the platform moved it (a Telegram group that
            became a supergroup); the sender records it and sends there at once.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        permanent_reason: str | None = None,
        migrated_to: str | None = None,
    ) -> None:
        super().__init__(message)
        self.migrated_to = migrated_to
        self.retryable = retryable
        self.retry_after = retry_after
        self.permanent_reason = permanent_reason
