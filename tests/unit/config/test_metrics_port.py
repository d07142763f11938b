"""Where ``photohook worker`` serves its metrics: the flag, else PHOTOHOOK_METRICS_PORT."""

from __future__ import annotations

import pytest

from receiver.config.settings import Settings
from receiver.errors import ConfigError


def test_the_metrics_port_comes_from_the_flag_then_the_environment() -> None:
    assert Settings.load(environ={}).metrics_port is None
    environ = {"PHOTOHOOK_METRICS_PORT": "9464"}
    assert Settings.load(environ=environ).metrics_port == 9464
    assert Settings.load(environ=environ, metrics_port=9100).metrics_port == 9100


@pytest.mark.parametrize(
    ("value", "message"), [("http", "expected a port number"), ("70000", "1 to 65535")]
)
def test_a_bad_metrics_port_is_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ={"PHOTOHOOK_METRICS_PORT": value})
