"""Field readers for provider payloads: each raises InvalidCallback naming the field's path."""

from __future__ import annotations

from typing import Any

from receiver.errors import InvalidCallback
from receiver.types import JSONObject

MAX_ID_LENGTH = 256


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def require_object(value: Any, path: str) -> JSONObject:
    if not isinstance(value, dict):
        raise InvalidCallback(f"{path or 'the body'} must be a JSON object", field=path)
    return value


def require_id(obj: JSONObject, key: str, path: str = "") -> str:
    field = _join(path, key)
    value = obj.get(key)
    if value is None:
        raise InvalidCallback(f"{field} is required", field=field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidCallback(f"{field} must be a non-empty string", field=field)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidCallback(f"{field} is longer than {MAX_ID_LENGTH} characters", field=field)
    return value


def optional_str(obj: JSONObject, key: str, path: str = "") -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    field = _join(path, key)
    raise InvalidCallback(f"{field} must be a string", field=field)


def optional_bool(obj: JSONObject, key: str, path: str = "") -> bool:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    field = _join(path, key)
    raise InvalidCallback(f"{field} must be true or false", field=field)


def optional_objects(obj: JSONObject, key: str, path: str = "") -> list[tuple[str, JSONObject]]:
    """The objects of an optional array, each with its path."""
    value = obj.get(key)
    field = _join(path, key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidCallback(f"{field} must be an array", field=field)
    items = []
    for index, item in enumerate(value):
        item_path = _join(field, index)
        items.append((item_path, require_object(item, item_path)))
    return items


def optional_strings(obj: JSONObject, key: str, path: str = "") -> tuple[str, ...]:
    value = obj.get(key)
    field = _join(path, key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidCallback(f"{field} must be an array of strings", field=field)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            item_field = _join(field, index)
            raise InvalidCallback(f"{item_field} must be a string", field=item_field)
    return tuple(value)


def choice(obj: JSONObject, key: str, choices: dict[Any, str], path: str = "") -> str:
    """The normalized name of a required enumerated value."""
    field = _join(path, key)
    value = obj.get(key)
    if value is None:
        raise InvalidCallback(f"{field} is required", field=field)
    # bool is an int in Python; True must not pass for status 1.
    if not isinstance(value, bool) and isinstance(value, int | str):
        name = choices.get(value)
        if name is not None:
            return name
    allowed = ", ".join(repr(choice) for choice in choices)
    raise InvalidCallback(f"{field} must be one of {allowed}", field=field)
