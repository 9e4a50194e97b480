"""DingTalk (钉钉): how fast inbound messages are handled, and fan-out against DingTalk's limits (not a test).

Run ``python bench/bench_dingtalk.py`` (options: ``--messages``, ``--people``,
``--concurrency``, ``--stream``; for the delivery: ``--private``, ``--groups``,
``--group-messages``, ``--latency``; ``--only callbacks|delivery``). Everything runs on
127.0.0.1; the clock is the real one.

**HTTP callback mode** (``[dingtalk] mode = "callback"``). The real
:class:`~bot.adapters.dingtalk.DingTalkAdapter` serves ``/dingtalk/callback`` with
:class:`~bot.http.HttpService` inside the bot's event loop, in front of the real
:class:`~bot.app.App` on a temporary SQLite file. A separate process plays DingTalk: it
POSTs ``--messages`` private bot messages (``/duty`` and ``/whoami`` from ``--people``
bound staff, each with its own ``msgId``), signed as DingTalk does (headers ``timestamp``
and ``sign`` from :func:`bot.adapters.dingtalk.sign.compute_sign`), ``--concurrency`` at a
time, timing each answer. The adapter answers ``{}`` at once and handles the message in
the background; a message is *handled* once it is dispatched and its reply written to the
outbox (the app's handler returned). The outbox sender does not run, so the numbers are
the receiving path alone. The handling rate is messages handled per second from the
first POST to the last message handled; the backlog is how long handling went on after
the last answer.

**Stream mode** (``--stream``, ``mode = "stream"``): ``tests/fakes/fake_dingtalk``'s
gateway, in its own process, pushes the same messages as CALLBACK frames over the
adapter's WebSocket, at most ``--concurrency`` unanswered at a time. The adapter answers
(ACKs) a frame once its message is handled, so the ACK time is the handling latency.

The fake DingTalk (``tests/fakes/fake_dingtalk.FakeDingTalk``, served by uvicorn in its
own process) also issues the access token the adapter fetches when it starts.

**Delivery** (fan-out). The real :class:`~bot.outbox.OutboxSender` delivers ``--private``
messages to bound staff (``oToMessages/batchSend``) and ``--group-messages`` to each of
``--groups`` groups (``groupMessages/send``) from a temporary SQLite file, once per
``--latency`` (default 20 ms and 100 ms), against a fake DingTalk in its own process
behind :class:`fanoutlib.PlatformGate`: each request waits the latency, then a send beyond
DingTalk's limits as the adapter declares them — 20 calls/s for the app (the per-app,
per-API QPS limit of a standard organisation, "钉钉标准版 QPS频次限制为20qps",
https://developer.aliyun.com/ask/615474; beyond it DingTalk answers 403
``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``) and 20 a minute per group (the custom
robot's documented 20 a minute) — is refused so, and counted. Rate: the n-th send (from 0) can go at the earliest floor(n / 20) s after
the first, so the share of the allowed rate is floor((N - 1) / 20) s over the measured
time from the first send to the last (as the fake saw them). Goal: ≥ 97 % and no refusal.
Prints one ``BENCH_JSON`` line (``delivery.runs.20ms.percent`` …).
"""

from __future__ import annotations

import argparse
import asyncio
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
    Limit,
    PlatformGate,
    add_latency_option,
    ignore_inbound,
    latency_runs,
    most_in_window,
    rate_share,
    run_key,
    run_label,
    run_sender,
    serve_fake,
    sqlite_engine,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.dingtalk import DingTalkAdapter
from bot.adapters.dingtalk.sign import compute_sign
from bot.app import App
from bot.config import Settings, load_settings
from bot.http import HttpService
from core.clock import SystemClock
from core.db import session_scope
from core.messages import Outbound
from core.outbox import enqueue
from people.models import Role
from tests.factories import make_person
from tests.fakes.fake_dingtalk import FakeDingTalk

