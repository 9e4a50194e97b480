"""Reading people tables (CSV in UTF-8 with or without BOM, or xlsx)."""

from __future__ import annotations

from pathlib import Path

from core import tables

COLUMNS = ("姓名", "电话", "单位", "角色", "机构", "培训日期")


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a people CSV or xlsx file as dicts keyed by the header row.

    Raises:
        InputError: unreadable file, unknown format, or no 姓名 column.
    """
    return tables.read_table(path, required=("姓名",), columns_hint="、".join(COLUMNS))
