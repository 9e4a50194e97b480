"""Where each account stands (状态、备案、最近发布、待办) and ``dutybot accounts …``."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session

from accounts.fields import parse_fields
from accounts.models import AccountDuty, AccountPost, DutyStatus
from accounts.register import add_account
from accounts.status import status_dicts, status_text
from bot.cli import main
from core.clock import SHANGHAI, parse_local
from core.db import make_engine, upgrade
from tests.cli.test_docs_commands import check, code_blocks, dutybot_commands

NOW = parse_local("2026-11-23T09:00")
ROOT = Path(__file__).resolve().parents[2]


def seed(session: Session) -> None:
    """Two accounts: one with posts and open duties, one with nothing."""
    account, _ = add_account(session=session, new=parse_fields(
        {"账号名称": "区政府发布", "平台": "微信公众号", "主办单位": "区政府办", "开通日期": "2024-03-01"},
        today=NOW.date()), now=NOW, actor="test")
    add_account(session=session, new=parse_fields({"账号名称": "教育发布", "平台": "抖音", "主办单位": "区教育局"},
                                                  today=NOW.date()), now=NOW, actor="test")
    assert account.id is not None
    for key, posted, original in (("a", "2026-11-18T10:00", True), ("b", "2026-11-21T00:30", False),
                                  ("c", "2026-11-10T09:00", True)):
        session.add(AccountPost(account_id=account.id, posted_at=parse_local(posted), title=key,
                                original=original, source="import", key=key, created_at=NOW))
    session.add(AccountDuty(account_id=account.id, kind="filing", rule_id="LIFE-1", citation="云南办法第十七条",
                            title="报网信部门备案", due_at=datetime(2026, 11, 27, tzinfo=SHANGHAI),
                            due_last_day=date(2026, 11, 26), opened_at=NOW))
    session.add(AccountDuty(account_id=account.id, kind="explain", rule_id="FRESH-4", citation="",
                            title="说明长期未更新的原因", opened_at=NOW))
    session.add(AccountDuty(account_id=account.id, kind="notice", rule_id="LIFE-2", title="已办完的公告",
                            status=DutyStatus.done, opened_at=NOW))
    session.add(AccountDuty(account_id=account.id, kind="backfill", rule_id="LIFE-1", title="补办备案",
                            due_at=datetime(2027, 1, 8, tzinfo=SHANGHAI), provisional=True, opened_at=NOW))
    session.commit()


def test_status_gives_last_posts_in_beijing_time_and_the_open_duties(engine: Engine) -> None:
    with Session(engine) as session:
        seed(session)
        [ours, edu] = status_dicts(session=session, now=parse_local("2026-11-28T09:00"))
        text = status_text(session=session, now=NOW)
    assert (edu["name"], edu["last_post"], edu["last_original_post"], edu["duties"]) == ("教育发布", None, None, [])
    # 00:30 on the 21st in Beijing is still the 20th in UTC: the day shown is Beijing's.
    assert (ours["last_post"], ours["last_original_post"]) == ("2026-11-21", "2026-11-18")
    assert [d["title"] for d in ours["duties"]] == ["报网信部门备案", "补办备案", "说明长期未更新的原因"]
    assert ours["duties"][0]["overdue"] is True and ours["duties"][1]["overdue"] is False
    blocks = text.split("\n\n")
    assert blocks[0] == "政务新媒体账号 2 个，待办 3 项"
    assert blocks[1] == "区政府发布（微信公众号）｜区政府办\n" \
        "状态：在用，自2024年3月1日起；未备案\n" \
        "最近发布：11月21日；最近原创：11月18日\n" \
        "待办：报网信部门备案（LIFE-1，云南办法第十七条）：11月26日 24:00 前（还剩3天15小时）\n" \
        "待办：补办备案（LIFE-1）：1月7日 24:00 前（还剩45天15小时）（暂定：当年节假日安排未发布）\n" \
        "待办：说明长期未更新的原因（FRESH-4）：规定未设期限"
    assert blocks[2] == "教育发布（抖音）｜区教育局\n状态：在用，自2026年11月23日起；未备案\n最近发布：无记录"
    assert all(len(line) <= 80 for line in text.splitlines())


@pytest.fixture
def cli_db(tmp_path: Path) -> Path:
    """A database the command line reads (./dutybot.toml in the test's working folder)."""
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as session:
        seed(session)
    engine.dispose()
    (tmp_path / "dutybot.toml").write_text(f'[database]\nurl = "sqlite:///{db.name}"\n', encoding="utf-8")
    return db


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@freeze_time("2026-11-23 01:00:00")
def test_status_json_shape(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "accounts", "status", "--json")
    assert code == 0
    data = json.loads(out)
    ours = next(a for a in data["accounts"] if a["name"] == "区政府发布")
    assert set(ours) == {"id", "name", "platform", "platform_zh", "platform_id", "unit", "government", "state",
                         "state_zh", "state_since", "filing", "filing_zh", "filing_number", "filed_on",
                         "last_post", "last_original_post", "duties"}
    assert (ours["platform"], ours["platform_zh"], ours["state"], ours["state_zh"], ours["state_since"]) == (
        "wechat", "微信公众号", "active", "在用", "2024-03-01")
    assert (ours["filing"], ours["filing_zh"], ours["filed_on"]) == ("unfiled", "未备案", None)
    assert (ours["last_post"], ours["last_original_post"]) == ("2026-11-21", "2026-11-18")
    assert ours["duties"][0] == {"id": 1, "kind": "filing", "rule_id": "LIFE-1", "citation": "云南办法第十七条",
                                 "title": "报网信部门备案", "due": "2026-11-27T00:00:00+08:00",
                                 "provisional": False, "overdue": False}
    assert ours["duties"][-1]["due"] is None and ours["duties"][1]["provisional"] is True
    code, out, _ = run(capsys, "accounts", "status", "--unit", "区教育局")
    assert code == 0 and "教育发布（抖音）" in out and "区政府发布" not in out and "无待办" in out


@freeze_time("2026-11-23 01:00:00")
def test_the_register_from_the_command_line(cli_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "accounts", "add", "区政府微博", "--platform", "微博", "--unit", "区政府办",
                       "--id", "qzfb", "--operator", "张三", "--government", "--opened", "2024-03-05")
    assert (code, out) == (0, "已登记：区政府微博（微博） qzfb｜区政府办｜在用｜未备案｜政府账号｜运维：张三\n")
    code, out, _ = run(capsys, "accounts", "add", "区政府微博", "--platform", "微博", "--unit", "区政府办",
                       "--operator", "赵六")
    assert code == 0 and out.startswith("已更新：") and "qzfb" in out and "运维：赵六" in out
    code, _, err = run(capsys, "accounts", "add", "门户网站", "--platform", "网站", "--unit", "区政府办")
    assert code == 2 and "网站不是政务新媒体账号" in err
    code, out, _ = run(capsys, "accounts", "filed", "区政府微博", "--number", "滇网备002", "--date", "2026-11-20")
    assert code == 0 and out == ("已登记备案（2026-11-20）：区政府微博（微博） qzfb｜区政府办｜在用｜"
                                 "已备案（滇网备002）｜政府账号｜运维：赵六\n")
    code, out, _ = run(capsys, "accounts", "filed", "教育发布", "--number", "X")   # default: today
    assert code == 0 and "已登记备案（2026-11-23）" in out
    code, _, err = run(capsys, "accounts", "filed", "不存在", "--number", "1")
    assert code == 1 and "没有找到政务新媒体账号“不存在”" in err
    code, out, _ = run(capsys, "accounts", "list", "--unit", "区政府办")
    assert code == 0 and out.splitlines() == ["区政府发布（微信公众号）｜区政府办｜在用｜未备案",
                                              "区政府微博（微博） qzfb｜区政府办｜在用｜已备案（滇网备002）｜政府账号｜运维：赵六",
                                              "共 2 个"]
    exported = tmp_path / "账号.xlsx"
    code, out, _ = run(capsys, "accounts", "export", str(exported))
    assert code == 0 and out == f"已导出 3 个账号到 {exported}\n"
    code, out, _ = run(capsys, "accounts", "import", str(exported))
    assert code == 0 and "已导入 3 个账号（新增 0 个，更新 0 个，未变 3 个）" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("账号名称,平台,主办单位\n新号,微博,区政府办\n坏号,快手,区政府办\n", encoding="utf-8")
    code, _, err = run(capsys, "accounts", "import", str(bad))
    assert code == 2 and "未导入任何账号" in err and "第3行：无法识别的平台“快手”" in err
    code, out, _ = run(capsys, "accounts", "list")
    assert "新号" not in out and "共 3 个" in out


def test_the_help_is_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["accounts", "-h"])
    out = capsys.readouterr().out
    assert out.startswith("用法：dutybot accounts") and "政务新媒体账号登记" in out
    assert all(word in out for word in ("import", "export", "list", "add", "filed", "status"))
    with pytest.raises(SystemExit):
        main(["accounts", "add", "-h"])
    out = capsys.readouterr().out
    assert "--platform 平台" in out and "平台：微信公众号、微博、抖音、头条号、客户端、其他" in out
    assert "网站" not in out.split("平台：")[1].split("\n")[0]
    with pytest.raises(SystemExit) as exc:
        main(["accounts", "add", "区政府发布"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--platform" in err and "required" not in err


def test_the_manual_shows_real_commands() -> None:
    text = (ROOT / "docs/accounts.md").read_text(encoding="utf-8")
    mine = "\n".join(re.findall(r"^## (?:账号登记与导入导出|账号状态)\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL))
    commands = [c for block in code_blocks(mine) for c in dutybot_commands(f"```\n{block}```\n")]
    assert {" ".join(c[:2]) for c in commands} >= {"accounts import", "accounts export", "accounts list",
                                                    "accounts add", "accounts filed", "accounts status"}
    assert [p for c in commands for p in check(c)] == []
