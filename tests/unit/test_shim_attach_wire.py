"""The attach socket's frames (ctrd.shim.attachwire)."""

from __future__ import annotations

import struct

import pytest

from ctrd.shim import attachwire as wire
from shimd import attach


def test_frames_roundtrip_and_an_incomplete_one_stays() -> None:
    buf = bytearray(wire.frame(wire.STDOUT, b"ab") + wire.resize(3, 4) + wire.frame(wire.EXIT, struct.pack(">I", 7))[:3])
    assert wire.take_frames(buf) == [(wire.STDOUT, b"ab"), (wire.RESIZE, struct.pack(">HH", 3, 4))]
    assert len(buf) == 3
    buf += wire.frame(wire.EXIT, struct.pack(">I", 7))[3:]
    [(kind, data)] = wire.take_frames(buf)
    assert (kind, wire.exit_status(data), buf) == (wire.EXIT, 7, bytearray())


def test_an_oversized_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        wire.take_frames(bytearray(wire.HEADER.pack(wire.STDIN, wire.MAX_FRAME + 1)))


def test_a_client_may_fall_behind_by_more_than_one_frame() -> None:
    assert attach.CLIENT_BUFFER > 2 * wire.MAX_FRAME
