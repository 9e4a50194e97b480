"""WeCom (企业微信): callback handling rate, and delivery against WeCom's limits (not a test).

Run ``python bench/bench_wecom.py`` (options: ``--messages``, ``--people``,
``--concurrency``, ``--members``, ``--per-member``, ``--robot``, ``--seconds``,
``--only callbacks|delivery``). Everything runs on 127.0.0.1; the clock is the real one.

1. **Callbacks.** The real :class:`~bot.adapters.wecom.WeComAdapter` serves its
   ``/wecom/callback`` routes with :class:`~bot.http.HttpService` inside the bot's event
   loop, in front of the real :class:`~bot.app.App` on a temporary SQLite file. A separate
   process plays WeCom: it encrypts and signs ``--messages`` text messages (``/duty`` and
   ``/whoami`` from ``--people`` bound members, each with its own MsgId) exactly as WeCom
   does (:class:`~bot.adapters.wecom.crypto.WeComCrypto`) and POSTs them, ``--concurrency``
   at a time, timing each answer. The outbox sender does not run, so the numbers are the
   callback path alone: an answer (WeCom retries a callback not answered within 5 s; the
   adapter answers before doing the work), and a message *handled* once it is decrypted,
   dispatched and its reply written to the outbox (the app's handler returned). The
   handling rate is messages handled per second from the first POST to the last message
   handled; the backlog is how long handling went on after the last answer.

2. **Delivery** (fan-out), once per ``--latency`` (default 20 ms and 100 ms).
   ``tests/fakes/fake_wecom.FakeWeComApi`` in its own process (as WeCom is remote: its
   timing is not distorted by the bot's event loop), served by uvicorn behind
   :class:`fanoutlib.PlatformGate`, which makes every request wait the latency first.
   The fake has WeCom's limits: an app message beyond 30 a minute or 1000 an hour to one
   member is *silently dropped* (errcode 0, recorded as dropped), the group robot refuses
   beyond 20 a minute (errcode 45009). The outbox holds ``--per-member`` messages for
   each of ``--members`` members plus ``--robot`` robot broadcasts; the real
   :class:`~bot.outbox.OutboxSender` delivers them until what the first minute allows has
   arrived and then ``--hold`` seconds more (at most ``--seconds``), so that a message
   sent beyond the limits would show. The limits are per minute and allow a burst, so the
   rate is taken over the first minute: the allowed number in the 60 s from the first
   message the fake received is min(600 (the adapter's overall pace), Σ min(queued, 30)
   per member + min(robot, 20)); the share is what arrived in that minute (by the end of
   the run) over that, and the burst time is how long the allowed number took. Goals: no
   message dropped, no 45009, ≥ 97 % of the first minute's allowance.
   WeCom's figures: "每应用对同一个成员不可超过30次/分钟，1000次/小时，超过部分会被丢弃不下发"
   (访问频率限制, https://developer.work.weixin.qq.com/document/path/90454); the group
   robot's 20 a minute (群机器人配置说明). Prints one ``BENCH_JSON`` line
   (``delivery.runs.20ms.percent`` …; ``too_many`` is dropped + 45009).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import HandledRecorder, ledger_and_outbox_counts, percentile
from fanoutlib import (
    PlatformGate,
    add_latency_option,
    ignore_inbound,
    latency_runs,
    most_in_window,
    run_key,
    run_label,
    run_sender,
    serve_fake,
    sqlite_engine,
)
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.wecom import WeComAdapter
from bot.adapters.wecom.crypto import WeComCrypto, signature
from bot.app import App
from bot.config import Settings, load_settings
from bot.http import HttpService
from core.clock import SystemClock
from core.db import session_scope
from core.messages import Outbound
from core.outbox import OutboxMessage, enqueue
from people.models import Role
from tests.factories import make_person
from tests.fakes.fake_wecom import FakeWeComApi

CORP = "ww-bench-corp"
SECRET = "bench-app-secret"
AGENT = 1000002
TOKEN = "benchToken123"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters
ROBOT_KEY = "bench-robot-key"
CALLBACK_PATH = "/wecom/callback"
COMMANDS = ("/duty", "/whoami")
MEMBER_PER_MINUTE = 30
ROBOT_PER_MINUTE = 20
OVERALL_PER_MINUTE = 600  # the adapter's own pace for the whole app (its "global" limit)
WINDOW = 60.0


# --------------------------------------------------------------------------- shared


def _settings(api_url: str) -> Settings:
    return load_settings(None, env={
        "DUTYBOT_WECOM_CORP_ID": CORP, "DUTYBOT_WECOM_AGENT_ID": str(AGENT),
        "DUTYBOT_WECOM_SECRET": SECRET, "DUTYBOT_WECOM_TOKEN": TOKEN,
        "DUTYBOT_WECOM_AES_KEY": AES_KEY, "DUTYBOT_WECOM_API_BASE": api_url,
        "DUTYBOT_WECOM_ROBOT_WEBHOOK": f"{api_url}/cgi-bin/webhook/send?key={ROBOT_KEY}"})


def _bind(engine: Engine, userids: Sequence[str]) -> list[int]:
    """One bound WeCom member (officer) per userid; their person ids."""
    now = SystemClock().now()
    with Session(engine) as session:
        people = [make_person(session, f"值班员{n:03d}", roles=(Role.officer,), now=now,
                              platform="wecom", external_id=userid)
                  for n, userid in enumerate(userids)]
        session.commit()
        ids = [p.id for p in people]
    assert all(i is not None for i in ids)
    return [int(i) for i in ids if i is not None]


# --------------------------------------------------------------------------- the fake WeCom


def _serve_fake(port: int, latency: float = 0.0) -> None:
    """The fake WeCom API in its own process (real clock, limits on), with ``GET /stats``;
    each other request waits ``latency`` first."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    fake = FakeWeComApi(corp_id=CORP, secret=SECRET, agent_id=AGENT, robot_keys=(ROBOT_KEY,))

    async def stats(request: Request) -> JSONResponse:
        webhook_calls = sum(1 for c in fake.calls if c["path"] == "/cgi-bin/webhook/send")
        return JSONResponse({
            "sent": [[m["touser"], m["time"].timestamp()] for m in fake.sent],
            "dropped": [[m["touser"], m["time"].timestamp()] for m in fake.dropped],
            "robot": [m["time"].timestamp() for m in fake.robot_sent],
            "robot_refused": webhook_calls - len(fake.robot_sent),
            "gettoken": fake.gettoken_calls()})

    fake.app.router.routes.insert(0, Route("/stats", stats))
    uvicorn.run(PlatformGate(fake.app, latency=latency), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


# --------------------------------------------------------------------------- WeCom pushing


def _cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def _signed_callback(crypto: WeComCrypto, user: str, content: str,
                     msg_id: int) -> tuple[dict[str, str], str]:
    """Query parameters and body of one text-message callback, as WeCom sends it."""
    now = int(time.time())
    inner = (f"<xml><ToUserName>{_cdata(CORP)}</ToUserName><FromUserName>{_cdata(user)}"
             f"</FromUserName><CreateTime>{now}</CreateTime><MsgType>{_cdata('text')}"
             f"</MsgType><Content>{_cdata(content)}</Content><MsgId>{msg_id}</MsgId>"
             f"<AgentID>{AGENT}</AgentID></xml>")
    encrypted = crypto.encrypt(inner)
    nonce = f"n{msg_id}"
    params = {"msg_signature": signature(TOKEN, str(now), nonce, encrypted),
              "timestamp": str(now), "nonce": nonce}
    body = (f"<xml><ToUserName>{_cdata(CORP)}</ToUserName><AgentID>{_cdata(str(AGENT))}"
            f"</AgentID><Encrypt>{_cdata(encrypted)}</Encrypt></xml>")
    return params, body


def _pusher(url: str, users: list[str], messages: int, concurrency: int, first_id: int,
            conn: Connection) -> None:
    """WeCom in its own process: POST ``messages`` callbacks, ``concurrency`` at a time;
    sends back ``[(msg_id, posted_at, answered_at, status)]`` (monotonic seconds)."""

    async def run() -> list[tuple[int, float, float, int]]:
        crypto = WeComCrypto(TOKEN, AES_KEY, CORP)
        numbers = iter(range(messages))
        results: list[tuple[int, float, float, int]] = []
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def worker() -> None:
                for n in numbers:
                    msg_id = first_id + n
                    params, body = _signed_callback(crypto, users[n % len(users)],
                                                    COMMANDS[n % len(COMMANDS)], msg_id)
                    posted = time.monotonic()
                    try:
                        status = (await client.post(url, params=params, content=body)).status_code
                    except httpx.HTTPError:
                        status = 0
                    results.append((msg_id, posted, time.monotonic(), status))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results

    conn.send(asyncio.run(run()))
    conn.close()


# --------------------------------------------------------------------------- 1. callbacks


async def _callbacks(args: argparse.Namespace, api_url: str, tmp: str) -> None:
    engine = sqlite_engine(tmp, "callbacks.db")
    users = [f"user{n:03d}" for n in range(args.people)]
    _bind(engine, users)
    settings = _settings(api_url)
    adapter = WeComAdapter(settings.wecom)
    app = App(settings, clock=SystemClock(), adapter=adapter, engine=engine)
    recorder = HandledRecorder(app)
    service = HttpService(host="127.0.0.1", port=0, routes=adapter.http_routes(),
                          health=app.health)
    await service.start()
    await adapter.start(recorder)
    url = f"http://127.0.0.1:{service.port}{CALLBACK_PATH}"
    ids = itertools.count(7_000_000_001)
    try:
        # Warm-up (first-use costs), from this process; not measured.
        crypto = WeComCrypto(TOKEN, AES_KEY, CORP)
        async with httpx.AsyncClient(timeout=30) as client:
            for n in range(args.warmup):
                params, body = _signed_callback(crypto, users[n % len(users)],
                                                COMMANDS[n % len(COMMANDS)], next(ids))
                (await client.post(url, params=params, content=body)).raise_for_status()
        await adapter.wait_idle()
        recorder.done.clear()
        before = ledger_and_outbox_counts(engine)

        recorder.expect(args.messages)
        mine, theirs = multiprocessing.get_context("spawn").Pipe(duplex=False)
        pusher = multiprocessing.get_context("spawn").Process(
            target=_pusher, args=(url, users, args.messages, args.concurrency, next(ids) + 1,
                                  theirs), daemon=True)
        pusher.start()
        theirs.close()
        results: list[tuple[int, float, float, int]] = await asyncio.to_thread(mine.recv)
        pusher.join()
        try:
            await asyncio.wait_for(recorder.reached.wait(), timeout=args.timeout)
        except TimeoutError:
            print(f"  (gave up waiting after {args.timeout:.0f} s)")
        await adapter.wait_idle()
        after = ledger_and_outbox_counts(engine)
    finally:
        await adapter.stop()
        await service.stop()
        engine.dispose()

    statuses = Counter(status for _, _, _, status in results)
    latencies = [(answered - posted) * 1000 for _, posted, answered, _ in results]
    first_post = min(posted for _, posted, _, _ in results)
    last_answer = max(answered for _, _, answered, _ in results)
    posted_at = {f"msg:{msg_id}": posted for msg_id, posted, _, _ in results}
    handled = [at for key, at in recorder.done.items() if key in posted_at]
    end_to_end = [(recorder.done[key] - posted) * 1000 for key, posted in posted_at.items()
                  if key in recorder.done]
    last_done = max(handled) if handled else float("nan")
    new_updates, new_rows = after[0] - before[0], after[1] - before[1]
    print(f"[callbacks] {args.messages} encrypted text messages from {args.people} members, "
          f"{args.concurrency} at a time, to {CALLBACK_PATH} (HttpService on 127.0.0.1)")
    print(f"  HTTP answer: p50 {statistics.median(latencies):.1f} ms, p99 "
          f"{percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms (WeCom allows 5 s); "
          f"statuses {dict(sorted(statuses.items()))}")
    print(f"  (closed loop: while the bot is saturated an answer waits about "
          f"{args.concurrency} / handling rate)")
    print(f"  arrival: {len(results) / (last_answer - first_post):.0f} msg/s "
          f"(first POST to last answer {last_answer - first_post:.2f} s)")
    print(f"  handled (decrypt + dispatch + reply in the outbox): {len(handled)}/"
          f"{args.messages} in {last_done - first_post:.2f} s = "
          f"{len(handled) / (last_done - first_post):.0f} msg/s; backlog after the last "
          f"answer {max(0.0, last_done - last_answer):.2f} s")
    print(f"  POST to reply queued: p50 {statistics.median(end_to_end):.0f} ms, p99 "
          f"{percentile(end_to_end, 0.99):.0f} ms; ledger rows +{new_updates}, outbox rows "
          f"+{new_rows} (expected {args.messages} each)")


# --------------------------------------------------------------------------- 2. delivery


def _fill(engine: Engine, person_ids: Sequence[int], per_member: int, robot: int) -> int:
    now = SystemClock().now()
    text = ("【值班提醒】今日 18:00 起您值夜班，请提前到岗并完成交接。\n"
            "未结事件 2 件，今日到期留言 3 条。详见 /brief")
    total = 0
    with session_scope(engine) as session:
        for k in range(max(per_member, robot)):
            if k < per_member:
                for pid in person_ids:
                    enqueue(session=session, now=now, event_key=f"bench:remind:{k}",
                            message=Outbound(f"{text}（第 {k + 1} 条）", person_id=pid))
                    total += 1
            if k < robot:
                enqueue(session=session, now=now, event_key=f"bench:broadcast:{k}",
                        platform="wecom",
                        message=Outbound(f"【值班群通知】第 {k + 1} 条：{text}", chat_id="robot"))
                total += 1
    return total


def _status_counts(engine: Engine) -> tuple[dict[str, int], int]:
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage.status, func.count())
                            .group_by(OutboxMessage.status)).all()
        retried = session.exec(select(func.count()).where(OutboxMessage.attempts > 0)).one()
    return {str(status): int(n) for status, n in rows}, int(retried)


