"""Findings into the workflow (DUTY-2, SEC-1, SENS-2): who hears of what site watch found,
and which findings open an incident.

- A finding that is an incident (:data:`INCIDENT_TYPE`: the site down for ``down_after``
  probes in a row, a tampered homepage, a hidden link, a sensitive term) opens the
  matching playbook once — reporter 网站巡检, the site, the URL and the detail — with the
  page archived as evidence first (SEC-2: keep the evidence before anything is deleted;
  for tampering both the accepted baseline and the page as it is now). The incident's own
  announcement tells its ladder; the incident number is kept on the finding. A finding
  whose page already has an open incident of that type joins it instead (a note on its
  timeline, the evidence added), so a person's report and the bot's are one incident.
- Every other new finding is a notice: one short message per site and run to the unit's
  duty officer on duty now (else the unit's leader on duty, else its leaders, else its
  admins, else every admin), each line with what to do.
- A site that was down and answers again: the same people are told it is back, and its
  incident gets a note.

Nothing here commits; the messages are queued (``core.outbox``) in the caller's
transaction, with one event key per finding, so a run is never told twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from core.clock import fmt_short_zh
from core.messages import Button, Outbound, duration_zh
from core.outbox import enqueue
from core.profiles import Profile
from core.workdays import WorkdayCalendar
from incidents import escalation
from incidents.actions import open_incident
from incidents.address import address_key
from incidents.duplicates import normalize_url
from incidents.evidence import store_page, store_text
from incidents.fetch import FetchedPage
from incidents.grades import grade_names
from incidents.models import OPEN_STATUSES, TYPE_ZH, Grade, Incident, IncidentType, Source
from incidents.service import IncidentPolicy, default_grade, record
from people.models import Person, Role
from people.service import people_with_role
from roster.models import Site
from watch.models import FINDING_ZH, Baseline, Finding, FindingKind
from watch.pages import Page
from watch.store import StoreResult, finding_data, set_finding_data

log = logging.getLogger(__name__)

#: Who the timeline says acted, and the reporter's name on the incident.
ACTOR = "网站巡检"
INCIDENT_TYPE: dict[FindingKind, IncidentType] = {
    FindingKind.unreachable: IncidentType.site_down,
    FindingKind.tampered: IncidentType.tamper,
    FindingKind.hidden_link: IncidentType.tamper,       # 暗链/挂马
    FindingKind.sensitive_term: IncidentType.sensitive,
}
#: What the officer does about a notice, in a few words.
ACTION_ZH: dict[FindingKind, str] = {
    FindingKind.unreachable: "请立即通知技术保障排查",
    FindingKind.slow: "请通知技术保障排查服务器和网络",
    FindingKind.cert_expiry: "请通知技术保障在到期前更换网站安全证书",
    FindingKind.stale_column: "请督促栏目责任人及时更新",
    FindingKind.empty_column: "请补充内容或撤并该栏目（严禁出现空白栏目）",
    FindingKind.broken_link: "请修复或删除该链接",
    FindingKind.wrong_term: "请核实更正，重新审校后发布",
    FindingKind.sensitive_term: "请立即核实，确属敏感信息的先保全证据再删除",
    FindingKind.hidden_link: "请立即核实并清除隐藏链接",
    FindingKind.tampered: "请立即核实页面改动",
    FindingKind.availability: "请通知技术保障排查故障原因，保障网站稳定访问",
}
REFUSED_ACTION = "请管理员确认：如为本单位内网网站，用 dutybot sites add 名称 --intranet 登记后再巡检"
MAX_LINES = 8
MAX_LINE = 160
TOLD = "_told"


@dataclass(frozen=True)
class Workflow:
    """What opening incidents needs from outside: the calendar and rule profile that time
    the steps, the incidents policy (who is on duty, who supports a site), and where the
    evidence files go."""

    calendar: WorkdayCalendar
    profile: Profile
    incident_policy: IncidentPolicy
    evidence_dir: Path


@dataclass
class Dispatched:
    """What one dispatch did: incidents opened or joined (numbers), messages queued."""

    opened: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    messages: int = 0


def _reporter(now: datetime) -> Person:
    """The reporter of watch's incidents: nobody's account (``reporter_id`` stays empty);
    never stored."""
    return Person(name=ACTOR, roles="", created_at=now)


def is_incident(finding: Finding) -> bool:
    """Whether ``finding`` opens an incident (a refused address is a registration problem,
    not a site down)."""
    kind = FindingKind(finding.kind)
    return kind in INCIDENT_TYPE and not finding_data(finding).get("refused")


def duty_people(session: Session, site: Site, now: datetime, policy: IncidentPolicy) -> list[Person]:
    """Who hears of a finding on ``site``: the unit's officer(s) on duty now, else its
    leader(s) on duty, else its leaders, else its admins, else every admin. A site shared
    by every unit (no unit) goes to whoever is on duty."""
    def mine(people: Sequence[Person]) -> list[Person]:
        return [p for p in people if p.active and (not site.unit or p.unit == site.unit)]

    found = (mine(policy.on_duty.officers_at(session=session, at=now))
             or mine(policy.on_duty.leaders_at(session=session, at=now))
             or mine(people_with_role(session=session, role=Role.leader))
             or mine(admins := people_with_role(session=session, role=Role.admin)) or admins)
    return list({p.id: p for p in found}.values())


def _short(text: str, limit: int = MAX_LINE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _send(session: Session, people: Sequence[Person], text: str, *, event: str, now: datetime,
          buttons: tuple[Button, ...] = ()) -> list[Person]:
    sent = []
    for person in people:
        if person.id is None:
            continue
        if enqueue(session=session, message=Outbound(text, person_id=person.id, buttons=buttons), now=now,
                   event_key=event) is not None:
            sent.append(person)
    return sent


def _remember_told(finding: Finding, people: Sequence[Person]) -> None:
    data = finding_data(finding)
    told = [int(i) for i in data.get(TOLD, []) if isinstance(i, int)]
    data[TOLD] = list(dict.fromkeys([*told, *(p.id for p in people if p.id is not None)]))
    set_finding_data(finding, data)


# ---- evidence --------------------------------------------------------------------------

def _as_fetched(page: Page, at: datetime) -> FetchedPage:
    return FetchedPage(url=page.url, final_url=page.final_url or page.url, status=page.status or 0,
                       content_type="text/html; charset=utf-8", body=page.html.encode("utf-8"), fetched_at=at)


def _page_for(pages: Mapping[str, Page], url: str) -> Page | None:
    page = pages.get(url)
    if page is None:
        key = normalize_url(url)
        page = next((p for p in pages.values() if key and normalize_url(p.final_url or p.url) == key), None)
    return page


def _archive(session: Session, incident: Incident, finding: Finding, pages: Mapping[str, Page],
             workflow: Workflow, now: datetime) -> int:
    """Keep the evidence of ``finding`` on ``incident``; how many pieces were kept. A disk
    that refuses the file leaves a text record saying so (the incident still opens)."""
    kept = 0
    page = _page_for(pages, finding.url)
    items: list[tuple[str, FetchedPage]] = []
    if FindingKind(finding.kind) == FindingKind.tampered:
        baseline = session.exec(select(Baseline).where(Baseline.site_id == finding.site_id,
                                                       Baseline.url == finding.url)).first()
        if baseline is not None and baseline.html:
            items.append(("基线版本", FetchedPage(url=baseline.url, final_url=baseline.url, status=200,
                                               content_type="text/html; charset=utf-8",
                                               body=baseline.html.encode("utf-8"), fetched_at=baseline.taken_at)))
    if page is not None and page.html:
        items.append(("当前版本", _as_fetched(page, now)))
    for label, fetched in items:
        try:
            store_page(session=session, incident=incident, page=fetched, evidence_dir=workflow.evidence_dir,
                       person=None, actor=ACTOR)
            kept += 1
        except OSError as exc:
            log.error("evidence of finding %s (%s) not written: %s", finding.id, label, exc)
            store_text(session=session, incident=incident, person=None, actor=ACTOR, now=now,
                       text=f"网站巡检：{label}网页存档失败（存储目录无法写入），请手动保全证据：{finding.url}")
    first = fmt_short_zh(finding.first_seen)
    what = "；".join(f"第{n}份为{label}（{fmt_short_zh(f.fetched_at)} 抓取）"
                    for n, (label, f) in enumerate(items, start=1))
    status = ""
    if page is not None and not page.ok:
        status = f"；访问结果：{page.failure}"
    store_text(session=session, incident=incident, person=None, actor=ACTOR, now=now,
               text=(f"网站巡检记录：{FINDING_ZH[FindingKind(finding.kind)]}｜{finding.detail}｜网址 {finding.url}"
                     f"｜首次发现 {first}{status}" + (f"｜网页存档：{what}" if what else ""))[:2000])
    return kept + 1


# ---- incidents -------------------------------------------------------------------------

def _open_incident_of(session: Session, type_: IncidentType, site: Site, url: str) -> Incident | None:
    """The open incident of ``type_`` about this page (for a site down: this site)."""
    key = normalize_url(url) if url else None
    about: list[ColumnElement[bool]] = []
    if key:   # found by the indexed address key; compared exactly below
        about.append(col(Incident.address_key) == address_key(url))
    if type_ == IncidentType.site_down:
        about.append(and_(col(Incident.site) == site.name, col(Incident.unit) == site.unit))
    if not about:
        return None
    stmt = (select(Incident).where(Incident.type == type_.value, col(Incident.status).in_(list(OPEN_STATUSES)),
                                   or_(*about))
            .order_by(col(Incident.reported_at).desc(), col(Incident.id).desc()))
    for incident in session.exec(stmt):
        if key and incident.url and normalize_url(incident.url) == key:
            return incident
        if type_ == IncidentType.site_down and incident.site == site.name and incident.unit == site.unit:
            return incident
    return None


def _grade(type_: IncidentType, profile: Profile) -> Grade:
    grade = default_grade(type_)
    return grade if grade in grade_names(profile).allowed else Grade.general


def _incident_for(session: Session, site: Site, finding: Finding, pages: Mapping[str, Page], workflow: Workflow,
                  now: datetime, done: Dispatched) -> tuple[Incident, list[Person]]:
    """Open the finding's incident (or join the open one about its page); who was told."""
    type_ = INCIDENT_TYPE[FindingKind(finding.kind)]
    what = f"网站巡检发现{FINDING_ZH[FindingKind(finding.kind)]}：{finding.detail}"
    existing = _open_incident_of(session, type_, site, finding.url)
    if existing is not None:
        record(session, existing, now, "note", f"记录：{_short(what, 300)}", person=None, actor=ACTOR)
        _archive(session, existing, finding, pages, workflow, now)
        done.joined.append(existing.number)
        return existing, []
    incident = open_incident(
        session=session, calendar=workflow.calendar, profile=workflow.profile, policy=workflow.incident_policy,
        type_=type_, target=site.name, description=what[:1000], reporter=_reporter(now), unit=site.unit,
        source=Source.self_found, grade=_grade(type_, workflow.profile), now=now, actor=ACTOR)
    incident.url = finding.url or site.url
    session.add(incident)
    _archive(session, incident, finding, pages, workflow, now)
    told = escalation.announce_new(session, incident, profile=workflow.profile, policy=workflow.incident_policy,
                                   now=now)
    done.opened.append(incident.number)
    return incident, told


