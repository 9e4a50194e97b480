"""Account duties (accounts/duties.py): a duty with the article's deadline gets a reminder
ladder counted on the working-day calendar and escalates to the unit's leaders; a duty the
article sets no time limit for has no deadline and no ladder; a duty in its notice period
cannot be completed early; the same duty is never opened twice. Clock moved, never slept."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from accounts import duties
from accounts.models import Account, AccountDuty, DutyStatus
from accounts.retime import retime_provisional
from core.clock import SHANGHAI, parse_local
from core.errors import InputError
from core.outbox import OutboxMessage
from core.schedule import DueItem, DueStatus
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.models import Site
from tests.bot.test_new_year_data import NEXT_YEAR, Release2027
from tests.factories import make_person

POLICY = duties.DutyPolicy(lead_workdays=2, remind_time=time(9, 0), leader_after=timedelta(hours=24))
CITE = "云南办法第十七条"


def _account(session: Session, now: datetime, *, operator: Person | None = None, unit: str = "区政府办") -> Account:
    site = Site(name="梁平发布", kind="wechat", url="lpfb", unit=unit, created_at=now)
    session.add(site)
    session.flush()
    assert site.id is not None
    account = Account(site_id=site.id, owner_unit=unit, operator=operator.name if operator else "",
                      operator_id=operator.id if operator else None, state_since=now.date(),
                      created_at=now, updated_at=now)
    session.add(account)
    session.flush()
    return account


def _texts(session: Session, person: Person) -> list[str]:
    rows = session.exec(select(OutboxMessage).where(OutboxMessage.person_id == person.id)
                        .order_by(col(OutboxMessage.id))).all()
    return [r.text for r in rows]


def _run_due(session: Session, until: datetime) -> list[str]:
    """Process every pending reminder due by ``until`` in time order; the stages fired."""
    fired = []
    items = session.exec(select(DueItem).where(DueItem.status == DueStatus.pending, DueItem.due_at <= until)
                         .order_by(col(DueItem.due_at))).all()
    for item in items:
        duties.process_reminder(session, item, item.due_at)
        item.status = DueStatus.done
        session.add(item)
        fired.append(item.data()["stage"])
    return fired


def test_a_filing_duty_over_the_national_day_holiday_is_reminded_and_escalated(engine: Engine) -> None:
    calendar = WorkdayCalendar()
    now = parse_local("2026-09-29T10:00")          # Tuesday; 10月1日–7日 are holidays
    with Session(engine) as session:
        operator = make_person(session, "王芳", roles=(Role.officer,), now=now)
        leader = make_person(session, "李强", roles=(Role.leader,), now=now)
        admin = make_person(session, "张伟", roles=(Role.admin,), now=now)
        account = _account(session, now, operator=operator)
        deadline = calendar.add_workdays(now, 7)
        duty = duties.open_duty(session=session, account=account, kind="filing", rule_id="LIFE-1", citation=CITE,
                                title="变更后备案", now=now, actor="张伟", calendar=calendar, policy=POLICY,
                                deadline=deadline)
        # 9月30日, then 10月8日, 9日, 10日 (Saturday, a make-up working day), 12日, 13日, 14日.
        assert duty.due_last_day == date(2026, 10, 14)
        told = _texts(session, operator)
        assert len(told) == 1 and told[0].startswith("【账号事项】梁平发布：变更后备案")
        assert "依据：云南办法第十七条" in told[0] and "/account done" in told[0]

        # Two working days before the last day: 10月12日 (Monday; the 11th is a Sunday).
        pending = {i.data()["stage"]: i.due_at for i in session.exec(select(DueItem)).all()}
        assert pending["before"] == datetime(2026, 10, 12, 9, 0, tzinfo=SHANGHAI)
        assert pending["due"] == datetime(2026, 10, 14, 9, 0, tzinfo=SHANGHAI)
        assert pending["breach"] == datetime(2026, 10, 15, 0, 0, tzinfo=SHANGHAI)
        assert pending["leader"] == datetime(2026, 10, 16, 0, 0, tzinfo=SHANGHAI)

        assert _run_due(session, datetime(2026, 10, 14, 23, 0, tzinfo=SHANGHAI)) == ["before", "due"]
        assert [t.split("\n")[0] for t in _texts(session, operator)[1:]] == [
            "【账号事项提醒】即将到期：梁平发布：变更后备案", "【账号事项提醒】今天到期：梁平发布：变更后备案"]
        assert _texts(session, leader) == []
        assert _run_due(session, datetime(2026, 10, 16, 1, 0, tzinfo=SHANGHAI)) == ["breach", "leader"]
        assert _texts(session, admin)[-1].startswith("【账号事项已超期】梁平发布")
        assert _texts(session, leader)[-1].startswith("【账号事项超期·带班领导】负责人：王芳；梁平发布")
        assert "已超期" in _texts(session, leader)[-1]


def test_a_duty_without_a_time_limit_has_no_deadline_and_no_ladder(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        admin = make_person(session, "张伟", roles=(Role.admin,), now=now)
        account = _account(session, now)          # no operator: the admins hold it
        duty = duties.open_duty(session=session, account=account, kind="filing", rule_id="LIFE-1",
                                citation="梁平办法第九条", title="报区政府办公室备案", now=now, actor="张伟",
                                calendar=WorkdayCalendar(), policy=POLICY)
        assert duty.due_at is None
        assert session.exec(select(DueItem)).all() == []
        told = _texts(session, admin)
        assert len(told) == 1 and duties.NO_DEADLINE in told[0]
        assert duties.line(session, duty, now) == (
            f"编号 {duty.id}｜梁平发布｜报区政府办公室备案｜{duties.NO_DEADLINE}｜依据：梁平办法第九条")


def test_the_same_duty_is_opened_once(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        admin = make_person(session, "张伟", roles=(Role.admin,), now=now)
        account = _account(session, now)
        args = dict(session=session, account=account, kind="explain", rule_id="FRESH-4", citation="宝鸡办法第十六条",
                    title="说明理由", actor="system", calendar=WorkdayCalendar(), policy=POLICY)
        first = duties.open_duty(now=now, **args)  # type: ignore[arg-type]
        again = duties.open_duty(now=now + timedelta(days=1), **args)  # type: ignore[arg-type]
        assert first.id == again.id
        assert len(_texts(session, admin)) == 1
        duties.complete(session=session, duty_id=first.id or 0, now=now + timedelta(days=2), actor="张伟",
                        reference="已报市政务公开办公室")
        later = duties.open_duty(now=now + timedelta(days=20), **args)  # type: ignore[arg-type]
        assert later.id != first.id                   # a new silence spell: a new duty


def test_a_duty_in_its_notice_period_cannot_be_completed_early(engine: Engine) -> None:
    calendar = WorkdayCalendar()
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin,), now=now)
        account = _account(session, now)
        notice_end = calendar.add_workdays(now, 15)
        duty = duties.open_duty(session=session, account=account, kind="close", rule_id="LIFE-2",
                                citation="云南办法第十八条", title="公告期满后关停", now=now, actor="张伟",
                                calendar=calendar, policy=POLICY, not_before=notice_end.due)
        early = notice_end.due - timedelta(hours=1)
        try:
            duties.complete(session=session, duty_id=duty.id or 0, now=early, actor="张伟")
        except InputError as exc:
            assert "公告期未满" in str(exc) and "依据：云南办法第十八条" in str(exc)
        else:
            raise AssertionError("completed before the notice period ran its term")
        assert "起可办结" in duties.line(session, duty, early)
        done = duties.complete(session=session, duty_id=duty.id or 0, now=notice_end.due, actor="张伟")
        assert done.status == DutyStatus.done
        try:
            duties.complete(session=session, duty_id=duty.id or 0, now=notice_end.due, actor="张伟")
        except InputError as exc:
            assert "已于" in str(exc) and "办结" in str(exc)
        else:
            raise AssertionError("completed twice")


def test_open_duties_list_the_nearest_deadline_first_and_undated_last(engine: Engine) -> None:
    calendar = WorkdayCalendar()
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin,), now=now)
        account = _account(session, now)
        common = dict(session=session, account=account, rule_id="LIFE-1", citation=CITE, now=now, actor="张伟",
                      calendar=calendar, policy=POLICY)
        undated = duties.open_duty(kind="place_name", title="名称同意", **common)  # type: ignore[arg-type]
        far = duties.open_duty(kind="filing", title="备案", deadline=calendar.add_workdays(now, 7),
                               **common)  # type: ignore[arg-type]
        near = duties.open_duty(kind="backfill", title="补办备案", deadline=calendar.add_workdays(now, 1),
                                **common)  # type: ignore[arg-type]
        assert [d.id for d in duties.open_duties(session=session)] == [near.id, far.id, undated.id]
        assert duties.open_duties(session=session, unit="别的单位") == []
        assert session.exec(select(AccountDuty)).all()


def test_a_provisional_deadline_is_counted_again_when_the_year_becomes_known(engine: Engine) -> None:
    """备案 within 7 working days, counted on 2026-12-28 into 2027 (no holiday data yet):
    暂定; once a release knows 2027 (simulated: 01-01..01-04 rest) it moves and the
    operator is told."""
    now = parse_local("2026-12-28T10:00")
    with Session(engine) as session:
        operator = make_person(session, "王芳", roles=(Role.officer,), now=now)
        account = _account(session, now, operator=operator)
        old = WorkdayCalendar()
        duty = duties.open_duty(session=session, account=account, kind="filing", rule_id="LIFE-1", citation=CITE,
                                title="开设后备案", now=now, actor="张伟", calendar=old, policy=POLICY,
                                deadline=old.add_workdays(now, 7))
        # 12-29, 30, 31, then 2027 counted on weekends and fixed-date holidays only: 01-04 … 01-07.
        assert duty.provisional and duty.due_last_day == date(NEXT_YEAR, 1, 7)
        assert "暂定" in duties.line(session, duty, now)
        assert retime_provisional(session, now, now, calendar=old, policy=POLICY) == 0

        later = now + timedelta(days=1)
        new = WorkdayCalendar(package=Release2027())
        assert retime_provisional(session, later, later, calendar=new, policy=POLICY) == 1
        # 01-01..01-04 rest in the release: 01-05 … 01-08.
        assert not duty.provisional and duty.due_last_day == date(NEXT_YEAR, 1, 8)
        told = _texts(session, operator)[-1]
        assert told.startswith("【期限调整】") and "原截止：" in told and "暂定" in told.split("\n")[2]
        due = {i.data()["stage"]: i.due_at for i in session.exec(select(DueItem)).all()}
        assert due["due"] == datetime(NEXT_YEAR, 1, 8, 9, 0, tzinfo=SHANGHAI)
        assert retime_provisional(session, later, later, calendar=new, policy=POLICY) == 0
