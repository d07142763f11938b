"""photohook: a webhook receiver and event router for image-AI API callbacks."""

from .__about__ import __version__
from .app import create_app
from .events import Event
from .settings import Settings

__all__ = ["Event", "Settings", "__version__", "create_app"]
