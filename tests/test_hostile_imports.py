"""Hostile text in the imports and the name checks (issue 16 item 7): names and units with
control, zero-width or bidi characters are refused with a Chinese error; free text has them
removed; dates outside 2000–2100 are refused; and random cell values fed to every import
(people, roster, sites, replies) give a result or a Chinese InputError — nothing else.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.config import load_settings
from core.clock import FakeClock
from core.errors import InputError
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from people.edits import parse_unit
from people.models import Role
from people.service import import_people, parse_training_day, validate
from replies.flows import ReminderPolicy
from replies.importer import import_items, parse_when
from replies.models import ReplyItem
from roster import sites
from roster.importer import import_roster
from roster.importer import parse_day as roster_day
from tests.factories import make_person

HIDDEN = ["\x00", "\x07", "\x1b", "\x7f", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202a",
          "\u202e", "\u2066", "\u2069", "\u200f"]
REFUSED = "含有不可见或控制字符，请重新输入"
CAL = WorkdayCalendar.from_dir(None)
PATTERNS = load_settings(None, env={}).roster.patterns()


# -- names and units are refused ------------------------------------------------------


@pytest.mark.parametrize("char", HIDDEN)
def test_people_names_units_and_organizations_with_hidden_characters_are_refused(char: str) -> None:
    with pytest.raises(InputError, match=r"^姓名含有不可见或控制字符，请重新输入$"):
        validate(f"王{char}芳", "13800000001")
    with pytest.raises(InputError, match=f"^单位名称{REFUSED}$"):
        validate("王芳", "13800000001", unit=f"区政府{char}办")
    with pytest.raises(InputError, match=f"^机构名称{REFUSED}$"):
        validate("王芳", "13800000001", organization=f"网信{char}办")
    with pytest.raises(InputError, match=f"^单位名称{REFUSED}$"):
        parse_unit(f"区政府{char}办")


@pytest.mark.parametrize("char", HIDDEN)
def test_site_names_units_and_addresses_with_hidden_characters_are_refused(char: str) -> None:
    with pytest.raises(InputError, match=f"^名称{REFUSED}$"):
        sites.validate(f"门户{char}网站", "网站", "https://www.example.gov.cn")
    with pytest.raises(InputError, match=f"^单位名称{REFUSED}$"):
        sites.validate("门户网站", "网站", "https://www.example.gov.cn", f"区{char}政府办")
    with pytest.raises(InputError, match=f"^网址或账号{REFUSED}$"):
        sites.validate("门户网站", "网站", f"https://www.exa{char}mple.gov.cn")


def test_a_people_import_names_the_row_with_the_hidden_character(engine: Engine, clock: FakeClock) -> None:
    rows = [{"姓名": "王芳", "电话": "13800000001"}, {"姓名": "陈\u200b晨", "电话": "13800000002"},
            {"姓名": "赵敏", "电话": "13800000003", "单位": "区\u202e政府办"}]
    with Session(engine) as session, pytest.raises(InputError) as exc:
        import_people(session=session, rows=rows, now=clock.now(), actor="t")
    assert exc.value.message.splitlines()[1:] == [f"第3行：姓名{REFUSED}", f"第4行：单位名称{REFUSED}"]


def test_a_roster_import_refuses_hidden_names_and_far_dates(engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        make_person(session, "李强", roles=(Role.leader,), now=clock.now())
        session.commit()
        rows = [{"日期": "2026-12-01", "带班领导": "李\u200d强", "值班员": "王芳"},
                {"日期": "9999-12-31", "带班领导": "李强", "值班员": "王芳"},
                {"日期": "99999", "带班领导": "李强", "值班员": "王芳"}]
        with pytest.raises(InputError) as exc:
            import_roster(session=session, rows=rows, calendar=CAL, patterns=PATTERNS, now=clock.now(), actor="t")
    assert exc.value.message.splitlines()[1:] == [
        f"第2行：带班领导的姓名{REFUSED}",
        "第3行：“9999-12-31”：日期超出范围：9999年（只能处理 2000—2100 年的日期）。",
        "第4行：日期超出范围：2173年（只能处理 2000—2100 年的日期）。"]


def test_a_replies_import_cleans_the_text_and_refuses_a_hidden_unit(engine: Engine, clock: FakeClock) -> None:
    base = {"类别": "咨询", "收到时间": "2026-11-20 10:00"}
    with Session(engine) as session:
        with pytest.raises(InputError, match=f"第2行：单位名称{REFUSED}"):
            import_items(session=session, rows=[{**base, "摘要": "问办事时间", "单位": "甲\x00局"}],
                         calendar=CAL, profile=load_profile("default"), policy=ReminderPolicy(),
                         now=clock.now(), actor="t")
        import_items(session=session, rows=[{**base, "摘要": "问\u202e办事\u200b时间\x00", "外部编号": "A\ufeff1"}],
                     calendar=CAL, profile=load_profile("default"), policy=ReminderPolicy(),
                     now=clock.now(), actor="t")
        item = session.exec(select(ReplyItem)).one()
    assert (item.summary, item.external_ref) == ("问办事时间", "A1")


@pytest.mark.parametrize("text", ["9999-12-31 23:59", "0001-01-01", "1999-12-31 10:00", "2101-01-01"])
def test_reply_times_outside_2000_2100_are_refused(text: str) -> None:
    with pytest.raises(InputError, match=r"^收到时间超出范围：\d{4}年（只能处理 2000—2100 年的日期）。$"):
        parse_when(text, "收到时间")


def test_training_days_and_roster_days_outside_2000_2100_are_refused() -> None:
    with pytest.raises(InputError, match="培训日期超出范围：1999年"):
        parse_training_day("1999-12-31")
    with pytest.raises(InputError, match="超出范围"):
        roster_day("0001-01-01")
    assert roster_day("2100-12-31") == date(2100, 12, 31)


# -- fuzzing the imports --------------------------------------------------------------

_ODD = ["", " ", "0001-01-01", "9999-12-31", "2026-02-30", "2026-12-01", "2026-11-20 10:00", "99999",
        "45000", "1e308", "王芳", "李强", "值班员", "带班领导", "管理员", "外部联系人", "网站", "公众号",
        "找错", "咨询", "https://www.example.gov.cn", "http://", "13800000001", "+86 138 0000 0001",
        "023-67881234转123", "=1+1", '=HYPERLINK("http://x","y")', "白班", "夜班", "全天", "、", "，,;"]
_CELL = st.one_of(st.sampled_from(_ODD), st.sampled_from(HIDDEN),
                  st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from(HIDDEN), max_size=12),
                  st.builds(lambda s, n: (s or "长") * n, st.text(max_size=3), st.integers(30, 400)))
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _rows(columns: tuple[str, ...]) -> st.SearchStrategy[list[dict[str, str]]]:
    return st.lists(st.fixed_dictionaries({c: _CELL for c in columns}), min_size=1, max_size=4)


def _only_results_or_chinese_errors(session: Session, run: object) -> None:
    try:
        run()  # type: ignore[operator]
    except InputError as exc:
        assert _CHINESE.search(exc.message), exc.message
    finally:
        session.rollback()


@pytest.fixture
def people(engine: Engine, clock: FakeClock) -> Engine:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), phone="13800000001")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), phone="13800000002")
        session.commit()
    return engine


@_FUZZ
@given(rows=_rows(("姓名", "电话", "单位", "角色", "机构", "培训日期")))
def test_fuzz_people_import(people: Engine, clock: FakeClock, rows: list[dict[str, str]]) -> None:
    with Session(people) as session:
        _only_results_or_chinese_errors(session, lambda: import_people(
            session=session, rows=rows, now=clock.now(), actor="t"))


@_FUZZ
@given(rows=_rows(("日期", "班次", "带班领导", "值班员")))
def test_fuzz_roster_import(people: Engine, clock: FakeClock, rows: list[dict[str, str]]) -> None:
    with Session(people) as session:
        _only_results_or_chinese_errors(session, lambda: import_roster(
            session=session, rows=rows, calendar=CAL, patterns=PATTERNS, now=clock.now(), actor="t"))


@_FUZZ
@given(rows=_rows(sites.COLUMNS))
def test_fuzz_sites_import(people: Engine, clock: FakeClock, rows: list[dict[str, str]]) -> None:
    with Session(people) as session:
        _only_results_or_chinese_errors(session, lambda: sites.import_sites(
            session=session, rows=rows, now=clock.now(), actor="t"))


@_FUZZ
@given(rows=_rows(("外部编号", "渠道", "类别", "收到时间", "摘要", "单位", "负责人", "答复时间", "答复摘要")))
def test_fuzz_replies_import(people: Engine, clock: FakeClock, rows: list[dict[str, str]]) -> None:
    with Session(people) as session:
        _only_results_or_chinese_errors(session, lambda: import_items(
            session=session, rows=rows, calendar=CAL, profile=load_profile("default"),
            policy=ReminderPolicy(), now=clock.now(), actor="t"))
