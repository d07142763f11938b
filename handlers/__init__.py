"""Handler functions: photohook's (``handlers.log``) and a team's own.

A team adds ``handlers/orders.py`` in its project (the app dir) and names
``handlers.orders:record``: ``extend_path`` merges every ``handlers`` folder on the import path
into this package, so the team's modules and the built-ins resolve side by side. A project whose
``handlers`` folder has an ``__init__.py`` of its own shadows this package, as the app dir comes
first on the import path; its modules resolve as always, and the built-ins keep their
unambiguous name, ``receiver.handlers.log:print_event``.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
