"""photohook: a webhook receiver and event router for image-AI API callbacks."""

from receiver.__about__ import __version__
from receiver.config.settings import Settings
from receiver.context import DeliveryContext
from receiver.destinations import Handler, Transform
from receiver.events import Event, KeptResult
from receiver.observability.logs import TokenMaskingFilter
from receiver.retry import Retry
from receiver.web.app import create_app

__all__ = [
    "DeliveryContext",
    "Event",
    "Handler",
    "KeptResult",
    "Retry",
    "Settings",
    "TokenMaskingFilter",
    "Transform",
    "__version__",
    "create_app",
]
