"""Grades as the office's own document names them (GRADE-1, issue 14 item 1).

The stored grade is always the bot's enum (:class:`~incidents.models.Grade`: general,
major, special), and the escalation ladders stay per enum grade. What people read and
type follows the profile's ``GRADE-1.grades``, the document's names in the order
general, major, special:

=========== ============================== =======================
profile     document's names               shown
=========== ============================== =======================
liangping   一般信息、重大信息、特级信息   一般、重大、特级
guzhang     一般信息、重要信息 (two only)  一般信息、重要信息
yunnan      一般情况、重要信息、重大信息   一般情况、重要信息、重大信息
baoji       — (未作要求)                   一般、重大、特级
default     梁平's (参照)                  一般、重大、特级
=========== ============================== =======================

A document's names are shown where they *differ* from the bot's words: ``重大信息`` is the
bot's ``重大`` with the noun 信息, so 梁平 (and the composite default) read as before,
while 古丈 (一般信息、重要信息) and 云南 (一般情况、重要信息、重大信息) grade in words of
their own, which are shown as they are written — all of them, so a card never mixes the
bot's 一般 with the document's 重要信息.
Either word is accepted when typed (``重大`` or ``重大信息`` under 梁平, ``重要信息``,
``重要`` or ``重大`` under 古丈). Where the bot's word and a document's name collide (云南's
重大信息 is its top grade, the bot's 重大 the middle one) the exact name wins and the
bare bot word keeps its own meaning; the reply shows the name it became.

A document with two grades (古丈办法第十条) has no 特级: grading an incident 特级 is
refused, naming the article. The name is recorded with the incident
(``Incident.grade_name``) when it is opened or re-graded, like a step's citation, so the
card, the report and the briefing show it without the profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import DutybotError, InputError
from core.profiles import NOT_REQUIRED, Profile
from incidents.models import GRADE_ALIASES, GRADE_ZH, Grade

GRADE_ORDER = (Grade.general, Grade.major, Grade.special)
_NOUN = "信息"


@dataclass(frozen=True)
class GradeNames:
    """The grades of one profile: the document's names, what is shown, what is accepted."""

    names: dict[Grade, str] = field(default_factory=dict)   # the document's, by grade
    citation: str = NOT_REQUIRED                             # 古丈办法第十条 / 参照《…》第…条

    @property
    def stated(self) -> bool:
        """Whether the office's rules (or a parent's) name the grades at all."""
        return bool(self.names)

    @property
    def allowed(self) -> tuple[Grade, ...]:
        """The grades that exist under the document (all three where it names none)."""
        return tuple(g for g in GRADE_ORDER if not self.names or g in self.names)

    @property
    def differs(self) -> bool:
        """Whether the document grades in words of its own (古丈, 云南), not the bot's
        一般/重大/特级 with the noun 信息 (梁平, and the default that refers to it)."""
        return any(name.removesuffix(_NOUN) != GRADE_ZH[g] for g, name in self.names.items())

    def zh(self, grade: Grade | str) -> str:
        """``重要信息``, ``一般信息`` (古丈); ``重大`` (梁平: 重大信息 is the bot's word plus 信息)."""
        grade = Grade(grade)
        own = self.names.get(grade)
        return own if own is not None and self.differs else GRADE_ZH[grade]

    def recorded(self, grade: Grade) -> str | None:
        """What ``Incident.grade_name`` keeps: the shown name where it differs, else None."""
        shown = self.zh(grade)
        return None if shown == GRADE_ZH[grade] else shown

    def choices(self) -> str:
        """``一般信息、重要信息`` / ``一般、重大、特级``."""
        if not self.names:
            return "、".join(GRADE_ZH[g] for g in GRADE_ORDER)
        return "、".join(self.names[g] for g in self.allowed)

    def _aliases(self) -> dict[str, Grade]:
        found: dict[str, Grade] = {}
        for grade, name in self.names.items():       # the document's names first
            found[name] = grade
        for word, grade in GRADE_ALIASES.items():    # then the bot's words (重大 stays major)
            found.setdefault(word, grade)
            found.setdefault(word + _NOUN, grade)
        for grade, name in self.names.items():       # 重要 for 重要信息, unless taken
            found.setdefault(name.removesuffix(_NOUN), grade)
        return found

    def is_grade_word(self, text: str) -> bool:
        """Whether ``text`` names a grade (even one this document lacks, to refuse it)."""
        return text.strip() in self._aliases()

    def parse(self, text: str) -> Grade:
        """The grade a person typed; refuses one the document does not have.

        Raises:
            InputError: not a grade.
            DutybotError: a grade the office's document does not have (古丈: 特级).
        """
        grade = self._aliases().get(text.strip())
        if grade is None:
            raise InputError(f"无法识别的等级“{text.strip()}”（可用：{self.choices()}"
                             + (f"；也可写 {'、'.join(GRADE_ZH[g] for g in self.allowed)}" if self.names else "")
                             + "）。")
        self.require(grade, typed=text.strip())
        return grade

    def require(self, grade: Grade, *, typed: str | None = None) -> None:
        """Refuse a grade the office's document does not have, naming the article.

        Raises:
            DutybotError: ``古丈办法第十条只分一般信息和重要信息，没有“特级”一级……``.
        """
        if grade in self.allowed:
            return
        have = "和".join(self.names[g] for g in self.allowed)
        raise DutybotError(f"{self.citation}只分{have}，没有“{typed or GRADE_ZH[grade]}”一级；"
                           f"请选用：{self.choices()}。")


def grade_names(profile: Profile) -> GradeNames:
    """The grades of ``profile`` (its ``GRADE-1.grades``; the bot's words where none)."""
    found = profile.find("GRADE-1", "grades")
    if found is None or not found.items:
        return GradeNames()
    return GradeNames(dict(zip(GRADE_ORDER, found.items, strict=False)), found.citation)
