"""The dutybot CLI contract: due, rules, calendar check, init, db."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from freezegun import freeze_time

from bot.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_due_chinese_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "due", "2026-09-30T16:00", "--workdays", "1")
    assert code == 0
    assert out.strip() == "截止：2026年10月8日（星期四）24:00"


def test_due_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "due", "2026-02-15", "--workdays", "1", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["start"] == "2026-02-15T00:00:00+08:00"
    assert data["due"] == "2026-02-25T00:00:00+08:00"      # 24:00 of 02-24
    assert data["last_day"] == "2026-02-24"
    assert data["provisional"] is False


def test_due_with_offset_cutoff_and_provisional(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "due", "2026-12-30T01:00:00+00:00", "--workdays", "3",
                       "--cutoff", "17:30", "--json")
    data = json.loads(out)
    assert code == 0 and data["provisional"] is True
    assert data["due"] == "2027-01-05T17:30:00+08:00"
    code, out, _ = run(capsys, "due", "2026-11-30", "--months", "3")
    assert "2027年3月1日" in out and "暂定" in out
    code, out, _ = run(capsys, "due", "2026-09-24", "--days", "7", "--json")
    assert json.loads(out)["last_day"] == "2026-10-08"


@pytest.mark.parametrize(("argv", "fragment"), [
    (["due", "2026-02-30", "--workdays", "1"], "无效的开始时间"),
    (["due", "2026-02-03", "--workdays", "0"], "正整数"),
    (["due", "2026-02-03", "--days", "-2"], "正整数"),
    (["due", "2026-02-03"], "用法错误"),
    (["due", "2026-02-03", "--workdays", "1", "--cutoff", "5pm"], "无效的截止时刻"),
    (["rules", "--profile", "nowhere"], "未知的规则配置档"),
])
def test_bad_input_is_one_line_without_traceback(capsys: pytest.CaptureFixture[str],
                                                 argv: list[str], fragment: str) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:   # argparse usage errors exit through SystemExit
        code = int(exc.code or 0)
    _out, err = capsys.readouterr()
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_rules_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "--profile", "liangping")
    assert code == 0 and "SENS-3" in out and "梁平办法第二十四条" in out
    code, out, _ = run(capsys, "rules", "--json")
    data = json.loads(out)
    assert data["profile"] == "default"
    assert {r["rule"] for r in data["rules"]} >= {"SENS-3", "REPLY-1", "REPLY-5"}


@freeze_time("2026-11-23 02:00:00")
def test_calendar_check_warns_about_next_year(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "calendar", "check")
    assert code == 1
    assert "2004–2026" in out
    assert "缺少 2027 年" in err and "2027.toml" in err
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.toml").write_text(
        'notice = "国办发明电〔2026〕测试号"\n[holidays]\n"元旦" = ["2027-01-01"]\n', encoding="utf-8")
    code, out, err = run(capsys, "calendar", "check")
    assert code == 0, err
    assert "2027 年：本地补充文件" in out and "正常" in out


def test_init_then_db_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert (tmp_path / "dutybot.toml").exists() and (tmp_path / "dutybot.db").exists()
    assert (tmp_path / "holidays").is_dir()
    code, out, _ = run(capsys, "db", "status")
    assert code == 0 and "未初始化" not in out
    code, out, _ = run(capsys, "init")
    assert "已存在，未改动" in out


def test_db_status_on_empty_database_says_what_to_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "db", "status")
    assert code == 1 and "dutybot db upgrade" in err


def test_bad_config_exits_2_naming_each_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "dutybot.toml").write_text('[calendar]\ncutoff = "9am"\n[bot]\nadapter = "qq"\n',
                                           encoding="utf-8")
    code, _, err = run(capsys, "rules")
    assert code == 2
    assert "calendar.cutoff" in err and "bot.adapter" in err and "Traceback" not in err


def test_people_list_shows_each_persons_chat_accounts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime

    from sqlmodel import Session, select

    from bot.app import open_database
    from bot.config import load_settings
    from core.clock import SHANGHAI
    from people.models import ChatIdentity, Person

    assert main(["people", "add", "张伟", "--roles", "管理员"]) == 0
    assert main(["people", "add", "王芳"]) == 0
    engine = open_database(load_settings(None, env={}))
    now = datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
    with Session(engine) as session:
        zhang = session.exec(select(Person).where(Person.name == "张伟")).one()
        for platform, ext in (("telegram", "1001"), ("wecom", "zhangwei"), ("dingtalk", "staff001")):
            session.add(ChatIdentity(person_id=zhang.id, platform=platform, external_id=ext,
                                     chat_id=ext, bound_at=now))
        session.commit()
    engine.dispose()
    capsys.readouterr()
    assert main(["people", "list"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("张伟"))
    assert "Telegram:1001、企业微信:zhangwei、钉钉:staff001" in line
    assert next(x for x in out.splitlines() if x.startswith("王芳")).endswith("未绑定")


@pytest.mark.parametrize(("adapter", "variable"), [("telegram", "DUTYBOT_TELEGRAM_TOKEN"),
                                                   ("wecom", "DUTYBOT_WECOM_AES_KEY"),
                                                   ("dingtalk", "DUTYBOT_DINGTALK_CLIENT_SECRET")])
def test_run_without_credentials_names_the_variables(adapter: str, variable: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--adapter", adapter]) == 2
    err = capsys.readouterr().err
    assert "配置有误" in err and variable in err
    assert not (Path.cwd() / "dutybot.db").exists()  # nothing created for a run that cannot start
