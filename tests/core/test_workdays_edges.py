"""The edges of the working-day calendar a mutation run found untested: the exact JSON of
``dutybot due``, the 暂定 wording, the override file's checks and messages, holiday names."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from core.clock import SHANGHAI
from core.errors import CalendarDataError, CalendarError
from core.workdays import (
    DayInfo,
    HolidayPackage,
    WorkdayCalendar,
    load_override_dir,
    load_override_file,
)

START = datetime(2026, 9, 30, 16, 0, tzinfo=SHANGHAI)


def test_deadline_as_dict_is_the_exact_json_of_dutybot_due() -> None:
    deadline = WorkdayCalendar().add_workdays(START, 1)
    assert deadline.as_dict() == {
        "start": "2026-09-30T16:00:00+08:00",
        "due": "2026-10-09T00:00:00+08:00",
        "due_utc": "2026-10-08T16:00:00+00:00",
        "last_day": "2026-10-08",
        "provisional": False,
        "kind": "workdays",
        "amount": 1,
        "cutoff": "24:00",
    }
    early = WorkdayCalendar(cutoff=time(17, 30)).add_days(START, 3)
    assert early.as_dict()["cutoff"] == "17:30" and early.as_dict()["kind"] == "days"
    assert early.as_dict()["amount"] == 3


def test_a_provisional_deadline_says_why_in_chinese() -> None:
    capped = WorkdayCalendar(package=HolidayPackage(through=2026))
    deadline = capped.add_workdays(datetime(2027, 3, 1, 9, 0, tzinfo=SHANGHAI), 2)
    assert deadline.provisional
    assert deadline.short_zh() == "2027年3月3日（星期三）24:00（暂定：该年度节假日安排尚未发布）"
    assert deadline.zh() == "截止：" + deadline.short_zh()
    known = WorkdayCalendar().add_workdays(START, 1)
    assert known.short_zh() == "2026年10月8日（星期四）24:00"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["abcd.toml", "202.toml", "20270.toml", "27.toml", "2027a.toml"])
def test_an_override_file_must_be_named_by_its_year(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, "")
    with pytest.raises(CalendarDataError) as err:
        load_override_file(path)
    assert err.value.message == f"{path}：文件名应为年份，如 2027.toml"


@pytest.mark.parametrize(("body", "message"), [
    ("holidays = 3\n", "[holidays] 应为“名称 = [日期, …]”的表"),
    ("workdays = \"2027-02-07\"\n", "[workdays] 应为“名称 = [日期, …]”的表"),
    ("[holidays]\n\"春节\" = 5\n", "holidays.春节 应为日期字符串列表"),
    ("[holidays]\n\"春节\" = [\"2027-02-06\", 7]\n", "holidays.春节 应为日期字符串列表"),
    ("[holidays]\n\"春节\" = [\"2027-02-06..2027-02-08..2027-02-09\"]\n",
     "holidays.春节：无法识别的日期 '2027-02-06..2027-02-08..2027-02-09'"),
    ("[holidays]\n\"春节\" = [\"2027-02-06 .. 2027-02-08\"]\n[workdays]\n\"春节\" = [\"2027-02-07\"]\n",
     "2027-02-07 同时被列为放假和调休上班"),
    ("[holidays]\n\"元旦\" = [\"2026-12-31..2027-01-01\"]\n", "'2026-12-31..2027-01-01' 不在 2027 年内"),
    ("[holidays]\n\"元旦\" = [\"2027-01-03..2027-01-01\"]\n", "'2027-01-03..2027-01-01' 的结束早于开始"),
    ("holiday = {}\n", "未知的键 holiday（可用：notice、holidays、workdays）"),
    ("[holidays\n", "不是有效的 TOML"),
])
def test_a_malformed_override_file_is_refused_with_the_exact_problem(
        tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, "2027.toml", body)
    with pytest.raises(CalendarDataError) as err:
        load_override_file(path)
    assert err.value.message.startswith(f"{path}：")
    assert message in err.value.message


def test_an_override_file_keeps_its_notice_names_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "2027.toml",
                  'notice = "国办发明电〔2026〕9号"\n[holidays]\n\"春节\" = ["2027-02-06..2027-02-08"]\n'
                  '"清明节" = "2027-04-05"\n[workdays]\n\"春节\" = ["2027-02-14"]\n')
    ov = load_override_file(path)
    assert (ov.year, ov.notice, ov.path) == (2027, "国办发明电〔2026〕9号", str(path))
    assert ov.holidays == {date(2027, 2, 6): "春节", date(2027, 2, 7): "春节", date(2027, 2, 8): "春节",
                           date(2027, 4, 5): "清明节"}
    assert ov.workdays == {date(2027, 2, 14): "春节"}
    without = load_override_file(_write(tmp_path, "2028.toml", ""))
    assert without.notice == "" and without.holidays == {} and without.workdays == {}


def test_the_override_folder_reads_every_year_file(tmp_path: Path) -> None:
    assert load_override_dir(None) == {}
    assert load_override_dir(tmp_path / "missing") == {}
    _write(tmp_path, "2027.toml", '[holidays]\n\"元旦\" = ["2027-01-01"]\n')
    _write(tmp_path, "2028.toml", "")
    _write(tmp_path, "notes.txt", "not a calendar")
    found = load_override_dir(tmp_path)
    assert sorted(found) == [2027, 2028] and found[2027].holidays == {date(2027, 1, 1): "元旦"}


def test_holiday_names_come_from_the_package_in_chinese() -> None:
    package = HolidayPackage()
    assert package.holiday_name(date(2026, 10, 1)) == "国庆节"
    assert package.holiday_name(date(2026, 11, 23)) is None
    calendar = WorkdayCalendar()
    assert calendar.day(date(2026, 10, 1)).name == "国庆节"
    # A make-up Saturday (调休上班) is a working day that still belongs to the holiday.
    makeup = calendar.day(date(2026, 10, 10))
    assert makeup.is_workday and makeup.source == "package"


def test_covered_years_name_their_source(tmp_path: Path) -> None:
    _write(tmp_path, "2030.toml", "")
    calendar = WorkdayCalendar(overrides=load_override_dir(tmp_path), package=HolidayPackage(through=2026))
    covered = calendar.covered_years(2026)
    assert covered[2030] == "override" and covered[2026] == "package" and 2027 not in covered
    assert min(covered) == 2004
    assert calendar.override(2030) is not None and calendar.override(2026) is None


def test_next_workday_looks_sixty_days_ahead_and_no_further(tmp_path: Path) -> None:
    # 2030-01-01..2030-03-01 is 60 rest days; 2030-03-02 (a Saturday) is made a working day.
    _write(tmp_path, "2030.toml", '[holidays]\n"演练" = ["2030-01-01..2030-03-01"]\n'
                                  '[workdays]\n"演练" = ["2030-03-02"]\n')
    calendar = WorkdayCalendar(overrides=load_override_dir(tmp_path))
    with pytest.raises(CalendarError) as err:
        calendar.next_workday(date(2030, 1, 1))
    assert err.value.message == "2030-03-02 之后 60 天内没有工作日，请检查节假日数据"
    assert calendar.next_workday(date(2030, 1, 2)) == (date(2030, 3, 2), False)
    assert calendar.day(date(2030, 1, 5)).day == date(2030, 1, 5)
    assert WorkdayCalendar().next_workday(date(2026, 11, 23)) == (date(2026, 11, 23), False)
    capped = WorkdayCalendar(package=HolidayPackage(through=2026))
    assert capped.next_workday(date(2027, 3, 6)) == (date(2027, 3, 8), True)


@pytest.mark.parametrize(("unit", "amount"), [("workdays", 2), ("days", 3), ("weeks", 1), ("months", 1)])
def test_the_cutoff_reaches_every_unit(unit: str, amount: int) -> None:
    office = WorkdayCalendar(cutoff=time(17, 30))
    start = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    assert office.add(start, amount, unit).due.astimezone(SHANGHAI).time() == time(17, 30)
    noon = office.add(start, amount, unit, cutoff=time(12, 0))
    assert noon.due.astimezone(SHANGHAI).time() == time(12, 0) and noon.cutoff == time(12, 0)
    midnight = office.add(start, amount, unit, cutoff=None)
    assert midnight.due.astimezone(SHANGHAI) == datetime.combine(
        midnight.last_day + timedelta(days=1), time(0, 0), tzinfo=SHANGHAI)
    assert midnight.as_dict()["cutoff"] == "24:00"
    assert noon.start == start and noon.amount == (amount * 7 if unit == "weeks" else amount)


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(CalendarError) as err:
        WorkdayCalendar().add(START, 1, "fortnights")
    assert err.value.message == "无法按单位 'fortnights' 计算期限"


def test_the_package_cap_is_kept() -> None:
    assert HolidayPackage(through=2025).through == 2025
    assert not HolidayPackage(through=2025).covers(2026) and HolidayPackage(through=2026).covers(2026)
    assert 2026 not in WorkdayCalendar().covered_years(2024)
    assert 2025 in WorkdayCalendar().covered_years(2024)


def test_what_a_day_says_about_itself(tmp_path: Path) -> None:
    """The day record a reminder reads: date, workday, provisional, name, source."""
    capped = WorkdayCalendar(package=HolidayPackage(through=2026))
    assert capped.day(date(2027, 10, 1)) == DayInfo(date(2027, 10, 1), False, True, "国庆节", "provisional")
    assert capped.day(date(2027, 10, 4)) == DayInfo(date(2027, 10, 4), True, True, None, "provisional")
    calendar = WorkdayCalendar()
    # A make-up Saturday keeps its holiday's name; an ordinary weekday in the season has none.
    assert calendar.day(date(2026, 10, 10)) == DayInfo(date(2026, 10, 10), True, False, "国庆节", "package")
    assert calendar.day(date(2026, 11, 23)) == DayInfo(date(2026, 11, 23), True, False, None, "package")
    _write(tmp_path, "2030.toml", '[holidays]\n"春节" = ["2030-02-02"]\n[workdays]\n"春节" = ["2030-02-09"]\n')
    local = WorkdayCalendar(overrides=load_override_dir(tmp_path))
    assert local.day(date(2030, 2, 2)) == DayInfo(date(2030, 2, 2), False, False, "春节", "override")
    assert local.day(date(2030, 2, 9)) == DayInfo(date(2030, 2, 9), True, False, "春节", "override")
    assert local.day(date(2030, 2, 10)) == DayInfo(date(2030, 2, 10), False, False, None, "override")
