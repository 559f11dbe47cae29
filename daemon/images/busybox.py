"""A `busybox:latest` image built locally from the host's static busybox (Debian busybox-static).

No registry is needed for a first `run busybox`. The rootfs is one small layer: /bin/busybox, a
symlink per applet in /bin, /etc/passwd and /etc/group, the usual empty directories. Every header
is fixed (owner root, mtime of the host binary), so the same host binary always gives the same
image id. A dynamically linked busybox would not run inside the container: it is refused.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import tarfile
from pathlib import Path

from ctrd import errdefs, timefmt
from daemon.images.config import ImageConfig

REFERENCE = "busybox:latest"
DEFAULT_PATH = Path(os.environ.get("CTRD_BUSYBOX", "/bin/busybox"))
PT_INTERP = 3
DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
        "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "var": 0o755}  # fmt: skip
FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": b"root:x:0:\nnobody:x:65534:\n",
}
CONFIG = ImageConfig(env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], cmd=["sh"])


def is_dynamic(path: Path) -> bool:
    """True when the ELF file has a PT_INTERP program header (needs a dynamic loader)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if len(ident) < 52 or ident[:4] != b"\x7fELF":
            raise errdefs.FailedPrecondition(f"{path} is not an ELF executable")
        end = "<" if ident[5] == 1 else ">"
        if ident[4] == 2:  # ELFCLASS64
            (phoff,) = struct.unpack_from(end + "Q", ident, 0x20)
            phentsize, phnum = struct.unpack_from(end + "HH", ident, 0x36)
        else:
            (phoff,) = struct.unpack_from(end + "I", ident, 0x1C)
            phentsize, phnum = struct.unpack_from(end + "HH", ident, 0x2A)
        for i in range(min(phnum, 256)):
            f.seek(phoff + i * phentsize)
            raw = f.read(4)
            if len(raw) == 4 and struct.unpack(end + "I", raw)[0] == PT_INTERP:
                return True
    return False


def _applets(path: Path) -> list[str]:
    proc = subprocess.run([str(path), "--list"], capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        raise errdefs.FailedPrecondition(f"{path} --list failed: {proc.stderr.strip()}")
    return sorted({a for a in proc.stdout.split() if a and "/" not in a and a != "busybox"})


def build(path: Path = DEFAULT_PATH) -> tuple[io.BytesIO, ImageConfig, str]:
    """(rootfs tar, config, created) for the busybox image."""
    if not path.is_file():
        raise errdefs.FailedPrecondition(f"cannot build busybox: {path} not found (install busybox-static)")
    if is_dynamic(path):
        raise errdefs.FailedPrecondition(
            f"cannot build busybox: {path} is dynamically linked and would not run in a container "
            "(install busybox-static)"
        )
    mtime = int(path.stat().st_mtime)
    created = timefmt.rfc3339_nano(mtime * 1_000_000_000)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, mtime, link
            info.uname = info.gname = "root"
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data else None)

        for d, mode in sorted(DIRS.items()):
            add(d, tarfile.DIRTYPE, mode)
        add("bin/busybox", tarfile.REGTYPE, 0o755, path.read_bytes())
        for applet in _applets(path):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        for name, data in FILES.items():
            add(name, tarfile.REGTYPE, 0o644, data)
    buf.seek(0)
    return buf, CONFIG, created
