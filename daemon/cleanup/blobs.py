"""The layer blobs ctrd keeps beside the extracted layers (`<root>/content`, for push and save),
attributed to the layers they unpack to, so that `system df` adds up to what `du` sees."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from daemon.cleanup.sizes import dir_size


def kept_blobs(root: Path, image_meta: Path) -> tuple[Counter[str], int]:
    """(diff id → bytes of its kept blobs, bytes of the whole content store)."""
    blobs = root / "content" / "blobs" / "sha256"
    by_digest = image_meta / "distribution" / "diffid-by-digest" / "sha256"
    per: Counter[str] = Counter()
    try:
        entries = list(os.scandir(blobs))
    except FileNotFoundError:
        return per, 0
    for e in entries:
        try:
            size = e.stat(follow_symlinks=False).st_size
            diff = (by_digest / e.name).read_text().strip()
        except OSError:
            continue  # a manifest or config, or a blob no layer claims
        per[diff] += size
    return per, dir_size(str(root / "content"))
