"""WriteTogether: a transport that sends a response's head and body as one write."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from receiver.web._protocol import WriteTogether


class _Recording:
    """A transport that records what is done to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", None))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else None


def _together() -> tuple[WriteTogether, _Recording]:
    recording = _Recording()
    return WriteTogether(cast(asyncio.Transport, recording), asyncio.get_running_loop()), recording


async def test_a_head_and_its_body_go_out_as_one_write() -> None:
    together, recording = _together()
    together.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert recording.calls == []
    together.write(b"body")
    assert recording.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]
    await asyncio.sleep(0)
    assert len(recording.calls) == 1  # nothing left to send


async def test_a_lone_write_goes_out_at_the_end_of_the_loop_step_in_order() -> None:
    together, recording = _together()
    together.write(b"head")
    assert together.get_write_buffer_size() == 7 + 4
    await asyncio.sleep(0)
    together.write(b"one")
    together.write(b"two")
    together.writelines([b"three", b"four"])
    await asyncio.sleep(0)
    assert recording.calls == [("write", b"head"), ("write", b"onetwo"), ("write", b"threefour")]


async def test_closing_sends_what_is_held_first_and_abort_drops_it() -> None:
    together, recording = _together()
    together.write(b"answer")
    together.close()
    await asyncio.sleep(0)
    assert recording.calls == [("write", b"answer"), ("close", None)]

    together, recording = _together()
    together.write(b"answer")
    together.write_eof()
    assert recording.calls == [("write", b"answer"), ("write_eof", None)]

    together, recording = _together()
    together.write(b"answer")
    together.abort()
    await asyncio.sleep(0)
    assert recording.calls == [("abort", None)]


async def test_everything_else_is_the_wrapped_transports() -> None:
    together, recording = _together()
    assert together.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert together.is_closing() is False
    recording.closing = True
    together.write(b"late")
    await asyncio.sleep(0)
    assert recording.calls == []  # a closed transport is not written to
