"""Turning one layer stream into a staged layer directory, with its digests measured on the way.

Extraction goes into a `.staging-*` directory of the layer store; the caller compares the digests
with what the archive promised and only then commits (renames) it — a bad layer never appears.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ctrd import errdefs
from daemon.images.blobs import HashingReader, Readable, as_binary, decompressed
from daemon.layers.overlay2 import LayerStore
from daemon.layers.untar import extract_layer


@dataclass(frozen=True, slots=True)
class Staged:
    path: Path  # staging directory (diff/ inside)
    blob_digest: str  # sha256 of the bytes as read (compressed or not)
    blob_size: int
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes of regular files


def stage_layer(
    layers: LayerStore, src: Readable, what: str, progress: Callable[[int], None] | None = None
) -> Staged:
    staging = layers.new_staging()
    try:
        raw = HashingReader(src, progress)
        diff = HashingReader(decompressed(raw))
        size = extract_layer(as_binary(diff), staging / "diff", what)
        try:
            raw.drain()  # gzip trailer / padding after the tar: part of the blob digest
        except (OSError, EOFError) as e:
            raise errdefs.InvalidArgument(f"{what}: reading: {e}") from None
        return Staged(staging, raw.digest(), raw.count, diff.digest(), size)
    except BaseException:
        layers.discard(staging)
        raise


def verify(staged: Staged, what: str, blob_digest: str, blob_size: int, diff_id: str) -> None:
    """Compare measured digests with the promised ones (empty/negative = not promised)."""
    if blob_digest and staged.blob_digest != blob_digest:
        raise errdefs.InvalidArgument(
            f"{what}: digest mismatch: archive says {blob_digest}, content is {staged.blob_digest}"
        )
    if blob_size >= 0 and staged.blob_size != blob_size:
        raise errdefs.InvalidArgument(f"{what}: size mismatch: archive says {blob_size}, content is {staged.blob_size}")
    if diff_id and staged.diff_id != diff_id:
        raise errdefs.InvalidArgument(f"{what}: diff id mismatch: config says {diff_id}, content is {staged.diff_id}")
