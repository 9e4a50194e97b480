"""WeCom callback crypto: vendor sample vectors, forged input, round trips.

Published vectors used here (inputs copied as data; no vendor code):

* Set A — WeCom official callback samples, ``sbzhu/weworkapi_php`` ``callback/Sample.php``
  (commit f2c836f57187c5390546a70e99be54251c56a95c; the same request text is in the
  comments of ``sbzhu/weworkapi_python`` ``callback/Sample.py``): token ``QDG6eK``,
  corp id ``wx5823bf96d3bd56c7``, a verify-URL GET and a message POST. Sample.php also
  prints the decrypted POST plaintext in a comment.
* Set B — ``sbzhu/weworkapi_python`` ``callback/Sample.py`` (commit
  27220fbe9d5251d46101e33751568eae9f413666): token ``hJqcu3…``, corp id
  ``ww1436e0e65a779aee``, a verify-URL GET and a message POST whose plaintext equals
  the sample's ``sRespData``.
* Set C — Tencent's 公众平台 Java sample test ``WXBizMsgCryptTest.java`` (same
  AES/PKCS#7-32 scheme; mirrored at ``caojing-github/SampleCode``
  ``Java/src/com/qq/weixin/mp/aes/WXBizMsgCryptTest.java``): deterministic encryption
  with the fixed random prefix ``aaaabbbbccccdddd``.
"""

from __future__ import annotations

import base64
import re
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.adapters.wecom.crypto import (
    WeComCrypto,
    WeComCryptoError,
    parse_message,
    pkcs7_pad,
    pkcs7_unpad,
    signature,
)

# --- Set A: sbzhu/weworkapi_php callback/Sample.php ---------------------------------
A_TOKEN = "QDG6eK"
A_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
A_CORP = "wx5823bf96d3bd56c7"

A_URL_SIG = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
A_URL_TS = "1409659589"
A_URL_NONCE = "263014780"
A_URL_ECHOSTR = (
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
)
# The vendor sample only asserts that VerifyURL succeeds; this plaintext is what the
# ciphertext decrypts to (the trailing corp id check passing proves the framing), and
# independent third-party implementations' tests agree on it.
A_URL_PLAIN = "1616140317555161061"

A_MSG_SIG = "477715d11cdb4164915debcba66cb864d751f3e6"
A_MSG_TS = "1409659813"
A_MSG_NONCE = "1372623149"
A_MSG_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3"
    "QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48"
    "kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izo"
    "un1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUa"
    "x5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl"
    "/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
A_MSG_BODY = (
    f"<xml><ToUserName><![CDATA[{A_CORP}]]></ToUserName>"
    f"<Encrypt><![CDATA[{A_MSG_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)
# Printed in the comment after DecryptMsg in Sample.php.
A_MSG_PLAIN = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n"
    "<AgentID>218</AgentID>\n"
    "</xml>"
)

# --- Set B: sbzhu/weworkapi_python callback/Sample.py -------------------------------
B_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
B_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
B_CORP = "ww1436e0e65a779aee"

B_URL_SIG = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"
B_URL_TS = "1476416373"
B_URL_NONCE = "47744683"
B_URL_ECHOSTR = (
    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
)
B_URL_PLAIN = "1288432023552776189"  # not printed by the vendor; see A_URL_PLAIN

B_MSG_SIG = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
B_MSG_TS = "1476422779"
B_MSG_NONCE = "1597212914"
B_MSG_BODY = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n"
    "<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTN"
    "oW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3"
    "dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKk"
    "NL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJO"
    "pcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n"
    "<AgentID><![CDATA[1000002]]></AgentID>\n"
    "</xml>"
)
# Equal to the sample's sRespData.
B_MSG_PLAIN = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)

# --- Set C: 公众平台 Java sample WXBizMsgCryptTest.java ------------------------------
C_TOKEN = "pamtest"
C_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
C_APPID = "wxb11529c136998cb6"
C_RANDOM = b"aaaabbbbccccdddd"
C_MSG1 = "我是中文abcd123"
C_ENC1 = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
C_MSG2 = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName>"
    "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime>"
    "<MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV"
    "71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]>"
    "</Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
)
C_ENC2 = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWes"
    "xlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILH"
    "R8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOH"
    "PT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44"
    "YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042O"
    "lUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZc"
    "kqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P"
    "0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)