CLIENT_ID = "dingbenchclient"
SECRET = "bench-app-secret-7f3c"
ROBOT_CODE = "dingbenchrobot"
CALLBACK_PATH = "/dingtalk/callback"
COMMANDS = ("/duty", "/whoami")
APP_PER_SECOND = 20     # DingTalkAdapter.limits: the app's QPS limit ...
GROUP_PER_MINUTE = 20   # ... and 20 a minute per group
SEND_PATHS = ("/v1.0/robot/oToMessages/batchSend", "/v1.0/robot/groupMessages/send")
QPS_REFUSAL = (403, {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                     "message": "The request has exceeded the QPS limit."})


# --------------------------------------------------------------------------- shared


def _settings(api_url: str, mode: str) -> Settings:
    return load_settings(None, env={
        "DUTYBOT_DINGTALK_MODE": mode, "DUTYBOT_DINGTALK_CLIENT_ID": CLIENT_ID,
        "DUTYBOT_DINGTALK_CLIENT_SECRET": SECRET, "DUTYBOT_DINGTALK_ROBOT_CODE": ROBOT_CODE,
        "DUTYBOT_DINGTALK_API_BASE": api_url})


def bot_message(api_url: str, text: str, staff_id: str, nick: str, msg_id: str) -> dict[str, Any]:
    """A private bot-message body as DingTalk sends it (the shape the tests' fake builds)."""
    now = int(time.time() * 1000)
    return {
        "conversationId": f"cidPrivate-{staff_id}", "conversationType": "1",
        "chatbotCorpId": "ding-corp", "chatbotUserId": "$:LWCP_v1:$robot",
        "msgId": msg_id, "senderNick": nick, "isAdmin": False, "senderStaffId": staff_id,
        "senderId": f"$:LWCP_v1:${staff_id}", "senderCorpId": "ding-corp",
        "sessionWebhookExpiredTime": now + 90 * 60 * 1000, "createAt": now,
        "conversationTitle": "", "isInAtList": True,
        "sessionWebhook": f"{api_url}/robot/sendBySession?session=s-{msg_id}",
        "robotCode": ROBOT_CODE, "msgtype": "text", "text": {"content": text},
    }


def _message(api_url: str, staff: Sequence[str], n: int) -> dict[str, Any]:
    return bot_message(api_url, COMMANDS[n % len(COMMANDS)], staff[n % len(staff)],
                       f"值班员{n % len(staff):03d}", f"msgBench{n:07d}")


# --------------------------------------------------------------------------- the fake DingTalk


