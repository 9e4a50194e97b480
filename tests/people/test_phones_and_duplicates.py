"""Phone numbers (a mainland mobile, or a landline with its area code), and people
registered twice (the same name, active or not, or the same mobile number) — on add, on
import (row by row, nothing stored) and on a phone change."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import FakeClock
from core.errors import InputError
from people.errors import DuplicatePerson, ImportFailed
from people.io import read_table
from people.models import Person, Role
from people.phones import HINT, normalize_phone
from people.service import add_person, deactivate_person, import_people, set_phone, validate
from tests.factories import make_person


@pytest.mark.parametrize(("typed", "stored"), [
    ("13812345678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("１３８１２３４５６７８", "13812345678"),          # typed with a Chinese input method
    ("19912345678", "19912345678"),
    ("023-67881234", "023-67881234"),
    ("02367881234", "023-67881234"),                    # 023 is a two-digit area code
    ("(023)67881234", "023-67881234"),
    ("（023）6788 1234", "023-67881234"),
    ("010-62345678", "010-62345678"),
    ("0571-87654321", "0571-87654321"),
    ("057187654321", "0571-87654321"),                  # 0571: three digits after the 0
    ("0571-8765432", "0571-8765432"),                   # a 7-digit local number
    ("023-67881234转123", "023-67881234转123"),
    ("023-67881234-123", "023-67881234转123"),
    ("023 6788 1234 转 12", "023-67881234转12"),
])
def test_valid_numbers_are_stored_in_one_form(typed: str, stored: str) -> None:
    assert normalize_phone(typed) == stored


@pytest.mark.parametrize("typed", [
    "110",                  # a service number, not a person's
    "12345678901",          # 12x is not a mobile prefix
    "1381234567",           # 10 digits
    "138123456789",         # 12 digits
    "23-67881234",          # no leading 0
    "023-1234567",          # a local number starts with 2–9
    "0236-7881234",         # 023 has two digits after the 0, not three
    "057-2345678",          # 057 is not an area code
    "67881234",             # no area code
    "023-67881234转",       # an extension without digits
    "abc",
    "138-1234-567a",
])
def test_invalid_numbers_are_refused_naming_the_examples(typed: str) -> None:
    with pytest.raises(InputError) as info:
        normalize_phone(typed)
    assert info.value.message.startswith(f"电话“{typed}”无效：")
    assert HINT in info.value.message and "13812345678" in HINT and "023-67881234" in HINT


def test_validate_normalises_and_keeps_an_empty_phone() -> None:
    assert validate("王芳", "138 1234 5678").phone == "13812345678"
    assert validate("王芳", "").phone == ""
    with pytest.raises(InputError, match="电话“1234”无效"):
        validate("王芳", "1234")


def test_duplicates_are_refused_with_the_existing_entry(engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", phone="13812345678", now=clock.now())
        make_person(session, "李强", roles=(Role.leader,), phone="023-67881234", now=clock.now())
        with pytest.raises(DuplicatePerson) as info:
            add_person(session=session, new=validate("王芳", "13900000001", "网信科"), now=clock.now(), actor="t")
        assert info.value.message == ("已有人员：王芳（值班员，区政府办，13812345678）。"
                                      "如为同名不同人，请在姓名后加区分，如 王芳（网信科）。")
        assert info.value.existing.name == "王芳"
        with pytest.raises(DuplicatePerson, match="电话 13812345678 已登记给：王芳（值班员，区政府办，13812345678）"):
            add_person(session=session, new=validate("孙丽", "138 1234 5678"), now=clock.now(), actor="t")
        # A landline may be an office's shared duty phone.
        assert add_person(session=session, new=validate("周明", "02367881234"), now=clock.now(), actor="t")
        chen = add_person(session=session, new=validate("陈晨", "13900000003"), now=clock.now(), actor="t")
        with pytest.raises(DuplicatePerson, match="已登记给：王芳"):
            set_phone(session=session, person=chen, phone="138-1234-5678", now=clock.now(), actor="t")
        assert set_phone(session=session, person=chen, phone="139 0000 0004", now=clock.now(), actor="t") == \
            "13900000003"
        assert chen.phone == "13900000004"
        with pytest.raises(InputError, match="电话已是"):
            set_phone(session=session, person=chen, phone="139-0000-0004", now=clock.now(), actor="t")
        # Someone who left: the refusal suggests reactivating them.
        deactivate_person(session=session, person=chen, now=clock.now(), actor="t")
        with pytest.raises(DuplicatePerson) as info:
            add_person(session=session, new=validate("陈晨", "13900000009"), now=clock.now(), actor="t")
        assert "陈晨（值班员，未登记单位，13900000004，已停用）" in info.value.message
        assert "/people reactivate 陈晨" in info.value.message
        with pytest.raises(DuplicatePerson, match="已停用"):
            add_person(session=session, new=validate("吴刚", "13900000004"), now=clock.now(), actor="t")


def test_import_reports_duplicates_row_by_row(tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", phone="13812345678", now=clock.now())
        session.commit()
    path = tmp_path / "people.csv"
    path.write_text("姓名,电话,单位,角色\n"
                    "王芳,13900000001,网信科,值班员\n"          # row 2: the name is registered
                    "孙丽,138 1234 5678,,值班员\n"              # row 3: the mobile is 王芳's
                    "吴刚,13900000002,,带班领导\n"              # row 4: fine
                    "吴刚,13900000003,,值班员\n"                # row 5: the name again
                    "郑丽,139-0000-0002,,值班员\n"              # row 6: 吴刚's mobile again
                    "赵敏,110,,主要负责人\n"                    # row 7: not a phone number
                    "周明,023-67881234,,值班员\n"
                    "钱多,023-67881234,,值班员\n",             # a shared landline is fine
                    encoding="utf-8")
    with Session(engine) as session:
        with pytest.raises(ImportFailed) as info:
            import_people(session=session, rows=read_table(path), now=clock.now(), actor="t")
        session.rollback()
        assert [p.name for p in session.exec(select(Person))] == ["王芳"]
    problems = info.value.problems
    assert [p.split("：")[0] for p in problems] == ["第2行", "第3行", "第5行", "第6行", "第7行"]
    assert problems[0].startswith("第2行：已有人员：王芳（值班员，区政府办，13812345678）。")
    assert problems[1].startswith("第3行：电话 13812345678 已登记给：王芳")
    assert problems[2] == "第5行：姓名“吴刚”与第4行重复"
    assert problems[3] == "第6行：电话 13900000002 与第4行重复"
    assert problems[4].startswith("第7行：电话“110”无效")
