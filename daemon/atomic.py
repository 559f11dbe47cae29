"""Atomic metadata writes: a kill -9 at any instant leaves either the old or the new file.

write temp (same directory, so the rename stays on one filesystem) → fsync the file → rename over
the target → fsync the directory (so the rename itself survives a crash).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically (parent directory must exist)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask must not weaken or widen the requested mode
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any, mode: int = 0o644) -> None:
    """Serialize `obj` as JSON and write it atomically."""
    write_atomic(path, json.dumps(obj, separators=(",", ":"), sort_keys=False).encode(), mode)
