"""The account register in and out of the office's own table (.xlsx and .csv): all or
nothing, idempotent, round trip, and no formula in what is written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.fields import COLUMNS
from accounts.io import (
    AccountImportFailed,
    export_accounts,
    export_rows,
    import_accounts,
    read_rows,
)
from accounts.models import Account
from accounts.register import find_account
from core.audit import AuditEvent
from core.clock import parse_local
from core.db import make_engine, upgrade
from core.errors import InputError
from roster.models import Site

NOW = parse_local("2026-11-23T09:00")
HEADER = ",".join(COLUMNS)
GOOD = (HEADER + "\n"
        "区政府发布,微信公众号,qzfb_wx,区政府办,张三,李局,政府账号,在用,2024-03-01,已备案,滇网备001,2024-04-01,"
        "https://example.gov.cn/feed.xml,开启,\n"
        "区政府微博,新浪微博,qzfb,区政府办,张三,李局,政府账号,正常,2024/3/5,,,,,关闭,评论区已关闭\n"
        "教育发布,抖音,edu_dy,区教育局,王五,,部门账号,关停公告期,2023年9月1日,未备案,,,,,\n"
        "老账号,头条号,,区教育局,,,,已注销,,,,,,,2025年已注销\n")


def write(path: Path, text: str, encoding: str = "utf-8-sig") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def do_import(engine: Engine, path: Path) -> tuple[int, int, int]:
    with Session(engine) as session:
        result = import_accounts(session=session, rows=read_rows(path), now=NOW, actor="cli")
        session.commit()
    return result.created, result.updated, result.unchanged


def exported(engine: Engine) -> list[list[object]]:
    with Session(engine) as session:
        return export_rows(session=session)


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return (len(list(session.exec(select(Site)))), len(list(session.exec(select(Account)))),
                len(list(session.exec(select(AuditEvent)))))


def test_a_bad_row_stores_nothing_and_every_problem_names_its_row(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.csv", GOOD
                 + "门户网站,网站,https://www.example.gov.cn,区政府办,,,,,,,,,,,\n"
                 + ",微博,abc,区政府办,,,,,,,,,,,\n"
                 + "区政府发布,微信,again,区政府办,,,,,,,,,,,\n"
                 + "某号,快手,ks1,区政府办,,,,,,,,,,,\n"
                 + "新号,微博,xh,区政府办,,,,在用,2026-13-01,,,,,,\n"
                 + "备案号,微博,bah,区政府办,,,,,,未备案,X-1,,,,\n")
    with Session(engine) as session, pytest.raises(AccountImportFailed) as err:
        import_accounts(session=session, rows=read_rows(path), now=NOW, actor="cli")
    assert err.value.problems == [
        "第6行：“门户网站”是网站，网站不是政务新媒体账号，不在账号登记中登记（网站请用 dutybot sites add）。"
        "账号的平台可选：微信公众号、微博、抖音、头条号、客户端、其他",
        "第7行：缺少账号名称",
        "第8行：“区政府发布”（区政府办）与第2行重复",
        "第9行：无法识别的平台“快手”（可选：微信公众号、微博、抖音、头条号、客户端、其他）",
        "第10行：开通日期“2026-13-01”无法识别：应为 YYYY-MM-DD，如 2026-03-01",
        "第11行：备案状态为“未备案”，却填写了备案编号或备案日期",
    ]
    assert err.value.message.startswith("导入失败，未导入任何账号：\n")
    assert counts(engine) == (0, 0, 0)


def test_a_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.csv", "账号名称,平台\n区政府发布,微信\n")
    with pytest.raises(InputError, match="缺少“主办单位”列（表头应为：账号名称、平台、账号ID"):
        read_rows(path)


def test_importing_the_same_file_again_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.csv", GOOD)
    assert do_import(engine, path) == (4, 0, 0)
    before, first = counts(engine), exported(engine)
    assert do_import(engine, path) == (0, 0, 4)
    assert counts(engine) == before and exported(engine) == first
    changed = write(tmp_path / "changed.csv", GOOD.replace("王五", "孙七"))
    assert do_import(engine, changed) == (0, 1, 3)
    with Session(engine) as session:
        assert find_account(session=session, name="教育发布").operator == "孙七"
    assert counts(engine)[:2] == before[:2]


def test_only_the_required_columns_is_enough(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "short.csv", "账号名称,平台,主办单位\n区政府发布,公众号,区政府办\n", encoding="utf-8")
    assert do_import(engine, path) == (1, 0, 0)
    [row] = exported(engine)
    assert row == ["区政府发布", "微信公众号", "", "区政府办", "", "", "部门账号", "在用", None, "未备案", "", None,
                   "", "开启", ""]


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_export_then_import_round_trips(engine: Engine, tmp_path: Path, suffix: str) -> None:
    do_import(engine, write(tmp_path / "accounts.csv", GOOD))
    original = exported(engine)
    out = tmp_path / f"export{suffix}"
    with Session(engine) as session:
        assert export_accounts(session=session, path=out) == 4
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(fresh)
    try:
        assert do_import(fresh, out) == (4, 0, 0)
        assert exported(fresh) == original
        with Session(fresh) as session:
            gone = find_account(session=session, name="老账号")
            assert gone.state == "cancelled" and session.get(Site, gone.site_id).active is False  # type: ignore[union-attr]
    finally:
        fresh.dispose()
    assert do_import(engine, out) == (0, 0, 4)   # back into the database it came from: nothing changes
    assert original[0][:4] == ["区政府发布", "微信公众号", "qzfb_wx", "区政府办"]


def test_exported_cells_never_run_as_formulas(engine: Engine, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    formula = '=HYPERLINK("http://evil.example","点此")'
    path = write(tmp_path / "accounts.csv", HEADER + "\n"
                 f'@区政府发布,微信,"+86 12345",区政府办,,,,,,,,,,,"{formula.replace(chr(34), chr(34) * 2)}"\n')
    do_import(engine, path)
    xlsx, csv_path = tmp_path / "out.xlsx", tmp_path / "out.csv"
    with Session(engine) as session:
        export_accounts(session=session, path=xlsx)
        export_accounts(session=session, path=csv_path)
    book = load_workbook(xlsx)
    sheet = book.active
    assert sheet is not None
    cells = {sheet.cell(1, c).value: sheet.cell(2, c) for c in range(1, len(COLUMNS) + 1)}
    for column, text in (("备注", formula), ("账号名称", "@区政府发布"), ("账号ID", "+86 12345")):
        assert cells[column].value == text and cells[column].data_type == "s" and cells[column].quotePrefix
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")      # BOM: Excel reads it as UTF-8
    [header, row] = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    fields = dict(zip(header, row, strict=True))
    assert fields["备注"] == "'" + formula and fields["账号名称"] == "'@区政府发布"
    # Imported back, the protecting quote is taken off again.
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(fresh)
    try:
        do_import(fresh, csv_path)
        with Session(fresh) as session:
            assert find_account(session=session, name="@区政府发布").note == formula
    finally:
        fresh.dispose()


def test_export_refuses_an_unknown_format(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session, pytest.raises(InputError, match=r"不支持的文件格式 \.txt"):
        export_accounts(session=session, path=tmp_path / "out.txt")


def test_an_empty_file_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "empty.csv", HEADER + "\n,,,,,,,,,,,,,,\n")
    with Session(engine) as session, pytest.raises(AccountImportFailed, match="文件中没有账号数据"):
        import_accounts(session=session, rows=read_rows(path), now=NOW, actor="cli")
