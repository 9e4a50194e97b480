"""The 通报 of an inspection round: per unit the score, the result, the 单项否决 items and the
deductions, then every rectification item with its deadline and where that deadline comes
from; headed by the basis of the round (CHECK-1's citation, or the 专项检查 label).

Rendered as text (``dutybot checks report``), an xlsx workbook (``--xlsx``) or a Word
document (``--docx``), both written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from checks.models import (
    ITEM_STATUS_ZH,
    ROUND_KIND_ZH,
    ROUND_STATUS_ZH,
    CheckHit,
    CheckResult,
    CheckRound,
    ItemStatus,
    Rectification,
    RoundKind,
    RoundStatus,
)
from checks.rounds import basis_zh, due_zh
from checks.service import PRACTICE, get_round, items
from core.clock import fmt_instant_zh, local
from core.text import append_row, clean_text
from incidents.report import atomic_write

NOT_RECORDED = "未登记"


@dataclass(frozen=True)
class UnitRow:
    """One unit's line of the 通报."""

    result: CheckResult
    hits: list[CheckHit]

    @property
    def verdict(self) -> str:
        if self.result.recorded_at is None:
            return NOT_RECORDED
        return "合格" if self.result.passed else "不合格"

    @property
    def vetoes(self) -> str:
        return "、".join(f"{h.code} {h.title}" for h in self.hits if h.veto) or "—"

    @property
    def deductions(self) -> str:
        return "、".join(f"{h.code} {h.title}" + (f"×{h.count}" if h.count > 1 else "") + f"（-{h.deduction}）"
                         for h in self.hits if not h.veto) or "—"


@dataclass(frozen=True)
class Bulletin:
    """Everything the 通报 shows."""

    round: CheckRound
    rows: list[UnitRow]
    items: list[Rectification]
    generated_at: datetime

    @property
    def title(self) -> str:
        """``2026年第四季度政府网站与政务新媒体检查情况通报``."""
        head = self.round.title
        if head.endswith("检查") and self.round.kind == RoundKind.periodic:
            return f"{head.removesuffix('检查')}政府网站与政务新媒体检查情况通报"
        return f"{head}情况通报"

    @property
    def basis(self) -> str:
        return basis_zh(self.round)

    def summary(self) -> str:
        """``检查单位 5 个：合格 3 个，不合格 1 个，未登记 1 个；整改事项 4 项，已整改 1 项``."""
        recorded = [r for r in self.rows if r.result.recorded_at is not None]
        passed = sum(1 for r in recorded if r.result.passed)
        done = sum(1 for i in self.items if i.status == ItemStatus.done)
        waiting = len(self.rows) - len(recorded)
        return (f"检查单位 {len(self.rows)} 个：合格 {passed} 个，不合格 {len(recorded) - passed} 个"
                + (f"，{NOT_RECORDED} {waiting} 个" if waiting else "")
                + f"；整改事项 {len(self.items)} 项，已整改 {done} 项")

    def notes(self) -> list[str]:
        """The lines that say what is law and what is practice."""
        return [self.basis,
                f"评分表：{self.round.sheet or '—'}（结构参照《政府网站与政务新媒体检查指标》；扣分标准为本单位评分办法，{PRACTICE}）",
                f"整改期限：各事项所列期限均为{PRACTICE}（条款未规定整改时限）"]


def build_bulletin(*, session: Session, now: datetime, round_id: int | None = None) -> Bulletin:
    """The 通报 of round ``round_id`` (the latest by default).

    Raises:
        RoundNotFound: no such round, or none yet.
    """
    round_ = get_round(session=session, round_id=round_id)
    results = list(session.exec(select(CheckResult).where(CheckResult.round_id == round_.id)
                                .order_by(col(CheckResult.unit))))
    rows = []
    for result in results:
        hits = list(session.exec(select(CheckHit).where(CheckHit.result_id == result.id).order_by(col(CheckHit.id))))
        rows.append(UnitRow(result, hits))
    # Recorded units, 合格 before 不合格, each by score (best first); then those still to check.
    rows.sort(key=lambda r: (r.result.recorded_at is None, not r.result.passed, -(r.result.score or 0),
                             r.result.unit))
    return Bulletin(round_, rows, sorted(items(session=session, round_id=round_.id), key=lambda i: i.id or 0), now)


def unit_line(row: UnitRow) -> str:
    """``区教育局｜91 分｜不合格｜单项否决：V2 站点无法访问｜扣分：D01 首页栏目更新不及时×2（-4）``."""
    if row.result.recorded_at is None:
        return f"{row.result.unit}｜{NOT_RECORDED}"
    return (f"{row.result.unit}｜{row.result.score} 分｜{row.verdict}｜单项否决：{row.vetoes}｜扣分：{row.deductions}"
            + (f"｜{row.result.note}" if row.result.note else ""))


def item_text(item: Rectification) -> str:
    """``编号 3｜区教育局｜V2 站点无法访问｜截止 2026年10月15日（星期四）24:00（工作要求…）｜待整改``."""
    state = ITEM_STATUS_ZH[ItemStatus(item.status)]
    return f"编号 {item.id}｜{item.unit}｜{item.code} {item.what}｜截止 {due_zh(item)}（{item.due_basis}）｜{state}"


