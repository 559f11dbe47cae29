"""Shim framing: round trips, size cap, malformed input."""

from __future__ import annotations

import asyncio
import struct

import pytest

from ctrd import errdefs
from ctrd.shim import framing
from ctrd.shim.v1 import shim_pb2


def _read(data: bytes) -> shim_pb2.Envelope | None:
    async def go() -> shim_pb2.Envelope | None:
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        return await framing.read_frame(r)

    return asyncio.run(go())


def test_round_trip() -> None:
    env = shim_pb2.Envelope(id=7, method="State", payload=b"\x01\x02")
    assert _read(framing.encode(env) + framing.encode(env)) == env


def test_clean_eof_is_none() -> None:
    assert _read(b"") is None


def test_oversized_header_is_rejected_before_reading_body() -> None:
    data = struct.pack(">I", framing.MAX_FRAME + 1)
    with pytest.raises(framing.FrameError, match="exceeds"):
        _read(data)


@pytest.mark.parametrize("data", [b"\x00\x00", struct.pack(">I", 10) + b"abc"])
def test_truncated_frames(data: bytes) -> None:
    with pytest.raises(framing.FrameError, match="truncated"):
        _read(data)


def test_garbage_body_is_malformed() -> None:
    body = b"\xff\xff\xff\xff"
    with pytest.raises(framing.FrameError, match="malformed"):
        _read(struct.pack(">I", len(body)) + body)


def test_error_round_trip_keeps_code_and_reason() -> None:
    err = errdefs.FailedPrecondition("exec sh: not found", reason=errdefs.REASON_EXEC_NOT_FOUND)
    env = framing.decode(framing.encode(framing.error_envelope(3, err))[4:])
    back = framing.to_error(env.error)
    assert type(back) is errdefs.FailedPrecondition
    assert (back.message, back.reason, env.id) == (err.message, err.reason, 3)


def test_encode_refuses_oversized() -> None:
    with pytest.raises(framing.FrameError):
        framing.encode(shim_pb2.Envelope(payload=b"x" * (framing.MAX_FRAME + 1)))
