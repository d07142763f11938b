"""Delivering stored events: the worker, its senders, destinations, signatures and retries."""
