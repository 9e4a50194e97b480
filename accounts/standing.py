"""Standing account rules: duties an account owes whatever request is running, opened by a
daily sweep (and, for a name, when it is asked for).

- **LIFE-1.backfill** (云南办法第四十七条; 江川 参照): an active account opened before the
  document was published (``profile.published_on``) and still unfiled owes a 补办备案 due
  N working days after publication — long past for most, so it shows as overdue. Opened
  once per account: a duty done or withdrawn is not reopened.
- **REPLY-6.comments_open** (宝鸡办法第二十一条 不得关闭私信、评论、留言等互动功能): a registered
  account with its interaction closed owes opening it. The article sets no time: no deadline.
- **LIFE-5.place_name_consent** (云南办法第十六条): a name containing a place or an organ
  name (:mod:`accounts.naming`) needs 同级政府同意 and 备案 with the 主管单位. No deadline;
  opened once per account.

Where the profile states none of these, nothing is opened. Functions work in the caller's
transaction and never commit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from accounts.duties import DutyPolicy, open_duty, site_of
from accounts.models import Account, AccountDuty, AccountState, FilingStatus
from accounts.naming import office_units, place_names
from core.clock import fmt_date_zh, local_midnight
from core.profiles import Profile
from core.workdays import WorkdayCalendar

log = logging.getLogger(__name__)

PLACE_NAME_TITLE = "账号名称含地名或机关名称：须经同级政府同意并报主管单位备案"
COMMENTS_TITLE = "开启私信、评论、留言等互动功能"
#: States in which an account is in use (standing duties concern these).
IN_USE = (AccountState.opening.value, AccountState.active.value, AccountState.closing.value)


def _ever(session: Session, account: Account, kind: str) -> bool:
    """Whether the account ever had a duty of ``kind`` (open, done or withdrawn)."""
    return session.exec(select(AccountDuty.id).where(AccountDuty.account_id == account.id,
                                                     AccountDuty.kind == kind)).first() is not None


def place_name_duty(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                    account: Account, name: str, now: datetime, actor: str, request_id: int | None = None,
                    units: list[str] | None = None) -> AccountDuty | None:
    """Open the LIFE-5 consent duty when ``name`` holds a place or organ name (None: the
    profile states no such rule, or the name holds none)."""
    value = profile.find("LIFE-5", "place_name_consent")
    if value is None or not value.flag:
        return None
    found = place_names(name, jurisdiction=profile.jurisdiction,
                        units=office_units(session) if units is None else units)
    if not found:
        return None
    return open_duty(session=session, account=account, kind="place_name", rule_id="LIFE-5", citation=value.citation,
                     title=f"{PLACE_NAME_TITLE}（名称“{name}”含：{'、'.join(found)}）", now=now, actor=actor,
                     calendar=calendar, policy=policy, request_id=request_id)


def backfill_duty(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                  account: Account, now: datetime, actor: str) -> AccountDuty | None:
    """Open the LIFE-1 补办备案 duty an account opened before the document owes (once)."""
    value = profile.find("LIFE-1", "backfill")
    published = profile.published_on(value) if value is not None else None
    if value is None or published is None:
        return None
    if (account.state != AccountState.active or account.filing_status == FilingStatus.filed
            or account.opened_on is None or account.opened_on >= published or _ever(session, account, "backfill")):
        return None
    quantity = value.quantity
    deadline = calendar.add(local_midnight(published), quantity.amount, quantity.unit)
    title = (f"补办备案：{fmt_date_zh(published)}公布前开办的账号，须自公布之日起"
             f"{quantity.zh()}内补办备案手续")
    # A deadline long past escalates at once: the opening card would only say it again.
    return open_duty(session=session, account=account, kind="backfill", rule_id="LIFE-1", citation=value.citation,
                     title=title, now=now, actor=actor, calendar=calendar, policy=policy, deadline=deadline,
                     announce=deadline.due > now)


def comments_duty(*, session: Session, profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy,
                  account: Account, now: datetime, actor: str) -> AccountDuty | None:
    """Open the REPLY-6 duty of an account whose 私信、评论、留言 are closed."""
    value = profile.find("REPLY-6", "comments_open")
    if value is None or not value.flag or account.comments_open or account.state not in IN_USE:
        return None
    return open_duty(session=session, account=account, kind="comments", rule_id="REPLY-6", citation=value.citation,
                     title=COMMENTS_TITLE, now=now, actor=actor, calendar=calendar, policy=policy)


def sweep(session: Session, fire_time: datetime, now: datetime, *, profile: Profile, calendar: WorkdayCalendar,
          policy: DutyPolicy) -> int:
    """The daily cron job: open the standing duties every account owes and does not have
    yet; returns how many were opened (running it again opens none)."""
    del fire_time
    accounts = list(session.exec(select(Account).where(col(Account.state).in_(IN_USE)).order_by(col(Account.id))))
    units = office_units(session)
    opened = 0
    for account in accounts:
        before = _duty_count(session, account)
        backfill_duty(session=session, profile=profile, calendar=calendar, policy=policy, account=account, now=now,
                      actor="system")
        comments_duty(session=session, profile=profile, calendar=calendar, policy=policy, account=account, now=now,
                      actor="system")
        if not _ever(session, account, "place_name"):
            place_name_duty(session=session, profile=profile, calendar=calendar, policy=policy, account=account,
                            name=site_of(session, account).name, now=now, actor="system", units=units)
        opened += _duty_count(session, account) - before
    if opened:
        log.info("account sweep: %d standing duty(ies) opened", opened)
    return opened


def _duty_count(session: Session, account: Account) -> int:
    return len(list(session.exec(select(AccountDuty.id).where(AccountDuty.account_id == account.id))))
