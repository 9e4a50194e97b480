"""The account register (issue 18 items 1 and 5): add, update, find, 备案, and what is refused."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.fields import AccountIn, NotAnAccount, parse_fields
from accounts.models import Account, AccountState, FilingStatus
from accounts.register import (
    AccountAmbiguous,
    AccountNotFound,
    Outcome,
    add_account,
    find_account,
    list_accounts,
    set_filing,
    site_of,
)
from core.audit import AuditEvent, history
from core.clock import parse_local
from core.errors import InputError
from roster.models import Site
from roster.sites import add_site, list_sites, validate
from tests.factories import make_person

NOW = parse_local("2026-11-23T09:00")
TODAY = date(2026, 11, 23)


def account_in(name: str = "区政府发布", platform: str = "微信公众号", unit: str = "区政府办",
               **cells: str) -> AccountIn:
    return parse_fields({"账号名称": name, "平台": platform, "主办单位": unit, **cells}, today=TODAY)


def add(session: Session, new: AccountIn) -> tuple[Account, Outcome]:
    return add_account(session=session, new=new, now=NOW, actor="王芳")


def test_an_added_account_is_on_the_reading_list_too(engine: Engine) -> None:
    with Session(engine) as session:
        account, outcome = add(session, account_in(账号ID="qzfb_wx", 运维人员="张三", 主管领导="李局",
                                                    账号类型="政府账号", 开通日期="2024年3月1日"))
        session.commit()
        assert outcome == Outcome.created
        site = site_of(session, account)
        assert (site.name, site.kind, site.url, site.unit, site.active) == ("区政府发布", "wechat", "qzfb_wx",
                                                                            "区政府办", True)
        assert (account.owner_unit, account.operator, account.approver, account.government) == (
            "区政府办", "张三", "李局", True)
        assert account.state == AccountState.active and account.opened_on == date(2024, 3, 1)
        assert account.state_since == date(2024, 3, 1)          # an active account: since it opened
        assert account.filing_status == FilingStatus.unfiled and account.comments_open
        assert [s.name for s in list_sites(session=session, unit="区政府办")] == ["区政府发布"]
        [event] = history(session=session, entity_type="account", entity_id=account.id or 0)
        assert (event.action, event.actor) == ("added", "王芳")
        assert event.details()["zh"] == "登记政务新媒体账号：区政府发布（微信公众号）｜区政府办"


def test_updating_changes_only_what_is_given_and_is_recorded(engine: Engine) -> None:
    with Session(engine) as session:
        first, _ = add(session, account_in(账号ID="qzfb", 运维人员="张三", 主管领导="李局"))
        again, outcome = add(session, account_in(运维人员="赵六"))
        assert again.id == first.id and outcome == Outcome.updated
        assert (again.operator, again.approver, site_of(session, again).url) == ("赵六", "李局", "qzfb")
        _, outcome = add(session, account_in(运维人员="赵六"))
        assert outcome == Outcome.unchanged
        events = history(session=session, entity_type="account", entity_id=first.id or 0)
        assert [e.action for e in events] == ["added", "updated"]
        assert events[1].details()["changes"] == {"operator": ["张三", "赵六"]}
        assert len(list(session.exec(select(Site)))) == 1 and len(list(session.exec(select(Account)))) == 1


def test_a_registered_person_is_linked_as_operator(engine: Engine) -> None:
    with Session(engine) as session:
        person = make_person(session, "张三", now=NOW)
        account, _ = add(session, account_in(运维人员="张三"))
        assert account.operator_id == person.id
        other, _ = add(session, account_in(name="区政府微博", platform="微博", 运维人员="外包公司小李"))
        assert other.operator == "外包公司小李" and other.operator_id is None


def test_a_site_already_on_the_reading_list_is_reused(engine: Engine) -> None:
    with Session(engine) as session:
        site, _ = add_site(session=session, new=validate("区政府发布", "公众号", "old_id", "区政府办"), now=NOW,
                           actor="cli")
        account, outcome = add(session, account_in(账号ID="qzfb_wx"))
        assert outcome == Outcome.created and account.site_id == site.id
        assert site.url == "qzfb_wx"
        assert len(list(session.exec(select(Site)))) == 1


def test_a_website_is_not_an_account(engine: Engine) -> None:
    with pytest.raises(NotAnAccount, match="网站不是政务新媒体账号"):
        account_in(name="区政府门户网站", platform="网站")
    with pytest.raises(NotAnAccount, match="网站不是政务新媒体账号"):
        account_in(platform="政府网站")
    with pytest.raises(InputError, match="无法识别的平台“快手”（可选：微信公众号、微博、抖音、头条号、客户端、其他）"):
        account_in(platform="快手")
    with Session(engine) as session:
        add_site(session=session, new=validate("门户", "网站", "https://www.example.gov.cn", "区政府办"), now=NOW,
                 actor="cli")
        with pytest.raises(InputError, match="已登记为网站"):
            add(session, account_in(name="门户", platform="微博"))
        assert list(session.exec(select(Account))) == []


def test_find_by_name_asks_for_the_unit_when_two_units_share_it(engine: Engine) -> None:
    with Session(engine) as session:
        ours, _ = add(session, account_in(name="政务发布", platform="微博", unit="区政府办"))
        theirs, _ = add(session, account_in(name="政务发布", platform="抖音", unit="区教育局"))
        only, _ = add(session, account_in(name="教育发布", platform="微信", unit="区教育局"))
        assert find_account(session=session, name=" 教育发布 ").id == only.id
        with pytest.raises(AccountAmbiguous) as err:
            find_account(session=session, name="政务发布")
        assert err.value.units == ["区政府办", "区教育局"]
        assert err.value.message == "“政务发布”在多个主办单位登记：区政府办、区教育局。请同时写明主办单位。"
        assert find_account(session=session, name="政务发布", unit="区教育局").id == theirs.id
        assert find_account(session=session, name="政务发布", unit="区政府办").id == ours.id
        with pytest.raises(AccountNotFound, match="没有找到政务新媒体账号“不存在”"):
            find_account(session=session, name="不存在")
        with pytest.raises(AccountNotFound, match="（主办单位：区卫健局）"):
            find_account(session=session, name="政务发布", unit="区卫健局")
        assert [(s.unit, s.name) for _, s in list_accounts(session=session)] == [
            ("区政府办", "政务发布"), ("区教育局", "政务发布"), ("区教育局", "教育发布")]
        assert [s.name for _, s in list_accounts(session=session, unit="区政府办")] == ["政务发布"]


def test_filing_records_the_number_and_day(engine: Engine) -> None:
    with Session(engine) as session:
        account, _ = add(session, account_in())
        set_filing(session=session, account=account, number="滇网信备2026001号", filed_on=date(2026, 11, 20),
                   now=NOW, actor="王芳")
        assert (account.filing_status, account.filing_number, account.filed_on) == (
            FilingStatus.filed, "滇网信备2026001号", date(2026, 11, 20))
        event = history(session=session, entity_type="account", entity_id=account.id or 0)[-1]
        assert (event.action, event.from_state, event.to_state) == ("filed", "unfiled", "filed")
        with pytest.raises(InputError, match="备案日期2026-11-24晚于今天"):
            set_filing(session=session, account=account, number="X", filed_on=date(2026, 11, 24), now=NOW, actor="t")
        with pytest.raises(InputError, match="请填写备案编号"):
            set_filing(session=session, account=account, number="  ", filed_on=TODAY, now=NOW, actor="t")
        with pytest.raises(InputError, match="备案日期超出范围：1999年"):
            set_filing(session=session, account=account, number="X", filed_on=date(1999, 1, 1), now=NOW, actor="t")
        assert account.filing_number == "滇网信备2026001号"


def test_bad_fields_get_chinese_answers() -> None:
    with pytest.raises(InputError, match="账号名称含有不可见或控制字符"):
        account_in(name="区政府\u202e发布")
    with pytest.raises(InputError, match="开通日期“9999-01-01”：日期超出范围"):
        account_in(开通日期="9999-01-01")
    with pytest.raises(InputError, match="开通日期“明年春天”无法识别"):
        account_in(开通日期="明年春天")
    with pytest.raises(InputError, match="无法识别的账号类型“乡镇账号”"):
        account_in(账号类型="乡镇账号")
    with pytest.raises(InputError, match=r"订阅地址“feed\.xml”应以 http:// 或 https:// 开头"):
        account_in(订阅地址="feed.xml")
    with pytest.raises(InputError, match="缺少主办单位"):
        account_in(unit="")
    # A number alone means the account was filed.
    assert account_in(备案编号="滇001").values["filing_status"] == FilingStatus.filed


def test_state_changes_go_through_the_lifecycle_and_closed_accounts_are_not_read(engine: Engine) -> None:
    with Session(engine) as session:
        add(session, account_in())
        with pytest.raises(InputError, match="状态是“在用”，不能在此改为“已关停”：开设、关停、注销须按流程办理"):
            add(session, account_in(状态="已关停"))
        old, _ = add(session, account_in(name="老账号", platform="微博", 状态="已注销"))
        assert old.state == AccountState.cancelled and old.state_since == TODAY
        assert [s.name for s in list_sites(session=session)] == ["区政府发布"]
        assert site_of(session, old).active is False
        assert session.exec(select(AuditEvent).where(AuditEvent.entity_type == "site",
                                                     AuditEvent.action == "removed")).one()
