"""/post: record a post of a new-media account now, or show its posting cadence.

``/post 名称 标题 [原创]`` records one post at this moment (the same title on the same day
counts once); ``/post 名称`` alone shows the account's cadence: this week's posts against
the minimum, today, the last post and the last original, each with its article or
本地规定未作要求 (``accounts.cadence_view``). Where several units registered the name,
``名称@主办单位`` picks one (the speaker's own unit is taken when it is one of them).
"""

from __future__ import annotations

from accounts.cadence_view import status_lines
from accounts.duties import account_name
from accounts.models import Account, AccountState
from accounts.posts import MAX_TITLE, PostIn, record_posts, when_zh
from accounts.register import AccountAmbiguous, find_account
from bot.dispatcher import Context, Handler
from core.errors import InputError
from core.messages import Inbound, Outbound
from core.text import clean_text

ORIGINAL_WORDS = {"原创": True, "转载": False}
GONE = (AccountState.closed, AccountState.cancelled)


def find_named(ctx: Context, text: str) -> Account:
    """The account ``名称`` or ``名称@主办单位``.

    Raises:
        AccountNotFound: no such account.
        InputError: several units registered the name and none was given.
    """
    name, _, unit = text.replace("＠", "@").partition("@")
    if unit.strip():
        return find_account(session=ctx.session, name=name, unit=unit)
    try:
        return find_account(session=ctx.session, name=name)
    except AccountAmbiguous as exc:
        own = ctx.person.unit if ctx.person is not None else ""
        if own and own in exc.units:
            return find_account(session=ctx.session, name=name, unit=own)
        raise InputError(f"“{name}”在多个主办单位登记：{'、'.join(exc.units)}。"
                         f"请写作 /post {name}@主办单位 …") from None


def split_post(rest: str) -> tuple[str, bool | None]:
    """``标题 原创`` → (``标题``, True); a trailing 原创/转载 is the flag, the rest the title."""
    words = rest.split()
    if words and words[-1] in ORIGINAL_WORDS:
        flag = ORIGINAL_WORDS[words[-1]]
        return rest[:rest.rstrip().rfind(words[-1])].strip(), flag
    return rest.strip(), None


class PostHandler(Handler):
    command = "post"
    usage = "/post 名称 标题 [原创]（登记一条刚发布的信息）；/post 名称（查看该账号本周发布情况）"
    summary = "登记政务新媒体账号的发布，查看发布频次"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        args = ctx.args.strip()
        if not args:
            raise InputError("请写明账号名称。")
        first = args.split()[0]
        account = find_named(ctx, first)
        rest = args[len(first):].strip()
        if not rest:
            return [Outbound("\n".join(self._status(ctx, account)))]
        name = account_name(ctx.session, account)
        if account.state in GONE:
            raise InputError(f"账号“{name}”已关停或注销，不再登记发布。")
        title, original = split_post(rest)
        title = clean_text(title).replace("\n", " ").strip()
        if len(title) > MAX_TITLE:
            raise InputError(f"标题过长（{len(title)} 字，最多 {MAX_TITLE} 字）。")
        post = PostIn(posted_at=ctx.now, title=title, original=bool(original))
        done = record_posts(session=ctx.session, account=account, posts=[post], source="chat", now=ctx.now,
                            actor=ctx.actor)
        what = f"《{title}》" if title else "一条信息"
        mark = "（原创）" if post.original else ""
        if done.new:
            head = f"已登记：{name} 于 {when_zh(ctx.now, ctx.now)} 发布{what}{mark}。"
        else:
            head = f"{name} 今天发布{what}已登记过，不重复计数。"
        return [Outbound("\n".join([head, *self._status(ctx, account)[1:]]))]

    @staticmethod
    def _status(ctx: Context, account: Account) -> list[str]:
        return status_lines(session=ctx.session, account=account, now=ctx.now, calendar=ctx.calendar,
                            profile=ctx.profile, warn_days_ahead=ctx.settings.accounts.warn_days_ahead)
