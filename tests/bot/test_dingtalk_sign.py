"""DingTalk signatures: published example, independent computation, forged input.

No vendor-published (timestamp, secret, sign) triple exists for the robot scheme
``HMAC-SHA256(secret, f"{timestamp}\\n{secret}")`` — DingTalk's robot pages show the
algorithm and example *inputs* only (callback header ``timestamp: 1577262236757``,
sample secrets ``"this is a secret"`` / ``"this is secret"``) with a placeholder sign.
So the robot values below are computed independently in the test with ``hmac`` /
``base64`` / ``urllib`` written out here, and pinned as literals.

The one published DingTalk HMAC example is the signature example of 「第三方访问接口
的签名计算方法」 (https://ding-doc.dingtalk.com/doc#/faquestions/hxs5v9, cited in e.g.
``francistm/dingtalk-sdk`` ``spec/dingtalk_spec.rb``): timestamp ``1546084445901``,
appSecret ``testappSecret`` → ``HCbG3xNE3vzhO%2Bu7qCUL1jS5hsu2n5r2cFhnTrtyDAE%3D``.
It signs the timestamp alone, so it pins the shared HMAC-SHA256 / Base64 / URL-encoding
primitive, not the robot string-to-sign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

import pytest

from bot.adapters.dingtalk.sign import (
    CALLBACK_MAX_SKEW_MS,
    DingTalkSignError,
    compute_sign,
    hmac_sha256_base64,
    robot_sign,
    robot_url,
    verify_callback,
)

DOC_TS = "1577262236757"  # the callback header example in DingTalk's receive-message doc
DOC_APP_SECRET = "this is a secret"  # app_secret in that doc's Python sample
DOC_ROBOT_SECRET = "this is secret"  # secret in the custom-robot signing doc's Python sample

# Computed independently (Python hmac/hashlib/base64), not by the code under test.
DOC_CALLBACK_SIGN = "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="
DOC_ROBOT_SIGN_ENCODED = "hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"


def _independent_sign(secret: str, timestamp: str) -> str:
    """The documented algorithm, written out without the module under test."""
    string_to_sign = timestamp + "\n" + secret
    mac = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


# --- published example / independent computation ------------------------------------


def test_primitive_matches_published_dingtalk_hmac_example() -> None:
    raw = hmac_sha256_base64("testappSecret", "1546084445901")
    assert raw == "HCbG3xNE3vzhO+u7qCUL1jS5hsu2n5r2cFhnTrtyDAE="
    assert urllib.parse.quote_plus(raw) == "HCbG3xNE3vzhO%2Bu7qCUL1jS5hsu2n5r2cFhnTrtyDAE%3D"


def test_compute_sign_matches_independent_computation() -> None:
    assert _independent_sign(DOC_APP_SECRET, DOC_TS) == DOC_CALLBACK_SIGN
    assert compute_sign(DOC_APP_SECRET, DOC_TS) == DOC_CALLBACK_SIGN
    assert compute_sign(DOC_APP_SECRET, int(DOC_TS)) == DOC_CALLBACK_SIGN


@pytest.mark.parametrize(
    ("secret", "ts"),
    [
        ("SEC" + "a1" * 32, "1700000000000"),
        ("中文密钥", "1"),
        ("x", "0"),
    ],
)
def test_compute_sign_independent_for_other_inputs(secret: str, ts: str) -> None:
    assert compute_sign(secret, ts) == _independent_sign(secret, ts)


def test_robot_sign_matches_independent_computation() -> None:
    expected = urllib.parse.quote_plus(_independent_sign(DOC_ROBOT_SECRET, DOC_TS))
    assert expected == DOC_ROBOT_SIGN_ENCODED
    assert robot_sign(DOC_ROBOT_SECRET, int(DOC_TS)) == DOC_ROBOT_SIGN_ENCODED


def test_robot_url_appends_timestamp_and_sign() -> None:
    hook = "https://oapi.dingtalk.com/robot/send?access_token=abc123"
    url = robot_url(hook, DOC_ROBOT_SECRET, int(DOC_TS))
    assert url == f"{hook}&timestamp={DOC_TS}&sign={DOC_ROBOT_SIGN_ENCODED}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["access_token"] == ["abc123"]
    assert query["timestamp"] == [DOC_TS]
    assert query["sign"] == [_independent_sign(DOC_ROBOT_SECRET, DOC_TS)]


def test_robot_url_without_query_uses_question_mark() -> None:
    url = robot_url("https://example.test/hook", "s", 5)
    assert url.startswith("https://example.test/hook?timestamp=5&sign=")
    url = robot_url("https://example.test/hook?", "s", 5)
    assert url.startswith("https://example.test/hook?timestamp=5&sign=")


@pytest.mark.parametrize("bad", [1.5e12, "1577262236757", -1, True, None])
def test_robot_sign_rejects_non_int_timestamps(bad: object) -> None:
    with pytest.raises(ValueError):
        robot_sign("s", bad)  # type: ignore[arg-type]


# --- inbound callback verification ----------------------------------------------------


@pytest.mark.parametrize("delta", [0, 1, -1, 59 * 60 * 1000, CALLBACK_MAX_SKEW_MS - 1])
def test_verify_callback_accepts_fresh_genuine_request(delta: int) -> None:
    now_ms = int(DOC_TS) + delta
    assert verify_callback(DOC_TS, DOC_CALLBACK_SIGN, DOC_APP_SECRET, now_ms) is None


@pytest.mark.parametrize(
    "delta",
    [CALLBACK_MAX_SKEW_MS, -CALLBACK_MAX_SKEW_MS, CALLBACK_MAX_SKEW_MS + 1, 2 * 3600 * 1000],
)
def test_verify_callback_rejects_timestamp_an_hour_or_more_away(delta: int) -> None:
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(DOC_TS, DOC_CALLBACK_SIGN, DOC_APP_SECRET, int(DOC_TS) + delta)
    assert ei.value.code == "stale_timestamp"


def test_verify_callback_rejects_replayed_old_signature() -> None:
    old_ts = str(int(DOC_TS) - 61 * 60 * 1000)
    sign = _independent_sign(DOC_APP_SECRET, old_ts)
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(old_ts, sign, DOC_APP_SECRET, int(DOC_TS))
    assert ei.value.code == "stale_timestamp"


def _flip_first(sign: str) -> str:
    return ("A" if sign[0] != "A" else "B") + sign[1:]


@pytest.mark.parametrize(
    "sign",
    [
        _flip_first(DOC_CALLBACK_SIGN),
        DOC_CALLBACK_SIGN[:-1],
        DOC_CALLBACK_SIGN + "=",
        urllib.parse.quote_plus(DOC_CALLBACK_SIGN),  # callbacks carry the raw value
        "",
        "签名",
    ],
)
def test_verify_callback_rejects_tampered_sign(sign: str) -> None:
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(DOC_TS, sign, DOC_APP_SECRET, int(DOC_TS))
    assert ei.value.code == "bad_signature"


def test_verify_callback_rejects_wrong_secret_and_shifted_timestamp() -> None:
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(DOC_TS, DOC_CALLBACK_SIGN, "this is b secret", int(DOC_TS))
    assert ei.value.code == "bad_signature"
    shifted = str(int(DOC_TS) + 1)
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(shifted, DOC_CALLBACK_SIGN, DOC_APP_SECRET, int(DOC_TS))
    assert ei.value.code == "bad_signature"


@pytest.mark.parametrize(
    "ts", ["", "abc", "1577262236757.0", "-1577262236757", " 1577262236757", "١٢٣", "9" * 40]
)
def test_verify_callback_rejects_malformed_timestamp(ts: str) -> None:
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(ts, DOC_CALLBACK_SIGN, DOC_APP_SECRET, int(DOC_TS))
    assert ei.value.code == "bad_timestamp"


def test_verify_callback_rejects_missing_headers() -> None:
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(None, DOC_CALLBACK_SIGN, DOC_APP_SECRET, 0)  # type: ignore[arg-type]
    assert ei.value.code == "bad_timestamp"
    with pytest.raises(DingTalkSignError) as ei:
        verify_callback(DOC_TS, None, DOC_APP_SECRET, int(DOC_TS))  # type: ignore[arg-type]
    assert ei.value.code == "bad_signature"


def test_round_trip_with_chinese_secret() -> None:
    secret = "机器人密钥-SEC123"
    ts = "1700000000123"
    verify_callback(ts, compute_sign(secret, ts), secret, 1700000000123)
    assert urllib.parse.unquote_plus(robot_sign(secret, int(ts))) == compute_sign(secret, ts)


def test_error_carries_message_and_code() -> None:
    err = DingTalkSignError("nope", "bad_signature")
    assert (err.message, err.code, str(err)) == ("nope", "bad_signature", "nope")
