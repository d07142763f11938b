"""Keeping deliveries away from internal addresses (server-side request forgery).

An explicit deny list, not ``ipaddress.is_private``: loopback, private, link-local (cloud metadata
at 169.254.169.254 included), CGNAT, unspecified, multicast, reserved and documentation ranges,
and the IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4). Hosts written as numbers the
way the system resolver reads them (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) are decoded first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from receiver.errors import DeniedDestination
from receiver.types import IPAddress

_DENIED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("100::/64", "discard"),
    ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in _DENIED)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def denied_reason(address: IPAddress) -> str | None:
    """Why photohook must not connect to ``address``, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address in _SIX_TO_FOUR:
            embedded = address.sixtofour
        if embedded is not None:
            reason = denied_reason(embedded)
            return f"{reason} (as IPv6)" if reason else None
    for network, why in _NETWORKS:
        if address in network:
            return why
    return None


def parse_host(host: str) -> IPAddress | None:
    """The address a host names literally, as the system resolver reads it; None for names."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))  # 2130706433, 0177.0.0.1, 127.1
    except OSError:
        return None


def check_address(host: str, address: IPAddress) -> None:
    reason = denied_reason(address)
    if reason is not None:
        shown = host if str(address) == host.strip("[]") else f"{host} ({address})"
        raise DeniedDestination(f"{shown} is a {reason} address")


def check_host(host: str, port: int) -> None:
    """Refuse a host that is, or resolves to, a denied address (at configuration time).

    A name that does not resolve now is let through: it is checked again at every connection.
    """
    literal = parse_host(host)
    if literal is not None:
        check_address(host, literal)
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return
    for info in infos:
        check_address(host, ipaddress.ip_address(info[4][0]))


async def resolve(host: str, port: int) -> str:
    """An address to connect to for ``host``, every one of its addresses checked first.

    Resolving once and connecting to the checked address is what defeats DNS rebinding.
    """
    literal = parse_host(host)
    if literal is not None:
        check_address(host, literal)
        return str(literal)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        check_address(host, address)
    return str(addresses[0])
