"""The console: the embedded default platform, and the drill mode for training.

``ConsoleAdapter`` prints what the bot sends. ``ConsoleSession`` reads lines — typed at
a prompt, piped on stdin, or from a script file — and acts as one bound person at a
time. Lines starting with ``:`` steer the drill::

    :as 李强          speak as another person (unknown names speak as unbound users)
    :advance 2h       move the simulated clock (m, h, d; combined: 1d2h30m) and run all
                      work that falls due on the way, in order
    :at 2026-10-08T09:00   move the clock to a time
    :now              show the simulated time
    :attach shot.png /incident evidence INC-20261123-001 首页截图
                      send the rest of the line with a local file attached (a photo
                      for image types, else a file); quote a path with spaces
    :quit             leave

Lines starting with ``#`` are comments (shown as headings in scripted mode).

A session runs in one of the modes of :class:`bot.console_live.ConsoleMode`: a drill on a
sandbox (everyone bound on the console, the clock moved at will), or on the live database
(``console --live``, ``run --adapter console``), where it binds nobody whose messages
belong to another platform and speaks as such a person through a temporary operator
identity, deleted by :meth:`ConsoleSession.close` (see :mod:`bot.console_live`).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlmodel import Session

from bot.adapters.base import Adapter, Capabilities, InboundHandler, text_with_commands
from bot.console_live import (
    GROUP,
    PREFIX,
    ConsoleMode,
    bind_unbound,
    forget,
    is_temporary,
    speaker_identity,
)
from core.clock import FakeClock, SystemClock, fmt_short_zh, local, parse_local
from core.messages import Attachment, Inbound, Outbound
from people.models import ROLE_ZH, Person, Role
from people.service import add_person, ensure_identity, find_person, list_people, validate

if TYPE_CHECKING:
    from bot.app import App

__all__ = ["GROUP", "PREFIX", "ConsoleAdapter", "ConsoleSession", "parse_delta", "read_attachment",
           "split_path"]
_DELTA = re.compile(r"(\d+)\s*([dhm])")


def split_path(text: str) -> tuple[str, str]:
    """``shot.png 其余`` or ``"my shot.png" 其余`` → (path, rest).

    Raises:
        ValueError: no path, or an unclosed quote.
    """
    text = text.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end < 0:
            raise ValueError(text)
        path, rest = text[1:end], text[end + 1:]
    else:
        path, _, rest = text.partition(" ")
    if not path.strip():
        raise ValueError(text)
    return path, rest.strip()


def read_attachment(path: Path) -> Attachment:
    """A local file as an attachment: a photo when its type is an image, else a file.

    Raises:
        OSError: the file cannot be read.
    """
    data = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    kind = "photo" if content_type.startswith("image/") else "file"
    return Attachment(filename=path.name, data=data, content_type=content_type, kind=kind)


def parse_delta(text: str) -> timedelta:
    """``2h``, ``30m``, ``1d``, ``1d2h30m`` → timedelta.

    Raises:
        ValueError: anything else.
    """
    text = text.strip().lower()
    if not text or _DELTA.sub("", text).strip():
        raise ValueError(text)
    units = {"d": "days", "h": "hours", "m": "minutes"}
    delta = timedelta()
    for amount, unit in _DELTA.findall(text):
        delta += timedelta(**{units[unit]: int(amount)})
    if delta <= timedelta():
        raise ValueError(text)
    return delta


class ConsoleAdapter(Adapter):
    """Prints deliveries through ``show(chat_id, text)``; no buttons, no edits."""

    platform = "console"
    capabilities = Capabilities(buttons=False, edit=False, max_text=20000)

    def __init__(self, show: Callable[[str, str], None]) -> None:
        self._show = show
        self._count = 0

    async def start(self, handler: InboundHandler) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, chat_id: str, message: Outbound, *, is_group: bool) -> str:
        self._count += 1
        self._show(chat_id, text_with_commands(message, self.capabilities))
        return str(self._count)


class ConsoleSession:
    """A console conversation; see the module docstring.

    Args:
        app: the app, built with a :class:`ConsoleAdapter` and a :class:`FakeClock`.
        clock: the simulated clock.
        out: where to print.
        transcript: a text file receiving one JSON object per message.
        follow_real_time: interactive use — the simulated clock also moves with real
            time between lines, so reminders fall due as they would for real.
        mode: a drill on a sandbox (default), or the live database (``live``: the clock
            is real time and nothing periodic runs; ``service``: the console is the
            deployment's chat platform). See :mod:`bot.console_live`.
    """

    def __init__(self, app: App, clock: FakeClock, *, out: IO[str] | None = None,
                 transcript: IO[str] | None = None, follow_real_time: bool = False,
                 mode: ConsoleMode = ConsoleMode.drill) -> None:
        self.app, self.clock, self.transcript = app, clock, transcript
        self.out = out or sys.stdout
        self.mode = mode
        self.follow_real_time = follow_real_time or mode is ConsoleMode.live
        self._sender_id = ""
        self._temporary: int | None = None   # the speaker's temporary operator identity
        self._offset = clock.now() - SystemClock().now()
        self.speaker: str = ""
        self._updates = 0
        self._advancing = False   # while the clock moves, deliveries show their time
        # Interactive mode has a background ticker; one line or tick at a time.
        self.lock = asyncio.Lock()
        #: Show at most this many lines of each bot message (the demo's short form).
        self.max_lines: int | None = None
        self._shown: list[tuple[str, str, str]] = []

    # ---- output -------------------------------------------------------------------
    def show(self, chat_id: str, text: str) -> None:
        """Called by the adapter for every delivered message."""
        name = chat_id.removeprefix(PREFIX)
        if chat_id == GROUP:
            label = "→ 值班群"
            person = "值班群"
        elif name == self.speaker and not self._advancing:
            label, person = (f"机器人 → {name}{self._role_label(name)}" if self.max_lines else "机器人"), name
        else:
            label, person = f"→ {name}{self._role_label(name)}", name
        when = f"[{fmt_short_zh(self.clock.now())}] " if self._advancing else ""
        self._record("out", person, text)
        if self.max_lines:
            self._shown.append((when, label, text))   # printed by flush(), merged
            return
        body = text.replace("\n", "\n    ")
        print(f"{when}{label}：{body}", file=self.out)

    def flush(self) -> None:
        """The short form (``max_lines``): print the held messages, one entry for the same
        text sent at the same time to several people, each cut to its first lines."""
        shown, self._shown = self._shown, []
        merged: list[tuple[str, list[str], str]] = []
        for when, label, text in shown:
            if merged and merged[-1][0] == when and merged[-1][2] == text:
                merged[-1][1].append(label.removeprefix("→ "))
            else:
                merged.append((when, [label], text))
        for when, labels, text in merged:
            lines = [ln for ln in text.splitlines() if ln.strip()] or [""]
            if self.max_lines and len(lines) > self.max_lines:
                lines = [*lines[:self.max_lines - 1], f"{lines[self.max_lines - 1]} ……（共 {len(lines)} 行）"]
            body = "\n    ".join(lines)
            print(f"{when}{'、'.join(labels)}：{body}", file=self.out)

    def _role_label(self, name: str) -> str:
        with Session(self.app.engine) as session:
            try:
                person = find_person(session=session, name=name)
            except Exception:
                return ""
        if self.max_lines:   # the demo: every role and the unit, so a reader knows who this is
            unit = f"，{person.unit}" if person.unit else ""
            return f"（{person.roles_zh()}{unit}）"
        roles = [r for r in (Role.leader, Role.principal, Role.officer, Role.admin, Role.support)
                 if r in person.role_set()]
        return f"（{ROLE_ZH[roles[0]]}）" if roles else ""

    def _record(self, direction: str, person: str, text: str, *,
                attachments: list[str] | None = None) -> None:
        if self.transcript is not None:
            record: dict[str, object] = {"at": local(self.clock.now()).isoformat(),
                                         "direction": direction, "person": person, "text": text}
            if attachments:
                record["attachments"] = attachments
            self.transcript.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.transcript.flush()

    def say(self, text: str) -> None:
        """A line from the console itself (not the bot)."""
        self.flush()
        print(f"（{text}）", file=self.out)

    # ---- people ---------------------------------------------------------------------
    def ensure_first_admin(self, name: str | None) -> str:
        """On an empty database, create the first admin so a newcomer can start at once.

        Returns the person to speak as: ``name``, else the first admin, else anyone.
        """
        with Session(self.app.engine) as session:
            people = list_people(session=session)
            if people or list_people(session=session, include_inactive=True):
                if name:
                    return name
                chosen = [p for p in people if Role.admin in p.role_set()] or people
                return chosen[0].name if chosen else ""
            admin_name = name or "管理员"
            add_person(session=session, new=validate(admin_name, roles="管理员、值班员"),
                       now=self.clock.now(), actor="console")
            session.commit()
        self.say(f"数据库中还没有人员，已创建首位管理员“{admin_name}”（管理员、值班员）。"
                 "可用 /people add 添加人员")
        return admin_name

    def bind(self) -> None:
        """Make people reachable as the mode allows: in a drill everyone; on the live
        database (``service``) those bound nowhere; ``live``: nobody."""
        if self.mode is ConsoleMode.drill:
            self.bind_everyone()
        elif self.mode is ConsoleMode.service:
            with Session(self.app.engine, expire_on_commit=False) as session:
                bind_unbound(session=session, now=self.clock.now())
                session.commit()

    def bind_everyone(self) -> None:
        """In a drill every known person is reachable: the drill shows what each would
        receive. (The console is local; its operator is trusted.) Never on the live
        database: see :meth:`bind`."""
        assert self.mode is ConsoleMode.drill
        with Session(self.app.engine, expire_on_commit=False) as session:
            for person in list_people(session=session):
                if Role.external not in person.role_set():
                    ensure_identity(session=session, person=person, platform="console",
                                    external_id=PREFIX + person.name, now=self.clock.now())
            session.commit()

    def act_as(self, name: str) -> None:
        """Speak as ``name`` from now on: through their console identity (made in a
        drill), else a temporary operator identity (see :mod:`bot.console_live`)."""
        name = name.strip()
        sender_id = PREFIX + name
        with Session(self.app.engine, expire_on_commit=False) as session:
            try:
                person: Person | None = find_person(session=session, name=name)
            except Exception:
                person = None
            previous, self._temporary = self._temporary, None
            if person is not None:
                ident = speaker_identity(session=session, person=person, mode=self.mode, now=self.clock.now())
                sender_id = ident.external_id
                if is_temporary(ident):
                    self._temporary = ident.id
            if previous is not None and previous != self._temporary:
                forget(session=session, identity_ids=[previous])
            session.commit()
        self.speaker, self._sender_id = name, sender_id
        if person is None:
            self.say(f"“{name}”不在人员名单中，将以未绑定用户的身份发言")
        else:
            if not self.max_lines:   # the short form names the speaker on every line anyway
                self.say(f"现在以 {name}（{person.roles_zh()}）的身份发言")

    # ---- input ----------------------------------------------------------------------
    async def line(self, raw: str, *, echo: bool = False) -> bool:
        """Handle one input line; False means quit."""
        async with self.lock:
            try:
                return await self._line(raw, echo=echo)
            finally:
                self.flush()

    async def tick_real_time(self) -> None:
        """Interactive mode's background step: run what real time made due."""
        async with self.lock:
            await self._sync_real_time()

    async def _line(self, raw: str, *, echo: bool) -> bool:
        text = raw.strip()
        if not text:
            return True
        if text.startswith("#"):
            if echo:
                gap = "" if self.max_lines else "\n"   # the short form saves every line
                print(f"{gap}== {text.lstrip('#').strip()}", file=self.out)
            return True
        if self.follow_real_time:
            await self._sync_real_time()
        if text.startswith(":"):
            return await self._steer(text[1:].strip(), echo=echo)
        await self._send(text, echo=echo)
        return True

    async def _send(self, text: str, *, echo: bool,
                    attachments: tuple[Attachment, ...] = ()) -> None:
        """Say ``text`` (``@群 `` first: in the duty group) as the current speaker."""
        if not self.speaker:
            self.say("请先用 :as 姓名 选择发言人")
            return
        in_group = text.startswith("@群 ")
        if in_group:
            text = text.removeprefix("@群 ").strip()
        if echo:
            where = "（值班群）" if in_group else ""
            names = "、".join(a.filename for a in attachments)
            with_files = f"［附件：{names}］" if attachments else ""
            role = self._role_label(self.speaker) if self.max_lines else ""
            print(f"[{fmt_short_zh(self.clock.now())}] {self.speaker}{role}{where}：{text}{with_files}",
                  file=self.out)
        self._record("in", self.speaker, text, attachments=[a.filename for a in attachments])
        self._updates += 1
        self.bind()
        await self.app.handle(Inbound(
            platform="console", chat_id=GROUP if in_group else PREFIX + self.speaker,
            sender_id=self._sender_id or PREFIX + self.speaker, sender_name=self.speaker, text=text,
            update_id=f"console-{uuid.uuid4().hex}", is_group=in_group, attachments=attachments))
        self.bind()   # people added by this command become reachable at once
        await self.app.drain()

    async def _steer(self, command: str, *, echo: bool = False) -> bool:
        word, _, arg = command.partition(" ")
        if word in ("quit", "q", "exit", "退出"):
            return False
        if word in ("advance", "adv", "at") and self.mode is ConsoleMode.live:
            self.say("正式数据库上不能拨动时钟（--live）；演练请去掉 --live")
            return True
        if word == "as" and arg.strip():
            self.act_as(arg)
        elif word in ("advance", "adv"):
            try:
                delta = parse_delta(arg)
            except ValueError:
                self.say("用法：:advance 2h（单位 m/h/d，可组合如 1d2h）")
                return True
            await self._move(self.clock.now() + delta)
        elif word == "at":
            try:
                target = parse_local(arg)
            except ValueError:
                self.say("用法：:at 2026-10-08T09:00")
                return True
            if target < self.clock.now():
                self.say("模拟时钟不能倒退")
                return True
            await self._move(target)
        elif word == "now":
            self.say(f"模拟时间：{fmt_short_zh(self.clock.now())}")
        elif word == "attach":
            await self._attach(arg, echo=echo)
        else:
            self.say("可用：:as 姓名、:advance 2h、:at 时间、:now、:attach 文件 命令、:quit；"
                     "以“@群 ”开头表示在值班群里发言")
        return True

    async def _attach(self, arg: str, *, echo: bool) -> None:
        try:
            path_text, rest = split_path(arg)
        except ValueError:
            self.say("用法：:attach 文件路径 [命令…]，例如 :attach shot.png "
                     "/incident evidence INC-20261123-001 首页截图（路径含空格请加引号）")
            return
        path = Path(path_text).expanduser()
        try:
            attachment = read_attachment(path)
        except FileNotFoundError:
            self.say(f"找不到文件 {path_text}，未发送")
            return
        except IsADirectoryError:
            self.say(f"{path_text} 是文件夹，不是文件，未发送")
            return
        except PermissionError:
            self.say(f"没有权限读取文件 {path_text}，未发送")
            return
        except OSError as exc:
            self.say(f"无法读取文件 {path_text}（{exc.strerror or exc}），未发送")
            return
        await self._send(rest, echo=echo, attachments=(attachment,))

    async def _move(self, target: datetime) -> None:
        self.bind()
        self._offset += target - self.clock.now()
        self._advancing = True
        try:
            await self.app.advance_to(target)
        finally:
            self._advancing = False
        self.flush()
        if not self.max_lines:
            self.say(f"时间到 {fmt_short_zh(self.clock.now())}")

    async def _sync_real_time(self) -> None:
        target = SystemClock().now() + self._offset
        if target > self.clock.now() and self.mode is ConsoleMode.live:
            self.clock.set(target)   # real time; the service runs what falls due
        elif target > self.clock.now():
            self._advancing = True
            try:
                await self.app.advance_to(target)
            finally:
                self._advancing = False

    def close(self) -> None:
        """Delete the speaker's temporary operator identity, if any (call at the end)."""
        if self._temporary is None:
            return
        with Session(self.app.engine) as session:
            forget(session=session, identity_ids=[self._temporary])
            session.commit()
        self._temporary = None

    async def run_lines(self, lines: Iterable[str], *, echo: bool = True) -> None:
        """Scripted mode: every line in order."""
        for raw in lines:
            if not await self.line(raw, echo=echo):
                break
