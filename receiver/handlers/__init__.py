"""The handlers that ship with photohook, under names no project's own package shadows:
``receiver.handlers.archive:save_result`` and ``receiver.handlers.log:print_event``.

The top-level ``handlers`` package names them too (``handlers.archive:save_result``), as long as
the project photohook runs in has no ``handlers`` package with an ``__init__.py`` of its own.
"""
