"""File links: signed, expiring, bound to one file, and accepted under every key of a
rotation."""

from __future__ import annotations

import pytest

from receiver import redact
from receiver.errors import FileLinkRefused
from receiver.keeping.links import FileLinks


def test_a_link_names_its_file_and_resists_tampering() -> None:
    links = FileLinks(["new", "old"], base_url="https://hooks.example.com/", lifetime=60)
    url = links.url("evt_1", 2)
    assert url.startswith("https://hooks.example.com/files/")
    token = url.rsplit("/", 1)[1]
    assert links.check(token) == ("evt_1", 2)
    flipped = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    payload = token.replace(token[:4], "WyJl", 1) if not token.startswith("WyJl") else "x" + token
    for tampered in (flipped, payload, "x" + token, "evt_1", ""):
        with pytest.raises(FileLinkRefused):
            links.check(tampered)


def test_links_made_under_an_older_key_still_work_until_it_is_removed() -> None:
    old = FileLinks(["old"], base_url="http://h", lifetime=60).token("evt_1", 0)
    assert FileLinks(["new", "old"], base_url="http://h", lifetime=60).check(old) == ("evt_1", 0)
    with pytest.raises(FileLinkRefused):
        FileLinks(["new"], base_url="http://h", lifetime=60).check(old)


def test_an_expired_link_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    links = FileLinks(["k"], base_url="http://h", lifetime=60)
    token = links.token("evt_1", 0)
    import itsdangerous.timed

    now = itsdangerous.timed.time.time()
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: now + 3600)
    with pytest.raises(FileLinkRefused):
        links.check(token)


def test_file_tokens_are_masked_in_logged_paths() -> None:
    token = FileLinks(["k"], base_url="http://h", lifetime=60).token("evt_1", 0)
    assert redact.path(f"GET /files/{token} 403") == "GET /files/<token> 403"
    assert redact.path(f"/mounted/files/{token}?x=1") == "/mounted/files/<token>?x=1"
