"""Tar streams of trees inside a container's root or layer, walked by directory fds.

Nothing is opened by a path from the host's root: each entry is reached from its parent's fd with
O_NOFOLLOW, so a symlink (or a directory swapped for one while we walk) is archived as a symlink
and never followed. Hardlinks inside the stream stay hardlinks; modes, owners, mtimes, devices and
`security.capability` are kept. With `whiteouts=True` (an image layer from an overlay upper dir),
overlay's whiteouts become the OCI/docker ones: a 0/0 character device NAME → an empty `.wh.NAME`,
a directory with `trusted.overlay.opaque=y` → its entry followed by `DIR/.wh..wh..opq`.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import BinaryIO

from ctrd import libc

# Kernel filesystems in a live container's view (/proc, /sys, /dev/pts, cgroups, ...): their
# directories are archived, their content never (/proc/kcore alone would be 128 TiB).
SPECIAL_FS = frozenset({0x9FA0, 0x62656572, 0x1CD1, 0x27E0EB, 0x63677270, 0x19800202, 0x73636673, 0x64626720,
                        0x74726163, 0xCAFE4A11, 0x6E736673, 0x42494E4D})  # fmt: skip
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY = 1 << 20


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


class _Counted:
    """`out` with the tell() tarfile's plain "w" mode asks for: it then writes straight through,
    where the "w|" stream mode copies every byte through its own buffer a second time."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.pos = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos


class TreeWriter:
    def __init__(self, out: BinaryIO, whiteouts: bool = False) -> None:
        self.tf = tarfile.open(fileobj=_Counted(out), mode="w", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]  # noqa: SIM115
        self.tf.copybufsize = _COPY  # (tarfile's, untyped in typeshed)
        self.whiteouts = whiteouts
        self._links: dict[tuple[int, int], str] = {}
        self._dev = -1
        self._special = False

    def close(self) -> None:
        self.tf.close()

    def _info(self, arcname: str, st: os.stat_result) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(arcname)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        return ti

    def _marker(self, arcname: str, st: os.stat_result) -> None:
        ti = self._info(arcname, st)
        ti.mode = 0o644 if not stat.S_ISDIR(st.st_mode) else 0o444
        ti.type, ti.size = tarfile.REGTYPE, 0
        self.tf.addfile(ti)

    def add(self, parent_fd: int, name: str, arcname: str) -> None:
        """Entry `name` of directory `parent_fd` as `arcname`, and everything under it."""
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        mode = st.st_mode
        if self.whiteouts and is_whiteout(st):
            head, _, base = arcname.rpartition("/")
            self._marker(f"{head}/{WHITEOUT_PREFIX}{base}" if head else f"{WHITEOUT_PREFIX}{base}", st)
        elif stat.S_ISDIR(mode):
            fd = os.open(name, _DIR, dir_fd=parent_fd)
            try:
                self.add_dir(fd, arcname, os.fstat(fd))
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            self._regular(parent_fd, name, arcname)
        elif stat.S_ISLNK(mode):
            ti = self._info(arcname, st)
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=parent_fd)
            self.tf.addfile(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            ti = self._info(arcname, st)
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE if stat.S_ISBLK(mode) else tarfile.FIFOTYPE
            if not stat.S_ISFIFO(mode):
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tf.addfile(ti)
        # sockets are not archived (docker skips them too)

    def add_dir(self, fd: int, arcname: str, st: os.stat_result, header: bool = True) -> None:
        if st.st_dev != self._dev:  # a mount point: is it a kernel filesystem?
            self._dev, self._special = st.st_dev, libc.fs_type(fd) in SPECIAL_FS
        if header:
            ti = self._info(arcname, st)
            ti.type = tarfile.DIRTYPE
            self.tf.addfile(ti)
            if self.whiteouts and is_opaque(fd):
                self._marker(f"{arcname}/{OPAQUE}", os.stat_result((0o100644, 0, 0, 1, 0, 0, 0, 0, st.st_mtime, 0)))
        if self._special:
            return
        dev, special = self._dev, self._special
        for child in sorted(os.listdir(fd)):
            self.add(fd, child, f"{arcname}/{child}" if arcname else child)
            self._dev, self._special = dev, special

    def _regular(self, parent_fd: int, name: str, arcname: str) -> None:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent_fd)
        with os.fdopen(fd, "rb", buffering=0) as f:
            st = os.fstat(fd)
            ti = self._info(arcname, st)
            if st.st_nlink > 1:
                first = self._links.get((st.st_dev, st.st_ino))
                if first is not None:
                    ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, first, 0
                    self.tf.addfile(ti)
                    return
                self._links[(st.st_dev, st.st_ino)] = arcname
            ti.size = st.st_size
            try:
                cap = os.getxattr(fd, "security.capability").decode("utf-8", "surrogateescape")
                ti.pax_headers = {"SCHILY.xattr.security.capability": cap}
            except OSError:
                pass
            self.tf.addfile(ti, f)
