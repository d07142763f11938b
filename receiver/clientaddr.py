"""Who is calling: the client address behind trusted proxies, and address allowlists."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from receiver.types import IPAddress, IPNetwork


def parse_network(value: str) -> IPNetwork:
    """An IP address or CIDR block (IPv4 or IPv6); a plain address is a /32 or /128."""
    network = ipaddress.ip_network(value.strip(), strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


@functools.lru_cache(maxsize=4096)  # the same peers and proxies call again and again
def parse_address(value: str) -> IPAddress | None:
    """The address in ``value`` (brackets and IPv4-mapped forms unwrapped), or None."""
    text = value.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class AddressSet:
    """A set of networks that answers ``address in allowed`` for parsed addresses."""

    __slots__ = ("_networks",)

    def __init__(self, networks: Iterable[IPNetwork] = ()) -> None:
        self._networks = tuple(networks)

    def __contains__(self, address: object) -> bool:
        return any(address in network for network in self._networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        return self._networks

    def __repr__(self) -> str:
        return f"AddressSet({[str(n) for n in self._networks]!r})"


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted_proxies: AddressSet
) -> IPAddress | None:
    """The address of the client, or None when it cannot be known.

    The socket peer is the client unless it is a trusted proxy. Then ``X-Forwarded-For`` (all its
    headers, in order) is read right to left, skipping trusted proxies: the first address that is
    not one is the client. A forged header from an untrusted peer is never read, and an entry that
    is not an address makes the client unknown rather than guessed.
    """
    if peer is None:
        return None
    address = parse_address(peer)
    if address is None or not trusted_proxies or address not in trusted_proxies:
        return address
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if not hop.strip():
            continue
        hop_address = parse_address(hop)
        if hop_address is None:
            return None
        if hop_address not in trusted_proxies:
            return hop_address
        address = hop_address
    return address
