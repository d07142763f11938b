from __future__ import annotations

import ipaddress

import pytest

from receiver.clientaddr import AddressSet, client_address, parse_address, parse_network

PROXIES = AddressSet([parse_network("10.0.0.0/8"), parse_network("fd00::/8")])


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_peer_is_the_client_without_trusted_proxies() -> None:
    assert client_address("203.0.113.9", ["54.212.95.175"], AddressSet()) == ip("203.0.113.9")


def test_forged_forwarded_for_from_an_untrusted_peer_changes_nothing() -> None:
    assert client_address("203.0.113.9", ["54.212.95.175"], PROXIES) == ip("203.0.113.9")


def test_trusted_proxy_walks_right_to_left_past_trusted_hops() -> None:
    forwarded = ["54.212.95.175, 198.51.100.7", "10.1.1.1"]
    assert client_address("10.0.0.2", forwarded, PROXIES) == ip("198.51.100.7")


def test_forged_left_entries_behind_a_trusted_proxy_are_not_believed() -> None:
    # The client wrote "54.212.95.175" itself; the proxy appended the address it really saw.
    assert client_address("10.0.0.2", ["54.212.95.175, 203.0.113.66"], PROXIES) == ip(
        "203.0.113.66"
    )


def test_trusted_proxy_without_forwarded_for_is_the_client() -> None:
    assert client_address("10.0.0.2", [], PROXIES) == ip("10.0.0.2")


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert client_address("10.0.0.2", ["10.9.9.9, 10.0.0.3"], PROXIES) == ip("10.9.9.9")


@pytest.mark.parametrize("garbage", ["not-an-ip", "54.212.95.175:443x", "999.1.1.1"])
def test_garbage_hop_makes_the_client_unknown(garbage: str) -> None:
    assert client_address("10.0.0.2", [f"54.212.95.175, {garbage}"], PROXIES) is None


def test_ipv6_and_mapped_addresses() -> None:
    assert parse_address("[2001:db8::1]") == ip("2001:db8::1")
    assert parse_address("::ffff:54.212.95.175") == ip("54.212.95.175")
    assert client_address("fd00::5", ["2001:db8::9"], PROXIES) == ip("2001:db8::9")
    assert client_address(None, [], PROXIES) is None


def test_address_sets_match_cidrs_across_families() -> None:
    allowed = AddressSet([parse_network("54.212.95.175"), parse_network("2001:db8::/32")])
    assert ip("54.212.95.175") in allowed
    assert ip("54.212.95.176") not in allowed
    assert ip("2001:db8:1::1") in allowed
    assert ip("2001:db9::1") not in allowed
    assert parse_network("::ffff:10.0.0.0/104") == ipaddress.ip_network("10.0.0.0/8")
