"""DingTalk encrypted HTTP callbacks (事件订阅 HTTP 推送; issue 16, item 1).

Checked three ways: against DingTalk's published sample (token ``123456``, the
``aes_key`` ``4g5j64ql…``, owner key ``suite4xxxxxxxxxxxxxxx``, the ``check_create_suite_url``
event that DingTalk's callback documentation and every SDK's tests decrypt), against an
encryptor written here independently from the protocol (random16 + length + message +
owner key, PKCS#7 to 32, AES-256-CBC, SHA-1 of the sorted four strings), and end to end
through ``/dingtalk/events`` on the HTTP service in front of the app.
"""

# Fixtures come from tests.bot.test_dingtalk_adapter (imported below), so a test parameter with a
# fixture's name is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy.engine import Engine

from bot.adapters.callback_crypto import CallbackCryptoError
from bot.adapters.dingtalk import CALLBACK_PATH, EVENTS_PATH, DingTalkAdapter
from bot.adapters.dingtalk.crypto import DingTalkCallbackCrypto
from bot.app import App
from bot.config import DingTalkSettings
from bot.http import HttpService
from core.clock import FakeClock
from core.errors import AdapterError
from tests.bot.test_dingtalk_adapter import (  # noqa: F401  (fixtures)
    CLIENT_ID,
    base_url,
    bind_person,
    eventually,
    fake,
    processed,
    settings_for,
    texts,
)
from tests.fakes.fake_dingtalk import FakeDingTalk

# --- DingTalk's published sample ------------------------------------------------------
SAMPLE_TOKEN = "123456"
SAMPLE_AES_KEY = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"
SAMPLE_OWNER = "suite4xxxxxxxxxxxxxxx"
SAMPLE_SIGNATURE = "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0"
SAMPLE_TIMESTAMP = "1445827045067"
SAMPLE_NONCE = "nEXhMP4r"
SAMPLE_ENCRYPT = (
    "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTR"
    "WVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfg"
    "nNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ=="
)
SAMPLE_EVENT = {"EventType": "check_create_suite_url", "Random": "LPIdSnlF",
                "TestSuiteKey": "suite4xxxxxxxxxxxxxxx"}

# --- our test app's keys -----------------------------------------------------------------
TOKEN = "cb-token-9d1e"
AES_KEY = base64.b64encode(bytes(range(7, 39))).decode()[:-1]  # 43 characters
assert len(AES_KEY) == 43


# --- an independent implementation of the protocol (for the tests only) ---------------


def ding_sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def ding_encrypt(text: str, *, aes_key: str = AES_KEY, owner: str = CLIENT_ID,
                 random16: bytes = b"0123456789abcdef") -> str:
    key = base64.b64decode(aes_key + "=")
    msg = text.encode()
    plain = random16 + struct.pack(">I", len(msg)) + msg + owner.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def ding_decrypt(encrypt: str, *, aes_key: str = AES_KEY) -> tuple[str, str]:
    """``(message, owner key)`` of a ciphertext."""
    key = base64.b64decode(aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()
    plain = plain[:-plain[-1]]
    (length,) = struct.unpack(">I", plain[16:20])
    return plain[20:20 + length].decode(), plain[20 + length:].decode()


def request_for(message: dict[str, Any], timestamp_ms: int, *, nonce: str = "n0nce123",
                token: str = TOKEN) -> tuple[dict[str, str], dict[str, str]]:
    """``(query, body)`` of an encrypted callback carrying ``message``."""
    encrypt = ding_encrypt(json.dumps(message, ensure_ascii=False))
    ts = str(timestamp_ms)
    return ({"msg_signature": ding_sign(token, ts, nonce, encrypt), "timestamp": ts,
             "nonce": nonce}, {"encrypt": encrypt})


# ------------------------------------------------------------------ the crypto alone


def test_dingtalks_published_sample_decrypts() -> None:
    crypto = DingTalkCallbackCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_OWNER)
    message = crypto.open(msg_signature=SAMPLE_SIGNATURE, timestamp=SAMPLE_TIMESTAMP,
                          nonce=SAMPLE_NONCE, encrypted=SAMPLE_ENCRYPT,
                          now_ms=int(SAMPLE_TIMESTAMP) + 1000)
    assert message == SAMPLE_EVENT
    # The same plaintext, re-encrypted with the sample's own random prefix, is the sample.
    assert crypto._cipher.encrypt(json.dumps(SAMPLE_EVENT, separators=(",", ":")),
                                  b"hU3bEfGZZewzhG5a") == SAMPLE_ENCRYPT
    with pytest.raises(CallbackCryptoError) as caught:
        DingTalkCallbackCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, "ding-other-corp").open(
            msg_signature=SAMPLE_SIGNATURE, timestamp=SAMPLE_TIMESTAMP, nonce=SAMPLE_NONCE,
            encrypted=SAMPLE_ENCRYPT, now_ms=int(SAMPLE_TIMESTAMP))
    assert caught.value.code == "wrong_receive_id"


