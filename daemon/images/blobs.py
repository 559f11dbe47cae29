"""Streams that hash what passes through them, and compression sniffing.

A layer is read once: raw bytes → sha256 (the blob digest named by an OCI manifest) → decompress →
sha256 (the diff id named by the image config) → tar extraction. Nothing is buffered whole.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, cast

from ctrd import errdefs

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def check_digest(value: object, field: str) -> str:
    """A digest used as a path or key must be exactly sha256:<64 hex> (CVE-2014-9358, CVE-2024-3727)."""
    if not isinstance(value, str) or not DIGEST.match(value):
        raise errdefs.InvalidArgument(f"invalid digest in {field}: {str(value)[:100]!r}")
    return value


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI ChainID: chain[0] = diff[0], chain[n] = sha256(chain[n-1] + " " + diff[n])."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256_bytes(f"{out[-1]} {d}".encode()))
    return out


class HashingReader:
    """Reads from `raw`, hashing and counting; reports the running count to `progress`."""

    def __init__(self, raw: Readable, progress: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0
        self.progress = progress
        self._peeked = b""

    def peek(self, n: int) -> bytes:
        while len(self._peeked) < n:
            chunk = self.raw.read(n - len(self._peeked))
            if not chunk:
                break
            self._peeked += chunk
        return self._peeked[:n]

    def read(self, n: int = -1, /) -> bytes:
        if not self._peeked:
            data = self.raw.read(n)
        elif n < 0:
            data, self._peeked = self._peeked + self.raw.read(), b""
        else:
            # a short read is allowed; the next read continues from the underlying stream
            data, self._peeked = self._peeked[:n], self._peeked[n:]
        if data:
            self.hash.update(data)
            self.count += len(data)
            if self.progress is not None:
                self.progress(self.count)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def decompressed(reader: HashingReader) -> Readable:
    """Wrap `reader` in the decompressor its magic bytes call for (gzip, bzip2, xz, zstd) or none."""
    head = reader.peek(6)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=cast(Any, reader), mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(cast(Any, reader), mode="rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(cast(Any, reader), mode="rb")
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return _Zstd(reader)
    return reader


class _Zstd:
    """zstd decompression whose errors are OSErrors, as gzip's are (a bad layer, not a crash)."""

    def __init__(self, reader: HashingReader) -> None:
        import zstandard  # only zstd layers pay for the import

        self._error = zstandard.ZstdError
        # read_across_frames: a layer may be several concatenated frames (pzstd-style writers)
        self._stream = zstandard.ZstdDecompressor().stream_reader(cast(Any, reader), read_across_frames=True)

    def read(self, n: int = -1, /) -> bytes:
        try:
            data: bytes = self._stream.read(n)
        except self._error as e:
            raise OSError(f"zstd: {e}") from None
        return data


def as_binary(r: Readable) -> BinaryIO:
    return cast(BinaryIO, r)
