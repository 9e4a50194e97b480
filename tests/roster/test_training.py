"""Training before duty (STAFF-1, 先培训后上岗): recording the day of a person's training,
the draft leaving untrained officers out, publishing refused, substitutions and swaps
warned about, the daily gap warning listing them — under 梁平 (第三十四条); and nothing at
all under 宝鸡, whose document does not say it. Clock moved, never slept."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli.main import main
from bot.cli.roster_plan import add_commands
from bot.config import load_settings
from core.audit import AuditEvent
from core.clock import FakeClock, parse_local
from core.db import make_engine, upgrade
from core.errors import InputError
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from people.service import record_training, validate
from roster.drafts import Draft, generate_draft, publish_draft
from roster.models import DutyRole, Shift
from roster.service import assign
from roster.training import TrainingRequired
from tests.factories import make_person, roster_days

CAL = WorkdayCalendar.from_dir(None)
PATTERNS = load_settings(None, env={}).roster.patterns()
NOW = parse_local("2026-11-20T10:00")
LIANGPING = {"DUTYBOT_RULES_PROFILE": "liangping"}
BAOJI = {"DUTYBOT_RULES_PROFILE": "baoji"}
BASIS = "依据：梁平办法第三十四条（新到岗人员先培训后上岗）"
# Monday 2026-11-23. Weekdays: 白班 王芳 + 李强, 夜班 陈晨 + 周明 (published, 11-23..11-29).
START = "2026-11-23T10:00"


def staff(engine: Engine, untrained: tuple[str, ...] = ("陈晨",)) -> None:
    """王芳 and 陈晨 (officers), 孙丽 (officer, a newcomer), 李强 and 周明 (leaders), 张伟 (admin);
    ``untrained`` have no training recorded."""
    with Session(engine) as session:
        for name, roles in (("王芳", (Role.officer,)), ("陈晨", (Role.officer,)), ("孙丽", (Role.officer,)),
                            ("李强", (Role.leader,)), ("周明", (Role.leader,)), ("张伟", (Role.admin,))):
            make_person(session, name, roles=roles, now=NOW,
                        trained_on=None if name in untrained else date(2026, 1, 5))
        session.commit()


def app(engine: Engine, env: dict[str, str], start: str = START, roster: bool = True) -> MemoryChat:
    clock = FakeClock(parse_local(start))
    if roster:
        with Session(engine) as session:
            roster_days(session, start="2026-11-23", end="2026-11-29", officers=["王芳", "陈晨"],
                        leaders=["李强", "周明"], now=clock.now())
            session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env=env), clock=clock, adapter=adapter, engine=engine), adapter)


def generate(engine: Engine, profile: str, start: str = "2026-11-23", end: str = "2026-11-29") -> Draft:
    with Session(engine, expire_on_commit=False) as session:
        draft = generate_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date.fromisoformat(start),
                               end=date.fromisoformat(end), now=NOW, actor="test", profile=load_profile(profile))
        session.commit()
    return draft


def officers_of(draft: Draft) -> dict[date, set[str]]:
    out: dict[date, set[str]] = {}
    for view in draft.views:
        out.setdefault(view.shift.day, set()).update(p.name for p in view.officers)
    return out


# ---------------------------------------------------------------- recording training

async def test_admin_records_training_in_chat_and_lists_show_it(engine: Engine) -> None:
    staff(engine, untrained=("陈晨", "孙丽"))
    chat = app(engine, LIANGPING)
    reply = await chat.send("/people trained 陈晨、孙丽 2026-11-20", as_="张伟")
    assert "已登记培训：陈晨、孙丽，培训日期 2026-11-20" in reply and BASIS in reply
    listed = await chat.send("/people list", as_="张伟")
    assert "· 陈晨｜值班员｜区政府办｜13800000000｜培训 2026-11-20" in listed
    assert "· 王芳｜值班员｜区政府办｜13800000000｜培训 2026-01-05" in listed
    # Training is recorded once it has taken place; the default day is today.
    assert "尚未到来" in await chat.send("/people trained 王芳 2026-11-24", as_="张伟")
    assert "培训日期 2026-11-23" in await chat.send("/people trained 王芳", as_="张伟")
    assert "找不到人员“无名”" in await chat.send("/people trained 无名", as_="张伟")
    with Session(engine) as session:
        trained = [e for e in session.exec(select(AuditEvent).where(AuditEvent.action == "trained"))]
    assert len(trained) == 3


@pytest.mark.parametrize(("profile", "marked"), [("liangping", True), ("baoji", False)])
async def test_an_officer_without_training_is_marked_in_the_list_only_where_the_rule_applies(
        engine: Engine, profile: str, marked: bool) -> None:
    staff(engine)
    listed = await app(engine, {"DUTYBOT_RULES_PROFILE": profile}).send("/people list", as_="张伟")
    line = "· 陈晨｜值班员｜区政府办｜13800000000"
    assert (f"{line}｜未登记培训" in listed) is marked
    assert (line in listed.splitlines()) is not marked


# ---------------------------------------------------------------- generate and publish

def test_generate_leaves_untrained_officers_out_and_publish_refuses_them(engine: Engine) -> None:
    staff(engine, untrained=("陈晨",))
    with Session(engine) as session:
        sun = session.exec(select(Person).where(Person.name == "孙丽")).one()
        sun.trained_on = date(2026, 11, 25)          # trained mid-period: rostered from that day on
        session.commit()
    draft = generate(engine, "liangping")
    assert [p.name for p in draft.untrained] == ["孙丽", "陈晨"]      # as the pool is ordered
    by_day = officers_of(draft)
    assert all("陈晨" not in names for names in by_day.values())
    assert all("孙丽" not in names for day, names in by_day.items() if day < date(2026, 11, 25))
    assert any("孙丽" in names for names in by_day.values())

    # Someone puts 陈晨 into the draft by hand: publishing is refused, nothing is published.
    with Session(engine, expire_on_commit=False) as session:
        chen = session.exec(select(Person).where(Person.name == "陈晨")).one()
        shift = session.exec(select(Shift).where(Shift.day == date(2026, 11, 24), Shift.name == "白班")).one()
        assign(session=session, shift=shift, person=chen, role=DutyRole.officer, source="manual", now=NOW,
               actor="test")
        session.commit()
        with pytest.raises(TrainingRequired) as refused:
            publish_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 11, 23),
                          end=date(2026, 11, 29), now=NOW, actor="test", profile=load_profile("liangping"))
        session.rollback()
        assert "未发布：草稿中有值班员尚未登记培训，不能安排上岗（陈晨）" in refused.value.message
        assert "11月24日（星期二）白班 08:30–17:30：陈晨（未登记培训）" in refused.value.message
        assert BASIS in refused.value.message and "dutybot people trained" in refused.value.message
        assert not session.exec(select(Shift).where(Shift.published == True)).all()  # noqa: E712
        # Once the training is recorded, the same draft publishes.
        record_training(session=session, person=chen, day=date(2026, 11, 20), now=NOW, actor="test")
        done = publish_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 11, 23),
                             end=date(2026, 11, 29), now=NOW, actor="test", profile=load_profile("liangping"))
        assert len(done.shifts) == 12


def test_jiangchuan_follows_yunnan_and_baoji_enforces_nothing(engine: Engine) -> None:
    staff(engine, untrained=("陈晨",))
    assert [p.name for p in generate(engine, "jiangchuan").untrained] == ["陈晨"]   # 参照云南第三十七条
    draft = generate(engine, "baoji")
    assert draft.untrained == []
    assert any("陈晨" in names for names in officers_of(draft).values())
    with Session(engine) as session:
        done = publish_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 11, 23),
                             end=date(2026, 11, 29), now=NOW, actor="test", profile=load_profile("baoji"))
        assert len(done.shifts) == 12


# ---------------------------------------------------------------- substitutions and swaps

async def test_substitution_by_an_untrained_officer_is_warned_and_recorded(engine: Engine) -> None:
    staff(engine, untrained=("孙丽",))
    chat = app(engine, LIANGPING)
    reply = await chat.send("/substitute 11-25 白班 王芳 孙丽 王芳身体不适", as_="张伟")
    assert "已替班：11月25日（星期三）白班 08:30–17:30 值班员 王芳 → 孙丽" in reply
    assert "注意：以下值班员尚未登记培训即上岗（孙丽）" in reply
    assert "11月25日（星期三）白班 08:30–17:30：孙丽（未登记培训）" in reply and BASIS in reply
    told = [m for m in chat.messages("李强") if m.startswith("【替班】")]
    assert len(told) == 1 and "孙丽（未登记培训）" in told[0]
    with Session(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == "untrained_on_duty")).all()
    assert [r.details()["person"] for r in rows] == ["孙丽"]


async def test_a_swap_to_an_untrained_officer_is_flagged_to_the_approver(engine: Engine) -> None:
    staff(engine, untrained=("孙丽",))
    chat = app(engine, LIANGPING)
    await chat.send("/swap 11-25 白班 孙丽 家中有事", as_="王芳")
    await chat.send("/swap accept 1", as_="孙丽")
    card = [m for m in chat.messages("李强") if m.startswith("【换班待审批】")]
    assert len(card) == 1 and "孙丽（未登记培训）" in card[0] and BASIS in card[0]
    done = await chat.send("/swap approve 1", as_="李强")
    assert "换班 #1 已生效" in done and "尚未登记培训即上岗（孙丽）" in done


async def test_nothing_is_flagged_under_baoji(engine: Engine) -> None:
    staff(engine, untrained=("孙丽", "陈晨"))
    chat = app(engine, BAOJI, start="2026-11-22T10:00")
    reply = await chat.send("/substitute 11-25 白班 王芳 孙丽", as_="张伟")
    assert "已替班" in reply and "培训" not in reply
    await chat.app.advance_to(parse_local("2026-11-24T09:30"))
    everything = chat.messages("张伟") + chat.messages("李强")
    # (宝鸡办法第二十六条's yearly training, 【年度培训】, is another rule: checks/training.py.)
    assert not [m for m in everything if "培训" in m and not m.startswith("【年度培训】")]


# ---------------------------------------------------------------- the daily gap warning

async def test_the_gap_warning_lists_untrained_officers_ahead_and_the_day_before(engine: Engine) -> None:
    staff(engine, untrained=())
    chat = app(engine, LIANGPING, start="2026-11-22T10:00")
    with Session(engine) as session:           # 孙丽 (never trained) takes the night of 11-27
        sun = session.exec(select(Person).where(Person.name == "孙丽")).one()
        sun.trained_on = None
        night = session.exec(select(Shift).where(Shift.day == date(2026, 11, 27), Shift.name == "夜班")).one()
        assign(session=session, shift=night, person=sun, role=DutyRole.officer, source="manual",
               now=parse_local("2026-11-22T10:00"), actor="test")
        session.commit()
    await chat.app.advance_to(parse_local("2026-11-23T09:00"))
    # 11-30 is not rostered yet: the same message reports that gap first, then 孙丽.
    first = [m for m in chat.messages("张伟") if "未登记培训" in m]
    assert len(first) == 1 and first[0].startswith("【值班空缺】")
    assert "以下班次的值班员尚未登记培训，请安排已培训人员或先完成培训：" in first[0]
    assert "· 4天后｜11月27日（星期五）夜班 17:30起：孙丽 未登记培训" in first[0] and BASIS in first[0]
    assert [m for m in chat.messages("李强") if "未登记培训" in m] == first
    await chat.app.advance_to(parse_local("2026-11-25T09:00"))        # not again at the same stage
    assert len([m for m in chat.messages("张伟") if "孙丽 未登记培训" in m]) == 1
    await chat.app.advance_to(parse_local("2026-11-26T09:00"))        # the day before: once more
    eve = [m for m in chat.messages("张伟") if "孙丽 未登记培训" in m]
    assert len(eve) == 2 and "· 明天｜11月27日（星期五）夜班 17:30起：孙丽 未登记培训" in eve[1]


# ---------------------------------------------------------------- command line

@freeze_time("2026-11-20 02:00:00")
def test_cli_trained_generate_publish_and_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    staff(engine, untrained=("陈晨", "孙丽"))
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "liangping")
    parser = argparse.ArgumentParser(prog="dutybot")
    parser.add_argument("--config")
    add_commands(parser.add_subparsers(dest="roster_command"))

    def roster(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

    out = roster("generate", "--from", "2026-11-23", "--to", "2026-11-29")
    assert "以下值班员尚未登记培训，未安排其值班：孙丽、陈晨" in out and BASIS in out
    assert main(["people", "list"]) == 0
    listed = capsys.readouterr().out
    assert "陈晨\t值班员\t区政府办\t13800000000\t未登记培训\t" in listed
    assert main(["people", "trained", "陈晨", "2026-11-19"]) == 0
    assert "已登记培训：陈晨，培训日期 2026-11-19" in capsys.readouterr().out
    assert main(["people", "trained", "孙丽", "2026-11-21"]) == 2
    assert "尚未到来" in capsys.readouterr().err
    assert main(["people", "trained", "--all", "2026-11-18"]) == 0
    assert "已登记培训：孙丽，培训日期 2026-11-18" in capsys.readouterr().out
    assert "所有班次均已排满" in roster("generate", "--from", "2026-11-23", "--to", "2026-11-29")
    assert "已发布" in roster("publish", "--from", "2026-11-23", "--to", "2026-11-29")

    assert main(["rules", "--profile", "baoji", "--json"]) == 0
    rules = {r["rule"]: r for r in json.loads(capsys.readouterr().out)["rules"]}
    assert rules["STAFF-1"]["citation"] == "本地规定未作要求" and rules["STAFF-2"]["regulated"] is False
    assert main(["rules", "--json"]) == 0
    rules = {r["rule"]: r for r in json.loads(capsys.readouterr().out)["rules"]}
    assert rules["STAFF-1"]["citation"] == "梁平办法第三十四条"
    assert rules["STAFF-1"]["provenance"]["trained_before_duty"]["quote"] == "新到岗人员应先培训后上岗"
    assert main(["rules", "--profile", "jiangchuan", "--json"]) == 0
    rules = {r["rule"]: r for r in json.loads(capsys.readouterr().out)["rules"]}
    assert rules["STAFF-1"]["citation"] == "参照《云南省政务新媒体管理办法》第三十七条"


def test_publish_is_refused_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    staff(engine, untrained=())
    draft = generate(engine, "liangping")
    with Session(engine) as session:      # a training date corrected after the draft was made
        chen = session.exec(select(Person).where(Person.name == "陈晨")).one()
        chen.trained_on = None
        session.commit()
    engine.dispose()
    assert any("陈晨" in names for names in officers_of(draft).values())
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "liangping")
    assert main(["roster", "publish", "--from", "2026-11-23", "--to", "2026-11-29"]) == 1
    err = capsys.readouterr().err
    assert "未发布：草稿中有值班员尚未登记培训" in err and BASIS in err


def test_an_imported_roster_is_warned_about_not_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    staff(engine, untrained=("陈晨",))
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "liangping")
    table = tmp_path / "roster.csv"
    table.write_text("日期,班次,带班领导,值班员\n2026-11-24,白班,李强,王芳\n2026-11-24,夜班,周明,陈晨\n",
                     encoding="utf-8")
    assert main(["roster", "import", str(table), "--check"]) == 0
    out = capsys.readouterr().out
    assert "检查通过" in out and "注意：以下值班员尚未登记培训：2026-11-24 夜班：陈晨" in out and BASIS in out
    assert main(["roster", "import", str(table)]) == 0
    out = capsys.readouterr().out
    assert "已导入值班表" in out and "注意：以下值班员尚未登记培训即上岗（陈晨）：" in out
    assert "11月24日（星期二）夜班 17:30–次日08:30：陈晨（未登记培训）" in out and BASIS in out
    with Session(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == "untrained_on_duty")).all()
        assert [r.details()["person"] for r in rows] == ["陈晨"]
    engine.dispose()


def test_training_day_is_checked() -> None:
    with pytest.raises(InputError, match="培训日期“2026-13-01”无效"):
        validate("王芳", trained="2026-13-01")
    assert validate("王芳", trained="2026-11-01").trained_on == date(2026, 11, 1)
