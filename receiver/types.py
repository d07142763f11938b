"""Type aliases and protocols shared across photohook."""

from __future__ import annotations

import ipaddress
from typing import Any, TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
JSONObject: TypeAlias = dict[str, Any]
Headers: TypeAlias = list[tuple[bytes, bytes]]
