"""The situation report: sections, timeline order, step citations and external reports,
MTTA/MTTR, evidence integrity (a tampered file), Markdown, Word, the chat text, the CLI."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from docx import Document
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.cli import main
from core.audit import record
from core.clock import SHANGHAI
from core.db import make_engine, upgrade
from incidents.evidence import PROBLEM_CHANGED, PROBLEM_MISSING
from incidents.models import Evidence, Incident, IncidentStatus, IncidentStep, StepStatus
from incidents.report import (
    EVIDENCE,
    OUTCOME,
    OVERVIEW,
    STEPS,
    TIMELINE,
    Report,
    build_report,
    duration_zh,
    render_chat,
    render_markdown,
    step_deadline_zh,
    write_docx,
)
from people.models import Role
from tests.factories import make_person

NUMBER = "INC-20261123-001"
OPEN_NUMBER = "INC-20261123-002"
NOW = datetime(2026, 11, 25, 14, 0, tzinfo=SHANGHAI)


def sh(day: int, hh: int, mm: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=SHANGHAI)


# (at, actor, action, zh) in the order they happened
TIMELINE_EVENTS = [
    (sh(23, 9, 0), "王芳", "reported", "登记事件：敏感信息 区政府门户网站"),
    (sh(23, 9, 12), "王芳", "acknowledged", "确认收到"),
    (sh(23, 9, 20), "王芳", "step_done", "完成步骤1：保存证据"),
    (sh(23, 9, 40), "system", "escalated", "升级提醒：带班领导 李强"),
    (sh(23, 9, 45), "李强", "step_done", "向网信报告：联系人 区网信办张科长，方式 电话，编号 123"),
    (sh(23, 10, 0), "李强", "step_done", "完成步骤2：删除敏感信息"),
    (sh(23, 12, 5), "system", "resolved", "必做步骤已全部完成，待结案"),
    (sh(25, 13, 0), "李强", "closed", "结案：已删除并重新审核发布"),
]
EXPECTED_TIMELINE = [
    "11月23日 09:00 王芳 登记事件：敏感信息 区政府门户网站",
    "11月23日 09:12 王芳 确认收到",
    "11月23日 09:20 王芳 完成步骤1：保存证据",
    "11月23日 09:40 系统 升级提醒：带班领导 李强",
    "11月23日 09:45 李强 向网信报告：联系人 区网信办张科长，方式 电话，编号 123",
    "11月23日 10:00 李强 完成步骤2：删除敏感信息",
    "11月23日 12:05 系统 必做步骤已全部完成，待结案",
    "11月25日 13:00 李强 结案：已删除并重新审核发布",
]
PAGE_BYTES = "<html><body>身份证号 5101…</body></html>".encode()


def _step(incident: Incident, seq: int, key: str, title: str, rule_id: str, citation: str,
          period_zh: str, due_at: datetime | None, **kw: object) -> IncidentStep:
    assert incident.id is not None
    return IncidentStep(incident_id=incident.id, seq=seq, key=key, title=title, rule_id=rule_id,
                        citation=citation, period_zh=period_zh, owner_role="officer",
                        due_at=due_at, **kw)


def seed(session: Session, evidence_dir: Path) -> None:
    t0 = sh(23, 9, 0)
    wang = make_person(session, "王芳", now=t0, unit="甲局")
    li = make_person(session, "李强", roles=(Role.leader,), now=t0, unit="甲局")
    incident = Incident(
        number=NUMBER, type="sensitive", grade="general", source="district",
        site="区政府门户网站", url="https://www.example.gov.cn/tzgg/1.html",
        description="通知公告栏目出现未脱敏的身份证号码", unit="甲局", reporter_id=wang.id,
        owner_id=li.id, status=IncidentStatus.closed, playbook="sensitive@1", reported_at=t0,
        acknowledged_at=sh(23, 9, 12), acknowledged_by_id=wang.id, resolved_at=sh(23, 12, 5),
        closed_at=sh(25, 13, 0), closed_by_id=li.id, conclusion="已删除并重新审核发布")
    session.add(incident)
    session.flush()
    session.add_all([
        _step(incident, 1, "keep", "保存证据", "SEC-2", "宝鸡办法第二十一条", "立即（30分钟内）",
              sh(23, 9, 30), status=StepStatus.done, done_at=sh(23, 9, 20), done_by_id=wang.id),
        _step(incident, 2, "delete", "删除敏感信息", "SENS-3", "梁平办法第二十四条", "1个工作日",
              sh(25, 0, 0), due_last_day=sh(24, 0, 0).date(), status=StepStatus.done,
              done_at=sh(23, 10, 0), done_by_id=li.id),
        _step(incident, 3, "report_cac", "向网信报告", "OP-1", "梁平办法第二十六条",
              "立即（30分钟内）", sh(23, 9, 30), status=StepStatus.done, done_at=sh(23, 9, 45),
              done_by_id=li.id, external="网信", contact="区网信办张科长", method="电话",
              contact_ref="123"),
        _step(incident, 4, "republish", "复审后重新发布", "SENS-2", "梁平办法第二十三条",
              "1个工作日", sh(26, 0, 0), due_last_day=sh(25, 0, 0).date(), provisional=True,
              status=StepStatus.skipped, note="该信息不再发布", optional=True),
    ])
    for at, actor, action, zh in TIMELINE_EVENTS:
        record(session=session, at=at, entity_type="incident", entity_id=NUMBER, action=action,
               actor=actor, zh=zh)
    folder = evidence_dir / NUMBER
    folder.mkdir(parents=True)
    (folder / "001-page.html").write_bytes(PAGE_BYTES)
    text = "值班员王芳 09:03 在首页看到身份证号"
    assert incident.id is not None
    session.add_all([
        Evidence(incident_id=incident.id, kind="page", url=incident.url, path=f"{NUMBER}/001-page.html",
                 content_type="text/html", size=len(PAGE_BYTES), http_status=200,
                 sha256=hashlib.sha256(PAGE_BYTES).hexdigest(), captured_at=sh(23, 9, 18)),
        Evidence(incident_id=incident.id, kind="text", text=text, size=len(text.encode()),
                 sha256=hashlib.sha256(text.encode()).hexdigest(), captured_at=sh(23, 9, 19)),
    ])
    # An incident still being handled: one step overdue, one not yet due.
    other = Incident(number=OPEN_NUMBER, type="site_down", site="区政府门户网站",
                     description="首页无法打开", unit="乙局", reporter_id=wang.id,
                     status=IncidentStatus.reported, playbook="site_down@1", reported_at=sh(25, 9, 0))
    session.add(other)
    session.flush()
    session.add_all([
        _step(other, 1, "notify", "立即通知技术人员", "DUTY-2", "梁平办法第二十条", "立即（30分钟内）",
              sh(25, 9, 30)),
        _step(other, 2, "restore", "恢复访问", "DUTY-2", "梁平办法第二十条", "4小时（工作要求）",
              sh(25, 15, 0)),
        _step(other, 3, "review", "复盘", "CHECK-2", "梁平办法第二十条", "", None,
              anchor="step:restore"),
    ])
    session.commit()


def report_for(engine: Engine, evidence_dir: Path, number: str = NUMBER) -> Report:
    with Session(engine) as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        return build_report(session=session, incident=incident, evidence_dir=evidence_dir, now=NOW)


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> Path:
    evidence_dir = tmp_path / "evidence"
    with Session(engine) as session:
        seed(session, evidence_dir)
    return evidence_dir


def test_sections_in_order_with_overview(engine: Engine, seeded: Path) -> None:
    report = report_for(engine, seeded)
    assert [h for h, _ in report.sections] == [OVERVIEW, TIMELINE, STEPS, EVIDENCE, OUTCOME]
    assert report.title == f"{NUMBER} 敏感信息事件情况报告"
    overview = report.section(OVERVIEW)
    for line in ("编号：INC-20261123-001", "类型：敏感信息", "等级：一般", "来源：区政府办公室通报",
                 "网站/账号：区政府门户网站", "URL：https://www.example.gov.cn/tzgg/1.html",
                 "报告时间：2026年11月23日（星期一）09:00", "报告人：王芳", "责任单位：甲局",
                 "负责人：李强", "当前状态：已结案", "事件描述：通知公告栏目出现未脱敏的身份证号码"):
        assert line in overview


def test_markdown_timeline_steps_and_outcome(engine: Engine, seeded: Path) -> None:
    report = report_for(engine, seeded)
    assert report.integrity_ok and report.integrity_problems == []
    md = render_markdown(report)
    assert md.startswith(f"# {NUMBER} 敏感信息事件情况报告\n")
    positions = [md.index(f"- {line}\n") for line in EXPECTED_TIMELINE]
    assert positions == sorted(positions)
    assert md.index("## 二、处置经过") < positions[0] < md.index("## 三、处置步骤与依据")
    steps = report.section(STEPS)
    assert steps[0] == ("1. 保存证据——依据：宝鸡办法第二十一条（SEC-2）；时限：立即（30分钟内）；"
                        "截止：11月23日 09:30；完成：11月23日 09:20 王芳")
    # a deadline at local midnight is the previous day's 24:00
    assert steps[1].startswith("2. 删除敏感信息——依据：梁平办法第二十四条（SENS-3）；时限：1个工作日；"
                               "截止：11月24日 24:00；完成：11月23日 10:00 李强")
    assert steps[2] == ("3. 向网信报告——依据：梁平办法第二十六条（OP-1）；时限：立即（30分钟内）；"
                        "截止：11月23日 09:30；完成：11月23日 09:45 李强（超期完成）；"
                        "对外报告（网信）：联系人 区网信办张科长，方式 电话，编号 123")
    assert steps[3] == ("4. 复审后重新发布（可选）——依据：梁平办法第二十三条（SENS-2）；时限：1个工作日；"
                        "截止：11月25日 24:00（暂定）；不适用（该信息不再发布）")
    for line in steps:
        assert f"- {line}\n" in md
    outcome = report.section(OUTCOME)
    assert "确认用时：12分钟" in outcome
    assert "处置用时：3小时5分钟" in outcome
    assert "处置结论：已删除并重新审核发布" in outcome
    assert "结案时间：2026年11月25日（星期三）13:00（李强）" in outcome
    assert "超期步骤：1 个（步骤3）" in outcome
    assert "确认用时：12分钟" in md and "处置用时：3小时5分钟" in md
    assert "生成时间：2026年11月25日（星期三）14:00" in md and "警告" not in md


def test_open_incident_pending_and_overdue_steps(engine: Engine, seeded: Path) -> None:
    report = report_for(engine, seeded, OPEN_NUMBER)
    steps = report.section(STEPS)
    assert steps[0].endswith("截止：11月25日 09:30；未完成，已超期")
    assert steps[1].endswith("截止：11月25日 15:00；未完成")
    assert steps[2].endswith("截止：前一步完成后起算；未完成")
    assert report.section(TIMELINE) == ["无"] and report.section(EVIDENCE) == ["无"]
    outcome = report.section(OUTCOME)
    assert "确认用时：尚未确认" in outcome
    assert "处置用时：尚未处置完成（已历时 5小时）" in outcome
    assert "负责人：未指定" in report.section(OVERVIEW)


def test_evidence_checked_and_tampering_reported(engine: Engine, seeded: Path) -> None:
    report = report_for(engine, seeded)
    evidence = report.section(EVIDENCE)
    assert len(evidence) == 2
    assert evidence[0].startswith("1. 网页 https://www.example.gov.cn/tzgg/1.html（HTTP 200")
    assert all(line.endswith("（校验：完整）") for line in evidence)
    assert evidence[1].startswith("2. 文字记录：值班员王芳 09:03 在首页看到身份证号")

    (seeded / NUMBER / "001-page.html").write_bytes(PAGE_BYTES + b"<script>x</script>")
    report = report_for(engine, seeded)
    assert report.integrity_ok is False
    evidence = report.section(EVIDENCE)
    assert evidence[0] == "警告：1 份证据完整性校验未通过，内容可能已被改动或丢失，请核查。"
    assert evidence[1].endswith(f"（校验：未通过，{PROBLEM_CHANGED}）")
    assert evidence[2].endswith("（校验：完整）")
    assert len(report.integrity_problems) == 1 and PROBLEM_CHANGED in report.integrity_problems[0]
    assert "警告：证据完整性校验未通过" in render_markdown(report)
    chat = render_chat(report)
    assert "证据完整性校验未通过" in chat and f"：{PROBLEM_CHANGED}\n共 2 份，完整 1 份" in chat

    (seeded / NUMBER / "001-page.html").unlink()
    report = report_for(engine, seeded)
    assert not report.integrity_ok and report.section(EVIDENCE)[1].endswith(f"{PROBLEM_MISSING}）")


def test_docx_has_headings_timeline_and_footer(engine: Engine, seeded: Path, tmp_path: Path) -> None:
    report = report_for(engine, seeded)
    path = tmp_path / "out" / "report.docx"
    path.parent.mkdir()
    write_docx(report, path)
    doc = Document(str(path))
    paragraphs = [(p.style.name if p.style else "", p.text) for p in doc.paragraphs]
    assert paragraphs[0] == ("Title", report.title)
    headings = [text for style, text in paragraphs if style == "Heading 1"]
    assert headings == [OVERVIEW, TIMELINE, STEPS, EVIDENCE, OUTCOME]
    texts = [text for _, text in paragraphs]
    start = texts.index(TIMELINE)
    assert texts[start + 1:start + 1 + len(EXPECTED_TIMELINE)] == EXPECTED_TIMELINE
    assert "确认用时：12分钟" in texts
    assert "生成时间：2026年11月25日（星期三）14:00" in doc.sections[0].footer.paragraphs[0].text
    assert [p.name for p in path.parent.iterdir()] == ["report.docx"]   # no temp file left


def test_chat_text_cuts_a_long_timeline(engine: Engine, seeded: Path) -> None:
    with Session(engine) as session:
        for n in range(60):
            record(session=session, at=sh(25, 9, 0) + timedelta(minutes=n), entity_type="incident",
                   entity_id=OPEN_NUMBER, action="pinged", zh=f"提醒第{n + 1}次")
        session.commit()
    report = report_for(engine, seeded, OPEN_NUMBER)
    text = render_chat(report, max_lines=40)
    lines = text.splitlines()
    assert len(lines) <= 40
    assert lines[0] == f"【{OPEN_NUMBER} 无法访问事件情况报告】"
    shown = [line for line in lines if "提醒第" in line]
    assert shown[0] == "11月25日 09:00 系统 提醒第1次"
    assert f"……还有 {60 - len(shown)} 条，完整报告：dutybot incident report {OPEN_NUMBER} --docx 文件" in lines
    assert lines[1:3] == ["【一、事件概况】", "无法访问｜一般｜本单位发现｜待确认"]
    assert "1. 立即通知技术人员（DUTY-2）— 未完成，已超期，截止 11月25日 09:30" in lines
    assert "3. 复盘（CHECK-2）— 未完成" in lines
    assert lines[-1] == "超期步骤：1 个（步骤1）"
    short = render_chat(report_for(engine, seeded), max_lines=40)
    assert "……还有" not in short and all(line in short for line in EXPECTED_TIMELINE)


def test_durations_and_deadlines() -> None:
    assert duration_zh(timedelta(minutes=12)) == "12分钟"
    assert duration_zh(timedelta(hours=3, minutes=5, seconds=59)) == "3小时5分钟"
    assert duration_zh(timedelta(hours=3)) == "3小时"
    assert duration_zh(timedelta(days=2, hours=4, minutes=30)) == "2天4小时"
    assert duration_zh(timedelta(days=1)) == "1天"
    assert duration_zh(timedelta(seconds=20)) == "不到1分钟"
    step = IncidentStep(incident_id=1, seq=1, key="k", title="t", rule_id="SENS-3", citation="c",
                        owner_role="officer", due_at=sh(1, 0, 0, month=1))
    assert step_deadline_zh(step) == "12月31日 24:00"           # across the year end
    step.provisional = True
    step.due_at = sh(24, 17, 30)
    assert step_deadline_zh(step) == "11月24日 17:30（暂定）"
    step.due_at, step.anchor, step.period_zh = None, "step:delete#1", "1个工作日"
    assert step_deadline_zh(step) == "前一步完成后起算"
    step.period_zh = "无时限"
    assert step_deadline_zh(step) == "无时限"


# ---------------------------------------------------------------- CLI

@pytest.fixture
def cli_db(tmp_path: Path) -> Path:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as session:
        seed(session, tmp_path / "ev")
    engine.dispose()
    (tmp_path / "dutybot.toml").write_text(
        f'[database]\nurl = "sqlite:///{db.name}"\n\n[incidents]\nevidence_dir = "ev"\n',
        encoding="utf-8")
    return tmp_path


@freeze_time("2026-11-25 06:00:00")
def test_cli_report_to_files(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docx, md = cli_db / "r.docx", cli_db / "r.md"
    assert main(["incident", "report", NUMBER.lower(), "--docx", str(docx), "--md", str(md)]) == 0
    out = capsys.readouterr()
    assert f"已写入 Word 报告：{docx}" in out.out and f"已写入 Markdown 报告：{md}" in out.out
    assert out.err == ""
    text = md.read_text(encoding="utf-8")
    assert all(f"- {line}\n" in text for line in EXPECTED_TIMELINE)
    assert "生成时间：2026年11月25日（星期三）14:00" in text
    assert TIMELINE in [p.text for p in Document(str(docx)).paragraphs]

    assert main(["incident", "report", NUMBER]) == 0               # no file: Markdown on stdout
    assert capsys.readouterr().out.startswith(f"# {NUMBER} 敏感信息事件情况报告")


@freeze_time("2026-11-25 06:00:00")
def test_cli_report_warns_on_tampered_evidence(cli_db: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (cli_db / "ev" / NUMBER / "001-page.html").write_bytes(b"changed")
    md = cli_db / "r.md"
    assert main(["incident", "report", NUMBER, "--md", str(md)]) == 1
    err = capsys.readouterr().err
    assert "证据完整性校验未通过" in err and PROBLEM_CHANGED in err
    assert PROBLEM_CHANGED in md.read_text(encoding="utf-8")     # written all the same


def test_cli_unknown_incident(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incident", "report", "INC-20990101-009"]) == 2
    err = capsys.readouterr().err
    assert "没有找到事件 INC-20990101-009" in err and "Traceback" not in err


def test_docx_survives_control_characters_stored_before_cleaning(engine: Engine, seeded: Path,
                                                                   tmp_path: Path) -> None:
    """A description stored by an older version with a NUL or a bidi override: Word refuses
    control characters, so the writer cleans every line (issue 16 item 7)."""
    import dataclasses
    report = report_for(engine, seeded)
    overview = report.sections[0]
    hostile = (overview[0], [*overview[1], "描述：首页\x00打不开\u202e"])
    report = dataclasses.replace(report, sections=[hostile, *report.sections[1:]])
    path = tmp_path / "report.docx"
    write_docx(report, path)
    texts = [p.text for p in Document(str(path)).paragraphs]
    assert "描述：首页打不开" in texts