def test_answer_is_encrypted_success_with_a_valid_signature() -> None:
    crypto = DingTalkCallbackCrypto(TOKEN, AES_KEY, CLIENT_ID)
    answer = crypto.answer(now_ms=1_764_000_000_123)
    assert set(answer) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert answer["timeStamp"] == "1764000000123" and len(answer["nonce"]) == 16
    assert answer["msg_signature"] == ding_sign(TOKEN, answer["timeStamp"], answer["nonce"],
                                                answer["encrypt"])
    assert ding_decrypt(answer["encrypt"]) == ("success", CLIENT_ID)
    assert crypto.answer(now_ms=1)["nonce"] != crypto.answer(now_ms=1)["nonce"]
    assert TOKEN not in repr(crypto) and AES_KEY not in repr(crypto)


def _open(crypto: DingTalkCallbackCrypto, query: dict[str, str], encrypt: str,
          now_ms: int) -> dict[str, Any]:
    return crypto.open(msg_signature=query["msg_signature"], timestamp=query["timestamp"],
                       nonce=query["nonce"], encrypted=encrypt, now_ms=now_ms)


def _tamper(encrypt: str, at: int) -> str:
    raw = bytearray(base64.b64decode(encrypt))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(("case", "code"), [
    ("signature", "bad_signature"),
    ("token", "bad_signature"),
    ("tampered", "bad_signature"),
    ("tampered-resigned", "bad_padding"),
    ("garbage-resigned", "decrypt_failed"),
    ("stale", "stale_timestamp"),
    ("timestamp", "bad_timestamp"),
    ("owner", "wrong_receive_id"),
    ("not-json", "bad_json"),
])
def test_forged_or_tampered_callbacks_are_refused(case: str, code: str) -> None:
    crypto = DingTalkCallbackCrypto(TOKEN, AES_KEY, CLIENT_ID)
    now = 1_764_000_000_000
    query, body = request_for({"EventType": "check_url"}, now)
    encrypt = body["encrypt"]
    if case == "signature":
        query["msg_signature"] = "0" * 40
    elif case == "token":
        query, body = request_for({"EventType": "check_url"}, now, token="not-our-token")
        encrypt = body["encrypt"]
    elif case == "tampered":  # one bit of the ciphertext flipped, the signature kept
        encrypt = _tamper(encrypt, 40)
    elif case == "tampered-resigned":  # … and re-signed by someone who knows the token
        encrypt = _tamper(encrypt, len(base64.b64decode(encrypt)) - 1)
        query["msg_signature"] = ding_sign(TOKEN, query["timestamp"], query["nonce"], encrypt)
    elif case == "garbage-resigned":
        encrypt = "bm90IGFlcw=="
        query["msg_signature"] = ding_sign(TOKEN, query["timestamp"], query["nonce"], encrypt)
    elif case == "stale":
        query, body = request_for({"EventType": "check_url"}, now - 60 * 60 * 1000)
        encrypt = body["encrypt"]
    elif case == "timestamp":
        query["timestamp"] = "17640e9"
    elif case == "owner":
        encrypt = ding_encrypt(json.dumps({"EventType": "check_url"}), owner="ding-other")
        query["msg_signature"] = ding_sign(TOKEN, query["timestamp"], query["nonce"], encrypt)
    else:
        encrypt = ding_encrypt("[1, 2]")
        query["msg_signature"] = ding_sign(TOKEN, query["timestamp"], query["nonce"], encrypt)
    with pytest.raises(CallbackCryptoError) as caught:
        _open(crypto, query, encrypt, now)
    assert caught.value.code == code


