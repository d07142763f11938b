"""The golden tests run photohook under uvicorn with the integration tier's fixtures."""

from tests.integration.conftest import (  # noqa: F401
    photohook,
    photohook_database,
    sink_url,
    stack,
)