# ---- the messages ----------------------------------------------------------------------

def _notice_line(n: int, finding: Finding) -> str:
    kind = FindingKind(finding.kind)
    action = REFUSED_ACTION if finding_data(finding).get("refused") else ACTION_ZH[kind]
    where = f"\n   {finding.url}" if finding.url and finding.url not in finding.detail else ""
    return f"{n}. {FINDING_ZH[kind]}：{_short(finding.detail)}{where}\n   处理：{action}"


def _notices(session: Session, site: Site, findings: Sequence[Finding], people: Sequence[Person],
             now: datetime) -> int:
    """One message for the new notices of a run; event key by the findings' ids."""
    if not findings or not people:
        return 0
    ids = sorted(f.id for f in findings if f.id is not None)
    event = f"watch:finding:{ids[0]}" if len(ids) == 1 else f"watch:findings:{ids[0]}-{ids[-1]}:{len(ids)}"
    lines = [f"【网站巡检】{site.name}：发现{len(findings)}个问题"]
    lines += [_notice_line(n, f) for n, f in enumerate(findings[:MAX_LINES], start=1)]
    if len(findings) > MAX_LINES:
        lines.append(f"……另有{len(findings) - MAX_LINES}个，查看：/sites status")
    lines.append("问题消除后，下次巡检自动销号。查看全部：/sites status")
    sent = _send(session, people, "\n".join(lines), event=event, now=now)
    for finding in findings:
        _remember_told(finding, sent)
    return len(sent)


