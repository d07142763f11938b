"""Handler functions that photohook can route events to, ready to use or to copy."""