@pytest.fixture
def a() -> WeComCrypto:
    return WeComCrypto(A_TOKEN, A_KEY, A_CORP)


def _code(exc_info: pytest.ExceptionInfo[WeComCryptoError]) -> str:
    return exc_info.value.code


def _flip_hex(sig: str) -> str:
    return ("0" if sig[0] != "0" else "1") + sig[1:]


def _raw_encrypt(key_b64: str, plain: bytes) -> str:
    """AES-256-CBC with the WeCom key/IV and *no* padding added (test helper)."""
    key = base64.b64decode(key_b64 + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def _raw_decrypt(key_b64: str, b64: str) -> bytes:
    key = base64.b64decode(key_b64 + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return dec.update(base64.b64decode(b64)) + dec.finalize()


# --- published vectors ----------------------------------------------------------------


def test_signature_matches_published_samples() -> None:
    assert signature(A_TOKEN, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR) == A_URL_SIG
    assert signature(A_TOKEN, A_MSG_TS, A_MSG_NONCE, A_MSG_ENCRYPT) == A_MSG_SIG
    assert signature(B_TOKEN, B_URL_TS, B_URL_NONCE, B_URL_ECHOSTR) == B_URL_SIG


def test_signature_is_sha1_of_sorted_concatenation() -> None:
    import hashlib

    parts = ["b", "a", "d", "c"]
    assert signature(*parts) == hashlib.sha1(b"abcd").hexdigest()


def test_verify_url_published_sample_a(a: WeComCrypto) -> None:
    now = float(A_URL_TS) + 5
    assert a.verify_url(A_URL_SIG, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, now) == A_URL_PLAIN


def test_verify_url_published_sample_b() -> None:
    b = WeComCrypto(B_TOKEN, B_KEY, B_CORP)
    now = float(B_URL_TS)
    assert b.verify_url(B_URL_SIG, B_URL_TS, B_URL_NONCE, B_URL_ECHOSTR, now) == B_URL_PLAIN


def test_decrypt_message_published_sample_a(a: WeComCrypto) -> None:
    inner = a.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, A_MSG_BODY, float(A_MSG_TS))
    assert inner == A_MSG_PLAIN
    assert parse_message(inner) == {
        "ToUserName": "wx5823bf96d3bd56c7",
        "FromUserName": "mycreate",
        "CreateTime": "1409659813",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "4561255354251345929",
        "AgentID": "218",
    }


def test_decrypt_message_accepts_bytes_body(a: WeComCrypto) -> None:
    body = A_MSG_BODY.encode("utf-8")
    assert a.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, body, 1409659813.0) == A_MSG_PLAIN


def test_decrypt_message_published_sample_b_with_chinese() -> None:
    b = WeComCrypto(B_TOKEN, B_KEY, B_CORP)
    inner = b.decrypt_message(B_MSG_SIG, B_MSG_TS, B_MSG_NONCE, B_MSG_BODY, float(B_MSG_TS))
    assert inner == B_MSG_PLAIN
    assert parse_message(inner)["Content"] == "你好"


@pytest.mark.parametrize(("text", "expected"), [(C_MSG1, C_ENC1), (C_MSG2, C_ENC2)])
def test_encrypt_matches_published_fixed_random_vectors(text: str, expected: str) -> None:
    c = WeComCrypto(C_TOKEN, C_KEY, C_APPID)
    assert c.encrypt(text, C_RANDOM) == expected
    assert c.decrypt(expected) == text


def test_published_illegal_key_is_bad_key() -> None:
    with pytest.raises(WeComCryptoError) as ei:
        WeComCrypto(C_TOKEN, "abcde", C_APPID)
    assert _code(ei) == "bad_key"


# --- forged input ---------------------------------------------------------------------


