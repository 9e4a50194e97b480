"""No project import hides inside a function (the usual way to dodge an import cycle).

Which package may import which is a contract checked by import-linter (``lint-imports``,
``[tool.importlinter]`` in pyproject.toml, run by .ci/run); this test covers what
import-linter cannot see: an import placed in a function body to break a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"bot", "core", "people", "roster", "incidents", "replies", "accounts", "checks", "watch", "briefing", "reports"}
# None today: bot/runner.py loads only the chosen platform adapter, through
# bot.extras.import_adapter (importlib), so the console never loads python-telegram-bot.
EXEMPT: set[str] = set()


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, inside a function) for each import of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and not child.level and child.module:
                found.append((child.lineno, child.module, in_function))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return found


def _modules(package: str) -> list[Path]:
    return [p for p in sorted((ROOT / package).rglob("*.py")) if "versions" not in p.parts]


@pytest.mark.parametrize("package", sorted(PROJECT))
def test_no_project_import_hides_in_a_function(package: str) -> None:
    hidden = [f"{path.relative_to(ROOT).as_posix()}:{line} {module}"
              for path in _modules(package) for line, module, in_function in _imports(path)
              if in_function and module.split(".")[0] in PROJECT
              and path.relative_to(ROOT).as_posix() not in EXEMPT]
    assert hidden == []
