"""Training before duty (STAFF-1, 先培训后上岗) on the roster.

Where the rule profile states STAFF-1 (梁平办法第三十四条 新到岗人员应先培训后上岗; 云南办法
第三十七条 从事政务新媒体工作的人员，须经培训后方可上岗; 江川 参照云南), an officer (值班员) may
hold a shift only on or after the day their training is recorded (``Person.trained_on``,
``dutybot people trained`` / ``/people trained``). The article speaks of the people doing the
work; leaders on duty (带班领导) are not checked. The roster then:

- ``generate``: leaves untrained officers out of the draft and says who (``roster.drafts``);
- ``publish``: refuses a draft that still has one (``TrainingRequired``) — the draft can be
  regenerated or the training recorded at no cost, and publishing is what makes the roster
  binding and tells the people;
- import, substitution and swaps: warn, naming the people and citing the article, and record
  it in the audit log — those carry a person's decision, often at short notice, and refusing
  would leave a shift empty, which is worse;
- ``/assign`` (filling a gap, ``roster.assign``): refuses — it only adds a person to an empty
  place, so refusing displaces nobody, and the gap warning keeps reminding;
- the daily gap warning (``roster.gaps``) lists untrained officers on the coming shifts.

Where the profile does not state STAFF-1 nothing here is enforced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from core import audit
from core.errors import DutybotError
from core.profiles import Profile
from people.models import Person
from roster.models import Shift
from roster.service import ShiftView, label, views

RULE = "STAFF-1"
HINT = "登记培训：/people trained 姓名 [日期]，或 dutybot people trained 姓名 日期"
MAX_LINES = 40


def required(profile: Profile | None) -> bool:
    """Whether the profile states that officers are trained before duty (STAFF-1)."""
    return profile is not None and profile.flag(RULE, "trained_before_duty")


def trained_for(person: Person, day: date) -> bool:
    """Trained on or before ``day`` (the duty day a shift starts on)."""
    return person.trained_on is not None and person.trained_on <= day


@dataclass(frozen=True)
class Untrained:
    """An officer on a shift before their recorded training."""

    shift: Shift
    person: Person

    def zh(self) -> str:
        """``11月24日（星期二）白班 08:30–17:30：张三（未登记培训）``."""
        when = f"{self.person.trained_on.isoformat()} 培训" if self.person.trained_on else "未登记培训"
        return f"{label(self.shift)}：{self.person.name}（{when}）"


def untrained_in(shown: Iterable[ShiftView]) -> list[Untrained]:
    """The untrained active officers of these shifts, in shift order."""
    return [Untrained(v.shift, p) for v in shown for p in v.officers
            if p.active and not trained_for(p, v.shift.day)]


def untrained_on(session: Session, shifts: Sequence[Shift]) -> list[Untrained]:
    """The untrained active officers of ``shifts``."""
    return untrained_in(views(session, list(shifts)))


def names(items: Iterable[Untrained]) -> str:
    """``张三、李四`` (each once)."""
    return "、".join(dict.fromkeys(i.person.name for i in items))


def lines(items: Sequence[Untrained], indent: str = "  ") -> list[str]:
    """One line per item, at most :data:`MAX_LINES`."""
    out = [f"{indent}{i.zh()}" for i in items[:MAX_LINES]]
    if len(items) > MAX_LINES:
        out.append(f"{indent}……另有 {len(items) - MAX_LINES} 处")
    return out


def warning(profile: Profile, items: Sequence[Untrained], *, what: str = "以下值班员尚未登记培训即上岗") -> list[str]:
    """The warning lines, citing the article ([] when nothing to say)."""
    if not items or not required(profile):
        return []
    return [f"注意：{what}（{names(items)}）：", *lines(items), f"{profile.basis(RULE)}。{HINT}"]


def record(session: Session, items: Sequence[Untrained], *, now: datetime, actor: str, how: str) -> None:
    """Write each untrained officer put on duty to the audit log (entity ``shift``)."""
    for item in items:
        audit.record(session=session, at=now, entity_type="shift", entity_id=item.shift.id or 0,
                     action="untrained_on_duty", actor=actor, person=item.person.name, how=how,
                     zh=f"{label(item.shift)}：值班员 {item.person.name} 尚未登记培训（{how}）")


class TrainingRequired(DutybotError):
    """Publishing refused: officers in the draft are not trained (STAFF-1)."""

    def __init__(self, profile: Profile, items: Sequence[Untrained], start: date, end: date) -> None:
        super().__init__("\n".join([
            f"未发布：草稿中有值班员尚未登记培训，不能安排上岗（{names(items)}）：",
            *lines(items),
            f"{profile.basis(RULE)}。",
            f"{HINT}；或重新生成草稿（不会安排未培训人员）：dutybot roster generate --from {start} --to {end}"]))
        self.items = list(items)
