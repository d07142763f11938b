"""The providers whose callbacks photohook understands, one module per kind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from msgspec import Struct

from receiver.errors import KeyRejected, ProviderUnavailable
from receiver.sources import cropphoto, fotor
from receiver.sources._parsed import ParsedEvent
from receiver.sources._status import StatusAnswer


@dataclass(frozen=True, slots=True)
class Kind:
    """What photohook knows of one provider."""

    name: str
    parse: Callable[[Any], list[ParsedEvent]]
    statuses: tuple[str, ...]
    terminal_statuses: frozenset[str]
    fetch_status: Callable[[httpx.AsyncClient, str, str, str], Awaitable[StatusAnswer]]
    api_base_url: str
    default_allow_ips: tuple[str, ...] = ()
    #: The shapes of its callback bodies (structs ``parse`` reads them into), for the docs.
    bodies: tuple[type[Struct], ...] = ()

    @property
    def status_rank(self) -> dict[str, int]:
        """How far each status takes a task: terminal statuses rank highest, and equal."""
        ranks = {status: index for index, status in enumerate(self.statuses)}
        top = max(ranks[status] for status in self.terminal_statuses)
        return {
            status: top if status in self.terminal_statuses else r for status, r in ranks.items()
        }


KINDS: dict[str, Kind] = {
    "fotor": Kind(
        name="fotor",
        parse=fotor.parse,
        statuses=fotor.STATUSES,
        terminal_statuses=fotor.TERMINAL_STATUSES,
        fetch_status=fotor.fetch_status,
        api_base_url=fotor.API_BASE_URL,
        default_allow_ips=fotor.CALLBACK_IPS,
        bodies=(fotor.FotorCallback,),
    ),
    "cropphoto": Kind(
        name="cropphoto",
        parse=cropphoto.parse,
        statuses=cropphoto.STATUSES,
        terminal_statuses=cropphoto.TERMINAL_STATUSES,
        fetch_status=cropphoto.fetch_status,
        api_base_url=cropphoto.API_BASE_URL,
        bodies=(cropphoto.CropPhotoJob, cropphoto.CropPhotoJobs),
    ),
}

__all__ = ["KINDS", "KeyRejected", "Kind", "ParsedEvent", "ProviderUnavailable", "StatusAnswer"]