async def _delivery(args: argparse.Namespace, latency: float, tmp: str) -> dict[str, Any]:
    load = os.getloadavg()[0]
    async with serve_fake(_serve_fake, latency) as fake:
        engine = sqlite_engine(tmp, f"delivery{run_key(latency)}.db")
        members = [f"member{n:02d}" for n in range(args.members)]
        person_ids = _bind(engine, members)
        total = _fill(engine, person_ids, args.per_member, args.robot)
        allowed = min(OVERALL_PER_MINUTE, args.members * min(args.per_member, MEMBER_PER_MINUTE)
                      + min(args.robot, ROBOT_PER_MINUTE))
        settings = _settings(fake.url)
        adapter = WeComAdapter(settings.wecom)
        await adapter.start(ignore_inbound)
        reached: float | None = None

        async def held() -> bool:
            """The allowed number has arrived, ``--hold`` seconds ago or more."""
            nonlocal reached
            stats = await fake.stats()
            arrived = len(stats["sent"]) + len(stats["dropped"]) + len(stats["robot"])
            if reached is None and arrived >= min(allowed, total):
                reached = time.time()
            return reached is not None and time.time() - reached >= args.hold

        try:
            # Wall-clock time: the fake stamps its messages with datetimes.
            started, ran = await run_sender(engine, adapter, settings.outbox, held,
                                            timeout=args.seconds, clock=time.time)
        finally:
            await adapter.stop()
        statuses, retried = _status_counts(engine)
        engine.dispose()
        result = await fake.stats()

    sent, dropped, robot = result["sent"], result["dropped"], result["robot"]
    firsts = sorted([at for _, at in sent] + [at for _, at in dropped] + robot)
    t0 = firsts[0] if firsts else started
    per_member: dict[str, list[float]] = {}
    for user, at in sent:
        per_member.setdefault(user, []).append(at)
    in_minute = sum(1 for at in firsts if at < t0 + WINDOW) - len(dropped)
    achieved = min(in_minute, allowed)
    burst = firsts[min(allowed, len(firsts)) - 1] - t0 if firsts else float("nan")
    worst_member = max((most_in_window(ts, WINDOW) for ts in per_member.values()), default=0)
    share = achieved / allowed
    print(f"{run_label(latency, load, 'delivery')} {args.members} "
          f"members × {args.per_member} + {args.robot} robot broadcasts = {total} rows; sender "
          f"ran {ran:.1f} s; outbox {dict(sorted(statuses.items()))}, rows retried {retried}")
    print(f"  first minute: {in_minute} arrived of {allowed} allowed = {100 * share:.1f}%, the "
          f"allowed {min(allowed, len(firsts))} within {burst:.2f} s; most to one member in any "
          f"60 s {worst_member} (limit {MEMBER_PER_MINUTE}); robot most in any 60 s "
          f"{most_in_window(robot, WINDOW)} (limit {ROBOT_PER_MINUTE})")
    print(f"  silently dropped by WeCom: {len(dropped)}, 45009 refusals: "
          f"{result['robot_refused']} (goal 0 each)")
    return {"messages": in_minute, "queued": total, "seconds": round(burst, 3),
            "window_seconds": WINDOW, "rate": round(achieved, 1), "allowed_rate": allowed,
            "rate_unit": "messages in the first minute", "percent": round(100 * share, 1),
            "too_many": len(dropped) + int(result["robot_refused"]),
            "dropped": len(dropped), "robot_refused": int(result["robot_refused"]),
            "latency_ms": round(latency * 1000), "load": round(load, 2)}


