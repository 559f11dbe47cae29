"""docker's copy-up: an empty volume mounted where the image has content gets a copy of it.

The copy is `cp -a` of the image directory (owners, modes, times, links, xattrs kept, and the
directory's own owner and mode onto the volume's root), done only when the volume is empty, so a
volume that already has data is never touched. The image path is resolved inside the container's
root: a path that leaves it through a symlink is not copied from.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ctrd.errdefs import Internal


def source_in_rootfs(rootfs: Path, target: str) -> Path | None:
    """The directory at `target` in the mounted root, or None (missing, not a dir, escapes)."""
    root = os.path.realpath(rootfs)
    path = os.path.realpath(os.path.join(root, target.lstrip("/")))
    if path != root and not path.startswith(root + os.sep):
        return None
    return Path(path) if os.path.isdir(path) else None


def populate(src: Path, volume_data: Path) -> bool:
    """Copy `src`'s content into the volume when the volume is empty; True when it copied."""
    if any(os.scandir(volume_data)):
        return False
    proc = subprocess.run(["cp", "-a", "--", f"{src}/.", f"{volume_data}/"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Internal(f"copying the image's {src} into volume {volume_data}: {proc.stderr.strip()}")
    return True
