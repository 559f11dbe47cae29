"""docker's stream framing: without a terminal every chunk is an 8-byte header
[stream 0 stdin | 1 stdout | 2 stderr][0 0 0][uint32 big-endian length] + payload; with one, raw bytes."""

from __future__ import annotations

import struct

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def frame(stream: str, data: bytes) -> bytes:
    return struct.pack(">BxxxL", STREAM_IDS.get(stream, 1), len(data)) + data


def stream_type(api_version: str, tty: bool) -> str:
    """API 1.42 named the multiplexed type; older clients were sent raw-stream for both."""
    major, _, minor = api_version.partition(".")
    if tty or (int(major), int(minor or 0)) < (1, 42):
        return RAW
    return MULTIPLEXED
