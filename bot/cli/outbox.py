"""``dutybot outbox``: what is pending, retrying, waiting for its person to bind (see
``bot.waiting``) or dead-lettered; put a dead row back."""

from __future__ import annotations

import argparse
import os
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.cli.common import positive_int
from bot.config import find_config, load_settings
from bot.dead_letters import recipient_label, snippet
from bot.delivery import POSSIBLE_DUPLICATE
from core.clock import SystemClock, fmt_short_zh
from core.db import check_schema, make_engine, session_scope
from core.errors import InputError, NotFound
from core.outbox import OutboxMessage, OutboxStatus
from people.models import ChatIdentity

_M = OutboxMessage
STATUS_ZH = {OutboxStatus.pending: "待发送", OutboxStatus.sent: "已发送", OutboxStatus.dead: "已放弃",
             OutboxStatus.waiting: "等待绑定"}


def status_counts(session: Session) -> dict[str, int]:
    """Rows per status (every status present, zero when none)."""
    counts = {s.value: 0 for s in OutboxStatus}
    for status, n in session.exec(select(_M.status, func.count()).group_by(col(_M.status))):
        counts[status] = n
    return counts


def possible_duplicates(session: Session) -> int:
    """Sent rows resent after an attempt with an unknown outcome (``bot.delivery``)."""
    return session.exec(select(func.count()).where(
        _M.status == OutboxStatus.sent,
        col(_M.last_error).startswith(POSSIBLE_DUPLICATE, autoescape=True))).one()


def list_rows(session: Session, *, status: str, limit: int) -> list[OutboxMessage]:
    """Rows with ``status``, oldest first, at most ``limit``."""
    query = select(_M).where(_M.status == status).order_by(col(_M.id)).limit(limit)
    return list(session.exec(query).all())


def pending_report(session: Session, *, failed_only: bool = False, limit: int = 20) -> str:
    """The ``dutybot outbox`` text: counts, then pending, waiting and dead rows (Chinese)."""
    counts = status_counts(session)
    lines = ["发件箱：" + "，".join(f"{STATUS_ZH[s]} {counts[s]} 条" for s in OutboxStatus)]
    doubtful = possible_duplicates(session)
    if doubtful:
        lines.append(f"可能重复送达：{doubtful} 条（平台未及时应答后重发，收件人可能收到两次）")
    sections = ([OutboxStatus.dead] if failed_only
                else [OutboxStatus.pending, OutboxStatus.waiting, OutboxStatus.dead])
    for status in sections:
        rows = list_rows(session, status=status, limit=limit)
        if not rows:
            continue
        lines.append(f"\n{STATUS_ZH[status]}：")
        for row in rows:
            when = (f"下次尝试 {fmt_short_zh(row.next_attempt_at)}" if status == OutboxStatus.pending
                    else f"保留至 {fmt_short_zh(row.next_attempt_at)}" if status == OutboxStatus.waiting
                    else f"创建于 {fmt_short_zh(row.created_at)}")
            lines.append(f"  #{row.id}  {recipient_label(session, row)}｜已尝试 {row.attempts} 次"
                         f"｜{when}｜{snippet(row.text)}")
            if row.last_error:
                lines.append(f"      错误：{snippet(row.last_error, 120)}")
        if counts[status] > len(rows):
            lines.append(f"  ……另有 {counts[status] - len(rows)} 条未列出（可用 --limit 调整）")
    if counts[OutboxStatus.waiting] and not failed_only:
        lines.append("\n等待绑定的消息在收件人绑定聊天账号后自动送达，过期未绑定则放弃；"
                     "生成绑定码：dutybot people invite 姓名。")
    if counts[OutboxStatus.dead]:
        lines.append("\n已放弃的消息排除原因后，可运行 dutybot outbox retry 编号 重新投递。")
    elif failed_only or not (counts[OutboxStatus.pending] or counts[OutboxStatus.waiting]):
        lines.append("没有需要处理的消息。")
    return "\n".join(lines)


def retry_dead(*, session: Session, row_id: int, now: datetime) -> tuple[OutboxMessage, int]:
    """Put dead row ``row_id`` back to pending with its attempts reset.

    A "blocked" mark on the recipient's accounts is cleared too: the admin asks for a real
    try, and a still-blocked account is simply marked again.

    Returns:
        The row and how many blocked accounts were cleared.

    Raises:
        NotFound: no such row.
        InputError: the row is not dead.
    """
    row = session.get(_M, row_id)
    if row is None:
        raise NotFound(f"找不到编号为 #{row_id} 的消息（运行 dutybot outbox 查看编号）")
    if row.status != OutboxStatus.dead:
        raise InputError(f"消息 #{row_id} 的状态是“{STATUS_ZH[OutboxStatus(row.status)]}”，"
                         "只有已放弃的消息可以重新投递")
    row.status, row.attempts, row.next_attempt_at, row.claimed_until, row.expires_at = (
        OutboxStatus.pending, 0, now, None, None)  # a person still bound nowhere: it waits anew
    cleared = 0
    if row.person_id is not None:
        for ident in session.exec(select(ChatIdentity).where(
                ChatIdentity.person_id == row.person_id, col(ChatIdentity.blocked_at).is_not(None))):
            ident.blocked_at = None
            cleared += 1
    return row, cleared


def _engine(args: argparse.Namespace) -> Engine:
    settings = load_settings(find_config(getattr(args, "config", None), os.environ))
    engine = make_engine(settings.database_url())
    check_schema(engine)
    return engine


def cmd_outbox(args: argparse.Namespace) -> int:
    """dutybot outbox [--failed] [--limit N]"""
    engine = _engine(args)
    try:
        with Session(engine) as session:
            print(pending_report(session, failed_only=args.failed, limit=args.limit))
    finally:
        engine.dispose()
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    """dutybot outbox retry ID"""
    engine = _engine(args)
    try:
        with session_scope(engine) as session:
            _, cleared = retry_dead(session=session, row_id=args.id, now=SystemClock().now())
    finally:
        engine.dispose()
    print(f"消息 #{args.id} 已放回待发送队列（尝试次数清零），机器人运行时会重新投递。")
    if cleared:
        print("已清除该收件人的“屏蔽机器人”标记；若对方仍屏蔽机器人，投递会再次失败。")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot outbox`` (and ``dutybot outbox retry ID``) to the CLI."""
    parser = sub.add_parser("outbox", help="查看发件箱：待发送、等待绑定与已放弃的消息，重新投递")
    parser.add_argument("--failed", action="store_true", help="只列出已放弃的消息")
    parser.add_argument("--limit", type=positive_int, default=20, metavar="N",
                        help="每类最多列出 N 条（默认 20）")
    parser.set_defaults(func=cmd_outbox)
    ops = parser.add_subparsers(dest="outbox_command", metavar="操作")
    retry = ops.add_parser("retry", help="把一条已放弃的消息放回待发送队列")
    retry.add_argument("id", type=positive_int, metavar="ID", help="消息编号（dutybot outbox 列出的 #编号）")
    retry.set_defaults(func=cmd_outbox_retry)