def test_tampered_signature_is_rejected(a: WeComCrypto) -> None:
    now = float(A_URL_TS)
    with pytest.raises(WeComCryptoError) as ei:
        a.verify_url(_flip_hex(A_URL_SIG), A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, now)
    assert _code(ei) == "bad_signature"
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt_message(_flip_hex(A_MSG_SIG), A_MSG_TS, A_MSG_NONCE, A_MSG_BODY, now)
    assert _code(ei) == "bad_signature"


@pytest.mark.parametrize("bad", ["", "12345", A_URL_SIG.upper(), A_URL_SIG + "0", "签名"])
def test_malformed_signatures_are_rejected(a: WeComCrypto, bad: str) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        a.verify_url(bad, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, float(A_URL_TS))
    assert _code(ei) == "bad_signature"


def test_signature_covers_timestamp_nonce_and_ciphertext(a: WeComCrypto) -> None:
    ts2 = str(int(A_URL_TS) + 1)
    now = float(A_URL_TS)
    for args in [
        (A_URL_SIG, ts2, A_URL_NONCE, A_URL_ECHOSTR),
        (A_URL_SIG, A_URL_TS, "263014781", A_URL_ECHOSTR),
        (A_URL_SIG, A_URL_TS, A_URL_NONCE, A_MSG_ENCRYPT),
    ]:
        with pytest.raises(WeComCryptoError) as ei:
            a.verify_url(*args, now)
        assert _code(ei) == "bad_signature"
    wrong_token = WeComCrypto("QDG6eL", A_KEY, A_CORP)
    with pytest.raises(WeComCryptoError) as ei:
        wrong_token.verify_url(A_URL_SIG, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, now)
    assert _code(ei) == "bad_signature"


@pytest.mark.parametrize("offset", [600, -600, 301, -301])
def test_stale_timestamp_is_rejected(a: WeComCrypto, offset: int) -> None:
    now = float(A_URL_TS) + offset
    with pytest.raises(WeComCryptoError) as ei:
        a.verify_url(A_URL_SIG, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, now)
    assert _code(ei) == "stale_timestamp"
    now = float(A_MSG_TS) + offset
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, A_MSG_BODY, now)
    assert _code(ei) == "stale_timestamp"


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_timestamp_within_skew_is_accepted(a: WeComCrypto, offset: int) -> None:
    now = float(A_URL_TS) + offset
    assert a.verify_url(A_URL_SIG, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, now) == A_URL_PLAIN


def test_max_skew_is_configurable() -> None:
    strict = WeComCrypto(A_TOKEN, A_KEY, A_CORP, max_skew_seconds=10)
    with pytest.raises(WeComCryptoError) as ei:
        strict.verify_url(A_URL_SIG, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, float(A_URL_TS) + 11)
    assert _code(ei) == "stale_timestamp"


@pytest.mark.parametrize("ts", ["", "abc", "1409659589.0", "-1409659589", " 1409659589", "١٢٣"])
def test_malformed_timestamp_is_rejected(a: WeComCrypto, ts: str) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        a.verify_url(A_URL_SIG, ts, A_URL_NONCE, A_URL_ECHOSTR, 1409659589.0)
    assert _code(ei) == "bad_timestamp"


def test_wrong_receive_id_on_published_sample() -> None:
    other = WeComCrypto(A_TOKEN, A_KEY, "wx0000000000000000")
    with pytest.raises(WeComCryptoError) as ei:
        other.verify_url(A_URL_SIG, A_URL_TS, A_URL_NONCE, A_URL_ECHOSTR, float(A_URL_TS))
    assert _code(ei) == "wrong_receive_id"
    with pytest.raises(WeComCryptoError) as ei:
        other.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, A_MSG_BODY, float(A_MSG_TS))
    assert _code(ei) == "wrong_receive_id"


def test_wrong_receive_id_prefix_or_extension_is_rejected(a: WeComCrypto) -> None:
    for rid in [A_CORP[:-1], A_CORP + "x", ""]:
        sender = WeComCrypto(A_TOKEN, A_KEY, rid)
        with pytest.raises(WeComCryptoError) as ei:
            a.decrypt(sender.encrypt("hi"))
        assert _code(ei) == "wrong_receive_id"


