"""Errors of the people domain (see core.errors for the whole tree)."""

from __future__ import annotations

from core.errors import InputError, NotFound
from people.models import Person


class PersonNotFound(NotFound):
    """No active person has this name (``inactive``: no deactivated one)."""

    def __init__(self, name: str, *, inactive: bool = False) -> None:
        super().__init__(f"没有已停用的人员“{name}”。可用 /people list all 查看全部人员（含已停用）。" if inactive
                         else f"找不到人员“{name}”。可用 /people list 查看人员名单。")
        self.name = name
        self.inactive = inactive


class DuplicatePerson(InputError):
    """A person with this name or mobile number is already registered (``existing``)."""

    def __init__(self, message: str, existing: Person) -> None:
        super().__init__(message)
        self.existing = existing


class InviteInvalid(InputError):
    """A binding code that cannot be used (unknown, used, expired)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class ImportFailed(InputError):
    """A people file had bad rows; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("导入失败，未导入任何人员：\n" + "\n".join(problems))
        self.problems = problems