def test_an_encrypted_callback_round_trip() -> None:
    crypto = DingTalkCallbackCrypto(TOKEN, AES_KEY, CLIENT_ID)
    event = {"EventType": "user_modify_org", "TimeStamp": "1764000000000", "UserId": ["u1"],
             "CorpId": "ding-corp", "备注": "中文"}
    query, body = request_for(event, 1_764_000_000_000)
    assert _open(crypto, query, body["encrypt"], 1_764_000_000_000 + 59 * 60 * 1000) == event


# ------------------------------------------------------------------ configuration


def test_stream_is_the_default_mode() -> None:
    assert DingTalkSettings().mode == "stream"


def test_incomplete_or_bad_keys_are_refused_at_start(base_url: str) -> None:
    with pytest.raises(AdapterError) as caught:
        DingTalkAdapter(settings_for(base_url, "callback", callback_token=TOKEN).dingtalk)
    assert caught.value.retryable is False
    assert "DUTYBOT_DINGTALK_CALLBACK_AES_KEY" in caught.value.message
    with pytest.raises(AdapterError) as caught:
        DingTalkAdapter(settings_for(base_url, "callback", callback_token=TOKEN,
                                     callback_aes_key="too-short").dingtalk)
    assert "43 位" in caught.value.message and "too-short" not in caught.value.message


async def test_routes_depend_on_mode_and_keys(base_url: str, clock: FakeClock) -> None:
    made: list[DingTalkAdapter] = []

    def paths(mode: str, **keys: str) -> list[str | None]:
        made.append(DingTalkAdapter(settings_for(base_url, mode, **keys).dingtalk, clock=clock))
        return [getattr(r, "path", None) for r in made[-1].http_routes()]

    keys = {"callback_token": TOKEN, "callback_aes_key": AES_KEY}
    assert paths("stream") == []
    assert paths("stream", **keys) == [EVENTS_PATH]
    assert paths("callback") == [CALLBACK_PATH]
    assert paths("callback", **keys) == [CALLBACK_PATH, EVENTS_PATH]
    for adapter in made:
        await adapter.stop()


# ------------------------------------------------------------------ through /dingtalk/events


@pytest.fixture
async def events_app(base_url: str, engine: Engine, clock: FakeClock
                     ) -> AsyncIterator[tuple[App, DingTalkAdapter, str]]:
    settings = settings_for(base_url, "callback", callback_token=TOKEN, callback_aes_key=AES_KEY)
    adapter = DingTalkAdapter(settings.dingtalk, clock=clock, stop_grace_seconds=0.5)
    app = App(settings, clock=clock, adapter=adapter, engine=engine)
    await adapter.start(app.handle)
    service = HttpService(host="127.0.0.1", port=0, routes=adapter.http_routes(),
                          health=lambda: {})
    await service.start()
    try:
        yield app, adapter, f"http://127.0.0.1:{service.port}{EVENTS_PATH}"
    finally:
        await adapter.stop()
        await service.stop()


async def post(url: str, query: dict[str, str], body: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, params=query, json=body)


