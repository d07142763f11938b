"""Reading a provider's callback body into its struct, in one msgspec pass; a bad value raises
InvalidCallback naming the field's path (``avatarResult[0].images[1].url``), in words derived
from the field's declared type."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, inspect

from receiver.errors import InvalidCallback

MAX_ID_LENGTH = 256

#: A provider's identifier: a string with something other than spaces in it.
Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")]

S = TypeVar("S", bound=msgspec.Struct)
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")


def read(kind: type[S], body: Any) -> S:
    """``body`` (decoded JSON) as ``kind``; fields the struct does not name are ignored."""
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        raise _refusal(kind, str(exc)) from None


def _refusal(kind: type[msgspec.Struct], error: str) -> InvalidCallback:
    at = _AT.search(error)
    path = at["path"].lstrip(".") if at else ""
    problem = error[: at.start()] if at else error
    missing = _MISSING.match(problem)
    if missing:
        field = f"{path}.{missing['name']}" if path else missing["name"]
        return InvalidCallback(f"{field} is required", field=field)
    declared, choices = _declared(kind, path)
    if choices is not None:
        return InvalidCallback(
            f"{path} is required" if problem.endswith("got `null`") else _one_of(path, choices),
            field=path,
        )
    return InvalidCallback(_rule(path, declared, problem), field=path)


def choice(names: Mapping[Any, str], value: Any, field: str) -> str:
    """The normalized name of an enumerated value (the struct's field is annotated with
    ``Meta(extra={"choices": names})``, so a wrong type is refused in the same words)."""
    name = names.get(value)
    if name is None:
        raise InvalidCallback(_one_of(field, names), field=field)
    return name


def _one_of(field: str, choices: Mapping[Any, str]) -> str:
    return f"{field} must be one of {', '.join(repr(choice) for choice in choices)}"


def _declared(
    kind: type[msgspec.Struct], path: str
) -> tuple[inspect.Type, Mapping[Any, str] | None]:
    """The declared type at ``path`` (``a[0].b``), without its ``None``, and its choices."""
    declared: inspect.Type = _unwrap(inspect.type_info(kind))
    choices = None
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if name and isinstance(declared, inspect.StructType):
            field = next(f for f in declared.fields if f.encode_name == name)
            extra = field.type.extra if isinstance(field.type, inspect.Metadata) else None
            choices = (extra or {}).get("choices")
            declared = _unwrap(field.type)
        elif index and isinstance(declared, inspect.ListType):
            declared = _unwrap(declared.item_type)
    return declared, choices


def _unwrap(declared: inspect.Type) -> inspect.Type:
    while isinstance(declared, inspect.Metadata | inspect.UnionType):
        if isinstance(declared, inspect.Metadata):
            declared = declared.type
        else:
            declared = next(t for t in declared.types if not isinstance(t, inspect.NoneType))
    return declared


def _rule(field: str, declared: inspect.Type, problem: str) -> str:
    """What a value at ``field`` must be, in words."""
    if not field:
        return "the body must be a JSON object"
    null = problem.endswith("got `null`")
    if isinstance(declared, inspect.StructType | inspect.DictType):
        return f"{field} must be a JSON object"
    if isinstance(declared, inspect.ListType):
        if isinstance(_unwrap(declared.item_type), inspect.StrType):
            return f"{field} must be an array of strings"
        return f"{field} must be an array"
    if isinstance(declared, inspect.BoolType):
        return f"{field} must be true or false"
    if isinstance(declared, inspect.StrType) and declared.min_length:
        if null:
            return f"{field} is required"
        if "length <=" in problem:
            return f"{field} is longer than {declared.max_length} characters"
        return f"{field} must be a non-empty string"
    return f"{field} must be a string"