def render_text(bulletin: Bulletin) -> str:
    """The 通报 as plain text."""
    r = bulletin.round
    lines = [f"【{bulletin.title}】",
             f"检查：{ROUND_KIND_ZH[RoundKind(r.kind)]}｜{r.starts_on.isoformat()} 至 {r.ends_on.isoformat()}"
             f"｜{ROUND_STATUS_ZH[RoundStatus(r.status)]}",
             *bulletin.notes(), bulletin.summary(), "一、检查结果", *(f"· {unit_line(u)}" for u in bulletin.rows),
             "二、整改事项"]
    lines += [f"· {item_text(i)}" for i in bulletin.items] or ["· 无"]
    return "\n".join(lines)


def _naive_local(instant: datetime | None) -> datetime | None:
    """Excel has no time zones: Beijing wall-clock time."""
    return None if instant is None else local(instant).replace(tzinfo=None)


def write_xlsx(bulletin: Bulletin, path: Path) -> None:
    """Sheets 检查结果, 整改事项 and 说明.

    Raises:
        InputError: the file cannot be written.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    results = book.active
    assert results is not None
    results.title = "检查结果"
    fixes, about = book.create_sheet("整改事项"), book.create_sheet("说明")
    append_row(results, ["单位", "得分", "结果", "单项否决", "扣分项", "扣分合计", "整改事项", "检查说明", "登记时间", "登记人"])
    for row in bulletin.rows:
        res = row.result
        count = sum(1 for i in bulletin.items if i.unit == res.unit)
        append_row(results, [res.unit, res.score, row.verdict, row.vetoes, row.deductions,
                             res.deductions if res.recorded_at else None, count, res.note,
                             _naive_local(res.recorded_at), res.recorded_by])
    append_row(fixes, ["编号", "单位", "条目", "问题", "整改期限", "期限依据", "状态", "完成时间", "完成人", "整改说明"])
    for item in bulletin.items:
        append_row(fixes, [item.id, item.unit, item.code, item.what, due_zh(item), item.due_basis,
                           ITEM_STATUS_ZH[ItemStatus(item.status)], _naive_local(item.done_at), item.done_by, item.note])
    append_row(about, ["通报", bulletin.title])
    append_row(about, ["检查期间", f"{bulletin.round.starts_on.isoformat()} 至 {bulletin.round.ends_on.isoformat()}"])
    for note in bulletin.notes():
        head, _, rest = note.partition("：")
        append_row(about, [head, rest or note])
    append_row(about, ["总体情况", bulletin.summary()])
    append_row(about, ["生成时间", _naive_local(bulletin.generated_at)])
    for sheet in (results, fixes):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for line in sheet.iter_rows(min_row=2):
            for cell in line:
                if isinstance(cell.value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm"
        sheet.freeze_panes = "A2"
        for index in range(1, sheet.max_column + 1):
            sheet.column_dimensions[chr(64 + index)].width = 18
    about.column_dimensions["A"].width, about.column_dimensions["B"].width = 14, 90
    for line in about.iter_rows():
        for cell in line:
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
    atomic_write(path, lambda tmp: book.save(tmp))


def write_docx(bulletin: Bulletin, path: Path) -> None:
    """The 通报 as a Word document: basis, overall result, a table of the units, the items.

    Raises:
        InputError: the file cannot be written.
    """
    from docx import Document
    from docx.oxml.ns import qn

    doc = Document()
    for style_name in ("Normal", "Title", "Heading 1"):
        # Word picks the East Asian font separately; without it CJK text falls back oddly.
        rfonts = doc.styles[style_name].element.get_or_add_rPr().get_or_add_rFonts()
        rfonts.set(qn("w:eastAsia"), "宋体")
    doc.core_properties.title = bulletin.title
    doc.add_heading(clean_text(bulletin.title), level=0)
    for note in bulletin.notes():
        doc.add_paragraph(clean_text(note))
    doc.add_paragraph(bulletin.summary())
    doc.add_heading("一、检查结果", level=1)
    table = doc.add_table(rows=1, cols=5)
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, ("单位", "得分", "结果", "单项否决", "扣分项"), strict=True):
        cell.text = text
    for row in bulletin.rows:
        cells = table.add_row().cells
        values = (row.result.unit, "" if row.result.score is None else str(row.result.score), row.verdict,
                  row.vetoes, row.deductions)
        for cell, text in zip(cells, values, strict=True):
            cell.text = clean_text(text)
    doc.add_heading("二、整改事项", level=1)
    if not bulletin.items:
        doc.add_paragraph("无。")
    for item in bulletin.items:
        doc.add_paragraph(clean_text(item_text(item)))
    doc.sections[0].footer.paragraphs[0].text = f"本通报由 dutybot 根据检查记录生成，生成时间：{fmt_instant_zh(bulletin.generated_at)}"
    atomic_write(path, lambda tmp: doc.save(str(tmp)))
