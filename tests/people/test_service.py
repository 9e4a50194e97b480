"""People: validation, all-or-nothing import from CSV/xlsx, invites, the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.cli import main
from core.clock import FakeClock
from core.errors import InputError
from people.errors import ImportFailed
from people.io import read_table
from people.models import Role
from people.service import bind, create_invite, import_people, list_people, parse_roles


def test_roles_in_chinese_or_english() -> None:
    assert parse_roles("值班员、带班领导") == {Role.officer, Role.leader}
    assert parse_roles("admin,officer") == {Role.admin, Role.officer}
    with pytest.raises(InputError, match="无法识别的角色“组长”"):
        parse_roles("组长")
    with pytest.raises(InputError, match="外部联系人不能"):
        parse_roles("外部联系人、值班员")


def test_csv_with_bom_imports_all(tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    path = tmp_path / "people.csv"
    path.write_text("姓名,电话,单位,角色,机构\n王芳,13800000003,区政府办,值班员,\n"
                    "老刘,023-67881234,,外部联系人,区公安分局\n", encoding="utf-8-sig")
    with Session(engine) as session:
        people = import_people(session=session, rows=read_table(path), now=clock.now(), actor="t")
        session.commit()
        assert [p.name for p in people] == ["王芳", "老刘"]
        assert list_people(session=session)[0].organization in ("", "区公安分局")


def test_bad_rows_are_reported_row_by_row_and_nothing_is_imported(
        tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["姓名", "电话", "单位", "角色"])
    ws.append(["王芳", "13800000003", "区政府办", "值班员"])
    ws.append(["李 强", "13800000002", "区政府办", "带班领导"])
    ws.append(["赵敏", "abc", "区政府办", "主要负责人"])
    ws.append(["王芳", "1", "", "值班员"])
    path = tmp_path / "people.xlsx"
    wb.save(path)
    with Session(engine) as session:
        with pytest.raises(ImportFailed) as info:
            import_people(session=session, rows=read_table(path), now=clock.now(), actor="t")
        session.rollback()
        assert list_people(session=session) == []
    assert [p[:3] for p in info.value.problems] == ["第3行", "第4行", "第5行"]
    assert "姓名“李 强”无效" in info.value.problems[0]


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes("姓名\n王芳\n".encode("gbk"))
    with pytest.raises(InputError, match="不是 UTF-8"):
        read_table(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("name\nx\n", encoding="utf-8")
    with pytest.raises(InputError, match="缺少“姓名”列"):
        read_table(tmp_path / "b.csv")
    (tmp_path / "b.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="不支持的文件格式"):
        read_table(tmp_path / "b.txt")


def test_a_new_invite_replaces_the_old_one(engine: Engine, clock: FakeClock) -> None:
    from tests.factories import make_person
    with Session(engine) as session:
        person = make_person(session, "陈晨", now=clock.now(), platform=None)
        first = create_invite(session=session, person=person, now=clock.now(),
                              ttl=timedelta(hours=72), actor="t")
        clock.advance(timedelta(minutes=1))
        second = create_invite(session=session, person=person, now=clock.now(),
                               ttl=timedelta(hours=72), actor="t")
        with pytest.raises(InputError, match="已过期"):
            bind(session=session, code=first.code, platform="memory", external_id="x",
                 chat_id="x", display_name="陈晨", now=clock.now())
        assert bind(session=session, code=second.code, platform="memory", external_id="x",
                    chat_id="x", display_name="陈晨", now=clock.now()).name == "陈晨"


def test_people_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["people", "add", "王芳", "--roles", "值班员", "--phone", "13800000003"]) == 0
    assert main(["people", "invite", "王芳"]) == 0
    out = capsys.readouterr().out
    assert "已添加 王芳（值班员）" in out and "王芳 的绑定码：" in out
    assert main(["people", "add", "王芳"]) == 2
    assert "已有人员：王芳（值班员" in capsys.readouterr().err
    (tmp_path / "p.csv").write_text("姓名,角色\n李强,带班领导\n", encoding="utf-8")
    assert main(["people", "import", str(tmp_path / "p.csv")]) == 0
    assert main(["people", "list"]) == 0
    out = capsys.readouterr().out
    assert "李强\t带班领导" in out and "共 2 人" in out
    assert main(["people", "invite", "不存在"]) == 1
    assert "找不到人员“不存在”" in capsys.readouterr().err
