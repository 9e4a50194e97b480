"""``dutybot people role|unit|deactivate|reactivate``: a person's working life on the
command line, parallel to ``/people role|unit|deactivate|reactivate`` in chat.

``add_commands(people_sub)`` adds them to the ``dutybot people`` sub-commands. Bad input
raises :class:`~core.errors.InputError` (exit 2, one Chinese line); an unknown person
:class:`~core.errors.NotFound` (exit 1).
"""

from __future__ import annotations

import argparse

from sqlmodel import Session

from bot import staffing
from bot.app import open_database
from bot.cli.common import cli_calendar, cli_settings
from core.clock import SystemClock
from core.profiles import Profile
from people import filings
from people.edits import parse_unit, reactivate_person, set_roles, set_unit
from people.models import Person, StaffChange
from people.service import find_person, parse_roles, reachable

ACTOR = "cli"


def _filed(session: Session, profile: Profile, person: Person, change: StaffChange, old: str) -> list[str]:
    """Record the staff change for 备案 (STAFF-2; the admins are told); the lines to print."""
    rows = filings.record_changes(session=session, profile=profile, changes=[(person, change, old)],
                                  now=SystemClock().now(), actor=ACTOR)
    note = filings.reply_note(profile, rows)
    return [note] if note else []


def cmd_people_role(args: argparse.Namespace) -> int:
    """dutybot people role 姓名 角色[、角色]"""
    settings = cli_settings(args)
    roles = parse_roles(" ".join(args.roles))
    with Session(open_database(settings)) as session:
        person = find_person(session=session, name=args.name)
        old = set_roles(session=session, person=person, roles=roles, now=SystemClock().now(), actor=ACTOR)
        lines = [f"已将 {person.name} 的角色由 {old} 改为 {person.roles_zh()}。",
                 *_filed(session, settings.profile(), person, StaffChange.roles, old)]
        session.commit()
    print("\n".join(lines))
    return 0


def cmd_people_unit(args: argparse.Namespace) -> int:
    """dutybot people unit 姓名 单位"""
    settings = cli_settings(args)
    unit = parse_unit(" ".join(args.unit))
    with Session(open_database(settings)) as session:
        person = find_person(session=session, name=args.name)
        old = set_unit(session=session, person=person, unit=unit, now=SystemClock().now(), actor=ACTOR)
        lines = [f"已将 {person.name} 的单位由 {old or '（无）'} 改为 {person.unit or '（无）'}。",
                 *_filed(session, settings.profile(), person, StaffChange.unit, old)]
        session.commit()
    print("\n".join(lines))
    return 0


def cmd_people_deactivate(args: argparse.Namespace) -> int:
    """dutybot people deactivate 姓名 [--to 接收人]"""
    settings = cli_settings(args)
    profile, now = settings.profile(), SystemClock().now()
    with Session(open_database(settings)) as session:
        person = find_person(session=session, name=args.name)
        receiver = find_person(session=session, name=args.to) if args.to else None
        dep = staffing.deactivate(session=session, person=person, receiver=receiver, now=now, actor=ACTOR,
                                  calendar=cli_calendar(settings), patterns=settings.roster.patterns(),
                                  profile=profile)
        text = staffing.render(dep, profile, now)
        session.commit()
    print(text)
    return 0


def cmd_people_reactivate(args: argparse.Namespace) -> int:
    """dutybot people reactivate 姓名"""
    settings = cli_settings(args)
    with Session(open_database(settings)) as session:
        person = reactivate_person(session=session, person=find_person(session=session, name=args.name,
                                                                        inactive=True),
                                   now=SystemClock().now(), actor=ACTOR)
        bound = reachable(session=session, people=[person])
        lines = [f"已恢复 {person.name}（{person.roles_zh()}）：重新出现在名单、排班和通知中。"
                 + ("" if bound else f"如需绑定聊天账号：dutybot people invite {person.name}。")
                 + "原有班次和已交接的事项不会自动恢复。",
                 *_filed(session, settings.profile(), person, StaffChange.reactivated, "")]
        session.commit()
    print("\n".join(lines))
    return 0


def add_commands(people_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add role, unit, deactivate and reactivate to the ``people`` sub-commands."""
    p = people_sub.add_parser("role", help="修改角色（人员变动备案）")
    p.add_argument("name", metavar="姓名")
    p.add_argument("roles", metavar="角色", nargs="+",
                   help="新角色，以顿号分隔：值班员、带班领导、主要负责人、管理员、外部联系人、技术保障")
    p.set_defaults(func=cmd_people_role)
    p = people_sub.add_parser("unit", help="修改单位（人员变动备案）")
    p.add_argument("name", metavar="姓名")
    p.add_argument("unit", metavar="单位", nargs="+", help="新单位；写“无”清除")
    p.set_defaults(func=cmd_people_unit)
    p = people_sub.add_parser("deactivate", help="停用人员（离岗、调离）：撤下今后的班次并通知空缺，"
                                                 "未办结的事件、留言交给 --to 指定的人；人员变动备案")
    p.add_argument("name", metavar="姓名")
    p.add_argument("--to", metavar="接收人", help="交接人：接收其未办结的事件和留言（有未办结事项时必填）")
    p.set_defaults(func=cmd_people_deactivate)
    p = people_sub.add_parser("reactivate", help="恢复已停用的人员（返岗；人员变动备案）")
    p.add_argument("name", metavar="姓名")
    p.set_defaults(func=cmd_people_reactivate)
