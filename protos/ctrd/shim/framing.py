"""The shim's wire framing: a 4-byte big-endian length, then a serialized `Envelope`.

It lives beside the wire contract (`ctrd.shim.v1`) because both ends speak it: the shim server
and the daemon's shim client (an asyncio protocol) both use `take_frames` on their own buffers;
`read_frame` reads one frame from an asyncio stream. A frame larger than `MAX_FRAME` or one that does not parse is a protocol error: the
caller closes that connection (and only that one).
"""

from __future__ import annotations

import asyncio
import struct

from google.protobuf.message import DecodeError

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2

MAX_FRAME = 4 * 1024 * 1024
_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size


class FrameError(Exception):
    """A malformed or oversized frame: the connection it came from must be closed."""


def encode(env: shim_pb2.Envelope) -> bytes:
    body = env.SerializeToString()
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes exceeds the {MAX_FRAME}-byte limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> shim_pb2.Envelope:
    env = shim_pb2.Envelope()
    try:
        env.ParseFromString(body)
    except DecodeError as exc:
        raise FrameError(f"malformed envelope: {exc}") from exc
    return env


async def read_frame(reader: asyncio.StreamReader) -> shim_pb2.Envelope | None:
    """Read one envelope; None on a clean end of stream between frames."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("truncated frame header") from exc
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise FrameError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError("truncated frame body") from exc
    return decode(body)


def take_frames(buf: bytearray) -> list[shim_pb2.Envelope]:
    """Remove every complete frame from the front of `buf` and decode it; an incomplete frame
    stays in `buf` for the next read. Raises FrameError for an oversized or malformed frame."""
    out: list[shim_pb2.Envelope] = []
    start = 0
    while len(buf) - start >= _HEADER.size:
        (length,) = _HEADER.unpack_from(buf, start)
        if length > MAX_FRAME:
            raise FrameError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
        end = start + _HEADER.size + length
        if len(buf) < end:
            break
        out.append(decode(bytes(buf[start + _HEADER.size:end])))
        start = end
    del buf[:start]
    return out


def error_envelope(req_id: int, err: errdefs.CtrdError) -> shim_pb2.Envelope:
    return shim_pb2.Envelope(
        id=req_id, error=shim_pb2.Error(code=err.code, message=err.message, reason=err.reason)
    )


def to_error(err: shim_pb2.Error) -> errdefs.CtrdError:
    return errdefs.from_code(err.code, err.message, err.reason)