def _incident_notice(session: Session, site: Site, finding: Finding, incident: Incident,
                     people: Sequence[Person], told: Sequence[Person], now: datetime) -> int:
    """Tell the duty people the incident's announcement did not reach."""
    told_ids = {p.id for p in told}
    rest = [p for p in people if p.id not in told_ids]
    kind = FindingKind(finding.kind)
    text = (f"【网站巡检】{site.name}：{FINDING_ZH[kind]}，已登记事件 {incident.number}"
            f"（{TYPE_ZH[IncidentType(incident.type)]}）。\n{_short(finding.detail)}\n"
            f"处理：{ACTION_ZH[kind]}，按事件处置步骤办理：/incident show {incident.number}")
    sent = _send(session, rest, text, event=f"watch:finding:{finding.id}:incident", now=now,
                 buttons=escalation.ack_buttons(incident))
    _remember_told(finding, [*told, *sent])
    return len(sent)


def _back(session: Session, site: Site, finding: Finding, people: Sequence[Person], now: datetime) -> int:
    """A site that was down answers again: tell those told it was down (else the duty
    people), and note it on its incident."""
    ids = [i for i in finding_data(finding).get(TOLD, []) if isinstance(i, int)]
    earlier = [p for p in (session.get(Person, i) for i in ids) if p is not None and p.active]
    down = duration_zh(now - finding.first_seen) if now > finding.first_seen else ""
    text = f"【网站恢复】{site.name} 已恢复访问（{fmt_short_zh(now)} 巡检正常" + (f"，中断约{down}" if down else "") + "）。"
    if finding.incident_number:
        incident = session.exec(select(Incident).where(Incident.number == finding.incident_number)).first()
        if incident is not None and incident.is_open:
            record(session, incident, now, "note", f"记录：网站巡检确认已恢复访问（{fmt_short_zh(now)}）",
                   person=None, actor=ACTOR)
            text += f"\n事件 {incident.number}：请核实后完成“确认恢复访问”步骤：/incident show {incident.number}"
    return len(_send(session, earlier or people, text, event=f"watch:finding:{finding.id}:back", now=now))


