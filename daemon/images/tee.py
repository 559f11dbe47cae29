"""Keeping a layer's raw bytes while the store extracts it (for push and save; see ImageStore.keep_blobs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class KeptBlob(Protocol):
    """Where a layer's raw bytes go while it is extracted; committed under the digest the store measured."""

    def write(self, data: bytes, /) -> object: ...
    def commit(self, blob_digest: str, diff_id: str) -> None: ...
    def discard(self) -> None: ...


def tee(src: Any, kept: KeptBlob | None) -> Any:
    """`src`, or a reader of it that also hands every byte read to `kept`."""
    return src if kept is None else _Tee(src, kept)


class _Tee:
    def __init__(self, src: Any, kept: KeptBlob) -> None:
        self.src = src
        self.kept = kept

    def read(self, n: int = -1, /) -> bytes:
        data: bytes = self.src.read(n)
        if data:
            self.kept.write(data)
        return data


class Keeping:
    """One layer's kept blob: `reader(src)` tees into it; `commit` keeps it; leaving without a
    commit (an error, a bad layer) discards it. No factory: nothing is kept."""

    def __init__(self, factory: Callable[[], KeptBlob] | None) -> None:
        self.kept = factory() if factory is not None else None

    def reader(self, src: Any) -> Any:
        return tee(src, self.kept)

    def commit(self, blob_digest: str, diff_id: str) -> None:
        if self.kept is not None:
            self.kept.commit(blob_digest, diff_id)
            self.kept = None

    def __enter__(self) -> Keeping:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kept is not None:
            self.kept.discard()
            self.kept = None