class _Acks(list):  # type: ignore[type-arg]
    """The fake gateway's ``acks``, with the time each answer arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[tuple[str, float, int]] = []  # (messageId, monotonic, code)
        self.changed = asyncio.Event()

    def append(self, answer: Any) -> None:
        super().append(answer)
        headers = answer.get("headers") if isinstance(answer, dict) else None
        if isinstance(headers, dict):
            self.at.append((str(headers.get("messageId")), time.monotonic(),
                            int(answer.get("code") or 0)))
        self.changed.set()


_last_stamp = 0


def _signed_headers() -> dict[str, str]:
    """DingTalk's ``timestamp`` and ``sign`` headers, each request with a millisecond of its
    own: the bot accepts each signed timestamp once (a replay guard)."""
    global _last_stamp
    _last_stamp = max(_last_stamp + 1, int(time.time() * 1000))
    timestamp = str(_last_stamp)
    return {"timestamp": timestamp, "sign": compute_sign(SECRET, timestamp),
            "content-type": "application/json"}


def _serve_fake(port: int) -> None:
    """The fake DingTalk in its own process. ``POST /bench/push`` (Stream mode) pushes
    ``messages`` bot messages to the connected adapter, at most ``window`` unanswered, and
    answers with ``[(msgId, pushed_at, acked_at, code)]`` once all are answered."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    fake = FakeDingTalk(client_id=CLIENT_ID, client_secret=SECRET, robot_code=ROBOT_CODE)
    fake.base_url = f"http://127.0.0.1:{port}"
    acks = _Acks()
    fake.acks = acks

    async def push(request: Request) -> JSONResponse:
        spec = await request.json()
        messages, window, staff = spec["messages"], spec["window"], spec["staff"]
        await fake.wait_connections(1, timeout=10)
        acks.at.clear()
        pushed: dict[str, tuple[str, float]] = {}  # frame messageId -> (msgId, when)
        for n in range(messages):
            while len(pushed) - len(acks.at) >= window:
                acks.changed.clear()
                await acks.changed.wait()
            data = _message(fake.base_url, staff, n)
            at = time.monotonic()
            pushed[await fake.push_callback(data)] = (data["msgId"], at)
        while len(acks.at) < messages:
            acks.changed.clear()
            await acks.changed.wait()
        return JSONResponse([[*pushed[frame], at, code] for frame, at, code in acks.at
                             if frame in pushed])

    fake.app.router.routes.insert(0, Route("/bench/push", push, methods=["POST"]))
    uvicorn.run(fake.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --------------------------------------------------------------------------- DingTalk pushing


def _pusher(url: str, api_url: str, staff: list[str], messages: int, concurrency: int,
            conn: Connection) -> None:
    """DingTalk in its own process: POST ``messages`` signed callbacks, ``concurrency`` at
    a time; sends back ``[(msgId, posted_at, answered_at, status)]`` (monotonic seconds)."""

    async def run() -> list[tuple[str, float, float, int]]:
        numbers = iter(range(messages))
        results: list[tuple[str, float, float, int]] = []
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def worker() -> None:
                for n in numbers:
                    data = _message(api_url, staff, n)
                    headers = _signed_headers()
                    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
                    posted = time.monotonic()
                    try:
                        status = (await client.post(url, content=body,
                                                    headers=headers)).status_code
                    except httpx.HTTPError:
                        status = 0
                    results.append((data["msgId"], posted, time.monotonic(), status))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results

    conn.send(asyncio.run(run()))
    conn.close()


# --------------------------------------------------------------------------- the bot


def _bound_engine(tmp: str, name: str, staff: Sequence[str]) -> Engine:
    engine = sqlite_engine(tmp, name)
    now = SystemClock().now()
    with Session(engine) as session:
        for n, staff_id in enumerate(staff):
            make_person(session, f"值班员{n:03d}", roles=(Role.officer,), now=now,
                        platform="dingtalk", external_id=staff_id)
        session.commit()
    return engine


def _report(label: str, args: argparse.Namespace, answers: list[tuple[str, float, float, int]],
            recorder: HandledRecorder, growth: tuple[int, int], answer_name: str) -> None:
    codes = Counter(code for _, _, _, code in answers)
    latencies = [(answered - posted) * 1000 for _, posted, answered, _ in answers]
    first = min(posted for _, posted, _, _ in answers)
    last_answer = max(answered for _, _, answered, _ in answers)
    posted_at = {msg_id: posted for msg_id, posted, _, _ in answers}
    handled = [at for key, at in recorder.done.items() if key in posted_at]
    end_to_end = [(recorder.done[key] - posted) * 1000 for key, posted in posted_at.items()
                  if key in recorder.done]
    last_done = max(handled) if handled else float("nan")
    print(f"[{label}] {args.messages} private messages from {args.people} bound staff, "
          f"{args.concurrency} in flight")
    print(f"  {answer_name}: p50 {statistics.median(latencies):.1f} ms, p99 "
          f"{percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms; "
          f"codes {dict(sorted(codes.items()))}")
    print(f"  (closed loop: while the bot is saturated an answer waits about "
          f"{args.concurrency} / handling rate)")
    print(f"  arrival: {len(answers) / (last_answer - first):.0f} msg/s "
          f"(first to last answer {last_answer - first:.2f} s)")
    print(f"  handled (dispatch + reply in the outbox): {len(handled)}/{args.messages} in "
          f"{last_done - first:.2f} s = {len(handled) / (last_done - first):.0f} msg/s; "
          f"backlog after the last answer {max(0.0, last_done - last_answer):.2f} s")
    print(f"  sent to reply queued: p50 {statistics.median(end_to_end):.0f} ms, p99 "
          f"{percentile(end_to_end, 0.99):.0f} ms; ledger rows +{growth[0]}, outbox rows "
          f"+{growth[1]} (expected {args.messages} each)")


async def _callbacks(args: argparse.Namespace, api_url: str, tmp: str) -> None:
    staff = [f"staff{n:03d}" for n in range(args.people)]
    engine = _bound_engine(tmp, "callbacks.db", staff)
    settings = _settings(api_url, "callback")
    adapter = DingTalkAdapter(settings.dingtalk)
    app = App(settings, clock=SystemClock(), adapter=adapter, engine=engine)
    recorder = HandledRecorder(app)
    service = HttpService(host="127.0.0.1", port=0, routes=adapter.http_routes(),
                          health=app.health)
    await service.start()
    await adapter.start(recorder)
    url = f"http://127.0.0.1:{service.port}{CALLBACK_PATH}"
    try:
        # Warm-up (first-use costs), from this process; not measured.
        recorder.expect(args.warmup)
        async with httpx.AsyncClient(timeout=30) as client:
            for n in range(args.warmup):
                data = _message(api_url, staff, n)
                data["msgId"] = f"warmup{n:05d}"
                (await client.post(url, json=data, headers=_signed_headers())).raise_for_status()
        await asyncio.wait_for(recorder.reached.wait(), timeout=30)
        recorder.done.clear()
        before = ledger_and_outbox_counts(engine)

        recorder.expect(args.messages)
        spawn = multiprocessing.get_context("spawn")
        mine, theirs = spawn.Pipe(duplex=False)
        pusher = spawn.Process(target=_pusher, args=(url, api_url, staff, args.messages,
                                                     args.concurrency, theirs), daemon=True)
        pusher.start()
        theirs.close()
        answers: list[tuple[str, float, float, int]] = await asyncio.to_thread(mine.recv)
        pusher.join()
        try:
            await asyncio.wait_for(recorder.reached.wait(), timeout=args.timeout)
        except TimeoutError:
            print(f"  (gave up waiting after {args.timeout:.0f} s)")
        after = ledger_and_outbox_counts(engine)
    finally:
        await adapter.stop()
        await service.stop()
        engine.dispose()
    _report(f"callback mode: {CALLBACK_PATH} on HttpService", args, answers, recorder,
            (after[0] - before[0], after[1] - before[1]), "HTTP answer")


async def _stream(args: argparse.Namespace, api_url: str, tmp: str) -> None:
    staff = [f"staff{n:03d}" for n in range(args.people)]
    engine = _bound_engine(tmp, "stream.db", staff)
    settings = _settings(api_url, "stream")
    adapter = DingTalkAdapter(settings.dingtalk)
    app = App(settings, clock=SystemClock(), adapter=adapter, engine=engine)
    recorder = HandledRecorder(app)
    await adapter.start(recorder)
    try:
        before = ledger_and_outbox_counts(engine)
        recorder.expect(args.messages)
        async with httpx.AsyncClient(timeout=None) as client:
            response = await client.post(f"{api_url}/bench/push", json={
                "messages": args.messages, "window": args.concurrency, "staff": staff})
            response.raise_for_status()
            answers = [(str(mid), float(p), float(a), int(c)) for mid, p, a, c in response.json()]
        try:
            await asyncio.wait_for(recorder.reached.wait(), timeout=args.timeout)
        except TimeoutError:
            print(f"  (gave up waiting after {args.timeout:.0f} s)")
        after = ledger_and_outbox_counts(engine)
    finally:
        await adapter.stop()
        engine.dispose()
    _report("stream mode: fake gateway over WebSocket", args, answers, recorder,
            (after[0] - before[0], after[1] - before[1]), "ACK (= handled)")


# --------------------------------------------------------------------------- delivery


def _serve_delivery_fake(port: int, latency: float) -> None:
    """The fake DingTalk behind the latency and DingTalk's limits, with ``GET /stats``."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    fake = FakeDingTalk(client_id=CLIENT_ID, client_secret=SECRET, robot_code=ROBOT_CODE)
    fake.base_url = f"http://127.0.0.1:{port}"
    gate = PlatformGate(fake.app, latency=latency, paths=SEND_PATHS, refusal=QPS_REFUSAL, limits=(
        Limit(APP_PER_SECOND, 1.0, lambda body: ""),
        Limit(GROUP_PER_MINUTE, 60.0, lambda body: body.get("openConversationId"))))

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"at": gate.accepted, "refused": gate.refused,
                             "users": [m["user"] for m in fake.oto_sent],
                             "groups": [m["conversation"] for m in fake.group_sent]})

    fake.app.router.routes.insert(0, Route("/stats", stats))
    uvicorn.run(gate, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _fill_delivery(engine: Engine, args: argparse.Namespace) -> int:
    now = SystemClock().now()
    text = ("【每日简报】11月25日 值班情况\n今日值班：王芳（白班）、刘洋（夜班）；带班领导：李强\n"
            "未结事件 2 件，今日到期留言 3 条。")
    with session_scope(engine) as session:
        for g in range(args.groups):
            for k in range(args.group_messages):
                enqueue(session=session, now=now, event_key=f"brief:2026-11-25:{k}",
                        message=Outbound(f"{text}（第 {k + 1} 部分）", chat_id=f"cidGroup{g:03d}"))
        for n in range(args.private):
            person = make_person(session, f"值班员{n:03d}", roles=(Role.officer,), now=now,
                                 platform="dingtalk", external_id=f"staff{n:04d}")
            enqueue(session=session, now=now, event_key="brief:2026-11-25",
                    message=Outbound(text, person_id=person.id))
    return args.private + args.groups * args.group_messages


async def _delivery(args: argparse.Namespace, latency: float, tmp: str) -> dict[str, Any]:
    load = os.getloadavg()[0]
    async with serve_fake(_serve_delivery_fake, latency) as fake:
        engine = sqlite_engine(tmp, f"delivery{run_key(latency)}.db")
        total = _fill_delivery(engine, args)
        settings = _settings(fake.url, "callback")
        adapter = DingTalkAdapter(settings.dingtalk)
        await adapter.start(ignore_inbound)
        await run_sender(engine, adapter, settings.outbox, fake.seen(total),
                         timeout=args.delivery_timeout)
        await adapter.stop()
        engine.dispose()
        result = await fake.stats()
    done = sorted(result["at"])
    pace = rate_share(done, APP_PER_SECOND)
    per_group = [result["groups"].count(f"cidGroup{g:03d}") for g in range(args.groups)]
    print(f"{run_label(latency, load, 'delivery')} {len(done)}/{total} "
          f"delivered ({args.private} staff, {args.groups} groups × {args.group_messages}); "
          f"most in any second {most_in_window(done, 1.0)} (limit {APP_PER_SECOND})")
    print(f"  {pace.describe('calls/s')}; QPS refusals: {result['refused']}; "
          f"per group: {per_group}")
    return pace.figures(latency=latency, load=load, too_many=result["refused"], queued=total)


# --------------------------------------------------------------------------- main


async def _run(args: argparse.Namespace) -> None:
    if args.only in (None, "delivery"):
        runs = {}
        with tempfile.TemporaryDirectory() as tmp:
            for key, latency in latency_runs(args.latency):
                runs[key] = await _delivery(args, latency, tmp)
        print("BENCH_JSON " + json.dumps({"platform": "dingtalk", "goal_percent": 97,
                                          "delivery": {"runs": runs}}))
    if args.only == "delivery":
        return
    async with serve_fake(_serve_fake, ready_path="/v1.0/oauth2/accessToken") as fake:
        with tempfile.TemporaryDirectory() as tmp:
            await _callbacks(args, fake.url, tmp)
            if args.stream:
                await _stream(args, fake.url, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--people", type=int, default=50, help="bound staff writing")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="requests (callback) or frames (stream) in flight")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured messages first")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="longest wait for the handling to finish, seconds")
    parser.add_argument("--stream", action="store_true",
                        help="also Stream mode against the fake gateway")
    parser.add_argument("--only", choices=("callbacks", "delivery"), default=None)
    group = parser.add_argument_group("delivery")
    group.add_argument("--private", type=int, default=200, help="bound staff, one message each")
    group.add_argument("--groups", type=int, default=3)
    group.add_argument("--group-messages", type=int, default=3)
    add_latency_option(group, "delivery run")
    group.add_argument("--delivery-timeout", type=float, default=40.0,
                       help="longest a delivery run goes on, seconds")
    args = parser.parse_args()
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
