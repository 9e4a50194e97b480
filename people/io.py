"""Reading people tables (CSV in UTF-8 with or without BOM, or xlsx)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from core.errors import InputError

COLUMNS = ("姓名", "电话", "单位", "角色", "机构")


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV or xlsx file as dicts keyed by the header row.

    Raises:
        InputError: unreadable file, unknown format, or no 姓名 column.
    """
    if not path.exists():
        raise InputError(f"找不到文件 {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{path.name} 不是 UTF-8 编码；请在 Excel 中另存为“CSV UTF-8”") from None
        rows = [dict(r) for r in csv.DictReader(io.StringIO(text))]
        header = list(rows[0]) if rows else next(csv.reader(io.StringIO(text)), [])
    elif suffix == ".xlsx":
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(path, read_only=True, data_only=True).active
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise InputError(f"无法读取 {path.name}：{exc}") from None
        if sheet is None:
            raise InputError(f"{path.name} 中没有工作表")
        values = [["" if c is None else str(c).strip() for c in row]
                  for row in sheet.iter_rows(values_only=True)]
        header = values[0] if values else []
        rows = [dict(zip(header, row, strict=False)) for row in values[1:]]
    else:
        raise InputError(f"不支持的文件格式 {suffix or '（无扩展名）'}：请使用 .csv 或 .xlsx")
    header = [(h or "").strip() for h in header]
    if "姓名" not in header:
        raise InputError(f"{path.name} 缺少“姓名”列（表头应为：{'、'.join(COLUMNS)}）")
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items() if k} for row in rows]
