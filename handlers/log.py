"""``handlers.log:print_event``, the built-in :mod:`receiver.handlers.log`."""

from receiver.handlers.log import print_event

__all__ = ["print_event"]
