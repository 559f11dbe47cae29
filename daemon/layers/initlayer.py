"""The init layer's placeholders (moby daemon/initlayer Setup).

Files tied to one run of a container rather than to its image; the real hostname, hosts and
resolv.conf are bind-mounted over these from containers/<id>/ at start. Kept out of the read-write
layer because that one can be exported.
"""

from __future__ import annotations

import os
from pathlib import Path

DIRS = ("dev", "dev/pts", "dev/shm", "etc", "proc", "sys")
FILES = ("dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf")
SYMLINKS = (("etc/mtab", "/proc/mounts"),)


def populate(diff: Path) -> None:
    """Create the placeholders in an empty layer directory (0755 like docker's)."""
    for d in DIRS:
        os.mkdir(diff / d, 0o755)
        os.chmod(diff / d, 0o755)  # umask-proof
    for f in FILES:
        fd = os.open(diff / f, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
        try:
            os.fchmod(fd, 0o755)
        finally:
            os.close(fd)
    for name, target in SYMLINKS:
        os.symlink(target, diff / name)
