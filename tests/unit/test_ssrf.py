from __future__ import annotations

import ipaddress

import pytest

from receiver.errors import DeniedDestination
from receiver.ssrf import check_host, denied_reason, parse_host, resolve


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "0.0.0.0",
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "127.1",
        "[::1]",
        "::1",
        "[::ffff:127.0.0.1]",
        "[fd00::1]",
        "169.254.169.254",
        "100.64.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "224.0.0.1",
        "[fe80::1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "[::]",
    ],
)
def test_internal_hosts_are_refused(host: str) -> None:
    with pytest.raises(DeniedDestination):
        check_host(host, 80)


@pytest.mark.parametrize("host", ["93.184.215.14", "8.8.8.8", "[2606:4700::1111]"])
def test_public_addresses_pass(host: str) -> None:
    check_host(host, 443)


def test_numeric_forms_decode_like_the_resolver() -> None:
    assert parse_host("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert parse_host("0177.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert parse_host("example.com") is None


def test_reasons_name_the_range() -> None:
    assert denied_reason(ipaddress.ip_address("169.254.169.254")) == "link-local"
    assert denied_reason(ipaddress.ip_address("100.64.0.1")) == "carrier-grade NAT"
    assert denied_reason(ipaddress.ip_address("::ffff:10.0.0.1")) == "private (as IPv6)"
    assert denied_reason(ipaddress.ip_address("1.1.1.1")) is None


async def test_resolution_at_connect_time_checks_every_address() -> None:
    with pytest.raises(DeniedDestination, match="localhost"):
        await resolve("localhost", 80)
    assert await resolve("8.8.8.8", 80) == "8.8.8.8"
