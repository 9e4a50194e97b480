"""/check (整改): a unit's rectification items after an inspection round (CHECK-1), and its
annual report duty (古丈办法第十五条)."""

from __future__ import annotations

from bot.dispatcher import Context, Handler
from checks import annual, rounds, service
from checks.models import ItemStatus
from core.errors import InputError
from core.messages import Inbound, Outbound
from core.text import parse_row_id
from people.models import Person, Role

ACTIONS = {"done": "done", "完成": "done", "已整改": "done", "annual": "annual", "年报": "annual",
           "年度报表": "annual", "list": "list", "列表": "list"}
MAX_LINES = 30


def _unit(person: Person) -> str:
    if not person.unit:
        raise InputError("您还没有登记所属单位，请联系管理员（/people unit 姓名 单位）。")
    return person.unit


def _list(ctx: Context, person: Person) -> str:
    admin = Role.admin in person.role_set()
    unit = None if admin else _unit(person)
    rows = service.items(session=ctx.session, unit=unit, open_only=True)
    where = "各单位" if admin else f"本单位（{unit}）"
    if not rows:
        lines = [f"{where}没有待整改的事项。"]
    else:
        lines = [f"{where}待整改事项（{len(rows)} 项）：",
                 *(f"· {rounds.item_line(r, with_unit=admin)}" for r in rows[:MAX_LINES])]
        if len(rows) > MAX_LINES:
            lines.append(f"……另有 {len(rows) - MAX_LINES} 项，完整列表：dutybot checks items --open")
        lines.append(service.DONE_HINT)
    if person.unit:
        duties = [r for r in service.annual_reports(session=ctx.session, unit=person.unit)
                  if r.status == ItemStatus.open]
        lines += [f"年度工作报表：{annual.line(r)}（{annual.DONE_HINT}）" for r in duties]
    return "\n".join(lines)


def _annual(ctx: Context, person: Person, rest: str) -> str:
    parts = rest.split()
    if not parts:
        rows = service.annual_reports(session=ctx.session, unit=_unit(person))
        if not rows:
            if service.annual_report_by(ctx.profile) is None:
                return service.not_required(ctx.profile, "年度工作报表的公开期限（CHECK-1.annual_report_by）") + "。"
            return "本单位还没有年度工作报表事项（每年1月1日起建立）。"
        return "\n".join([f"· {annual.line(r)}" for r in rows[:MAX_LINES]] + [annual.DONE_HINT])
    if len(parts) == 2 and Role.admin in person.role_set():
        unit, url = parts
    elif len(parts) == 1:
        unit, url = _unit(person), parts[0]
    else:
        raise InputError("请只写公开年度工作报表的网址：/check annual 网址")
    row = annual.mark_published(session=ctx.session, unit=unit, url=url, now=ctx.now, actor=ctx.actor,
                                person=person)
    return f"已登记公开：{annual.line(row)}"


class CheckHandler(Handler):
    command = "check"
    aliases = ("整改",)
    roles = frozenset({Role.officer, Role.leader, Role.principal, Role.admin, Role.support})
    usage = "/check（本单位待整改事项）｜/check done 编号 [整改说明]｜/check annual [网址]（年度工作报表）"
    summary = "检查整改：查看本单位待整改事项、登记整改完成、登记年度工作报表公开"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        person = ctx.person
        assert person is not None
        word, _, rest = ctx.args.strip().partition(" ")
        action = ACTIONS.get(word, ACTIONS.get(word.lower(), "")) if word else "list"
        if action == "list":
            return [Outbound(_list(ctx, person))]
        if action == "annual":
            return [Outbound(_annual(ctx, person, rest.strip()))]
        if action != "done":
            raise InputError(f"无法识别的操作“{word}”。")
        number_text, _, note = rest.strip().partition(" ")
        number = parse_row_id(number_text)
        if number is None:
            raise InputError("请给出整改事项编号（/check 查看）。")
        item = rounds.mark_done(session=ctx.session, item_id=number, now=ctx.now, actor=ctx.actor, person=person,
                                note=note.strip())
        left = len(service.items(session=ctx.session, unit=item.unit, open_only=True))
        tail = f"{item.unit}尚有 {left} 项待整改。" if left else f"{item.unit}的整改事项已全部完成。"
        return [Outbound(f"已登记整改完成：{rounds.item_line(item)}\n{tail}已告知管理员核查。")]
