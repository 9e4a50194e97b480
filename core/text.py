"""Text that is safe to keep, show and write: the one place that knows which characters
hide, and which cell values a spreadsheet would run.

Hidden characters are C0/C1 control characters (NUL included), zero-width characters
(U+200B–U+200D, U+2060–U+2064, U+FEFF, U+180E), bidirectional controls (U+061C, U+200E,
U+200F, U+202A–U+202E, U+2066–U+2069), other invisible format characters (U+206A–U+206F,
U+FFF9–U+FFFB, the tag characters U+E0000–U+E007F) and lone surrogates. They let two
names that look the same differ, turn text around on screen (``U+202E``), or break a
database driver or a spreadsheet (NUL, lone surrogates).

* Names (people, units, sites) that contain any of them are refused:
  :func:`check_name` raises :class:`~core.errors.InputError`.
* Free text (descriptions, notes, summaries, anything said in chat) has them removed:
  :func:`clean_text` keeps line breaks and tabs and drops the rest.

Spreadsheets: a text cell starting with ``=`` is a formula to Excel (``=HYPERLINK(…)``
runs when the file is opened), and ``+``, ``-``, ``@``, tab and carriage return start a
formula when the cell is typed in or when a CSV file is opened. Every xlsx writer appends
its rows through :func:`append_row` (text stays text: the cell is typed as a string and
marked with Excel's own quote prefix, numbers and dates stay what they are); a CSV
writer passes each value through :func:`csv_field` (text starting with one of those
characters gets a leading ``'``, so ``+86 138…`` is written ``'+86 138…``).

Record numbers typed in chat (``/swap accept 12``) are read by :func:`parse_row_id`, which
refuses what a database integer cannot hold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from core.errors import InputError

# Characters that are never wanted in stored text (line breaks and tabs are handled apart).
_HIDDEN_CLASS = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"             # C0 controls but \t \n \r; DEL; C1
    "\u180e\u200b-\u200d\u2060-\u2064\ufeff"           # zero-width
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"     # bidirectional controls
    "\u206a-\u206f\ufff9-\ufffb\U000e0000-\U000e007f"  # other invisible format characters
    "\ud800-\udfff"                                    # lone surrogates (from JSON "\\ud800")
)
_HIDDEN = re.compile(f"[{_HIDDEN_CLASS}]")
# In a name, line breaks and tabs are hidden characters too.
_NAME_HIDDEN = re.compile(f"[{_HIDDEN_CLASS}\t\n\r\u2028\u2029]")
_LINE_BREAK = re.compile("\r\n?|[\u2028\u2029\x85]")

#: The longest text a spreadsheet cell holds (Excel's limit).
EXCEL_MAX_CELL = 32_767
# What XML 1.0 (and so xlsx) cannot carry at all.
_NOT_IN_XLSX = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: A cell text starting with one of these is a formula to a spreadsheet program.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Text openpyxl would store as an error value, not as text.
_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})

HIDDEN_CHARS_ZH = "含有不可见或控制字符，请重新输入"
#: The largest record number a database column holds (a signed 64-bit integer).
MAX_ROW_ID = 2**63 - 1


def has_hidden(text: str) -> bool:
    """Whether ``text`` contains a hidden character (see the module docstring), line
    breaks and tabs included."""
    return _NAME_HIDDEN.search(text) is not None


def check_name(text: str, what: str = "姓名") -> str:
    """``text`` stripped, when it is fit to be a name (a person's, a unit's, a site's).

    Raises:
        InputError: it contains a hidden character (``姓名含有不可见或控制字符，请重新输入``;
            ``what`` names the field).
    """
    text = text.strip()
    if has_hidden(text):
        raise InputError(f"{what}{HIDDEN_CHARS_ZH}")
    return text


def clean_text(text: str) -> str:
    """Free text with its hidden characters removed; line breaks become ``\\n``, tabs stay."""
    return _HIDDEN.sub("", _LINE_BREAK.sub("\n", text))


def safe_cell(value: object) -> object:
    """A value fit for an xlsx cell: text loses what XML cannot carry and is cut to
    :data:`EXCEL_MAX_CELL`; anything else is returned as it is. Whether text stays text
    is :func:`append_row`'s business."""
    if not isinstance(value, str):
        return value
    return _NOT_IN_XLSX.sub("", value)[:EXCEL_MAX_CELL]


def append_row(sheet: Any, values: Iterable[object]) -> None:
    """Append one row to an openpyxl worksheet, text kept as text.

    Every text value goes through :func:`safe_cell`; a text that openpyxl would store as a
    formula (``=1+1``) or an error value (``#N/A``) is stored as a string instead, and such
    text, or text starting with one of :data:`FORMULA_START`, gets Excel's quote prefix (shown as typed,
    and still text after someone edits the cell). Numbers, dates and empty cells are
    unchanged.
    """
    sheet.append([safe_cell(v) for v in values])
    for cell in sheet[sheet.max_row]:
        value = cell.value
        if not isinstance(value, str):
            continue
        if cell.data_type in ("f", "e") or value in _ERROR_CODES:
            cell.data_type = "s"
        if value.startswith(FORMULA_START) or value in _ERROR_CODES:
            cell.quotePrefix = True


def csv_field(value: object) -> object:
    """A value for a CSV file: text starting with one of :data:`FORMULA_START` gets a
    leading ``'`` (``=1+1`` → ``'=1+1``, ``+86 138…`` → ``'+86 138…``); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def parse_row_id(text: str) -> int | None:
    """A record number as typed (``12``, ``#12``, full-width ``＃１２``), or None when the
    text is not one: digits other than 0–9 (``²``, which ``str.isdigit`` accepts and ``int``
    refuses), or a number larger than any stored record's (:data:`MAX_ROW_ID`)."""
    number = unicodedata.normalize("NFKC", text.strip()).lstrip("#")
    if not (number.isascii() and number.isdigit()):
        return None
    value = int(number)
    return value if value <= MAX_ROW_ID else None
