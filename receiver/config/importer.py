"""Resolving ``"module:attribute"`` strings to objects, once, at start-up.

uvicorn's public ``uvicorn.importer.import_from_string`` does the same, and is not used: for
``"myapp.hooks:record"`` with no ``myapp`` on the import path (the commonest mistake, a handler
beside the config file but not in the app dir) it raises a bare ``ModuleNotFoundError`` for
``myapp`` instead of its own message, and a module that fails while importing escapes as its
exception. Here each is a :class:`~receiver.errors.ImportStringError`, one line naming the string.
"""

from __future__ import annotations

import importlib
from typing import Any

from receiver.errors import ImportStringError


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
        if exc.name is not None and f"{module_name}.".startswith(f"{exc.name}."):
            raise ImportStringError(f'could not import module "{module_name}"') from None
        # The module exists, but something it imports does not.
        raise ImportStringError(f'module "{module_name}" failed to import: {exc}') from exc
    except Exception as exc:
        raise ImportStringError(
            f'module "{module_name}" failed to import: {type(exc).__name__}: {exc}'
        ) from exc
    for attr in attrs.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ImportStringError(
                f'attribute "{attrs}" not found in module "{module_name}"'
            ) from None
    return target
