"""The providers' request signatures against their published worked examples, and the fake
APIs' independent verifiers refusing what a real API refuses."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.paging import aliyun, tencent
from bot.paging.providers import PagingError
from bot.paging.settings import PagingSettings
from core.clock import FakeClock
from tests.fakes.fake_aliyun import FakeAliyun, expected_signature
from tests.fakes.fake_tencent import FakeTencentSms
from tests.fakes.serve import serve_asgi


def test_aliyun_signature_v1_matches_the_documented_example() -> None:
    # Alibaba Cloud, "API 签名机制（示例）" (developer.aliyun.com/ask/210168, the same example as
    # the RPC "Signature mechanism" pages of help.aliyun.com): DescribeRegions with AccessKey
    # testid / testsecret signs to CT9X0VtwR86fNWSnsc6v8YGOjuE=.
    params = {"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
              "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
              "SignatureVersion": "1.0"}
    assert aliyun.string_to_sign("GET", params) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26")
    assert aliyun.sign("GET", params, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_aliyun_percent_encoding_follows_rfc3986() -> None:
    assert aliyun.percent_encode("a b*c~d/e+f") == "a%20b%2Ac~d%2Fe%2Bf"
    assert aliyun.percent_encode('{"grade":"特级"}') == "%7B%22grade%22%3A%22%E7%89%B9%E7%BA%A7%22%7D"


def test_tencent_tc3_matches_the_documented_example() -> None:
    # Tencent Cloud API 3.0, "Signature v3" (TC3-HMAC-SHA256), its worked example: CVM
    # DescribeInstances in ap-guangzhou at 1551113065 with SecretKey
    # Gu5t9xGARNpq86cd98joQYCN3EXAMPLE → Signature 72e494ea…525168.
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
    request, signed = tencent.canonical_request("POST", headers, payload)
    assert signed == "content-type;host"
    assert hashlib.sha256(payload).hexdigest() == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    assert hashlib.sha256(request.encode()).hexdigest() == \
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    auth = tencent.authorization(secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
                                 secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", service="cvm",
                                 timestamp=1551113065, headers=headers, payload=payload)
    assert auth == ("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
                    "SignedHeaders=content-type;host, "
                    "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


def test_the_fake_aliyun_verifier_agrees_with_the_documented_example() -> None:
    params = {"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
              "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
              "SignatureVersion": "1.0"}
    assert expected_signature(params, "testsecret", "GET") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def _settings(base: str, **extra: object) -> PagingSettings:
    return PagingSettings.model_validate({
        "aliyun_access_key_id": "LTAIid", "aliyun_access_key_secret": "right-secret", "aliyun_sign_name": "区政府办",
        "aliyun_sms_template": "SMS_1", "aliyun_sms_url": f"{base}/sms/", "aliyun_voice_url": f"{base}/voice/",
        "tencent_secret_id": "AKIDx", "tencent_secret_key": "right-key", "tencent_sms_app_id": "1400000001",
        "tencent_sign_name": "区政府办", "tencent_template_id": "1", "tencent_sms_url": f"{base}/", **extra})


async def test_the_fakes_refuse_a_wrong_secret_a_stale_timestamp_and_a_replayed_nonce() -> None:
    clock = FakeClock(datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    fake = FakeAliyun(access_key_id="LTAIid", secret="right-secret", time_source=clock.now)
    async with serve_asgi(fake.app) as base, httpx.AsyncClient() as http:
        good = aliyun.AliyunClient(_settings(base), http=http, clock=clock)
        assert (await good.send_sms("13800000001", {"number": "INC-1"}, "page-1")).startswith("biz-")
        wrong = aliyun.AliyunClient(_settings(base, aliyun_access_key_secret="wrong"), http=http, clock=clock)
        with pytest.raises(PagingError, match="SignatureDoesNotMatch") as refused:
            await wrong.send_sms("13800000001", {}, "page-2")
        assert not refused.value.retryable
        replay = aliyun.AliyunClient(_settings(base), http=http, clock=clock, nonce=lambda: "same-nonce")
        await replay.send_sms("13800000001", {}, "page-3")
        with pytest.raises(PagingError, match="SignatureNonceUsed"):
            await replay.send_sms("13800000001", {}, "page-4")
        stale = aliyun.AliyunClient(_settings(base), http=http,
                                    clock=FakeClock(datetime(2026, 11, 23, 17, 40, tzinfo=UTC)))
        with pytest.raises(PagingError, match=r"InvalidTimeStamp\.Expired"):
            await stale.send_sms("13800000001", {}, "page-5")
    assert len(fake.sms) == 2


async def test_the_fake_tencent_refuses_a_tampered_body_and_a_wrong_key() -> None:
    clock = FakeClock(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    fake = FakeTencentSms(secret_id="AKIDx", secret_key="right-key", app_id="1400000001", time_source=clock.now)
    async with serve_asgi(fake.app) as base, httpx.AsyncClient() as http:
        client = tencent.TencentSmsClient(_settings(base), http=http, clock=clock)
        assert (await client.send_sms("13800000001", {"number": "INC-1"}, "page-1")).startswith("sn-")
        headers, payload = client.request("SendSms", {"PhoneNumberSet": ["+8613800000001"], "SmsSdkAppId": "1400000001",
                                                      "TemplateParamSet": ["1"]})
        tampered = payload.replace(b"13800000001", b"13900000009")
        answer = await http.post(f"{base}/", content=tampered, headers=headers)
        assert answer.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
        wrong = tencent.TencentSmsClient(_settings(base, tencent_secret_key=SecretStr("wrong")), http=http, clock=clock)
        with pytest.raises(PagingError, match=r"AuthFailure\.SignatureFailure"):
            await wrong.send_sms("13800000001", {}, "page-2")
    assert len(fake.sms) == 1


def test_no_signature_helper_is_shared_between_bot_and_fakes() -> None:
    """The fakes verify from the documents, not by calling the bot's signers."""
    for fake in ("fake_aliyun.py", "fake_tencent.py"):
        source = (Path(__file__).parents[1] / "fakes" / fake).read_text(encoding="utf-8")
        assert "bot.paging" not in source
