"""The wire format of a shim's attach socket (`<state-dir>/io.sock`), spoken by the shim
(`shimd.attach`) and by whoever attaches (the daemon's Attach streams, tests).

Both ways: frames of a 1-byte kind, a 4-byte big-endian length, then the data.
  client -> shim: STDIN (bytes), STDIN_EOF (the client's stdin ended), RESIZE (>HH rows, cols)
  shim -> client: STDOUT, STDERR (bytes; a terminal has only STDOUT), EXIT (>I status, the last frame)
"""

from __future__ import annotations

import struct

SOCKET_FILE = "io.sock"
STDIN, STDOUT, STDERR, STDIN_EOF, RESIZE, EXIT = 0, 1, 2, 3, 4, 5
HEADER = struct.Struct(">BI")
MAX_FRAME = 1024 * 1024


def frame(kind: int, data: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(data)) + data


def resize(rows: int, cols: int) -> bytes:
    return frame(RESIZE, struct.pack(">HH", rows, cols))


def exit_status(data: bytes) -> int:
    (status,) = struct.unpack(">I", data)
    return int(status)


def take_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete frames from the front of `buf` (an incomplete one stays); ValueError on an
    oversized one."""
    out: list[tuple[int, bytes]] = []
    start = 0
    while len(buf) - start >= HEADER.size:
        kind, length = HEADER.unpack_from(buf, start)
        if length > MAX_FRAME:
            raise ValueError(f"attach frame of {length} bytes exceeds {MAX_FRAME}")
        end = start + HEADER.size + length
        if len(buf) < end:
            break
        out.append((kind, bytes(buf[start + HEADER.size:end])))
        start = end
    del buf[:start]
    return out
