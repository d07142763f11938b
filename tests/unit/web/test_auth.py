from __future__ import annotations

import ipaddress

import pytest

from receiver.clientaddr import AddressSet, parse_network
from receiver.config.sources import SourceConfig
from receiver.errors import Forbidden, Unauthorized
from receiver.secrets import Secret
from receiver.tokens import URLTokens
from receiver.web.auth import SourceAuth

TOKENS = URLTokens(["key-new", "key-old"])


def source(**overrides: object) -> SourceConfig:
    values: dict[str, object] = {
        "name": "fotor",
        "kind": "fotor",
        "require": frozenset({"token"}),
        "allow_ips": AddressSet([parse_network("54.212.95.175")]),
        "secrets": (Secret("s3cret-one"), Secret("s3cret-two")),
    }
    values.update(overrides)
    return SourceConfig(**values)  # type: ignore[arg-type]


def test_tokens_are_bound_to_their_source() -> None:
    token = TOKENS.token("fotor")
    assert TOKENS.verify("fotor", token)
    assert not TOKENS.verify("cropphoto", token)
    assert TOKENS.token("fotor") == token  # stable: the same URL every time


def test_token_tampering_is_refused() -> None:
    token = TOKENS.token("fotor")
    for forged in [token[:-1], token + "A", token + "!", token + "=", "!" + token, "", token * 2]:
        assert not TOKENS.verify("fotor", forged), forged


def test_key_rotation_accepts_old_tokens_until_the_key_is_removed() -> None:
    old = URLTokens(["key-old"]).token("fotor")
    rotated = URLTokens(["key-new", "key-old"])
    assert rotated.verify("fotor", old)
    assert rotated.token("fotor") == URLTokens(["key-new"]).token("fotor")
    assert not URLTokens(["key-new"]).verify("fotor", old)


def test_token_check() -> None:
    auth = SourceAuth(source(), TOKENS)
    auth.check(token=TOKENS.token("fotor"), client=None, secret=None)
    with pytest.raises(Unauthorized, match="no token"):
        auth.check(token=None, client=None, secret=None)
    with pytest.raises(Unauthorized, match="not a token of source 'fotor'"):
        auth.check(token=TOKENS.token("cropphoto"), client=None, secret=None)


def test_ip_check() -> None:
    auth = SourceAuth(source(require=frozenset({"ip"})), TOKENS)
    auth.check(token=None, client=ipaddress.ip_address("54.212.95.175"), secret=None)
    with pytest.raises(Forbidden, match=r"203\.0\.113\.1 is not in allow_ips"):
        auth.check(token=None, client=ipaddress.ip_address("203.0.113.1"), secret=None)
    with pytest.raises(Forbidden, match="unknown"):
        auth.check(token=None, client=None, secret=None)


def test_secret_check_accepts_any_rotated_secret_and_never_echoes_it() -> None:
    auth = SourceAuth(source(require=frozenset({"secret"})), TOKENS)
    auth.check(token=None, client=None, secret="s3cret-one")
    auth.check(token=None, client=None, secret="s3cret-two")
    for wrong in ["s3cret", "s3cret-one ", "S3CRET-ONE", "", "s3cret-onex"]:
        with pytest.raises(Unauthorized) as caught:
            auth.check(token=None, client=None, secret=wrong)
        assert "s3cret" not in caught.value.message
    with pytest.raises(Unauthorized, match="missing"):
        auth.check(token=None, client=None, secret=None)


def test_every_required_check_must_pass() -> None:
    auth = SourceAuth(source(require=frozenset({"token", "ip"})), TOKENS)
    good_ip = ipaddress.ip_address("54.212.95.175")
    auth.check(token=TOKENS.token("fotor"), client=good_ip, secret=None)
    with pytest.raises(Unauthorized):
        auth.check(token="nope", client=good_ip, secret=None)
    with pytest.raises(Forbidden):
        auth.check(token=TOKENS.token("fotor"), client=ipaddress.ip_address("1.2.3.4"), secret=None)


def test_secrets_never_print() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret} {[secret]}"
    assert secret.reveal() == "hunter2"