# --------------------------------------------------------------------------- main


async def _run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "callbacks"):
            async with serve_fake(_serve_fake) as fake:
                await _callbacks(args, fake.url, tmp)
        if args.only in (None, "delivery"):
            runs = {key: await _delivery(args, latency, tmp)
                    for key, latency in latency_runs(args.latency)}
            print("BENCH_JSON " + json.dumps({"platform": "wecom", "goal_percent": 97,
                                              "delivery": {"runs": runs}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("callbacks", "delivery"), default=None)
    group = parser.add_argument_group("1. callbacks")
    group.add_argument("--messages", type=int, default=2000)
    group.add_argument("--people", type=int, default=50, help="bound members writing")
    group.add_argument("--concurrency", type=int, default=8, help="POSTs in flight")
    group.add_argument("--warmup", type=int, default=20, help="unmeasured messages first")
    group.add_argument("--timeout", type=float, default=300.0,
                       help="longest wait for the handling to finish, seconds")
    group = parser.add_argument_group("2. delivery")
    group.add_argument("--members", type=int, default=20)
    group.add_argument("--per-member", type=int, default=31, help="beyond 30: held a minute")
    group.add_argument("--robot", type=int, default=21, help="robot broadcasts queued")
    add_latency_option(group, "delivery run")
    group.add_argument("--hold", type=float, default=3.0,
                       help="seconds the sender goes on once the allowed number arrived")
    group.add_argument("--seconds", type=float, default=25.0,
                       help="longest time the sender runs, per latency")
    args = parser.parse_args()
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
