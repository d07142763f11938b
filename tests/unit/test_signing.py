"""Standard Webhooks signing, checked against the standardwebhooks library; and its edges:
unpadded secrets, the tolerance's bounds, and a valid signature among others in the header."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from receiver.signing import decode_secret, new_secret, sign, signature_header, verify

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"


SPEC_TIMESTAMP = 1614265330


SPEC_BODY = b'{"test": 2432232314}'


def test_the_specification_test_vector() -> None:
    signature = sign(decode_secret(SPEC_SECRET), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standardwebhooks_library_verifies_our_signatures_during_rotation() -> None:
    old, new = "whsec_" + "b2xkLXNlY3JldC1rZXk=", "whsec_bmV3LXNlY3JldC1rZXktMTIz"
    timestamp = int(time.time())
    body = b'{"id": "evt_1", "type": "fotor.task.completed"}'
    header = signature_header([decode_secret(new), decode_secret(old)], "evt_1", timestamp, body)
    assert len(header.split()) == 2
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": header,
    }
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {
            "id": "evt_1",
            "type": "fotor.task.completed",
        }
    assert (
        Webhook(secret).sign("evt_1", datetime.fromtimestamp(timestamp, UTC), body.decode())
        in header
    )


def test_verify_checks_keys_body_and_tolerance() -> None:
    key = decode_secret(SPEC_SECRET)
    header = signature_header([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert verify([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, header, now=SPEC_TIMESTAMP + 10)
    assert not verify([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY + b" ", header, now=SPEC_TIMESTAMP)
    assert not verify([b"other"], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, header, now=SPEC_TIMESTAMP)
    assert not verify([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, header, now=SPEC_TIMESTAMP + 301)


@pytest.mark.parametrize("bad", ["whsec_", "whsec_not base64!", "whsec_%%%%"])
def test_bad_secrets(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        decode_secret(bad)


def test_a_new_secret_is_random_and_the_standardwebhooks_library_takes_it() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    assert 24 <= len(decode_secret(secret)) <= 32
    timestamp = int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(decode_secret(secret), "evt_1", timestamp, b"{}"),
    }
    assert Webhook(secret).verify(b"{}", headers) == {}
    signed = Webhook(secret).sign("evt_2", datetime.fromtimestamp(timestamp, UTC), "{}")
    assert verify([decode_secret(secret)], "evt_2", timestamp, b"{}", signed, now=timestamp)


ID = "msg_edges"


TIMESTAMP = 1_700_000_000


BODY = b'{"id": "evt_edges"}'


@pytest.mark.parametrize("size", [14, 15, 16, 32])
def test_a_secret_decodes_the_same_with_or_without_its_padding(size: int) -> None:
    key = bytes(range(1, size + 1))
    padded = base64.b64encode(key).decode()
    assert decode_secret("whsec_" + padded) == key
    assert decode_secret("whsec_" + padded.rstrip("=")) == key
    assert decode_secret(padded.rstrip("=")) == key  # the prefix is optional


def test_a_timestamp_exactly_at_the_tolerance_is_accepted_either_side() -> None:
    key = b"edge-key"
    header = signature_header([key], ID, TIMESTAMP, BODY)
    for now in (TIMESTAMP - 300, TIMESTAMP + 300):
        assert verify([key], ID, TIMESTAMP, BODY, header, now=now)
    for now in (TIMESTAMP - 301, TIMESTAMP + 301):
        assert not verify([key], ID, TIMESTAMP, BODY, header, now=now)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_one_valid_signature_anywhere_in_the_header_is_enough(position: int) -> None:
    key, other = b"current-key", b"someone-else"
    valid = signature_header([key], ID, TIMESTAMP, BODY)
    entries = [signature_header([other], ID, TIMESTAMP, BODY), "v1,bm90LWEtc2lnbmF0dXJl"]
    entries.insert(position, valid)
    header = " ".join(entries)
    assert verify([key], ID, TIMESTAMP, BODY, header, now=TIMESTAMP)
    # During a rotation the receiver holds both keys: either one's signature verifies.
    assert verify([other, key], ID, TIMESTAMP, BODY, valid, now=TIMESTAMP)
    assert verify([key, other], ID, TIMESTAMP, BODY, valid, now=TIMESTAMP)
    assert not verify([b"a-third-key"], ID, TIMESTAMP, BODY, header, now=TIMESTAMP)
