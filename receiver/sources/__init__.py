"""The providers whose callbacks photohook understands, one module per kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import cropphoto, fotor
from ._parsed import ParsedEvent


@dataclass(frozen=True, slots=True)
class Kind:
    """What photohook knows of one provider."""

    name: str
    parse: Callable[[Any], list[ParsedEvent]]
    statuses: tuple[str, ...]
    terminal_statuses: frozenset[str]
    default_allow_ips: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    "fotor": Kind(
        name="fotor",
        parse=fotor.parse,
        statuses=fotor.STATUSES,
        terminal_statuses=fotor.TERMINAL_STATUSES,
        default_allow_ips=fotor.CALLBACK_IPS,
    ),
    "cropphoto": Kind(
        name="cropphoto",
        parse=cropphoto.parse,
        statuses=cropphoto.STATUSES,
        terminal_statuses=cropphoto.TERMINAL_STATUSES,
    ),
}

__all__ = ["KINDS", "Kind", "ParsedEvent"]
