"""The running kernel's version, for features that depend on it (seccomp profiles' minKernel,
overlay mount options)."""

from __future__ import annotations

import os


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of `release` (the running kernel's by default); (0, 0) when unreadable."""
    parts = (release or os.uname().release).split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return 0, 0
