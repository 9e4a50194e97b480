"""``dutybot checks …``: a round planned and recorded from the command line, its 通报 as
xlsx and docx, the refusal where the profile states no check interval, the training and
annual-report commands; and the score sheet's validation in Chinese."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from docx import Document
from freezegun import freeze_time
from openpyxl import load_workbook
from sqlmodel import Session, select

from bot.cli.main import main
from checks.annual import ensure_reports
from checks.indicators import SheetError, load_sheet, parse_sheet
from checks.models import AnnualReport
from checks.service import CheckPolicy
from core.clock import parse_local
from core.db import make_engine, upgrade
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.models import Site
from tests.factories import make_person

PRACTICE = "整改期限10个工作日为工作要求，非条款规定"


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated database with 张伟 (admin), 李强 (leader of 区教育局), 陈晨 (leader of 区卫健委),
    王芳 (untrained officer of 区教育局) and a site of 区教育局, used through the environment."""
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    now = parse_local("2026-09-01T10:00")
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin,), now=now)
        make_person(session, "李强", roles=(Role.leader,), unit="区教育局", now=now)
        make_person(session, "陈晨", roles=(Role.leader,), unit="区卫健委", now=now)
        make_person(session, "王芳", roles=(Role.officer,), unit="区教育局", now=now, trained_on=None)
        session.add(Site(name="区教育局门户网站", kind="website", unit="区教育局", created_at=now))
        session.commit()
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    return db


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    assert main(list(argv)) == code
    out, err = capsys.readouterr()
    return out if code == 0 else err


@freeze_time("2026-09-29 02:00:00")     # 10:00 Beijing time, the Tuesday before 国庆
def test_a_round_from_the_command_line_and_its_bulletin(cli_db: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "liangping")
    out = run(capsys, "checks", "plan")
    assert out.startswith("已建立：编号 1｜2026年第三季度检查（2026-07-01 至 2026-09-30），检查单位 3 个：区卫健委、区政府办、区教育局\n"
                          "检查依据：梁平办法第二十九条\n")
    assert run(capsys, "checks", "plan").startswith("已有：编号 1｜2026年第三季度检查")

    out = run(capsys, "checks", "record", "区教育局", "--items", "V2, D01x2", "--note", "首页打不开")
    assert "得分：96（满分100，合格线60）；结果：不合格（单项否决：站点无法访问）" in out
    assert f"请于 2026年10月19日（星期一）24:00 前完成整改（{PRACTICE}）：" in out and out.endswith("已通知：李强\n")
    assert "已通知：陈晨" in run(capsys, "checks", "record", "区卫健委", "--items", "D04*2,D12", "--due", "2026-10-09")
    assert "评分表中没有条目“D99”" in run(capsys, "checks", "record", "区政府办", "--items", "D99", code=2)

    out = run(capsys, "checks", "items", "--open")
    assert out.splitlines()[0] == "编号 3｜区卫健委｜D04 错别字（2处）｜截止 2026年10月9日（星期五）24:00｜待整改"
    assert "编号 1｜区教育局｜V2 站点无法访问｜截止 2026年10月19日（星期一）24:00｜待整改" in out
    out = run(capsys, "checks", "done", "1", "--note", "已恢复访问")
    assert out == ("已登记整改完成：编号 1｜区教育局｜V2 站点无法访问｜截止 2026年10月19日（星期一）24:00｜已整改（09-29 10:00 管理员（命令行））\n"
                   "区教育局尚有 1 项待整改。\n")
    assert "找不到整改事项 9" in run(capsys, "checks", "done", "9", code=1)

    xlsx, docx = tmp_path / "通报.xlsx", tmp_path / "通报.docx"
    out = run(capsys, "checks", "report", "--xlsx", str(xlsx), "--docx", str(docx))
    assert out == f"已写入通报（Excel）：{xlsx}\n已写入通报（Word）：{docx}\n"
    book = load_workbook(xlsx)
    results = [tuple(r[:8]) for r in book["检查结果"].iter_rows(values_only=True)]
    assert results[1:] == [
        ("区卫健委", 95, "合格", "—", "D04 错别字×2（-2）、D12 个人信息保护不到位（-3）", 5, 2, None),
        ("区教育局", 96, "不合格", "V2 站点无法访问", "D01 首页栏目更新不及时×2（-4）", 4, 2, "首页打不开"),
        ("区政府办", None, "未登记", "—", "—", None, 0, None)]
    fixes = [tuple(r[:7]) for r in book["整改事项"].iter_rows(values_only=True)]
    assert fixes[1] == (1, "区教育局", "V2", "站点无法访问", "2026年10月19日（星期一）24:00", PRACTICE, "已整改")
    assert fixes[3] == (3, "区卫健委", "D04", "错别字（2处）", "2026年10月9日（星期五）24:00",
                        "整改期限由检查组指定，为工作要求，非条款规定", "待整改")
    about = {r[0]: r[1] for r in book["说明"].iter_rows(values_only=True)}
    assert about["检查依据"] == "梁平办法第二十九条" and about["通报"] == "2026年第三季度政府网站与政务新媒体检查情况通报"
    doc = Document(str(docx))
    texts = [p.text for p in doc.paragraphs]
    assert texts[0] == "2026年第三季度政府网站与政务新媒体检查情况通报" and "检查依据：梁平办法第二十九条" in texts
    assert "检查单位 3 个：合格 1 个，不合格 1 个，未登记 1 个；整改事项 4 项，已整改 1 项" in texts
    assert [c.text for c in doc.tables[0].rows[2].cells] == ["区教育局", "96", "不合格", "V2 站点无法访问",
                                                             "D01 首页栏目更新不及时×2（-4）"]
    assert any(t.startswith("编号 2｜区教育局｜D01 首页栏目更新不及时（2处）｜截止 2026年10月19日") for t in texts)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []      # no temp file left

    out = run(capsys, "checks", "report")
    assert out.startswith("【2026年第三季度政府网站与政务新媒体检查情况通报】\n")
    assert "· 区教育局｜96 分｜不合格｜单项否决：V2 站点无法访问｜扣分：D01 首页栏目更新不及时×2（-4）｜首页打不开" in out
    assert "D06 账号未备案（每处扣5分，最多扣10分）｜政务新媒体｜" in run(capsys, "checks", "sheet")


