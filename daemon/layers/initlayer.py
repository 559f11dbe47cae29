"""The init layer's placeholders (moby daemon/initlayer Setup).

Files tied to one run of a container rather than to its image; the real hostname, hosts and
resolv.conf are bind-mounted over these from containers/<id>/ at start. Kept out of the read-write
layer because that one can be exported. They are the same for every container, so the layer
store makes them once (see LayerStore's init template) rather than per container.
"""

from __future__ import annotations

import os
from pathlib import Path

DIRS = ("dev", "dev/pts", "dev/shm", "etc", "proc", "sys")
FILES = ("dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf")
SYMLINKS = (("etc/mtab", "/proc/mounts"),)


def ensure(diff: Path) -> list[Path]:
    """Make `diff` hold the placeholders (0755 like docker's), creating what is missing
    and fixing modes and the symlink's target; returns the directories and files to fsync (a
    symlink is made durable by its directory's fsync: opening it would follow it). Idempotent: a
    start-up after a crash in the middle completes it."""
    diff.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(diff, 0o755)
    for d in DIRS:
        os.makedirs(diff / d, 0o755, exist_ok=True)
        os.chmod(diff / d, 0o755)  # umask-proof
    for f in FILES:
        fd = os.open(diff / f, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
        try:
            os.fchmod(fd, 0o755)
        finally:
            os.close(fd)
    for name, target in SYMLINKS:
        link = diff / name
        if not (link.is_symlink() and os.readlink(link) == target):
            if link.is_symlink() or link.exists():
                os.unlink(link)
            os.symlink(target, link)
    return [diff, *(diff / d for d in DIRS), *(diff / f for f in FILES)]
