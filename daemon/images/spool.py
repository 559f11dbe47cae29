"""Archives for `docker load`: a seekable copy of a stream, gunzipped on the way."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from ctrd import errdefs

_CHUNK = 1 << 20
Progress = Callable[[int], None] | None


def seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def spool_archive(src: BinaryIO, spool: BinaryIO, progress: Progress) -> None:
    """Copy an archive to a seekable temp file, decompressing a gzip'd archive on the way."""
    head = src.read(2)
    count = len(head)
    if head == b"\x1f\x8b":
        raw = _Prefixed(head, src)
        try:
            with gzip.GzipFile(fileobj=cast(Any, raw), mode="rb") as gz:
                while chunk := gz.read(_CHUNK):
                    spool.write(chunk)
                    if progress:
                        progress(raw.count)
        except (OSError, EOFError) as e:
            raise errdefs.InvalidArgument(f"invalid archive: {e}") from None
    else:
        spool.write(head)
        while chunk := src.read(_CHUNK):
            spool.write(chunk)
            count += len(chunk)
            if progress:
                progress(count)
    spool.flush()
    spool.seek(0)


class _Prefixed:
    """A reader that first returns `head`, then the rest of `src` (counting bytes read)."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self.head = head
        self.src = src
        self.count = len(head)

    def read(self, n: int = -1) -> bytes:
        if self.head:
            cut = len(self.head) if n < 0 else n
            data, self.head = self.head[:cut], self.head[cut:]
            return data
        data = self.src.read(n)
        self.count += len(data)
        return data
