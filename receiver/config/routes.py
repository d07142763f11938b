"""Reading ``[[routes]]``: which events go to which destinations."""

from __future__ import annotations

from collections.abc import Collection

from receiver.config.file import Table
from receiver.routing import Route


def read_route(
    table: Table,
    index: int,
    *,
    sources: Collection[str],
    statuses: Collection[str],
    destinations: Collection[str],
) -> Route:
    name = table.take_str("name", f"route-{index + 1}")

    def choices(key: str, allowed: Collection[str] | None) -> frozenset[str] | None:
        present = key in table
        values = table.take_str_list(key)
        if not present:
            return None
        if not values:
            raise table.error(key, "an empty list matches nothing; leave the key out instead")
        for value in values:
            if allowed is not None and value not in allowed:
                raise table.error(
                    key, f"unknown {key} {value!r} (expected one of {', '.join(sorted(allowed))})"
                )
        return frozenset(values)

    source = choices("source", sources)
    status = choices("status", statuses)
    event_type = tuple(choices("type", None) or ()) or None
    task_type = choices("task_type", None)
    business_id = tuple(choices("business_id", None) or ()) or None
    labels = tuple(choices("labels", None) or ()) or None
    flagged = table.take_bool("flagged", False) if "flagged" in table else None
    keep_results = table.take_bool("keep_results", False)
    to = table.take_str_list("to")
    if not to:
        raise table.error("to", "name at least one destination")
    for target in to:
        if target not in destinations:
            known = ", ".join(sorted(destinations)) or "none are configured"
            raise table.error("to", f"no destination named {target!r} ({known})")
    table.finish()
    return Route(
        name=name,
        to=tuple(dict.fromkeys(to)),
        source=source,
        type=event_type,
        status=status,
        task_type=task_type,
        business_id=business_id,
        labels=labels,
        flagged=flagged,
        keep_results=keep_results,
    )
