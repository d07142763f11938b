"""``[results]`` and ``keep_results``: read once, checked, errors naming file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.config.settings import Settings
from receiver.errors import ConfigError
from receiver.secrets import Secret


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "photohook.toml"
    path.write_text(text)
    return Settings.load(config_file=path, environ=environ or {})


def test_the_defaults_keep_nothing_in_a_folder_beside_the_database(tmp_path: Path) -> None:
    settings = Settings.load(environ={}, database_url=f"sqlite:///{tmp_path}/data/p.db")
    assert not settings.keeps_results
    results = settings.results
    assert results.store == "local" and results.max_bytes == 100 * 1024 * 1024
    assert results.link_lifetime == 7 * 86400
    assert results.folder(settings.database_url) == tmp_path / "data" / "results"
    assert results.folder("postgresql://db/x") == Path("results")


def test_keep_results_on_a_source_or_a_route(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        [sources.fotor]
        keep_results = true
        [destinations.sink]
        url = "https://example.com/hook"
        [[routes]]
        to = "sink"
        keep_results = true
        [results]
        directory = "/srv/results"
        link_lifetime = "1h"
        max_bytes = 1000
        retry_schedule = ["1s", "2s"]
        allow_private = true
        base_url = "https://hooks.example.com/"
        """,
    )
    assert settings.sources["fotor"].keep_results and settings.routes[0].keep_results
    assert settings.keeps_results
    results = settings.results
    assert results.folder("sqlite:///x.db") == Path("/srv/results")
    assert results.link_lifetime == 3600 and results.max_bytes == 1000
    assert tuple(results.retry.delays) == (1.0, 2.0) and results.allow_private
    assert results.base_url == "https://hooks.example.com"


def test_an_s3_store_takes_its_credentials_from_the_environment(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        [results]
        store = "s3"
        bucket = "results"
        prefix = "/photohook/"
        endpoint_url = "http://127.0.0.1:9000"
        region = "eu-west-1"
        access_key_id = "env:S3_KEY"
        secret_access_key = "env:S3_SECRET"
        """,
        {"S3_KEY": "AKIA", "S3_SECRET": "shh"},
    )
    s3 = settings.results.s3
    assert s3 is not None and s3.bucket == "results" and s3.prefix == "photohook"
    assert s3.access_key_id == Secret("AKIA") and "shh" not in repr(s3)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('store = "ftp"', "results.store: unknown store 'ftp'"),
        ('store = "s3"', "results.bucket: the s3 store needs a bucket"),
        ('link_lifetime = "0s"', "results.link_lifetime: must be more than 0"),
        ('base_url = "ftp://x"', "results.base_url: expected an http(s) URL"),
        ('store = "s3"\nbucket = "b"\naccess_key_id = "k"', "results.secret_access_key"),
        ("colour = 1", "colour"),
        ('store = "s3"\nbucket = "b"\nlink_lifetime = "8d"', "results.link_lifetime: presigned"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"photohook\.toml") as caught:
        load(tmp_path, f"[results]\n{text}\n")
    assert problem in str(caught.value)
