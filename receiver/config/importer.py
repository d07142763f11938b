"""Resolving ``"module:attribute"`` strings to objects, once, at start-up.

uvicorn's ``import_from_string`` resolves them; its refusals, and what escapes it, are turned into
one :class:`~receiver.errors.ImportStringError` each, a line naming the string and its wrong part.
"""

from __future__ import annotations

import sys
from typing import Any

from uvicorn.importer import ImportFromStringError
from uvicorn.importer import import_from_string as _resolve

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
        return _resolve(import_str)
    except ImportFromStringError:
        # The format is right, so either the module is missing or its attribute is.
        if module_name in sys.modules:
            raise ImportStringError(
                f'attribute "{attrs}" not found in module "{module_name}"'
            ) from None
        raise ImportStringError(f'could not import module "{module_name}"') from None
    except ModuleNotFoundError as exc:
        # uvicorn passes on the error of a missing package above the module ("myapp" of
        # "myapp.hooks", the commonest mistake) as of any module that the module imports.
        if exc.name is not None and f"{module_name}.".startswith(f"{exc.name}."):
            raise ImportStringError(f'could not import module "{module_name}"') from None
        raise ImportStringError(f'module "{module_name}" failed to import: {exc}') from exc
    except Exception as exc:
        raise ImportStringError(
            f'module "{module_name}" failed to import: {type(exc).__name__}: {exc}'
        ) from exc
