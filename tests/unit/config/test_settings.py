"""Settings read once from flags, the environment and the config file, with errors that name
file, key and problem; and where ``photohook worker`` serves its metrics: the flag, else
PHOTOHOOK_METRICS_PORT."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from receiver.config.settings import Settings
from receiver.errors import ConfigError
from receiver.store import Tracking


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_accept_both_providers_with_no_config() -> None:
    settings = Settings.load(environ={})
    assert settings.config_file is None
    assert settings.database_url == "sqlite:///photohook.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_body_bytes == 262_144
    assert set(settings.sources) == {"fotor", "cropphoto"}
    assert settings.sources["fotor"].require == {"token"}
    assert settings.sources["cropphoto"].require == {"token"}
    assert "54.212.95.175" in str(settings.sources["fotor"].allow_ips)


def test_flags_win_over_environment(tmp_path: Path) -> None:
    environ = {
        "PORT": "9000",
        "PHOTOHOOK_DATABASE_URL": "sqlite:///env.db",
        "PHOTOHOOK_SECRET_KEYS": " new , old ,",
    }
    settings = Settings.load(environ=environ)
    assert settings.port == 9000
    assert settings.database_url == "sqlite:///env.db"
    assert [key.reveal() for key in settings.secret_keys] == ["new", "old"]
    assert Settings.load(port=7000, database_url="sqlite:///flag.db", environ=environ).port == 7000


def test_photohook_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write(tmp_path / "photohook.toml", "[server]\nmax_body_bytes = 4096\n")
    assert Settings.load(environ={}).max_body_bytes == 4096


def test_full_source_config(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        """
[server]
max_body_bytes = 262144
trusted_proxies = ["10.0.0.0/8", "::1"]

[sources.fotor]
kind = "fotor"
require = ["token", "ip"]

