"""The register of 政务新媒体 accounts (issue 18 items 1 and 5): add or update, find, list,
and record a 备案.

An account is two rows: its :class:`~roster.models.Site` (name, platform as the site's
kind, the platform's account id as its ``url``, the 主办单位 as its ``unit``), so the
reading register stays one list, and its :class:`~accounts.models.Account` (owner,
operator, approver, state, 备案 …). A website is not an account and is refused.

Contract: every function works in the caller's transaction (nothing here commits) and
raises a :class:`~core.errors.DutybotError` whose message a person can read; every change
is recorded in the audit log under entity ``account`` (the site row's own changes under
``site``, by :mod:`roster.sites`). State changes (开设, 关停, 注销) are not made here: they
go through the lifecycle requests, so an import that would change a stored state is refused.

Input is checked first by :func:`accounts.fields.parse_fields`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from accounts.duties import complete, open_duties
from accounts.fields import MAX_NUMBER, AccountIn, check_text
from accounts.models import FILING_ZH, STATE_ZH, Account, AccountState, FilingStatus
from core import audit
from core.clock import check_year_range, local
from core.errors import InputError, NotFound
from people.models import Person
from roster.models import Site
from roster.sites import KIND_ZH, NewSite, SiteKind, add_site, remove_site

#: The duties a recorded 备案 settles.
FILING_KINDS = ("filing", "backfill")
#: States in which the account is live and read by the duty officers.
LIVE_STATES = (AccountState.opening, AccountState.active, AccountState.closing)


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


class AccountNotFound(NotFound):
    """No registered account has that name (in that unit)."""

    def __init__(self, name: str, unit: str | None = None) -> None:
        where = f"（主办单位：{unit}）" if unit else ""
        super().__init__(f"没有找到政务新媒体账号“{name}”{where}。请核对账号名称（已登记的账号：dutybot accounts list）。")
        self.name = name
        self.unit = unit


class AccountAmbiguous(InputError):
    """Several units registered an account of that name; ``units`` lists them."""

    def __init__(self, name: str, units: list[str]) -> None:
        super().__init__(f"“{name}”在多个主办单位登记：{'、'.join(units)}。请同时写明主办单位。")
        self.name = name
        self.units = units

def platform_zh(site: Site) -> str:
    """``微信公众号``, ``微博`` … (the kind as stored when it is not known)."""
    try:
        return KIND_ZH[SiteKind(site.kind)]
    except ValueError:
        return site.kind


def state_zh(account: Account) -> str:
    """``在用``, ``已关停`` …"""
    try:
        return STATE_ZH[AccountState(account.state)]
    except ValueError:
        return account.state


def filing_status_zh(account: Account) -> str:
    """``已备案`` or ``未备案``."""
    try:
        return FILING_ZH[FilingStatus(account.filing_status)]
    except ValueError:
        return account.filing_status


def filing_zh(account: Account) -> str:
    """``已备案（编号）`` or ``未备案``."""
    shown = filing_status_zh(account)
    if account.filing_status == FilingStatus.filed and account.filing_number:
        return f"{shown}（{account.filing_number}）"
    return shown


def describe(account: Account, site: Site) -> str:
    """``区政府发布（微信公众号）｜区政府办``."""
    return f"{site.name}（{platform_zh(site)}）｜{site.unit or account.owner_unit}"


def site_of(session: Session, account: Account) -> Site:
    """The site row of ``account``."""
    site = session.get(Site, account.site_id)
    if site is None:   # the foreign key makes this impossible
        raise NotFound(f"账号 {account.id} 的读网登记缺失")
    return site


def stored_site(session: Session, name: str, unit: str) -> Site | None:
    """The site row called ``name`` of ``unit``, account or website, active or not."""
    return session.exec(select(Site).where(Site.name == name, Site.unit == unit)).first()


def account_of_site(session: Session, site: Site) -> Account | None:
    """The account kept beside ``site``, if it is one."""
    return session.exec(select(Account).where(Account.site_id == site.id)).first()


def check_stored(session: Session, new: AccountIn) -> None:
    """Refuse what the stored rows forbid: a website of the same name and unit, or a state
    change (that goes through the lifecycle requests).

    Raises:
        NotAnAccount: the name and unit are a registered website.
        InputError: the stored account is in another state.
    """
    site = stored_site(session, new.name, new.unit)
    if site is None:
        return
    account = account_of_site(session, site)
    if account is None and site.kind == SiteKind.website:
        raise InputError(f"“{new.name}”（{new.unit}）已登记为网站；网站不是政务新媒体账号，请换一个账号名称。")
    state = new.state()
    if account is not None and state is not None and state != account.state:
        raise InputError(f"账号“{new.name}”（{new.unit}）的状态是“{state_zh(account)}”，不能在此改为"
                         f"“{STATE_ZH[state]}”：开设、关停、注销须按流程办理。")


def _operator_id(session: Session, name: str) -> int | None:
    """The registered active person of that name, when exactly one."""
    if not name:
        return None
    found = list(session.exec(select(Person.id).where(Person.name == name, Person.active == True)))  # noqa: E712
    return found[0] if len(found) == 1 else None


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    return "" if value is None else str(value)


def add_account(*, session: Session, new: AccountIn, now: datetime, actor: str) -> tuple[Account, Outcome]:
    """Register ``new``, or update the account of the same name and 主办单位.

    The site row is created (or reused, and updated when its platform or id changed)
    through :func:`roster.sites.add_site`; a new account in a closed or cancelled state
    is taken off the reading list.

    Returns:
        The account, and whether it was created, updated or already as given.

    Raises:
        NotAnAccount, InputError: see :func:`check_stored`.
    """
    check_stored(session, new)
    today = local(now).date()
    site = stored_site(session, new.name, new.unit)
    account = account_of_site(session, site) if site is not None else None
    state = new.state() or (AccountState(account.state) if account is not None else AccountState.active)
    platform_id = new.platform_id if new.platform_id is not None else (site.url if site is not None else "")
    live = state in LIVE_STATES
    # A live account registered over a site taken off the reading list puts it back; an
    # existing account's site stays as the reading register has it.
    site_changed = (site is None or site.kind != new.kind.value or site.url != platform_id
                    or (account is None and live and not site.active))
    if site_changed:
        site, _ = add_site(session=session, new=NewSite(new.name, new.kind, platform_id, new.unit), now=now,
                           actor=actor)
    assert site is not None and site.id is not None
    values = dict(new.values)
    if "operator" in values:
        values["operator_id"] = _operator_id(session, str(values["operator"]))
    if account is None:
        opened = values.get("opened_on")
        since = opened if state == AccountState.active and isinstance(opened, date) else today
        account = Account(site_id=site.id, owner_unit=new.unit, state_since=since, created_at=now,
                          updated_at=now)
        for attr, value in values.items():
            setattr(account, attr, value)
        account.state = state.value
        session.add(account)
        session.flush()
        if not live and site.active:
            remove_site(session=session, name=site.name, unit=site.unit, now=now, actor=actor)
        audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="added",
                     actor=actor, to_state=account.state, zh=f"登记政务新媒体账号：{describe(account, site)}",
                     name=site.name, platform=site.kind, unit=site.unit)
        return account, Outcome.created
    changes = {attr: [_shown(getattr(account, attr)), _shown(value)] for attr, value in values.items()
               if getattr(account, attr) != value}
    if not changes and not site_changed:
        return account, Outcome.unchanged
    for attr, value in values.items():
        setattr(account, attr, value)
    account.updated_at = now
    session.add(account)
    audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="updated",
                 actor=actor, zh=f"更新政务新媒体账号：{describe(account, site)}", name=site.name,
                 platform=site.kind, platform_id=site.url, unit=site.unit, changes=changes)
    return account, Outcome.updated


def find_account(*, session: Session, name: str, unit: str | None = None) -> Account:
    """The registered account called ``name`` (of 主办单位 ``unit`` when given), in any state.

    Raises:
        AccountNotFound: none.
        AccountAmbiguous: several units registered that name and ``unit`` was not given
            (its ``units`` lists them).
    """
    name = name.strip()
    stmt = select(Account, Site).join(Site, col(Site.id) == col(Account.site_id)).where(Site.name == name)
    if unit is not None and unit.strip():
        stmt = stmt.where(Site.unit == unit.strip())
    found = list(session.exec(stmt.order_by(col(Site.unit))))
    if not found:
        raise AccountNotFound(name, unit.strip() if unit else None)
    if len(found) > 1:
        raise AccountAmbiguous(name, [site.unit for _, site in found])
    return found[0][0]


def list_accounts(*, session: Session, unit: str | None = None,
                  states: tuple[AccountState, ...] | None = None) -> list[tuple[Account, Site]]:
    """Registered accounts with their site rows, by 主办单位 and name; with ``unit``: that
    unit's; with ``states``: only those in one of them."""
    stmt = select(Account, Site).join(Site, col(Site.id) == col(Account.site_id))
    if unit is not None:
        stmt = stmt.where(Site.unit == unit.strip())
    if states is not None:
        stmt = stmt.where(col(Account.state).in_([s.value for s in states]))
    return [(a, s) for a, s in session.exec(stmt.order_by(col(Site.unit), col(Site.name), col(Account.id)))]


