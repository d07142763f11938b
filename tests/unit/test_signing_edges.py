"""The edges of Standard Webhooks signing: unpadded secrets, the tolerance's bounds, and a
valid signature among others in the header."""

from __future__ import annotations

import base64

import pytest

from receiver.signing import decode_secret, signature_header, verify

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