def test_corrupted_ciphertext_signed_by_token_holder_fails_decrypt(a: WeComCrypto) -> None:
    raw = bytearray(base64.b64decode(A_URL_ECHOSTR))
    raw[-1] ^= 0x55  # garbles the last block, and with it the padding
    corrupted = base64.b64encode(bytes(raw)).decode()
    sig = signature(A_TOKEN, A_URL_TS, A_URL_NONCE, corrupted)
    with pytest.raises(WeComCryptoError) as ei:
        a.verify_url(sig, A_URL_TS, A_URL_NONCE, corrupted, float(A_URL_TS))
    assert _code(ei) in {"bad_padding", "decrypt_failed"}


def test_corrupted_ciphertext_without_resigning_is_bad_signature(a: WeComCrypto) -> None:
    corrupted = "Q" + A_URL_ECHOSTR[1:]
    with pytest.raises(WeComCryptoError) as ei:
        a.verify_url(A_URL_SIG, A_URL_TS, A_URL_NONCE, corrupted, float(A_URL_TS))
    assert _code(ei) == "bad_signature"


@pytest.mark.parametrize(
    "b64",
    [
        "not base64!!",
        "",
        base64.b64encode(b"\x00" * 15).decode(),  # not a whole AES block
        A_URL_ECHOSTR[:-4],  # truncated
    ],
)
def test_undecryptable_ciphertext_is_decrypt_failed(a: WeComCrypto, b64: str) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt(b64)
    assert _code(ei) == "decrypt_failed"


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00" * 32,  # pad value 0
        b"\x21" * 32,  # pad value 33 > block size 32
        b"\x05" * 31 + b"\x04",  # says 4 but fewer bytes agree
        b"\x01" * 28 + b"\x02\x03\x04\x04",  # inconsistent bytes under the pad
    ],
)
def test_bad_padding_is_rejected(a: WeComCrypto, tail: bytes) -> None:
    body = b"R" * 16 + struct.pack(">I", 2) + b"hi" + A_CORP.encode()  # 38 bytes
    plain = body + b"\x00" * (64 - len(body)) + tail  # 96 bytes, no valid padding
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt(_raw_encrypt(A_KEY, plain))
    assert _code(ei) == "bad_padding"


def test_length_field_beyond_plaintext_is_decrypt_failed(a: WeComCrypto) -> None:
    plain = pkcs7_pad(b"R" * 16 + struct.pack(">I", 10_000) + b"hi" + A_CORP.encode())
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt(_raw_encrypt(A_KEY, plain))
    assert _code(ei) == "decrypt_failed"


def test_too_short_plaintext_is_decrypt_failed(a: WeComCrypto) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt(_raw_encrypt(A_KEY, pkcs7_pad(b"R" * 10)))
    assert _code(ei) == "decrypt_failed"


def test_invalid_utf8_message_is_decrypt_failed(a: WeComCrypto) -> None:
    plain = pkcs7_pad(b"R" * 16 + struct.pack(">I", 2) + b"\xff\xfe" + A_CORP.encode())
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt(_raw_encrypt(A_KEY, plain))
    assert _code(ei) == "decrypt_failed"


# --- XML handling ---------------------------------------------------------------------

_DTD_BODIES = [
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "y">]><xml><Encrypt>&x;</Encrypt></xml>',
    '<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>a</Encrypt></xml>',
    "<!doctype xml><xml><Encrypt>a</Encrypt></xml>",
    '<xml><Encrypt>a</Encrypt></xml><!ENTITY lol "lol">',
    (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<xml><Encrypt>&lol2;</Encrypt></xml>"
    ),
]


@pytest.mark.parametrize("body", _DTD_BODIES)
def test_doctype_or_entity_in_envelope_is_bad_xml(a: WeComCrypto, body: str) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, body, float(A_MSG_TS))
    assert _code(ei) == "bad_xml"
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, body.encode(), float(A_MSG_TS))
    assert _code(ei) == "bad_xml"


