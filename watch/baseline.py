"""The accepted state of a homepage (SEC-1: tampering is a change from it).

The first content check of a site stores its homepage as the baseline. Later checks
compare with it (``watch.tamper``): while nothing looks like tampering, the baseline
follows the page (news changes the text every day); once a change looks like tampering,
the baseline stays as it was — evidence of the page before — until an administrator
accepts the page as it is now (``dutybot watch accept``), which is audited and closes the
``tampered`` findings. Functions work in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from core import audit
from core.clock import fmt_short_zh
from roster.models import Site
from watch.models import Baseline, FindingKind
from watch.store import close_open
from watch.tamper import Snapshot, apply_to_row, snapshot_from_row, tamper_findings
from watch.types import Found


def baseline_of(session: Session, site: Site) -> Baseline | None:
    """The stored baseline of the site's homepage, if any."""
    return session.exec(select(Baseline).where(Baseline.site_id == site.id, Baseline.url == site.url)).first()


def check_homepage(session: Session, site: Site, snap: Snapshot, now: datetime) -> list[Found]:
    """Compare the homepage as read now with its baseline: the first time, store it; while
    there is no tampering, move the baseline along; on tampering, keep it and return the
    finding."""
    assert site.id is not None
    row = baseline_of(session, site)
    if row is None:
        row = Baseline(site_id=site.id, url=site.url, taken_at=now, text_sha256="")
        apply_to_row(row, snap, now)
        session.add(row)
        session.flush()
        return []
    found = tamper_findings(site, site.url, snapshot_from_row(row), snap)
    if not found:
        apply_to_row(row, snap, now)
        session.add(row)
    return found


def accept(session: Session, site: Site, snap: Snapshot, now: datetime, actor: str) -> tuple[Baseline, int]:
    """Take ``snap`` as the homepage's baseline; close the open ``tampered`` findings.

    Returns:
        The baseline row and how many findings were closed.
    """
    assert site.id is not None
    row = baseline_of(session, site)
    before = fmt_short_zh(row.taken_at) if row is not None else ""
    if row is None:
        row = Baseline(site_id=site.id, url=site.url, taken_at=now, text_sha256="")
    apply_to_row(row, snap, now)
    session.add(row)
    closed = close_open(session, site.id, FindingKind.tampered, now)
    audit.record(session=session, at=now, entity_type="site", entity_id=site.id, action="baseline_accepted",
                 actor=actor, zh=(f"确认首页基线：{site.name} {site.url}（{fmt_short_zh(now)} 的版本"
                                  + (f"，替换 {before} 的基线" if before else "") + "）"
                                  + (f"，关闭篡改提示 {len(closed)} 项" if closed else "")),
                 url=site.url, text_sha256=row.text_sha256, closed=[f.id for f in closed])
    session.flush()
    return row, len(closed)
