"""Account lifecycle (accounts/lifecycle.py, followup.py, standing.py): each profile's approval
chain decided in order by the people allowed; the duties that follow, with the article's
deadline or none; a closure that cannot finish before its notice has run its term, holidays
counted; the refusals the rules make; the standing duties the daily sweep opens once.
The clock is passed in, never slept."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from accounts import approvals, cards, lifecycle, standing
from accounts.duties import DutyPolicy, deadline_zh, open_duties
from accounts.models import (
    Account,
    AccountApproval,
    AccountDuty,
    AccountRequest,
    AccountState,
    DutyStatus,
    FilingStatus,
    RequestStatus,
)
from accounts.register import set_filing
from accounts.requests import waiting_label
from core.audit import AuditEvent
from core.clock import SHANGHAI, local, parse_local
from core.errors import InputError, PermissionDenied
from core.profiles import NOT_REQUIRED, load_profile
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.models import Site
from tests.factories import make_person

POLICY = DutyPolicy(lead_workdays=2, remind_time=time(9, 0), leader_after=timedelta(hours=24))
CALENDAR = WorkdayCalendar()
UNIT = "区政府办"


class Office:
    """One office's people and the rules in force: 王芳 (officer), 李主任 (principal),
    张伟 and 刘洋 (admins), all of 区政府办."""

    def __init__(self, session: Session, profile: str, now: datetime) -> None:
        self.session, self.profile = session, load_profile(profile)
        self.officer = make_person(session, "王芳", roles=(Role.officer,), now=now, unit=UNIT)
        self.principal = make_person(session, "李主任", roles=(Role.principal,), now=now, unit=UNIT)
        self.admin = make_person(session, "张伟", roles=(Role.admin,), now=now, unit=UNIT)
        self.admin2 = make_person(session, "刘洋", roles=(Role.admin,), now=now, unit=UNIT)

    @property
    def rules(self) -> dict[str, Any]:
        return {"session": self.session, "profile": self.profile, "calendar": CALENDAR, "policy": POLICY}

    def account(self, name: str, now: datetime, *, government: bool = False, opened_on: date | None = None,
                comments_open: bool = True, filed: bool = False) -> Account:
        """A registered account in use."""
        site = Site(name=name, kind="wechat", url="", unit=UNIT, created_at=now)
        self.session.add(site)
        self.session.flush()
        assert site.id is not None
        account = Account(site_id=site.id, owner_unit=UNIT, government=government, state=AccountState.active,
                          state_since=opened_on or now.date(), opened_on=opened_on, comments_open=comments_open,
                          filing_status=FilingStatus.filed if filed else FilingStatus.unfiled,
                          created_at=now, updated_at=now)
        self.session.add(account)
        self.session.flush()
        return account

    def approve(self, request: AccountRequest, by: Person, now: datetime, note: str = "") -> lifecycle.Outcome:
        assert request.id is not None
        return lifecycle.approve(**self.rules, request_id=request.id, by=by, note=note, now=now)

    def close(self, account: Account, reason: str, now: datetime, by: Person | None = None) -> lifecycle.Outcome:
        return lifecycle.request_close(**self.rules, account=account, reason=reason, by=by or self.officer,
                                       now=now)

    def notice(self, request: AccountRequest, day: date, now: datetime) -> lifecycle.Outcome:
        assert request.id is not None
        return lifecycle.notice(**self.rules, request_id=request.id, day=day, by=self.officer, now=now)

    def done(self, duty: AccountDuty, now: datetime, reference: str = "") -> lifecycle.Outcome:
        assert duty.id is not None
        return lifecycle.complete_duty(**self.rules, duty_id=duty.id, by=self.officer, now=now,
                                       reference=reference)

    def open(self, name: str, now: datetime, by: Person | None = None) -> lifecycle.Outcome:
        return lifecycle.request_open(**self.rules, name=name, platform="微信公众号", unit=UNIT,
                                      by=by or self.officer, now=now)

    def opened(self, request: AccountRequest, day: date, now: datetime) -> lifecycle.Outcome:
        assert request.id is not None
        return lifecycle.opened(**self.rules, request_id=request.id, day=day, by=self.officer, now=now)

    def sweep(self, now: datetime) -> int:
        return standing.sweep(self.session, now, now, profile=self.profile, calendar=CALENDAR, policy=POLICY)

    def duties(self, account: Account, kind: str | None = None) -> list[AccountDuty]:
        rows = self.session.exec(select(AccountDuty).where(AccountDuty.account_id == account.id)
                                 .order_by(col(AccountDuty.id))).all()
        return [d for d in rows if kind is None or d.kind == kind]


def _one(duties: list[AccountDuty], kind: str) -> AccountDuty:
    found = [d for d in duties if d.kind == kind]
    assert len(found) == 1, [(d.kind, d.title) for d in duties]
    return found[0]


# ------------------------------------------------------------------------------ 云南

def test_yunnan_closure_waits_fifteen_working_days_of_notice_across_the_holidays(engine: Engine) -> None:
    approved_at = parse_local("2026-09-22T10:00")      # Tuesday before 中秋 and 国庆
    with Session(engine) as session:
        office = Office(session, "yunnan", approved_at)
        account = office.account("便民服务", approved_at)
        request = office.close(account, "职能调整，整合至门户账号", approved_at).request
        assert request is not None and request.status == RequestStatus.pending
        assert json.loads(request.approvals_needed) == ["本单位集体研究或主要领导"]
        assert request.citation == "云南办法第十八条"

        outcome = office.approve(request, office.principal, approved_at)
        assert request.status == RequestStatus.approved and account.state == AccountState.closing
        # 备案 within 7 working days of the approval: 9月23、24、28、29、30日, 10月8、9日.
        filing = _one(outcome.duties, "filing")
        assert filing.due_last_day == date(2026, 10, 9)
        assert filing.citation == "云南办法第十七条"
        assert filing.title == "报同级政府政务新媒体主管单位备案（关停）"
        notice = _one(outcome.duties, "notice")
        assert notice.due_at is None and notice.citation == "云南办法第十八条"
        assert "公告时间不少于15个工作日" in notice.title

        # Published on Monday 9月28日: 15 working days are 9月29、30日, 10月8、9、10日 (a make-up
        # Saturday), 12–16日, 19–23日 — the term ends 10月23日, a week later than weekdays alone.
        published = parse_local("2026-09-28T15:00")
        closing = _one(office.notice(request, date(2026, 9, 28), published).duties, "close")
        assert closing.not_before == datetime(2026, 10, 24, tzinfo=SHANGHAI)
        assert "2026年10月23日" in closing.title and closing.citation == "云南办法第十八条"
        assert session.get(AccountDuty, notice.id).status == DutyStatus.done

        with pytest.raises(InputError, match=r"公告期未满.*2026年10月24日"):
            office.done(closing, parse_local("2026-10-23T17:00"))
        assert account.state == AccountState.closing

        office.done(closing, parse_local("2026-10-24T09:00"))
        assert account.state == AccountState.closed and request.status == RequestStatus.done
        assert not session.get(Site, account.site_id).active
        assert office.duties(account, "offline") == []    # 云南 says nothing of 永久下线


def test_yunnan_opening_needs_no_approval_and_a_place_name_needs_consent(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "yunnan", now)
        outcome = office.open("云南发布", now)
        request = outcome.request
        assert request is not None and request.status == RequestStatus.approved   # no chain: approved at once
        assert request.citation == NOT_REQUIRED
        events = session.exec(select(AuditEvent).where(AuditEvent.entity_type == "account_request")).all()
        assert any("本地规定未作要求：本单位按内部程序审批（王芳提出）" in e.detail for e in events)
        consent = _one(outcome.duties, "place_name")
        assert consent.title.startswith("账号名称含地名或机关名称：须经同级政府同意并报主管单位备案")
        assert "云南" in consent.title and consent.due_at is None and consent.citation == "云南办法第十六条"

        plain = office.open("便民服务", now)
        assert plain.duties == []

        # A rename to a name with a place name asks for consent too.
        account = office.account("办事指南", now)
        renamed = lifecycle.request_change(**office.rules, account=account, detail="名称变更为“昆明市办事指南”",
                                           by=office.officer, now=now)
        assert "昆明市" in _one(renamed.duties, "place_name").title


def test_a_refused_opening_withdraws_its_duties_and_leaves_the_reading_list(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "jiangchuan", now)
        outcome = office.open("江川发布", now)
        request = outcome.request
        assert request is not None
        consent = _one(outcome.duties, "place_name")
        assert consent.citation == "参照《云南省政务新媒体管理办法》第十六条"
        with pytest.raises(InputError, match="理由"):
            lifecycle.reject(session=session, request_id=request.id or 0, by=office.principal, reason=" ", now=now)
        lifecycle.reject(session=session, request_id=request.id or 0, by=office.principal, reason="与现有账号重复",
                         now=now)
        assert request.status == RequestStatus.rejected
        assert consent.status == DutyStatus.cancelled
        assert outcome.account.state == AccountState.cancelled
        assert not session.get(Site, outcome.account.site_id).active
        decision = session.exec(select(AccountApproval)).one()
        assert (decision.approved, decision.label, decision.note) == (False, "单位集体研究和主要领导", "与现有账号重复")


def test_backfill_for_an_account_opened_before_the_yunnan_rules_is_opened_once(engine: Engine) -> None:
    now = parse_local("2026-11-23T09:00")
    with Session(engine) as session:
        office = Office(session, "yunnan", now)
        old = office.account("老账号", now, opened_on=date(2018, 5, 2))
        office.account("新账号", now, opened_on=date(2020, 3, 2))
        office.account("已备案账号", now, opened_on=date(2017, 1, 3), filed=True)
        office.account("不知开通日期", now)
        assert office.sweep(now) == 1
        backfill = _one(office.duties(old), "backfill")
        # 60 working days from 2019年8月3日 (published): 2019年10月31日 — long past.
        assert backfill.due_last_day == date(2019, 10, 31)
        assert backfill.citation == "云南办法第四十七条" and "2019年8月3日" in backfill.title
        assert "已超期" in deadline_zh(backfill, now)
        # Long past: read by its date and the days, never "2580天9小时".
        assert deadline_zh(backfill, now).startswith("截止：2019年10月31日")
        assert "小时" not in deadline_zh(backfill, now)
        assert office.sweep(now + timedelta(days=1)) == 0

        office.done(backfill, now + timedelta(days=1), "云备2026001")
        assert old.filing_status == FilingStatus.filed and old.filing_number == "云备2026001"
        assert office.sweep(now + timedelta(days=2)) == 0   # once: done is done


def test_recording_the_filing_in_the_register_settles_the_backfill_duty(engine: Engine) -> None:
    """``dutybot accounts filed`` records the 备案 the duty asks for: the duty is done too."""
    now = parse_local("2026-11-23T09:00")
    with Session(engine) as session:
        office = Office(session, "yunnan", now)
        old = office.account("老账号", now, opened_on=date(2018, 5, 2))
        assert office.sweep(now) == 1
        backfill = _one(office.duties(old), "backfill")
        set_filing(session=session, account=old, number="云备2026009", filed_on=date(2026, 11, 23), now=now,
                   actor="张伟")
        assert backfill.status == DutyStatus.done and backfill.reference == "云备2026009"
        assert office.sweep(now + timedelta(days=1)) == 0


# ------------------------------------------------------------------------------ 宝鸡

def test_baoji_government_closure_is_refused_without_a_reason_and_cards_say_so(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "baoji", now)
        account = office.account("宝鸡市政府发布", now, government=True)
        with pytest.raises(lifecycle.Refused, match="原则上不得关停（依据：宝鸡办法第十条）") as refused:
            office.close(account, "", now)
        assert "确需关停理由" in refused.value.message
        assert session.exec(select(AccountRequest)).all() == []
        with pytest.raises(lifecycle.Refused, match="原则上不得关停"):
            lifecycle.request_cancel(**office.rules, account=account, reason="  ", by=office.officer, now=now)

        request = office.close(account, "机构撤并，确需关停", now).request
        assert request is not None
        first = cards.approval_card(session, office.profile, request)
        assert "注意：市县政府系统政务新媒体原则上不得关停（依据：宝鸡办法第十条）" in first
        assert "确需关停理由：机构撤并，确需关停" in first
        office.approve(request, office.admin, now, "宝政办函〔2026〕1号")
        second = cards.approval_card(session, office.profile, request)
        assert "待 省政府办公厅 审批（第2步，共2步）" in second and "原则上不得关停" in second

        # A department account's closure needs no reason and no such warning.
        other = office.account("宝鸡文旅", now)
        plain = office.close(other, "", now).request
        assert plain is not None and "原则上不得关停" not in cards.approval_card(session, office.profile, plain)


def test_baoji_closure_passes_zhuji_then_the_provincial_office_in_order(engine: Engine) -> None:
    now = parse_local("2026-11-02T10:00")
    with Session(engine) as session:
        office = Office(session, "baoji", now)
        account = office.account("宝鸡文旅", now)
        request = office.close(account, "主办单位撤并", now).request
        assert request is not None
        assert approvals.labels_of(request) == ["逐级审核", "省政府办公厅"]
        assert request.citation == "宝鸡办法第十条"
        # Both steps are outside offices: an admin records them, with the 批准文号.
        with pytest.raises(PermissionDenied, match="由管理员登记"):
            office.approve(request, office.principal, now, "同意")
        with pytest.raises(InputError, match="批准文号"):
            office.approve(request, office.admin, now)
        office.approve(request, office.admin, now, "宝政办〔2026〕7号")
        assert waiting_label(session, request) == "省政府办公厅"
        assert request.status == RequestStatus.pending
        outcome = office.approve(request, office.admin2, now, "陕政办函〔2026〕3号")
        assert request.status == RequestStatus.approved
        steps = session.exec(select(AccountApproval).order_by(col(AccountApproval.step))).all()
        assert [(s.label, s.by_name, s.note) for s in steps] == [("逐级审核", "张伟", "宝政办〔2026〕7号"),
                                                                 ("省政府办公厅", "刘洋", "陕政办函〔2026〕3号")]
        filing = _one(outcome.duties, "filing")
        assert filing.due_at is None and filing.citation == "宝鸡办法第八条"   # 及时: no deadline invented
        assert filing.title == "在全国政务新媒体信息报送系统更新备案（关停）"
        notice = _one(outcome.duties, "notice")
        assert notice.title == "将关停公告置顶，至少保留30天" and notice.citation == "宝鸡办法第十条"

        closing = _one(office.notice(request, date(2026, 11, 2), now).duties, "close")
        assert local(closing.not_before).date() == date(2026, 12, 3)
        with pytest.raises(InputError, match="公告期未满"):
            office.done(closing, parse_local("2026-12-02T16:00"))
        after = office.done(closing, parse_local("2026-12-03T09:00"))
        assert account.state == AccountState.closed
        offline = _one(after.duties, "offline")
        assert offline.title == "在全国政务新媒体信息报送系统申请永久下线"
        assert offline.due_at is None and offline.citation == "宝鸡办法第十条"


def test_baoji_interaction_cannot_be_closed_and_a_closed_one_is_a_duty(engine: Engine) -> None:
    now = parse_local("2026-11-23T09:00")
    with Session(engine) as session:
        office = Office(session, "baoji", now)
        account = office.account("宝鸡文旅", now)
        with pytest.raises(lifecycle.Refused, match="依据：宝鸡办法第二十一条"):
            lifecycle.request_change(**office.rules, account=account, detail="关闭评论功能",
                                     by=office.officer, now=now)
        muted = office.account("宝鸡交通", now, comments_open=False)
        assert office.sweep(now) == 1
        duty = _one(office.duties(muted), "comments")
        assert duty.title == "开启私信、评论、留言等互动功能" and duty.due_at is None
        assert duty.citation == "宝鸡办法第二十一条"
        assert office.sweep(now) == 0
        office.done(duty, now)
        assert muted.comments_open
        assert office.sweep(now + timedelta(days=1)) == 0


def test_baoji_opening_needs_three_approvals_and_keeps_its_notice_thirty_days(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "baoji", now)
        request = office.open("宝鸡交通", now).request
        assert request is not None
        office.approve(request, office.principal, now)
        office.approve(request, office.admin, now, "宝政办〔2026〕9号")
        office.approve(request, office.admin2, now, "陕政办函〔2026〕5号")
        assert request.status == RequestStatus.approved
        outcome = office.opened(request, date(2026, 11, 23), now)
        notice = _one(outcome.duties, "notice")
        assert notice.title.startswith("开通公告在首页显著位置悬挂不少于30天") and notice.citation == "宝鸡办法第七条"
        assert local(notice.not_before).date() == date(2026, 12, 24)
        assert _one(outcome.duties, "filing").title == "在全国政务新媒体信息报送系统备案登记（开设）"
        assert request.status == RequestStatus.done and outcome.account.state == AccountState.active


# ---------------------------------------------------------------------- 梁平, 江川, 古丈

def test_liangping_opening_needs_only_the_principal_and_files_with_no_deadline(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "liangping", now)
        outcome = office.open("梁平发布", now)
        request = outcome.request
        assert request is not None and outcome.duties == []    # 梁平 states no place-name rule
        assert approvals.labels_of(request) == ["本单位主要负责人"] and request.citation == "梁平办法第九条"
        office.approve(request, office.principal, now)
        assert request.status == RequestStatus.approved
        assert cards.next_step_zh(session, office.profile, request).startswith("账号开通后请发送 /account opened")

        opened = office.opened(request, date(2026, 11, 20), now)
        filing = _one(opened.duties, "filing")
        assert filing.due_at is None and filing.citation == "梁平办法第九条"
        assert filing.title == "报区政府办公室备案（开设）"
        assert opened.account.state == AccountState.active and opened.account.opened_on == date(2026, 11, 20)
        assert request.status == RequestStatus.done
        office.done(filing, now, "梁备2026-08")
        assert opened.account.filing_status == FilingStatus.filed


def test_jiangchuan_filing_cites_the_yunnan_article_it_follows(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "jiangchuan", now)
        account = office.account("便民服务", now)
        request = lifecycle.request_change(**office.rules, account=account, detail="更换运维人员",
                                           by=office.officer, now=now).request
        assert request is not None
        assert approvals.labels_of(request) == ["单位集体研究和主要领导", "区政府办公室"]
        office.approve(request, office.principal, now)
        outcome = office.approve(request, office.admin, now, "江政办〔2026〕2号")
        filing = _one(outcome.duties, "filing")
        assert "参照《云南省政务新媒体管理办法》第十七条" in filing.citation
        assert "江川制度第十三条" in filing.citation
        assert filing.due_last_day == date(2026, 12, 2)       # 7 working days
        assert "全国政务新媒体信息报送系统" in filing.title
        notice = _one(outcome.duties, "notice")
        assert notice.citation == "江川制度第十四条"
        change = _one(office.notice(request, date(2026, 11, 23), now).duties, "change")
        assert change.not_before is not None
        office.done(change, local(change.not_before))
        assert request.status == RequestStatus.done


def test_guzhang_states_no_lifecycle_rule_and_opens_no_duty(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "guzhang", now)
        outcome = office.open("古丈县政府发布", now)
        request = outcome.request
        assert request is not None and request.status == RequestStatus.approved and outcome.duties == []
        opened = office.opened(request, date(2026, 11, 23), now)
        assert opened.duties == []
        closed = office.close(opened.account, "", now + timedelta(days=1))
        assert closed.request is not None and closed.request.status == RequestStatus.done
        assert opened.account.state == AccountState.closed
        office.account("老账号", now, opened_on=date(2015, 1, 5), comments_open=False)
        assert office.sweep(now) == 0
        assert session.exec(select(AccountDuty)).all() == []


# ---------------------------------------------------------------------------- who decides

def test_nobody_approves_their_own_request_and_roles_decide_the_step(engine: Engine) -> None:
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "yunnan", now)
        account = office.account("便民服务", now)
        request = office.close(account, "整合", now, by=office.principal).request
        assert request is not None
        with pytest.raises(PermissionDenied, match="本人提出的，不能由您审批"):
            office.approve(request, office.principal, now)
        with pytest.raises(PermissionDenied, match="须由本单位主要负责人审批"):
            office.approve(request, office.officer, now)
        other_unit = make_person(session, "赵主任", roles=(Role.principal,), now=now, unit="区教委")
        with pytest.raises(PermissionDenied, match="该账号属于区政府办"):
            office.approve(request, other_unit, now)
        # The requester is the only principal: the admins are asked.
        asked = approvals.deciders(session, request=request, label="本单位集体研究或主要领导", unit=UNIT)
        assert {p.name for p in asked} == {"张伟", "刘洋"}
        office.approve(request, office.admin, now)
        assert request.status == RequestStatus.approved
        with pytest.raises(InputError, match="已批准"):
            office.approve(request, office.admin2, now)
        # Another running request on the same account is refused.
        with pytest.raises(InputError, match="已有办理中的关停申请"):
            office.close(account, "再次申请", now)
        assert [d.kind for d in open_duties(session=session, account_id=account.id)] == ["filing", "notice"]


def test_the_sweep_finds_place_names_in_registered_accounts(engine: Engine) -> None:
    now = parse_local("2026-11-23T09:00")
    with Session(engine) as session:
        office = Office(session, "yunnan", now)
        named = office.account("玉溪市江川区融媒", now)
        office.account("便民服务", now)
        assert office.sweep(now) == 1
        duty = _one(office.duties(named), "place_name")
        assert "玉溪市" in duty.title and "江川区" in duty.title
        assert office.sweep(now) == 0


def test_default_profile_takes_the_longer_notice_period(engine: Engine) -> None:
    now = parse_local("2026-11-02T10:00")
    with Session(engine) as session:
        office = Office(session, "default", now)
        account = office.account("便民服务", now)
        request = office.close(account, "整合", now).request
        assert request is not None
        office.approve(request, office.admin, now, "批准文号一")
        office.approve(request, office.admin2, now, "批准文号二")
        closing = _one(office.notice(request, date(2026, 11, 2), now).duties, "close")
        # 15 working days end 11月23日; 30 days end 12月2日: the longer one holds.
        assert local(closing.not_before).date() == date(2026, 12, 3)
        assert closing.citation == "参照《宝鸡市政府系统政务新媒体管理办法》第十条"
        assert load_profile("default").find("LIFE-1", "offline") is not None


def test_an_approved_name_change_renames_the_account_in_the_register(engine: Engine) -> None:
    """梁平 states no notice period: the change is carried out on approval, the name with it."""
    now = parse_local("2026-11-23T10:00")
    with Session(engine) as session:
        office = Office(session, "liangping", now)
        account = office.account("梁平便民", now)
        office.account("梁平政务", now)            # another account of the unit already has this name
        taken = lifecycle.request_change(**office.rules, account=account, detail="名称变更为“梁平政务”",
                                         by=office.officer, now=now).request
        assert taken is not None
        office.approve(taken, office.principal, now)
        assert session.get(Site, account.site_id).name == "梁平便民"     # not renamed over the other
        request = lifecycle.request_change(**office.rules, account=account, detail="名称变更为“梁平发布”",
                                           by=office.officer, now=now).request
        assert request is not None
        office.approve(request, office.principal, now)
        assert request.status == RequestStatus.done
        assert session.get(Site, account.site_id).name == "梁平发布"
        renamed = session.exec(select(AuditEvent).where(AuditEvent.action == "renamed")).one()
        assert (renamed.from_state, renamed.to_state) == ("梁平便民", "梁平发布")
