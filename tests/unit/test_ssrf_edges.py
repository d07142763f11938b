"""The SSRF guard's edges: public addresses in IPv6 clothing pass, every resolved address is
checked, and refusals say what was refused. Names resolve through a fake resolver (the system
one, which asyncio's ``getaddrinfo`` calls too), so no test needs the network."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from receiver.errors import DeniedDestination
from receiver.ssrf import check_host, denied_reason, resolve

NAMES = {
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebinding.example": ["93.184.215.14", "10.0.0.7"],
}


@pytest.fixture(autouse=True)
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


def test_configuration_lets_a_public_or_unresolvable_name_through() -> None:
    check_host("public.example", 443)
    check_host("not-yet.example", 443)  # checked again at every connection


async def test_connections_go_to_the_first_checked_address() -> None:
    assert await resolve("public.example", 443) == "93.184.215.14"
    assert await resolve("[2606:4700::1111]", 443) == "2606:4700::1111"


async def test_every_address_of_a_name_is_checked_at_connect_time() -> None:
    with pytest.raises(DeniedDestination, match=r"rebinding\.example \(10\.0\.0\.7\)"):
        await resolve("rebinding.example", 443)
    with pytest.raises(DeniedDestination, match=r"127\.0\.0\.1 is a loopback address"):
        await resolve("127.0.0.1", 80)
    with pytest.raises(DeniedDestination, match="loopback"):
        await resolve("[::1]", 80)


async def test_an_unresolvable_name_fails_the_attempt_with_the_resolvers_words() -> None:
    with pytest.raises(OSError, match="resolve") as failed:
        await resolve("not-yet.example", 443)
    assert not isinstance(failed.value, DeniedDestination)
    assert str(failed.value) == "cannot resolve not-yet.example: Name or service not known"