@pytest.mark.parametrize("body", _DTD_BODIES)
def test_doctype_in_inner_message_is_bad_xml(body: str) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        parse_message(body)
    assert _code(ei) == "bad_xml"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not xml",
        "<xml><Encrypt>abc</xml>",
        "<root><Encrypt>abc</Encrypt></root>",  # wrong root
        "<xml><ToUserName>x</ToUserName></xml>",  # no Encrypt
        "<xml><Encrypt></Encrypt></xml>",  # empty Encrypt
        b"<xml><Encrypt>\xff\xfe</Encrypt></xml>",  # not UTF-8
    ],
)
def test_malformed_envelope_is_bad_xml(a: WeComCrypto, body: str | bytes) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        a.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, body, float(A_MSG_TS))
    assert _code(ei) == "bad_xml"


def test_envelope_with_xml_declaration_and_bom_is_accepted(a: WeComCrypto) -> None:
    body = '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n' + A_MSG_BODY
    inner = a.decrypt_message(A_MSG_SIG, A_MSG_TS, A_MSG_NONCE, body.encode(), 1409659813.0)
    assert inner == A_MSG_PLAIN


def test_parse_message_template_card_event() -> None:
    inner = (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName>"
        "<FromUserName><![CDATA[FromUser]]></FromUserName>"
        "<CreateTime>123456789</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[template_card_event]]></Event>"
        "<EventKey><![CDATA[ack:42]]></EventKey>"
        "<TaskId><![CDATA[task-7]]></TaskId>"
        "<CardType><![CDATA[button_interaction]]></CardType>"
        "<ResponseCode><![CDATA[rc-abc]]></ResponseCode>"
        "<AgentID>1</AgentID>"
        "<SelectedItems><SelectedItem><QuestionKey><![CDATA[q1]]></QuestionKey>"
        "<OptionIds><OptionId><![CDATA[o1]]></OptionId></OptionIds></SelectedItem>"
        "</SelectedItems></xml>"
    )
    fields = parse_message(inner)
    assert fields == {
        "ToUserName": "toUser",
        "FromUserName": "FromUser",
        "CreateTime": "123456789",
        "MsgType": "event",
        "Event": "template_card_event",
        "EventKey": "ack:42",
        "TaskId": "task-7",
        "CardType": "button_interaction",
        "ResponseCode": "rc-abc",
        "AgentID": "1",
    }


def test_parse_message_keeps_text_verbatim_and_empty_elements() -> None:
    inner = "<xml><Content><![CDATA[ 值班 <b>&amp; ]]></Content><EventKey/><MsgId>1</MsgId></xml>"
    assert parse_message(inner.encode()) == {
        "Content": " 值班 <b>&amp; ",
        "EventKey": "",
        "MsgId": "1",
    }


def test_parse_message_first_duplicate_wins() -> None:
    assert parse_message("<xml><A>1</A><A>2</A></xml>") == {"A": "1"}


# --- encryption and round trips -------------------------------------------------------


def test_round_trip_chinese_text(a: WeComCrypto) -> None:
    text = "值班提醒：今晚 20:00 起由张三值守，舆情事件请及时上报。🚨"
    assert a.decrypt(a.encrypt(text)) == text


def test_encrypt_uses_fresh_random_prefix(a: WeComCrypto) -> None:
    assert a.encrypt("同一条消息") != a.encrypt("同一条消息")


def test_encrypt_rejects_wrong_random_length(a: WeComCrypto) -> None:
    with pytest.raises(ValueError):
        a.encrypt("x", b"short")