def dispatch(session: Session, *, site: Site, result: StoreResult, workflow: Workflow,
             pages: Mapping[str, Page], now: datetime) -> Dispatched:
    """Push the new findings of one store, open their incidents, say when a site is back.

    Args:
        session: the caller's, the same transaction as the store; not committed here.
        site: the site the findings are on.
        result: what :func:`watch.store.store_findings` returned.
        workflow: calendar, profile, incidents policy and evidence folder.
        pages: the pages this run read, by URL (archived as evidence).
        now: the run's time.

    Returns:
        The incidents opened or joined and how many messages were queued.
    """
    done = Dispatched()
    if not result.new and not result.closed:
        return done              # the usual probe: nothing to tell, nobody to look up
    people = duty_people(session, site, now, workflow.incident_policy)
    notices: list[Finding] = []
    for finding in result.new:
        if not is_incident(finding):
            notices.append(finding)
            continue
        if finding.incident_number:
            continue
        incident, told = _incident_for(session, site, finding, pages, workflow, now, done)
        finding.incident_number = incident.number
        session.add(finding)
        done.messages += len(told) + _incident_notice(session, site, finding, incident, people, told, now)
    done.messages += _notices(session, site, notices, people, now)
    for finding in result.closed:
        if FindingKind(finding.kind) == FindingKind.unreachable and not finding_data(finding).get("refused"):
            done.messages += _back(session, site, finding, people, now)
    session.flush()
    return done
