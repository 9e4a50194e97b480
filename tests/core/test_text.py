"""core.text (issue 16 items 5 and 7): hidden characters refused in names and removed from
free text; spreadsheet cells that stay text; CSV fields that open as text; and the year
range every typed or imported date is held to (core.clock)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from core.clock import SHANGHAI, DateOutOfRange, check_year_range, parse_local
from core.errors import InputError
from core.text import (
    EXCEL_MAX_CELL,
    MAX_ROW_ID,
    append_row,
    check_name,
    clean_text,
    csv_field,
    has_hidden,
    parse_row_id,
    safe_cell,
)

HIDDEN = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\x85", "\x9f", "\u200b", "\u200c", "\u200d",
          "\u2060", "\ufeff", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
          "\u2068", "\u2069", "\u200e", "\u200f", "\u061c", "\U000e0041", "\ud800"]


@pytest.mark.parametrize("char", [*HIDDEN, "\t", "\n", "\r", "\u2028"])
def test_a_name_with_a_hidden_character_is_refused_in_chinese(char: str) -> None:
    assert has_hidden(f"王{char}芳")
    with pytest.raises(InputError, match=r"^姓名含有不可见或控制字符，请重新输入$"):
        check_name(f"王{char}芳")
    with pytest.raises(InputError, match=r"^单位名称含有不可见或控制字符"):
        check_name(f"区政府{char}办", "单位名称")


def test_ordinary_names_pass_stripped() -> None:
    for name in ("王芳", "欧阳 娜娜", "Anna-Maria", "阿卜杜·热合曼", "𠀀𠀁", "区政府办（信息科）"):
        assert check_name(f"  {name} ") == name and not has_hidden(name)


@pytest.mark.parametrize("char", [c for c in HIDDEN if c != "\x85"])   # NEL is a line break
def test_free_text_loses_hidden_characters(char: str) -> None:
    assert clean_text(f"首页{char}图片{char}异常") == "首页图片异常"


def test_free_text_keeps_line_breaks_and_tabs() -> None:
    assert clean_text("第一行\r\n第二行\r第三行\u2028第四行\x85第五行\t完") == "第一行\n第二行\n第三行\n第四行\n第五行\t完"
    assert clean_text("\u202egnp.exe") == "gnp.exe"   # a right-to-left override is gone


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(st.characters() | st.sampled_from(HIDDEN)))
def test_clean_text_never_leaves_a_hidden_character(text: str) -> None:
    cleaned = clean_text(text)
    assert not has_hidden(cleaned.replace("\n", "").replace("\t", ""))
    assert clean_text(cleaned) == cleaned
    cleaned.encode("utf-8")   # no lone surrogate left: storable and sendable


# -- spreadsheets ---------------------------------------------------------------------

WALL = datetime(2026, 11, 23, 9, 0)  # noqa: DTZ001  (Excel holds wall-clock times)
FORMULAS = ['=HYPERLINK("http://x","y")', "=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "#N/A"]


def test_append_row_keeps_text_as_text_and_numbers_as_numbers(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    append_row(sheet, [*FORMULAS, 3, 2.5, None, WALL, "-", "+86 138 0000 0000",
                       "王\x00芳\x1b", "长" * (EXCEL_MAX_CELL + 10)])
    path = tmp_path / "t.xlsx"
    book.save(path)
    with zipfile.ZipFile(path) as z:
        assert "<f>" not in z.read("xl/worksheets/sheet1.xml").decode()   # no formula anywhere
    cells = next(iter(load_workbook(path).active.iter_rows(values_only=False)))  # type: ignore[union-attr]
    for cell, text in zip(cells, FORMULAS, strict=False):
        assert cell.value == text.replace("\r", "\n") or cell.value == text
        assert cell.data_type == "s" and cell.quotePrefix, text
    number, real, empty, when, dash, phone, controls, long = cells[len(FORMULAS):]
    assert (number.value, number.data_type) == (3, "n") and (real.value, real.data_type) == (2.5, "n")
    assert empty.value is None and when.value == WALL
    assert dash.value == "-" and dash.quotePrefix and phone.value == "+86 138 0000 0000"
    assert controls.value == "王芳" and len(long.value) == EXCEL_MAX_CELL


def test_safe_cell_leaves_what_is_not_text() -> None:
    assert safe_cell(7) == 7 and safe_cell(None) is None and safe_cell(date(2026, 1, 1)) == date(2026, 1, 1)
    assert safe_cell("\ud800a\ufffeb") == "ab"


def test_csv_fields_open_as_text() -> None:
    out = io.StringIO()
    csv.writer(out).writerow([csv_field(v) for v in ["=1+1", "+86 138", "-", "@x", "\tx", "\rx", "王芳", 12, -3]])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == [
        "'=1+1", "'+86 138", "'-", "'@x", "'\tx", "'\rx", "王芳", "12", "-3"]


# -- the year range of typed and imported dates ---------------------------------------


@pytest.mark.parametrize("day", [date(1999, 12, 31), date(2101, 1, 1), date(1, 1, 1), date(9999, 12, 31)])
def test_a_date_outside_2000_2100_is_refused_in_chinese(day: date) -> None:
    with pytest.raises(DateOutOfRange, match=r"^起算日期超出范围：\d{4}年（只能处理 2000—2100 年的日期）。$"):
        check_year_range(day, "起算日期")


def test_the_range_includes_both_ends() -> None:
    assert check_year_range(date(2000, 1, 1)) == date(2000, 1, 1)
    end = datetime(2100, 12, 31, 23, 59, tzinfo=SHANGHAI)
    assert check_year_range(end) is end


def test_parse_local_refuses_far_years_as_a_value_error_too() -> None:
    for text in ("9999-12-31T23:59", "0001-01-01"):
        with pytest.raises(ValueError, match="超出范围"):
            parse_local(text)
        with pytest.raises(InputError):
            parse_local(text)


def test_record_numbers_as_typed() -> None:
    assert [parse_row_id(t) for t in ("12", "#12", "＃１２", " 7 ")] == [12, 12, 12, 7]
    assert parse_row_id("²") == 2   # NFKC, like full-width digits
    for text in ("١٢", "1e3", "-1", "", "#", "12a", str(MAX_ROW_ID + 1), "9" * 30):
        assert parse_row_id(text) is None, text
    assert parse_row_id(str(MAX_ROW_ID)) == MAX_ROW_ID