def test_encrypt_reply_round_trip(a: WeComCrypto) -> None:
    plain = (
        "<xml><ToUserName><![CDATA[zhangsan]]></ToUserName>"
        f"<FromUserName><![CDATA[{A_CORP}]]></FromUserName><CreateTime>1409659813</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[已收到，谢谢！]]></Content></xml>"
    )
    envelope = a.encrypt_reply(plain, A_MSG_NONCE, A_MSG_TS)
    fields = parse_message(envelope)
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert fields["TimeStamp"] == A_MSG_TS
    assert fields["Nonce"] == A_MSG_NONCE
    assert fields["MsgSignature"] == signature(A_TOKEN, A_MSG_TS, A_MSG_NONCE, fields["Encrypt"])
    assert re.fullmatch(r"[0-9a-f]{40}", fields["MsgSignature"])
    # The envelope carries <Encrypt>, so decrypt_message accepts it as a body.
    inner = a.decrypt_message(
        fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], envelope, 1409659813.0
    )
    assert inner == plain
    assert parse_message(inner)["Content"] == "已收到，谢谢！"


def test_encrypt_reply_is_deterministic_with_fixed_random(a: WeComCrypto) -> None:
    e1 = a.encrypt_reply("<xml/>", "n1", 1409659813, random16=b"0123456789abcdef")
    e2 = a.encrypt_reply("<xml/>", "n1", "1409659813", random16=b"0123456789abcdef")
    assert e1 == e2
    assert e1.startswith("<xml><Encrypt><![CDATA[")
    assert "<TimeStamp>1409659813</TimeStamp>" in e1
    assert e1.endswith("<Nonce><![CDATA[n1]]></Nonce></xml>")


def test_encrypt_reply_rejects_unsafe_nonce_and_timestamp(a: WeComCrypto) -> None:
    with pytest.raises(ValueError):
        a.encrypt_reply("<xml/>", "x]]><Evil/>", "1409659813")
    with pytest.raises(ValueError):
        a.encrypt_reply("<xml/>", "n", "14096<x>")


# --- padding --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 15, 16, 31, 32, 33, 63, 64, 65])
def test_pkcs7_pads_to_multiples_of_32(n: int) -> None:
    data = b"x" * n
    padded = pkcs7_pad(data)
    assert len(padded) % 32 == 0
    pad = 32 - n % 32
    assert padded[n:] == bytes([pad]) * pad
    assert pkcs7_unpad(padded) == data


def test_exact_multiple_of_32_gets_a_full_block_of_padding() -> None:
    assert pkcs7_pad(b"y" * 32) == b"y" * 32 + b"\x20" * 32
    assert pkcs7_pad(b"") == b"\x20" * 32


def test_encrypt_when_plaintext_is_exact_multiple_of_32(a: WeComCrypto) -> None:
    # 16 random + 4 length + 26 message + 18 corp id = 64 bytes -> 32 bytes of padding.
    msg = "abcdefghijklmnopqrstuvwxyz"
    assert 16 + 4 + len(msg) + len(A_CORP) == 64
    b64 = a.encrypt(msg, b"0" * 16)
    raw = _raw_decrypt(A_KEY, b64)
    assert len(raw) == 96
    assert raw[-32:] == b"\x20" * 32
    assert a.decrypt(b64) == msg
    # Multi-byte text: 16 + 4 + 42 ("值" is 3 bytes) + 18 = 80 -> 16 bytes of padding.
    zh = "值" * 14
    raw = _raw_decrypt(A_KEY, a.encrypt(zh))
    assert len(raw) == 96 and raw[-16:] == b"\x10" * 16
    assert a.decrypt(a.encrypt(zh)) == zh


def test_empty_message_round_trip(a: WeComCrypto) -> None:
    assert a.decrypt(a.encrypt("")) == ""


# --- key handling and error object ----------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["", "abcde", A_KEY + "A", A_KEY[:-1], "!" * 43, A_KEY[:-1] + "="],
)
def test_bad_keys_are_rejected(key: str) -> None:
    with pytest.raises(WeComCryptoError) as ei:
        WeComCrypto(A_TOKEN, key, A_CORP)
    assert _code(ei) == "bad_key"


def test_error_carries_message_and_code_and_repr_hides_secrets(a: WeComCrypto) -> None:
    err = WeComCryptoError("boom", "bad_xml")
    assert (err.message, err.code, str(err)) == ("boom", "bad_xml", "boom")
    assert A_TOKEN not in repr(a) and A_KEY not in repr(a)