@freeze_time("2026-11-23 02:00:00")
@pytest.mark.parametrize("profile", ["yunnan", "baoji"])
def test_plan_says_the_local_rules_set_no_interval(cli_db: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], profile: str) -> None:
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", profile)
    err = run(capsys, "checks", "plan", code=1)
    assert err == (f"dutybot: 本地规定未作要求：规则配置档 {profile} 未规定定期检查周期（CHECK-1.check_interval），不建立定期检查。"
                   "如需开展专项检查（本单位安排，非条款规定）：dutybot checks plan --adhoc\n")
    assert "还没有检查轮次" in run(capsys, "checks", "report", code=1)
    out = run(capsys, "checks", "plan", "--adhoc")
    assert out.startswith("已建立：编号 1｜专项检查（2026年11月23日）") and "专项检查（本单位安排，非条款规定的定期检查）" in out


@freeze_time("2026-11-23 02:00:00")
def test_training_from_the_command_line(cli_db: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "baoji")
    assert "2026年业务培训：尚未登记（依据：宝鸡办法第二十六条（每年至少一次业务培训））" in run(capsys, "checks", "training", "list")
    out = run(capsys, "checks", "training", "add", "2026-11-20", "值班读网岗前培训", "--people", "王芳,李强", "--pre-duty")
    assert out == ("已登记：2026-11-20｜岗前培训｜值班读网岗前培训｜—｜2 人：王芳、李强\n"
                   "已记录培训日期 2026-11-20（先培训后上岗）：王芳\n")
    assert "尚未到来" in run(capsys, "checks", "training", "add", "2026-11-24", "业务培训", code=2)
    assert "找不到人员“赵六”" in run(capsys, "checks", "training", "add", "2026-11-20", "业务培训", "--people", "赵六",
                                 code=1)
    run(capsys, "checks", "training", "add", "2026-11-21", "政务新媒体业务培训", "--organiser", "区政府办")
    out = run(capsys, "checks", "training", "list")
    assert out.splitlines()[0] == "2026-11-21｜业务培训｜政务新媒体业务培训｜区政府办｜未登记参训人员"
    assert "2026年业务培训：已登记" in out
    engine = make_engine(f"sqlite:///{cli_db}")
    with Session(engine) as session:
        assert session.exec(select(Person).where(Person.name == "王芳")).one().trained_on == date(2026, 11, 20)
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "liangping")
    assert "年度业务培训：本地规定未作要求：规则配置档 liangping 未规定每年组织业务培训（STAFF-3）" in run(
        capsys, "checks", "training", "list")


