"""CLI command ``dutybot playbooks [TYPE] [--profile P] [--json]``: every incident playbook
step as it applies under one rule profile — its deadline, whether it is mandatory, whether
it waits for evidence, whom it reports to, and the article (own, or 参照 another document's).

The text is for the office reading its own procedures; the JSON is for checking them
(``key``, ``title``, ``mandatory``, ``evidence_first``, ``reports_to``, ``citation`` per step).
"""

from __future__ import annotations

import argparse
import json

from bot.cli.common import cli_settings
from core.profiles import load_profile
from incidents.grades import grade_names
from incidents.models import SOURCE_ZH, TYPE_ZH, IncidentType, Source
from incidents.playbooks import OWNER_ZH, ResolvedStep, load_playbooks, resolve_steps
from incidents.service import parse_type


def _step_line(n: int, step: ResolvedStep) -> list[str]:
    flags = ["必做" if step.mandatory else "可选（经研判）"]
    if step.evidence_first:
        flags.append("须先保全证据")
    lines = [f"  {n}. {step.title}（{'，'.join(flags)}）",
             f"     时限：{step.timing.period_zh}｜负责：{OWNER_ZH.get(step.spec.owner, step.spec.owner)}"
             f"｜依据：{step.timing.citation}"]
    if step.reports_to:
        lines.append(f"     报告对象：{'、'.join(step.reports_to)}（{step.reports_citation or '本地规定未作要求'}）")
    if step.spec.reports:
        lines.append(f"     是否必须报告：{'是' if step.mandatory else '否'}（{step.mandatory_citation}）")
    if step.evidence_first:
        lines.append(f"     证据要求：{step.evidence_citation}")
    return lines


def cmd_playbooks(args: argparse.Namespace) -> int:
    """dutybot playbooks [TYPE] [--profile NAME] [--json]"""
    settings = cli_settings(args)
    name = args.profile or settings.rules.profile
    overrides = settings.rules.overrides if name == settings.rules.profile else {}
    profile = load_profile(name, overrides=overrides)
    types = [parse_type(args.type)] if args.type else list(IncidentType)
    source = Source.district if args.district else Source.self_found
    at_once = settings.incidents.at_once_minutes
    books = load_playbooks()
    out = []
    for kind in types:
        spec = books[kind]
        steps = resolve_steps(spec, source, profile, at_once)
        out.append({"type": kind.value, "type_zh": TYPE_ZH[kind], "title": spec.title,
                    "playbook": spec.name, "default_grade": grade_names(profile).zh(spec.default_grade),
                    "steps": [s.as_dict() for s in steps]})
    if args.json:
        print(json.dumps({"profile": profile.name, "document": profile.document,
                          "source": SOURCE_ZH[source], "playbooks": out}, ensure_ascii=False, indent=2))
        return 0
    print(f"处置预案（规则配置档：{profile.name}，《{profile.document}》；{SOURCE_ZH[source]}）")
    for kind, book in zip(types, out, strict=True):
        print(f"\n【{TYPE_ZH[kind]}】{book['title']}（未指定等级时按“{book['default_grade']}”处理）")
        for n, step in enumerate(resolve_steps(books[kind], source, profile, at_once), start=1):
            print("\n".join(_step_line(n, step)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot playbooks`` to the dutybot parser."""
    p = sub.add_parser("playbooks", help="查看各类事件的处置步骤（按规则配置档）")
    p.add_argument("type", nargs="?", metavar="类型",
                   help=f"事件类型（{'、'.join(TYPE_ZH.values())}；默认全部）")
    p.add_argument("--profile", help="配置档名称（默认取配置）")
    p.add_argument("--district", action="store_true", help="按区政府办公室通报的情形显示")
    p.add_argument("--json", action="store_true", help="输出 JSON")
    p.set_defaults(func=cmd_playbooks)

