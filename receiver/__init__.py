"""photohook: a webhook receiver and event router for image-AI API callbacks."""

from .__about__ import __version__
from .app import create_app
from .context import DeliveryContext
from .destinations import Handler, Transform
from .events import Event
from .logs import TokenMaskingFilter
from .retry import Retry
from .settings import Settings

__all__ = [
    "DeliveryContext",
    "Event",
    "Handler",
    "Retry",
    "Settings",
    "TokenMaskingFilter",
    "Transform",
    "__version__",
    "create_app",
]
