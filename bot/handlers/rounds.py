"""/read, /spotcheck and /sites: reading rounds (DUTY-1), spot-checks (DUTY-4) and the
registry of what is read (DUTY-5)."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.dispatcher import Context, Handler
from bot.handlers import site_watch
from core.errors import DutybotError, InputError, PermissionDenied
from core.messages import Button, Inbound, Outbound, duration_zh
from core.text import parse_row_id
from incidents import actions as incident_actions
from incidents import escalation as esc
from incidents import service as incidents
from incidents.models import TYPE_ALIASES, TYPE_ZH, Grade, IncidentType, Source
from people.models import Person, Role
from people.service import find_person
from roster import rounds, spotcheck, spotcheck_plan
from roster.service import label
from roster.sites import find_site, list_sites, set_support, site_line, support_name

STAFF = frozenset({Role.officer, Role.leader, Role.principal, Role.admin})
OK_WORDS = frozenset({"ok", "正常", "已读", "完成", "无异常", "好"})
ANOMALY_WORDS = frozenset({"异常", "anomaly", "abnormal", "发现异常", "有异常"})
SITES_LIMIT = 40


def _me(ctx: Context) -> Person:
    assert ctx.person is not None
    return ctx.person


class ReadHandler(Handler):
    command = "read"
    aliases = ("读网",)
    roles = STAFF
    usage = ("/read ok [备注] ｜ /read 异常 [类型] 站点名称 描述 ｜ /read（查看本班读网情况）"
             "（类型默认为内容错误，可写：" + "、".join(TYPE_ZH.values()) + "）")
    summary = "读网：回复读网提醒（正常或发现异常），查看本班读网情况"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        action, _, rest = ctx.args.strip().partition(" ")
        word = action.lower()
        if not action:
            return [self._status(ctx)]
        if word in OK_WORDS:
            return [self._ok(rest.strip(), ctx)]
        if word in ANOMALY_WORDS:
            return self._anomaly(rest.strip(), ctx)
        raise InputError(f"未知操作“{action}”。")

    def _status(self, ctx: Context) -> Outbound:
        shift = rounds.shift_now_of(session=ctx.session, person=_me(ctx), now=ctx.now)
        if shift is None:
            return Outbound("按值班表，您当前不在值班时段。读网提醒会在您值班期间不定时发出。")
        lines = [f"本班读网情况（{label(shift)}）："]
        lines += rounds.status_lines(session=ctx.session, shift=shift, now=ctx.now)
        return Outbound("\n".join(lines))

    def _ok(self, note: str, ctx: Context) -> Outbound:
        me = _me(ctx)
        rnd = rounds.round_to_answer(session=ctx.session, person=me, now=ctx.now)
        if rnd is None:
            raise DutybotError("您当前没有待回复的读网提醒（提醒会在您值班期间不定时发出；查看本班情况：/read）。")
        late = rnd.status == "missed"
        rounds.answer(session=ctx.session, rnd=rnd, person=me, ok=True, note=note, now=ctx.now, actor=ctx.actor)
        text = f"已记录：第{rnd.seq}次读网正常，用时{duration_zh(timedelta(minutes=rounds.minutes_taken(rnd)))}。"
        if late:
            text += "该次读网已超时，补读已记录并告知带班领导。"
        return Outbound(text + ("\n备注：" + note[:100] if note else ""))

    def _anomaly(self, rest: str, ctx: Context) -> list[Outbound]:
        me = _me(ctx)
        tokens = rest.split()
        type_ = IncidentType.content_error
        if tokens and tokens[0] in TYPE_ALIASES:
            type_ = incidents.parse_type(tokens.pop(0))
        if len(tokens) < 2:
            raise InputError("请写明出现异常的站点名称（或网址）和异常描述，如：/read 异常 无法访问 门户网站 首页打不开。")
        target, description = tokens[0], " ".join(tokens[1:])
        site = find_site(session=ctx.session, name=target, unit=me.unit)
        policy = ctx.incident_policy
        incident = incident_actions.open_incident(
            session=ctx.session, calendar=ctx.calendar, profile=ctx.profile, policy=policy, type_=type_,
            target=target, description=description, reporter=me, unit=me.unit, source=Source.self_found,
            grade=Grade.general, now=ctx.now, actor=ctx.actor)
        if site is not None and re.match(r"^https?://", site.url, re.IGNORECASE) and not incident.url:
            incident.url = site.url
            ctx.session.add(incident)
        told = esc.announce_new(ctx.session, incident, profile=ctx.profile, policy=policy, now=ctx.now)
        rnd = rounds.round_to_answer(session=ctx.session, person=me, now=ctx.now)
        if rnd is not None:
            late = "（该次读网已超时，补读已告知带班领导）" if rnd.status == "missed" else ""
            rounds.answer(session=ctx.session, rnd=rnd, person=me, ok=False, note=f"{target}：{description}",
                          now=ctx.now, actor=ctx.actor, incident_number=incident.number)
            head = f"已记录第{rnd.seq}次读网发现异常{late}，并登记事件 {incident.number}（{TYPE_ZH[type_]}）。"
        else:
            head = f"已登记事件 {incident.number}（{TYPE_ZH[type_]}）。当前没有待回复的读网提醒，事件已单独登记。"
        names = "、".join(dict.fromkeys(p.name for p in told))
        lines = [head, esc.card(ctx.session, incident),
                 f"已通知：{names}" if names else "已通知：暂无其他人员（按事件流程逐级提醒）",
                 *filter(None, [esc.support_notice(ctx.session, incident)]),   # 技术保障 pinged, or how to set one
                 esc.ack_hint(incident),
                 f"处置步骤：/incident show {incident.number}；完成步骤：/incident done {incident.number} 序号"]
        return [Outbound("\n".join(lines), buttons=esc.ack_buttons(incident))]


class SpotCheckHandler(Handler):
    command = "spotcheck"
    aliases = ("抽查", "确认在岗")
    roles = STAFF
    usage = ("/spotcheck 单位 ｜ /spotcheck random（随机抽一个在岗单位）｜ /spotcheck list ｜ "
             "/spotcheck confirm [编号]（值班员确认在岗，也可直接发送“确认在岗”）｜ /spotcheck plan（管理员：定时抽查计划）")
    summary = "在岗抽查：区政府办公室抽查各单位值班员是否在岗；值班员确认在岗"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        if inbound.text.strip().startswith("确认在岗"):
            return [self._confirm(ctx.args.strip(), ctx)]
        action, _, rest = ctx.args.strip().partition(" ")
        word = action.lower()
        if word in ("confirm", "确认", "确认在岗"):
            return [self._confirm(rest.strip(), ctx)]
        if word in ("plan", "计划"):   # the drawn times: admins only, never the units
            if Role.admin not in _me(ctx).role_set():
                raise PermissionDenied("抱歉，定时抽查计划仅管理员可查看。")
            return [Outbound("\n".join(spotcheck_plan.plan_lines(
                session=ctx.session, plan=ctx.settings.roster.spotcheck_policy(), now=ctx.now)))]
        self._require_office(ctx)
        if not action or word in ("list", "列表", "记录"):
            return [self._list(ctx)]
        if word in ("random", "随机"):
            rng = spotcheck.rng_for(ctx.settings.roster.round_seed, ctx.now)
            return [self._start(spotcheck.pick_unit(ctx.session, ctx.now, rng), ctx, randomly=True)]
        return [self._start(ctx.args.strip(), ctx)]

    def _require_office(self, ctx: Context) -> None:
        me = _me(ctx)
        if Role.admin not in me.role_set() and not incidents.in_district(me, ctx.incident_policy):
            raise PermissionDenied("抱歉，在岗抽查由区政府办公室（管理员）发起。值班员确认在岗请发送：确认在岗")

    def _start(self, unit: str, ctx: Context, *, randomly: bool = False) -> Outbound:
        confirm = ctx.settings.roster.spotcheck_confirm_minutes
        started = spotcheck.start_check(session=ctx.session, unit=unit, requester=_me(ctx), now=ctx.now,
                                        confirm=timedelta(minutes=confirm), profile=ctx.profile, actor=ctx.actor)
        check = started.check
        how = "随机抽中" if randomly else "抽查"
        if started.officers:
            names = "、".join(p.name for p in started.officers)
            return Outbound(f"已发起抽查（编号 {check.id}）：{how}{check.unit}，在岗值班员：{names}。\n"
                            f"请其在{duration_zh(timedelta(minutes=confirm))}内确认在岗，结果将通知您。")
        leaders = "、".join(p.name for p in started.leaders) or "无（该单位未登记带班领导）"
        return Outbound(f"抽查（编号 {check.id}）：按值班表，{check.unit}当前没有值班员在岗，已记为抽查未通过。\n"
                        f"已通知该单位带班领导：{leaders}")

    def _confirm(self, ref: str, ctx: Context) -> Outbound:
        me = _me(ctx)
        if ref:
            check_id = parse_row_id(ref)
            if check_id is None:
                raise InputError(f"抽查编号应为数字，收到“{ref}”。")
            check = spotcheck.get_check(session=ctx.session, check_id=check_id)
        else:
            check = spotcheck.waiting_for(session=ctx.session, person=me)
        spotcheck.confirm(session=ctx.session, check=check, person=me, now=ctx.now, actor=ctx.actor)
        return Outbound(f"已确认在岗（抽查编号 {check.id}，{spotcheck.taken_zh(check)}），结果已报区政府办公室。")

    def _list(self, ctx: Context) -> Outbound:
        checks = spotcheck.recent_checks(session=ctx.session, limit=10)
        if not checks:
            return Outbound("还没有抽查记录。发起抽查：/spotcheck 单位 或 /spotcheck random")
        lines = ["最近的在岗抽查："] + [f"  {spotcheck.check_line(ctx.session, c)}" for c in checks]
        return Outbound("\n".join(lines), buttons=(Button("随机抽查", "/spotcheck random"),))


class SitesHandler(Handler):
    command = "sites"
    aliases = ("站点",)
    roles = STAFF
    usage = ("/sites ｜ /sites all（各单位）｜ /sites 单位 ｜ "
             "/sites support 名称 姓名 [@单位]（管理员：设置网站的技术保障；姓名写“清除”则改由单位的技术保障负责）｜ "
             "/sites status [all|单位]（网站巡检：本月可用率和待处理问题）｜ " + site_watch.COLUMN_USAGE)
    summary = "值班读网的网站和政务新媒体账号；网站的技术保障、栏目和巡检情况"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        arg = ctx.args.strip()
        me = _me(ctx)
        word, _, rest = arg.partition(" ")
        if word.lower() in ("support", "技术保障"):
            return [self._support(rest.strip(), ctx)]
        if word.lower() in site_watch.STATUS_WORDS:
            return [site_watch.status_reply(rest, ctx)]
        if word.lower() in site_watch.COLUMN_WORDS:
            return [site_watch.column_reply(rest, ctx)]
        if arg.lower() in ("all", "全部"):
            sites, title, with_unit = list_sites(session=ctx.session), "各单位读网的网站和账号", True
        else:
            unit = arg or me.unit
            if len(unit) > 100:
                raise InputError("单位名称过长。")
            sites = list_sites(session=ctx.session, unit=unit)
            title, with_unit = f"{unit or '本单位'}读网的网站和账号", False
        if not sites:
            return [Outbound(f"{title}：尚未登记。管理员可用 dutybot sites add 或 dutybot sites import 登记。")]
        lines = [f"{title}（共 {len(sites)} 个）："]
        lines += [f"  {n}. {site_line(s, with_unit=with_unit or not s.unit)}"
                  + (f"｜技术保障：{who}" if (who := support_name(ctx.session, s)) else "")
                  for n, s in enumerate(sites[:SITES_LIMIT], 1)]
        if len(sites) > SITES_LIMIT:
            lines.append(f"  ……另有 {len(sites) - SITES_LIMIT} 个（完整名单：dutybot sites list）")
        return [Outbound("\n".join(lines))]

    def _support(self, rest: str, ctx: Context) -> Outbound:
        """``/sites support 名称 姓名 [@单位]``: the site's 技术保障 (admins)."""
        if Role.admin not in _me(ctx).role_set():
            raise PermissionDenied("抱歉，设置网站的技术保障需要管理员。")
        tokens = rest.split()
        unit = next((t[1:] for t in tokens if t[:1] in ("@", "＠")), None)
        tokens = [t for t in tokens if t[:1] not in ("@", "＠")]
        if len(tokens) != 2:
            raise InputError("请写明网站名称和技术保障人员姓名，如：/sites support 门户网站 张工（姓名写“清除”则取消）。")
        name, who = tokens
        person = None if who in ("清除", "取消", "无") else find_person(session=ctx.session, name=who)
        site = set_support(session=ctx.session, name=name, unit=unit, person=person, now=ctx.now, actor=ctx.actor)
        if person is None:
            return Outbound(f"已清除 {site_line(site, with_unit=True)} 的技术保障，改由单位的技术保障负责。")
        return Outbound(f"已设置 {site_line(site, with_unit=True)} 的技术保障：{person.name}。"
                        "该网站无法访问、内容错误或被篡改时，机器人将立即通知其处理。")
