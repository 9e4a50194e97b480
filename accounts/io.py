"""The account register in and out of the tables offices keep (.xlsx, or .csv in UTF-8
with or without BOM), with the columns of :data:`accounts.fields.COLUMNS`.

Import is all or nothing: every row is checked first, against the others and against
what is stored, and any problem stops the import with one ``第N行：…`` line per problem
(N as the spreadsheet shows it; row 1 is the header) before anything is stored. A row
naming a registered account (same 账号名称 and 主办单位) updates it, so importing the same
file again changes nothing. The export has the same columns, so it imports back as it is.

Exported text never runs as a formula: xlsx cells go through :func:`core.text.append_row`
(:func:`core.text.safe_cell`, kept as text), CSV fields through :func:`core.text.csv_field`
(a leading ``'``, which the import takes off again).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlmodel import Session

from accounts.fields import (
    COLUMNS,
    COLUMNS_HINT,
    COMMENTS_ZH,
    GOVERNMENT_ZH,
    REQUIRED,
    AccountIn,
    parse_fields,
)
from accounts.models import Account
from accounts.register import (
    Outcome,
    add_account,
    check_stored,
    filing_status_zh,
    list_accounts,
    platform_zh,
    state_zh,
)
from core import tables
from core.clock import local
from core.errors import DutybotError, InputError
from core.text import FORMULA_START, append_row, csv_field
from roster.export import write_atomic
from roster.models import Site


class AccountImportFailed(InputError):
    """An account file had bad rows; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("导入失败，未导入任何账号：\n" + "\n".join(problems))
        self.problems = problems


@dataclass
class ImportResult:
    """What an import did, for the Chinese summary."""

    accounts: list[Account] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def summary_zh(self) -> str:
        """``已导入 5 个账号（新增 3 个，更新 1 个，未变 1 个）。``"""
        return (f"已导入 {len(self.accounts)} 个账号（新增 {self.created} 个，更新 {self.updated} 个，"
                f"未变 {self.unchanged} 个）。")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of an account file.

    Raises:
        InputError: missing, unreadable or not UTF-8, not .csv/.xlsx, or a required column missing.
    """
    return tables.read_table(path, required=REQUIRED, columns_hint=COLUMNS_HINT)


def _unquoted(value: str) -> str:
    """A CSV cell the export protected (``'=…``) back as it was written."""
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def check_rows(*, session: Session, rows: Iterable[Mapping[str, str]], today: date) -> list[tuple[int, AccountIn]]:
    """Check every row (nothing stored); blank rows are skipped.

    Raises:
        AccountImportFailed: one ``第N行：…`` line per bad row, or no data at all.
    """
    problems: list[str] = []
    checked: list[tuple[int, AccountIn]] = []
    first: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows, start=2):   # row 1 is the header
        cells = {k: _unquoted(v or "") for k, v in row.items() if k in COLUMNS}
        if not any(v.strip() for v in cells.values()):
            continue
        try:
            new = parse_fields(cells, today=today)
            check_stored(session, new)
        except DutybotError as exc:
            problems.append(f"第{line}行：{exc.message}")
            continue
        key = (new.name, new.unit)
        if key in first:
            problems.append(f"第{line}行：“{new.name}”（{new.unit}）与第{first[key]}行重复")
            continue
        first[key] = line
        checked.append((line, new))
    if problems:
        raise AccountImportFailed(problems)
    if not checked:
        raise AccountImportFailed([f"文件中没有账号数据（表头应为：{COLUMNS_HINT}）"])
    return checked


def import_accounts(*, session: Session, rows: Iterable[Mapping[str, str]], now: datetime,
                    actor: str) -> ImportResult:
    """Import accounts from table rows; all or nothing. Does not commit.

    Returns:
        The stored accounts in file order, and how many were new, updated or unchanged.

    Raises:
        AccountImportFailed: one line per bad row; nothing is stored.
    """
    result = ImportResult()
    for _, new in check_rows(session=session, rows=rows, today=local(now).date()):
        account, outcome = add_account(session=session, new=new, now=now, actor=actor)
        result.accounts.append(account)
        if outcome == Outcome.created:
            result.created += 1
        elif outcome == Outcome.updated:
            result.updated += 1
        else:
            result.unchanged += 1
    return result


def export_row(account: Account, site: Site) -> list[object]:
    """One account as a row of :data:`COLUMNS` (dates as dates)."""
    return [site.name, platform_zh(site), site.url, site.unit or account.owner_unit, account.operator,
            account.approver, GOVERNMENT_ZH[account.government], state_zh(account),
            account.opened_on, filing_status_zh(account), account.filing_number,
            account.filed_on, account.feed_url, COMMENTS_ZH[account.comments_open], account.note]


def export_rows(*, session: Session, unit: str | None = None) -> list[list[object]]:
    """The register as rows of :data:`COLUMNS`, by 主办单位 and name."""
    return [export_row(a, s) for a, s in list_accounts(session=session, unit=unit)]


def _write_xlsx(rows: list[list[object]], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "政务新媒体账号"
    append_row(sheet, COLUMNS)
    date_columns = [i + 1 for i, name in enumerate(COLUMNS) if name.endswith("日期")]
    for values in rows:
        append_row(sheet, values)
        for column in date_columns:
            sheet.cell(sheet.max_row, column).number_format = "yyyy-mm-dd"
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDDDDD")
    widths = {"账号名称": 22, "账号ID": 18, "主办单位": 18, "订阅地址": 30, "备注": 30, "备案编号": 18}
    for index, name in enumerate(COLUMNS):
        sheet.column_dimensions[chr(ord("A") + index)].width = widths.get(name, 12)
    sheet.freeze_panes = "A2"
    write_atomic(path, lambda tmp: book.save(tmp))


def _csv_text(rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for values in rows:
        writer.writerow([csv_field("" if v is None else v.isoformat() if isinstance(v, date) else v)
                         for v in values])
    return out.getvalue()


def export_accounts(*, session: Session, path: Path, unit: str | None = None) -> int:
    """Write the register to ``path`` (.xlsx, or .csv in UTF-8 with BOM for Excel).

    Returns:
        The number of accounts written.

    Raises:
        InputError: another suffix, or the file cannot be written.
    """
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise InputError(f"不支持的文件格式 {suffix or '（无扩展名）'}：请使用 .xlsx 或 .csv")
    rows = export_rows(session=session, unit=unit)
    if suffix == ".xlsx":
        _write_xlsx(rows, path)
    else:
        data = _csv_text(rows).encode("utf-8-sig")   # the BOM tells Excel it is UTF-8

        def write(tmp: Path) -> None:
            tmp.write_bytes(data)

        write_atomic(path, write)
    return len(rows)
