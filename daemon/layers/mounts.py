"""Overlay mount/unmount and mount-table queries.

Short option strings go straight to mount(2) through ctypes. Option strings longer than a page are
mounted with paths relative to the driver directory; that needs a different cwd, and the daemon's
cwd is process-wide (grpc threads), so it is done in a fork+exec'd `mount` with `cwd=` — never by
chdir in the daemon and never by a bare fork of it.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
from pathlib import Path

from ctrd import errdefs, libc
from daemon.kernel import kernel_version

MNT_DETACH = 2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
VOLATILE_SUPPORTED = kernel_version() >= (5, 10)  # overlay's `volatile` option

_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # /proc/self/mountinfo octal-escapes space, tab, newline and backslash.
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_points() -> set[str]:
    """Every mount point of the calling process's mount namespace."""
    points: set[str] = set()
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4:
                points.add(_unescape(fields[4]))
    return points


def is_mount_point(path: Path) -> bool:
    return str(path) in mount_points()


def overlay_options_fit(options: str) -> bool:
    # The kernel copies at most one page of mount data, NUL included.
    return len(options.encode()) <= PAGE_SIZE - 1


def mount_overlay(target: Path, options: str, cwd: Path | None = None) -> None:
    """Mount an overlay on `target`. With `cwd`, `options` may use paths relative to it."""
    if not overlay_options_fit(options):
        raise errdefs.InvalidArgument(f"cannot mount layer, mount options too large for {target}")
    if cwd is None:
        rc = libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode())
        if rc != 0:
            err = ctypes.get_errno()
            raise errdefs.Internal(f"mount overlay on {target}: {os.strerror(err)}")
        return
    proc = subprocess.run(
        ["mount", "-n", "-i", "-t", "overlay", "overlay", "-o", options, str(target)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise errdefs.Internal(f"mount overlay on {target}: {proc.stderr.strip() or proc.returncode}")


def unmount(target: Path) -> bool:
    """Detach the mount on `target` (lazy, like docker's Put); not mounted is fine (False)."""
    rc = libc.umount2(os.fsencode(target), MNT_DETACH)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            return False
        raise errdefs.Internal(f"unmount {target}: {os.strerror(err)}")
    return True
