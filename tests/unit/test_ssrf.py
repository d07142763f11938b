"""The SSRF guard: internal addresses refused in any spelling, public addresses in IPv6 clothing
passed, every resolved address checked, and refusals that say what was refused. Names other than
``localhost`` resolve through a fake resolver (in place of the system one, which asyncio's
``getaddrinfo`` calls too), so no test needs the network."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

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


NAMES = {
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebinding.example": ["93.184.215.14", "10.0.0.7"],
}


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in NAMES[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "address",
    ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"],
)
def test_a_public_ipv4_address_inside_ipv6_is_allowed(address: str) -> None:
    assert denied_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("64:ff9b::a00:1", "private (as IPv6)"),
        ("64:ff9b::a9fe:a9fe", "link-local (as IPv6)"),
        ("2002:c0a8:101::", "private (as IPv6)"),
    ],
)
def test_the_embedded_address_is_the_one_judged(address: str, reason: str) -> None:
    assert denied_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.usefixtures("resolver")
def test_refusals_name_the_host_and_the_address_it_stands_for() -> None:
    with pytest.raises(DeniedDestination) as literal:
        check_host("[::1]", 80)
    assert str(literal.value) == "[::1] is a loopback address"
    with pytest.raises(DeniedDestination) as numeric:
        check_host("2130706433", 80)
    assert str(numeric.value) == "2130706433 (127.0.0.1) is a loopback address"
    with pytest.raises(DeniedDestination) as name:
        check_host("rebinding.example", 443)
    assert str(name.value) == "rebinding.example (10.0.0.7) is a private address"


@pytest.mark.usefixtures("resolver")
def test_configuration_lets_a_public_or_unresolvable_name_through() -> None:
    check_host("public.example", 443)
    check_host("not-yet.example", 443)  # checked again at every connection


@pytest.mark.usefixtures("resolver")
async def test_connections_go_to_the_first_checked_address() -> None:
    assert await resolve("public.example", 443) == "93.184.215.14"
    assert await resolve("[2606:4700::1111]", 443) == "2606:4700::1111"


@pytest.mark.usefixtures("resolver")
async def test_every_address_of_a_name_is_checked_at_connect_time() -> None:
    with pytest.raises(DeniedDestination, match=r"rebinding\.example \(10\.0\.0\.7\)"):
        await resolve("rebinding.example", 443)
    with pytest.raises(DeniedDestination, match=r"127\.0\.0\.1 is a loopback address"):
        await resolve("127.0.0.1", 80)
    with pytest.raises(DeniedDestination, match="loopback"):
        await resolve("[::1]", 80)


@pytest.mark.usefixtures("resolver")
async def test_an_unresolvable_name_fails_the_attempt_with_the_resolvers_words() -> None:
    with pytest.raises(OSError, match="resolve") as failed:
        await resolve("not-yet.example", 443)
    assert not isinstance(failed.value, DeniedDestination)
    assert str(failed.value) == "cannot resolve not-yet.example: Name or service not known"