def assert_success(response: httpx.Response) -> None:
    assert response.status_code == 200
    answer = response.json()
    assert answer["msg_signature"] == ding_sign(TOKEN, answer["timeStamp"], answer["nonce"],
                                                answer["encrypt"])
    assert ding_decrypt(answer["encrypt"]) == ("success", CLIENT_ID)


async def test_url_check_and_events_are_answered_with_encrypted_success(
        events_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk,
        caplog: pytest.LogCaptureFixture) -> None:
    _, _, url = events_app
    caplog.set_level(logging.INFO, logger="dutybot.dingtalk")
    query, body = request_for({"EventType": "check_url"}, fake.now_ms())
    response = await post(url, query, body)
    assert_success(response)
    assert response.json()["timeStamp"] == str(fake.now_ms())
    # The older registrations' parameter names work too.
    query, body = request_for({"EventType": "user_add_org", "UserId": ["u9"]}, fake.now_ms(),
                              nonce="other456")
    older = {"signature": query["msg_signature"], "timeStamp": query["timestamp"],
             "nonce": query["nonce"]}
    assert_success(await post(url, older, body))
    assert "checked the encrypted callback URL" in caplog.text
    assert "'user_add_org' received" in caplog.text


async def test_an_encrypted_robot_message_reaches_the_bot(
        events_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock) -> None:
    app, _, url = events_app
    bind_person(engine, clock)
    message = fake.bot_message("/whoami", staff_id="staff001")
    query, body = request_for(message, fake.now_ms())
    assert_success(await post(url, query, body))
    await eventually(lambda: bool(texts(fake.session_sent, "staff001")), step=app.drain,
                     what="the reply to the encrypted message")
    assert "值班员" in texts(fake.session_sent, "staff001")[0]
    # The same body again (DingTalk retrying a lost answer) is answered, handled once.
    assert_success(await post(url, query, body))
    await app.drain()
    assert len(texts(fake.session_sent, "staff001")) == 1 and processed(engine, message["msgId"])


@pytest.mark.parametrize(("case", "status"), [
    ("bad-signature", 403), ("tampered", 403), ("tampered-resigned", 400), ("stale", 403),
    ("no-encrypt", 403), ("not-json", 400)])
async def test_forged_encrypted_callbacks_are_refused_and_nothing_is_handled(
        events_app: tuple[App, DingTalkAdapter, str], fake: FakeDingTalk, engine: Engine,
        clock: FakeClock, caplog: pytest.LogCaptureFixture, case: str, status: int) -> None:
    app, adapter, url = events_app
    bind_person(engine, clock)
    message = fake.bot_message("/whoami", staff_id="staff001", msg_id="msg-enc-1")
    query, body = request_for(message, fake.now_ms())
    if case == "bad-signature":
        query["msg_signature"] = ding_sign("guessed-token", query["timestamp"], query["nonce"],
                                           body["encrypt"])
    elif case == "tampered":
        body["encrypt"] = _tamper(body["encrypt"], 70)
    elif case == "tampered-resigned":
        body["encrypt"] = _tamper(body["encrypt"], len(base64.b64decode(body["encrypt"])) - 1)
        query["msg_signature"] = ding_sign(TOKEN, query["timestamp"], query["nonce"],
                                           body["encrypt"])
    elif case == "stale":
        clock.advance(timedelta(hours=1))
    elif case == "no-encrypt":
        body = {"msgId": "msg-enc-1"}
    caplog.set_level(logging.WARNING, logger="dutybot.dingtalk")
    if case == "not-json":
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=query, content=b"encrypt=1")
    else:
        response = await post(url, query, body)
    assert response.status_code == status
    assert not adapter._background
    await app.drain()
    assert not processed(engine, "msg-enc-1") and fake.session_sent == []
    assert "refused a DingTalk" in caplog.text
    assert TOKEN not in caplog.text and AES_KEY not in caplog.text
