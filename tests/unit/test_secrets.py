from __future__ import annotations

from pathlib import Path

import pytest

from receiver.config.settings import Settings
from receiver.errors import ConfigError
from receiver.secrets import UnsetSecret, resolve_secret


def test_an_unset_variable_is_an_error_unless_the_command_only_reads() -> None:
    with pytest.raises(LookupError, match="APP_SECRET is not set"):
        resolve_secret("env:APP_SECRET", {})
    lazy = resolve_secret("env:APP_SECRET", {}, strict=False)
    assert isinstance(lazy, UnsetSecret)
    assert not lazy.matches("") and not lazy.matches(b"")
    assert "APP_SECRET" not in repr(lazy)
    with pytest.raises(LookupError, match="APP_SECRET is not set"):
        lazy.reveal()
    assert resolve_secret("env:APP_SECRET", {"APP_SECRET": "s"}, strict=False).reveal() == "s"


def test_settings_read_for_a_command_that_only_reads(tmp_path: Path) -> None:
    config = tmp_path / "photohook.toml"
    config.write_text(
        '[sources.crop]\nkind = "cropphoto"\nsecrets = ["env:CROP_SECRET"]\n'
        '[destinations.app]\nurl = "https://app.example.com/h"\nsecret = ["env:APP_SECRET"]\n'
    )
    with pytest.raises(ConfigError, match=r"sources\.crop\.secrets\[0\]: environment variable"):
        Settings.load(config_file=config, environ={})
    settings = Settings.load(config_file=config, environ={}, resolve_secrets=False)
    assert settings.sources["crop"].require == {"secret"}
    assert isinstance(settings.sources["crop"].secrets[0], UnsetSecret)
