"""Resolving ``"module:attribute"`` strings to objects, once, at start-up."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ImportStringError


def import_from_string(import_str: str) -> Any:
    """The object named by ``"package.module:attribute.path"``.

    Raises :class:`~receiver.errors.ImportStringError` saying which part is wrong.
    """
    module_name, _, attrs = import_str.partition(":")
    if not module_name or not attrs:
        raise ImportStringError(
            f'import string "{import_str}" must be in format "module:attribute"'
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # the module exists, but something it imports does not
        raise ImportStringError(f'could not import module "{module_name}"') from None
    for attr in attrs.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ImportStringError(
                f'attribute "{attrs}" not found in module "{module_name}"'
            ) from None
    return target