@freeze_time("2027-01-05 02:00:00")
def test_annual_report_status_and_done_from_the_command_line(cli_db: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "liangping")
    assert run(capsys, "checks", "annual") == (
        "本地规定未作要求：规则配置档 liangping 未规定年度工作报表的公开期限（CHECK-1.annual_report_by），不设年度报表事项。\n")
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "guzhang")
    engine = make_engine(f"sqlite:///{cli_db}")
    with Session(engine) as session:
        ensure_reports(session=session, profile=load_profile("guzhang"), policy=CheckPolicy(WorkdayCalendar()),
                       now=parse_local("2027-01-05T10:00"))
        session.commit()
    out = run(capsys, "checks", "annual")
    assert out.startswith("年度工作报表：每年1月31日前向社会公开上一年度政府网站年度工作报表（依据：古丈办法第十五条）\n")
    assert "2026年度｜区教育局｜截止 2027年1月31日（星期日）24:00｜待公开" in out
    assert "以 http:// 或 https:// 开头" in run(capsys, "checks", "annual", "done", "区教育局", "jyj", code=2)
    assert run(capsys, "checks", "annual", "done", "区教育局", "https://jyj.example.gov.cn/nb") == (
        "已登记公开：2026年度｜区教育局｜截止 2027年1月31日（星期日）24:00｜已公开 https://jyj.example.gov.cn/nb\n")
    with Session(engine) as session:
        assert session.exec(select(AnnualReport).where(AnnualReport.unit == "区教育局")).one().url == (
            "https://jyj.example.gov.cn/nb")
    engine.dispose()


def test_a_malformed_score_sheet_is_refused_in_chinese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "sheet.toml"
    bad.write_text('name = "本区评分表"\npass_score = 120\n\n[[items]]\ncode = "V1"\ntitle = "站点无法访问"\n'
                   'veto = true\npoints = 5\n\n[[items]]\ncode = "D01"\ntitle = "错别字"\nweight = 1\n\n'
                   '[[items]]\ncode = "d2"\n', encoding="utf-8")
    (tmp_path / "dutybot.toml").write_text(f'[checks]\nindicators = "{bad.name}"\n', encoding="utf-8")
    err = run(capsys, "--config", str(tmp_path / "dutybot.toml"), "checks", "sheet", code=2)
    assert err.startswith(f"dutybot: 配置有误（{bad}）：\n")
    assert "  - 检查评分表有误：第1项（V1）：V1 是单项否决项，不能再写 points 或 max\n" in err
    assert "  - 检查评分表有误：第2项（D01）.weight：不是可识别的项（请检查拼写）\n" in err
    assert "  - 检查评分表有误：第3项（d2）.code：条目编号应为一个大写字母加1–3位数字（如 V1、D03），收到 'd2'\n" in err
    assert "  - 检查评分表有误：第3项（d2）.title：缺少必填项\n" in err
    assert "Field required" not in err and "Value error" not in err
    with pytest.raises(SheetError, match="合格分 pass_score（120）高于满分 full_score（100）"):
        parse_sheet('name = "x"\npass_score = 120\n[[items]]\ncode = "V1"\ntitle = "t"\nveto = true\n', source="x")
    with pytest.raises(SheetError, match="条目编号 V1 重复"):
        parse_sheet('name = "x"\n[[items]]\ncode = "V1"\ntitle = "t"\nveto = true\n'
                    '[[items]]\ncode = "V1"\ntitle = "u"\nveto = true\n', source="x")
    with pytest.raises(SheetError, match="找不到检查评分表"):
        load_sheet(tmp_path / "missing.toml")


def test_the_shipped_sheet_scores_like_the_national_indicators() -> None:
    sheet = load_sheet()
    assert [i.code for i in sheet.items if i.veto] == ["V1", "V2", "V3", "V4", "V5", "V6"]
    assert [i.title for i in sheet.items if i.veto] == ["安全、泄密事故等严重问题", "站点无法访问", "不更新", "栏目不可用",
                                                         "严重表述错误", "互动回应差"]
    hits = sheet.parse_hits("D03×9、D05")
    assert [(h.indicator.code, h.count, h.deduction) for h in hits] == [("D03", 9, 5), ("D05", 1, 2)]
    assert sheet.score(hits) == (93, False, True)
    assert sheet.score(sheet.parse_hits("D01*5,D02*5,D05*5,D06*2,D08*5")) == (50, False, False)   # under 60
    assert sheet.parse_hits("无") == []
