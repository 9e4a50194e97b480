"""Reading tables people give us: CSV (UTF-8, with or without BOM) or xlsx.

Every import (people, reply items …) goes through :func:`read_table`, so the file
errors read the same everywhere. xlsx cells that hold dates or times are rendered as
ISO strings (``2026-10-03``, ``2026-10-03T15:20``), so importers parse one text form.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from pathlib import Path

from core.errors import InputError


def cell_text(value: object) -> str:
    """One xlsx cell as text: dates and times as ISO strings, empty cells as ``""``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()   # a date-formatted cell
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path.name} 不是 UTF-8 编码；请在 Excel 中另存为“CSV UTF-8”") from None
    rows = [dict(r) for r in csv.DictReader(io.StringIO(text))]
    header = list(rows[0]) if rows else next(csv.reader(io.StringIO(text)), [])
    return header, rows


def _read_xlsx(path: Path, name: str | None = None) -> tuple[list[str], list[dict[str, str]]] | None:
    """The active sheet, or the sheet called ``name`` (None when the workbook has none)."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise InputError(f"无法读取 {path.name}：{exc}") from None
    try:
        if name is not None and name not in book.sheetnames:
            return None
        sheet = book[name] if name is not None else book.active
        if sheet is None:
            raise InputError(f"{path.name} 中没有工作表")
        values = [[cell_text(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    header = values[0] if values else []
    return header, [dict(zip(header, row, strict=False)) for row in values[1:]]


def read_table(path: Path, *, required: tuple[str, ...], columns_hint: str) -> list[dict[str, str]]:
    """Rows of a CSV or xlsx file as dicts keyed by the (stripped) header row.

    Args:
        path: a ``.csv`` or ``.xlsx`` file.
        required: header names that must be present.
        columns_hint: the expected header, shown when a required column is missing
            (``姓名、电话、单位、角色、机构``).

    Returns:
        One dict per data row (row 2 of the file is the first), values stripped; cells
        under an empty header are dropped.

    Raises:
        InputError: missing file, unknown format, not UTF-8, unreadable xlsx, or a
            required column missing.
    """
    if not path.exists():
        raise InputError(f"找不到文件 {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, rows = _read_csv(path)
    elif suffix == ".xlsx":
        read = _read_xlsx(path)
        assert read is not None
        header, rows = read
    else:
        raise InputError(f"不支持的文件格式 {suffix or '（无扩展名）'}：请使用 .csv 或 .xlsx")
    return _checked(path, header, rows, required, columns_hint)


def read_sheet(path: Path, name: str, *, required: tuple[str, ...],
               columns_hint: str) -> list[dict[str, str]] | None:
    """The rows of the worksheet ``name`` of an xlsx workbook, read as :func:`read_table`
    reads a table; None when ``path`` is no xlsx file or has no such sheet.

    Raises:
        InputError: unreadable xlsx, or a required column missing in that sheet.
    """
    if path.suffix.lower() != ".xlsx" or not path.exists():
        return None
    read = _read_xlsx(path, name)
    if read is None:
        return None
    return _checked(path, read[0], read[1], required, columns_hint, where=f"工作表“{name}”")


def _checked(path: Path, header: list[str], rows: list[dict[str, str]], required: tuple[str, ...],
             columns_hint: str, where: str = "") -> list[dict[str, str]]:
    present = {(h or "").strip() for h in header}
    missing = [name for name in required if name not in present]
    if missing:
        names = "、".join(f"“{name}”" for name in missing)
        raise InputError(f"{path.name}{' ' + where if where else ''} 缺少{names}列（表头应为：{columns_hint}）")
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items() if k} for row in rows]
