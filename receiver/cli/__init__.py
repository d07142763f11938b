"""The ``photohook`` command: its parser and what each command does."""
