"""Keeping result files: copies of providers' temporary result URLs in photohook's result
store, made before an event with ``keep_results`` is delivered, and stable links to them."""

from receiver.keeping.keeper import Keeper, kept_results
from receiver.keeping.links import FileLinks
from receiver.keeping.stores import (
    LocalStore,
    ResultStore,
    open_result_store,
    result_store,
    results_in_use,
)

__all__ = [
    "FileLinks",
    "Keeper",
    "LocalStore",
    "ResultStore",
    "kept_results",
    "open_result_store",
    "result_store",
    "results_in_use",
]
