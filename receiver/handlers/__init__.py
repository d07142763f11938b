"""The handler that ships with photohook, under a name no project's own package shadows:
``receiver.handlers.log:print_event``. (Result files are kept by ``keep_results``, not a handler.)

The top-level ``handlers`` package names it too (``handlers.log:print_event``), as long as
the project photohook runs in has no ``handlers`` package with an ``__init__.py`` of its own.
"""
