"""``handlers.archive:save_result``, the built-in :mod:`receiver.handlers.archive`."""

from receiver.handlers.archive import save_result

__all__ = ["save_result"]
