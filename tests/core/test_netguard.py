"""Which addresses the guarded fetcher may use (core.netguard): every spelling of an
internal address is recognised as such, and the allow-list says which intranet hosts and
networks may be fetched anyway."""

from __future__ import annotations

import ipaddress

import pytest

from core.netguard import AllowList, is_public, numeric_host, parse_entry
from tests.core.fake_net import PUBLIC_IP

# ---- addresses -------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.0.9", "10.0.0.5", "172.16.3.4", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.0.8", "192.0.2.1",
    "198.18.0.1", "198.51.100.7", "203.0.113.9",
    "::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.5", "fc00::1", "fd12:3456::1",
    "fe80::1", "fec0::1", "ff02::1", "2001:db8::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2002:7f00:1::1", "2002:c0a8:101::1", "64:ff9b::a00:5", "64:ff9b::7f00:1", "100::1",
])
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [
    PUBLIC_IP, "8.8.8.8", "114.114.114.114", "2400:3200::1", "::ffff:8.8.8.8",
    "2002:808:808::1", "64:ff9b::808:808",
])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("host, address", [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0x7F.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("127.0.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"), ("10.0.0.5", "10.0.0.5"), ("167772165", "10.0.0.5"),
    ("[::1]", "::1"), ("::ffff:127.0.0.1", "127.0.0.1"), ("127.0.0.1.", "127.0.0.1"),
])
def test_numeric_hosts_read_as_inet_aton_does(host: str, address: str) -> None:
    assert numeric_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["www.example.gov.cn", "08.0.0.1", "1.2.3.4.5", "4294967296",
                                  "256.1.1.1", "a1", ""])
def test_names_are_not_numeric(host: str) -> None:
    assert numeric_host(host) is None


# ---- the allow-list --------------------------------------------------------------------

def test_allow_list_entries() -> None:
    allow = AllowList.parse(["oa.intranet.test", "*.zw.test", "cms.test:8443", "10.20.0.0/16",
                             "192.168.7.7:8080", "[fd00::1]:81", "  "])
    ip = ipaddress.ip_address
    assert allow.permits("oa.intranet.test", 80, ip("10.9.9.9"))
    assert allow.permits("OA.intranet.test.".lower(), 8080, ip("10.9.9.9"))
    assert allow.permits("a.b.zw.test", 80, ip("10.1.1.1"))
    assert not allow.permits("zw.test", 80, ip("10.1.1.1"))
    assert allow.permits("cms.test", 8443, ip("10.1.1.1"))
    assert not allow.permits("cms.test", 8444, ip("10.1.1.1"))
    assert allow.permits("whatever.test", 1234, ip("10.20.3.4"))
    assert not allow.permits("whatever.test", 1234, ip("10.21.3.4"))
    assert allow.permits("192.168.7.7", 8080, ip("192.168.7.7"))
    assert not allow.permits("192.168.7.7", 5432, ip("192.168.7.7"))
    assert allow.permits("fd00::1", 81, ip("fd00::1"))
    assert len(allow.entries) == 6
    assert allow.covers("http://oa.intranet.test/x") and allow.covers("http://10.20.1.1/")
    assert not allow.covers("https://www.example.gov.cn/") and not allow.covers("not a url")


@pytest.mark.parametrize("entry", ["http://oa.test/", "10.0.0.0/33", "oa.test:0", "oa.test:99999",
                                   "oa test", "a:b:c:d", "%31.0.0.1"])
def test_malformed_allow_entries_are_refused_in_chinese(entry: str) -> None:
    with pytest.raises(ValueError, match="fetch_allow 条目"):
        parse_entry(entry)