[sources.crop]
kind = "cropphoto"
secrets = ["env:CROP_SECRET", "literal-old"]
""",
    )
    settings = Settings.load(config_file=config, environ={"CROP_SECRET": "from-env"})
    assert set(settings.sources) == {"fotor", "crop"}
    assert settings.sources["fotor"].require == {"token", "ip"}
    crop = settings.sources["crop"]
    assert crop.require == {"secret"}  # the default once secrets are configured
    assert [s.reveal() for s in crop.secrets] == ["from-env", "literal-old"]
    assert "from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nmax_body = 1\n", "c.toml: server.max_body: unknown key"),
        ("[server]\nmax_body_bytes = 'big'\n", "server.max_body_bytes: expected a whole number"),
        ("[server]\nmax_body_bytes = 10\n", "server.max_body_bytes: must be at least 1024"),
        ("[server]\ntrusted_proxies = ['10.0.0.300']\n", "server.trusted_proxies[0]: '10.0.0.300'"),
        ("[sources.x]\n", "sources.x.kind: kind is required"),
        ("[sources.x]\nkind = 'stripe'\n", "sources.x.kind: unknown kind 'stripe'"),
        ("[sources.fotor]\nrequire = ['tokn']\n", "sources.fotor.require: unknown check 'tokn'"),
        ("[sources.fotor]\nrequire = []\n", "sources.fotor.require: at least one check"),
        ("[sources.fotor]\nrequire = ['secret']\n", "sources.fotor.secrets: the 'secret' check"),
        (
            "[sources.crop]\nkind = 'cropphoto'\nrequire = ['ip']\n",
            "sources.crop.allow_ips: the 'ip' check needs",
        ),
        ("[sources.fotor]\nsecrets = ['env:NOPE']\n", "sources.fotor.secrets[0]: environment"),
        ("[sources.fotor]\nallowed_ips = []\n", "sources.fotor.allowed_ips: unknown key"),
        ("[sources.Fotor]\nkind = 'fotor'\n", "sources.Fotor: names use lowercase"),
        ("[sources]\n", "sources: at least one source"),
        ("[sources.fotor]\nconfirm = true\n", "sources.fotor.confirm: confirming callbacks needs"),
        ("[sources.fotor]\napi_key = ['a', 'b']\n", "sources.fotor.api_key: give one API key"),
        ("[sources.fotor]\napi_base_url = 'ftp://x'\n", "sources.fotor.api_base_url"),
        (
            "[sources.fotor]\nreconcile_after = '2h'\nreconcile_for = '1h'\n",
            "sources.fotor.reconcile_for: must be longer",
        ),
        ("[routez]\n", "c.toml: routez: unknown key"),
        ("not toml =", "c.toml: not valid TOML"),
    ],
)
def test_config_errors_name_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as caught:
        Settings.load(config_file=config, environ={})
    assert message in str(caught.value)


def test_reconciling_settings(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        '[sources.fotor]\napi_key = "env:FOTOR_API_KEY"\nreconcile_after = "5m"\nconfirm = true\n'
        '[sources.crop]\nkind = "cropphoto"\n',
    )
    settings = Settings.load(config_file=config, environ={"FOTOR_API_KEY": "k-123"})
    fotor, crop = settings.sources["fotor"], settings.sources["crop"]
    assert fotor.api_key is not None and fotor.api_key.reveal() == "k-123"
    assert (fotor.api_base_url, fotor.reconcile_after, fotor.reconcile_for) == (
        "https://api-b.fotor.com",
        300,
        48 * 3600,
    )
    assert fotor.confirm
    assert fotor.tracking == Tracking(after=300, lasting=48 * 3600, confirm=True)
    assert crop.api_key is None
    assert crop.tracking is None  # no API key: its tasks are not reconciled
    assert crop.api_base_url == "https://us1-api.crop.photo"
    assert "k-123" not in repr(settings)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        Settings.load(config_file=tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORT": "http"}, "PORT: expected a port number"),
        ({"PHOTOHOOK_LOG_FORMAT": "xml"}, "log format"),
        ({"PHOTOHOOK_LOG_LEVEL": "loud"}, "log level"),
    ],
)
def test_bad_environment_values(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ=environ)


def test_how_many_rejected_requests_each_source_keeps(tmp_path: Path) -> None:
    assert Settings.load(environ={}).rejected_cap("fotor") == 10_000
    path = write(
        tmp_path / "photohook.toml",
        "[server]\nmax_rejected_per_source = 50\n\n"
        '[sources.fotor]\nkind = "fotor"\n\n'
        '[sources.quiet]\nkind = "fotor"\nmax_rejected = 0\n',
    )
    settings = Settings.load(config_file=path, environ={})
    assert settings.rejected_cap("fotor") == 50
    assert settings.rejected_cap("quiet") == 0
    for text, message in (
        ("[server]\nmax_rejected_per_source = -1\n", "server.max_rejected_per_source: must be"),
        ('[sources.fotor]\nmax_rejected = "many"\n', "sources.fotor.max_rejected: expected"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings.load(config_file=write(tmp_path / "bad.toml", text), environ={})


def test_loading_settings_leaves_the_import_path_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application embedding photohook keeps its own ``sys.path``; only a folder given as
    ``app_dir`` (or PHOTOHOOK_APP_DIR) goes first, as ``photohook serve`` gives the working
    directory."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    config = write(
        tmp_path / "photohook.toml",
        '[destinations.log]\nhandler = "handlers.log:print_event"\n',
    )
    settings = Settings.load(environ={})
    assert sys.path == before
    assert settings.app_dir is None
    settings = Settings.load(config_file=config, environ={})
    settings.with_callables()  # what create_app does when it delivers
    assert sys.path == before

    given = tmp_path / "app"
    Settings.load(environ={"PHOTOHOOK_APP_DIR": str(given)})
    assert sys.path == [str(given), *before]
    assert Settings.load(environ={}, app_dir=tmp_path).app_dir == tmp_path
    assert sys.path == [str(tmp_path), str(given), *before]


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
