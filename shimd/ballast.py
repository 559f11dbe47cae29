"""Fill the free slots of pymalloc's partly used pools before forking a shim.

A forked child writes every page it allocates into. pymalloc hands out the free blocks ("holes")
of partly used pools first, and those holes are scattered over the launcher's whole heap, so a
child's first few thousand small allocations would copy hundreds of shared pages. Filling the
holes with never-touched ballast objects in the launcher makes each child allocate from fresh
pools instead, packed into few pages. The ballast costs the launcher only, once.
"""

from __future__ import annotations

import os
import sys
import tempfile

_BALLAST: list[object] = []
_BYTES_OVERHEAD = sys.getsizeof(b"")


def avail_blocks() -> dict[int, int]:
    """size class (bytes) -> free blocks in partly used pools, from sys._debugmallocstats()."""
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as f:
            os.dup2(f.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
            f.seek(0)
            text = f.read().decode(errors="replace")
    finally:
        os.close(saved)
    out: dict[int, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and all(p.isdigit() for p in parts):
            out[int(parts[1])] = int(parts[4])
    return out


def _one(size: int) -> object:
    if size == 16:
        return object()
    if size == 32:
        return float(len(_BALLAST)) + 0.5
    return bytes(size - _BYTES_OVERHEAD)


def fill_holes(passes: int = 2) -> int:
    """Allocate ballast into every hole; returns how many objects were added."""
    added = 0
    if not hasattr(sys, "_debugmallocstats"):
        return 0
    for _ in range(passes):
        for size, n in avail_blocks().items():
            if size > 16 and size - _BYTES_OVERHEAD <= 1 and size != 32:
                continue
            _BALLAST.extend(_one(size) for _ in range(n))
            added += n
    return added