def set_filing(*, session: Session, account: Account, number: str, filed_on: date, now: datetime,
               actor: str) -> Account:
    """Record the account's 备案: its number and the day it was filed.

    Raises:
        InputError: no number, a number too long or with hidden characters, or a day
            after today or outside 2000–2100.
    """
    number = check_text(number, "备案编号", MAX_NUMBER)
    if not number:
        raise InputError("请填写备案编号")
    day = check_year_range(filed_on, "备案日期")
    if day > local(now).date():
        raise InputError(f"备案日期{day.isoformat()}晚于今天")
    before = account.filing_status
    account.filing_status, account.filing_number, account.filed_on = FilingStatus.filed.value, number, day
    account.updated_at = now
    session.add(account)
    site = site_of(session, account)
    audit.record(session=session, at=now, entity_type="account", entity_id=account.id or 0, action="filed",
                 actor=actor, from_state=before, to_state=FilingStatus.filed.value,
                 zh=f"登记备案：{describe(account, site)}，备案编号 {number}，备案日期 {filed_on.isoformat()}",
                 number=number, filed_on=filed_on.isoformat())
    # The 备案 it records is what the open filing duties ask for: they are done.
    for duty in open_duties(session=session, account_id=account.id):
        if duty.kind in FILING_KINDS:
            complete(session=session, duty_id=duty.id or 0, now=now, actor=actor, reference=number)
    return account


def account_line(account: Account, site: Site) -> str:
    """One line of the register: ``区政府发布（微信公众号）qzfb｜区政府办｜在用｜已备案（…）｜运维：张三``."""
    parts = [f"{site.name}（{platform_zh(site)}）" + (f" {site.url}" if site.url else ""),
             site.unit or account.owner_unit, state_zh(account), filing_zh(account)]
    if account.government:
        parts.append("政府账号")
    if account.operator:
        parts.append(f"运维：{account.operator}")
    return "｜".join(parts)

