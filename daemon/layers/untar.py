"""Extract one layer tar stream into an empty `diff/` directory, without ever leaving it.

Every path is walked component by component from a directory fd with O_NOFOLLOW, so no symlink
(from this layer or anywhere else) is ever followed; ownership and modes are set on the fds we
created (never chmod(path): CVE-2021-32760). Refused, as bad input: absolute names, `..`, a write
through a symlink, a hardlink to anything not already in this layer, device nodes other than
overlay whiteouts (char 0/0), whiteouts naming `.`/`..`/nothing, unknown entry types.
OCI/docker whiteouts become overlay whiteouts: `.wh.NAME` → char device 0/0 NAME, `.wh..wh..opq`
→ `trusted.overlay.opaque=y` on the directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from ctrd import errdefs
from daemon.tarcap import CappedTarInfo
from daemon.tarmember import set_xattrs, write_body

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
# Only these xattrs may come from an image; trusted.* (overlay's own) never.
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BadLayer(errdefs.InvalidArgument):
    """The layer archive itself is invalid (the message names the entry)."""


def _parts(name: str, what: str) -> list[str]:
    if name.startswith("/"):
        raise BadLayer(f"{what}: absolute path in archive: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadLayer(f"{what}: path escapes the layer: {name!r}")
    if any("\x00" in p for p in parts):
        raise BadLayer(f"{what}: nul byte in path: {name!r}")
    return parts


class _Extractor:
    def __init__(self, dest: Path, what: str) -> None:
        self.what = what
        self.root_fd = os.open(dest, _DIR_FLAGS)
        self.as_root = os.geteuid() == 0
        self.size = 0

    def close(self) -> None:
        os.close(self.root_fd)

    def bad(self, name: str, why: str) -> BadLayer:
        return BadLayer(f"{self.what}: {name!r}: {why}")

    def open_dir(self, parts: list[str], name: str, create: bool) -> int:
        """An fd for directory `parts` inside the layer, refusing symlinks; creates missing dirs."""
        fd = os.dup(self.root_fd)
        try:
            for comp in parts:
                try:
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise self.bad(name, "no such path in this layer") from None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if e.errno == errno.ELOOP or stat.S_ISLNK(os.lstat(comp, dir_fd=fd).st_mode):
                        raise self.bad(name, "path goes through a symlink") from None
                    raise self.bad(name, "parent is not a directory") from None
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def clear(self, parent: int, base: str, keep_dir: bool) -> bool:
        """Remove whatever is at `base` (later entries win). Returns True if a dir was kept."""
        try:
            st = os.lstat(base, dir_fd=parent)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(base, dir_fd=parent)
        else:
            os.unlink(base, dir_fd=parent)
        return False

    def owner(self, fd_or_name: int | str, member: tarfile.TarInfo, parent: int | None = None) -> None:
        if not self.as_root:
            return
        if isinstance(fd_or_name, int):
            os.fchown(fd_or_name, member.uid, member.gid)
        else:
            os.chown(fd_or_name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)

    def entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        parts = _parts(name, self.what)
        if not parts:
            return  # the layer root itself
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parts, name)
            return
        parent = self.open_dir(parts[:-1], name, create=True)
        try:
            self.create(tf, member, parent, base, name)
        finally:
            os.close(parent)

    def whiteout(self, parts: list[str], name: str) -> None:
        base = parts[-1]
        if base == OPAQUE:
            fd = self.open_dir(parts[:-1], name, create=True)
            try:
                os.setxattr(fd, "trusted.overlay.opaque", b"y")
            finally:
                os.close(fd)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, ...): meaningless here
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise self.bad(name, "invalid whiteout")
        parent = self.open_dir(parts[:-1], name, create=True)
        try:
            self.clear(parent, target, keep_dir=False)
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
        finally:
            os.close(parent)

    def create(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parent: int, base: str, name: str) -> None:
        mode = m.mode & 0o7777
        if m.isdir():
            if not self.clear(parent, base, keep_dir=True):
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
            try:
                self.owner(fd, m)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        elif m.isreg():
            self.clear(parent, base, keep_dir=False)
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                write_body(tf, m, fd)
                self.owner(fd, m)
                os.fchmod(fd, mode)  # after chown: chown clears setuid bits
                if self.as_root:
                    set_xattrs(fd, m)
                os.utime(fd, (m.mtime, m.mtime))
            finally:
                os.close(fd)
            self.size += m.size
        elif m.issym():
            if "\x00" in m.linkname:
                raise self.bad(name, "nul byte in symlink target")
            self.clear(parent, base, keep_dir=False)
            os.symlink(m.linkname, base, dir_fd=parent)
            self.owner(base, m, parent)
            os.utime(base, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
        elif m.islnk():
            self.hardlink(m, parent, base, name)
        elif m.ischr() and m.devmajor == 0 and m.devminor == 0:
            self.clear(parent, base, keep_dir=False)
            os.mknod(base, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)  # an overlay-style whiteout
        elif m.isfifo():
            self.clear(parent, base, keep_dir=False)
            os.mkfifo(base, 0o600, dir_fd=parent)
            fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                os.chmod(f"/proc/self/fd/{fd}", mode)  # O_PATH fd: chmod through procfs, still no path walk
            finally:
                os.close(fd)
        elif m.ischr() or m.isblk():
            raise self.bad(name, "device nodes are not allowed in layers")
        else:
            raise self.bad(name, f"unsupported tar entry type {m.type!r}")

    def hardlink(self, m: tarfile.TarInfo, parent: int, base: str, name: str) -> None:
        tparts = _parts(m.linkname, self.what)
        if not tparts:
            raise self.bad(name, "hardlink to the layer root")
        tparent = self.open_dir(tparts[:-1], name, create=False)
        try:
            try:
                st = os.lstat(tparts[-1], dir_fd=tparent)
            except FileNotFoundError:
                raise self.bad(name, f"hardlink target not in this layer: {m.linkname!r}") from None
            if stat.S_ISDIR(st.st_mode):
                raise self.bad(name, "hardlink to a directory")
            try:
                cur = os.lstat(base, dir_fd=parent)
                if (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino):
                    return
            except FileNotFoundError:
                pass
            self.clear(parent, base, keep_dir=False)
            os.link(tparts[-1], base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(tparent)


def extract_layer(stream: BinaryIO, dest: Path, what: str) -> int:
    """Extract the uncompressed tar `stream` into the empty directory `dest`; read `stream` to EOF.

    Returns the total size of regular files. Raises BadLayer/InvalidArgument for bad input; the
    caller discards `dest` on any error.
    """
    ex = _Extractor(dest, what)
    try:
        try:
            with tarfile.open(fileobj=stream, mode="r|", errorlevel=2, tarinfo=CappedTarInfo) as tf:
                for member in tf:
                    ex.entry(tf, member)
            while stream.read(_CHUNK):
                pass  # trailing zero blocks count towards the digest
        except errdefs.CtrdError:
            raise
        except (tarfile.TarError, EOFError, zlib.error, ValueError, UnicodeError) as e:
            raise BadLayer(f"{what}: invalid tar archive: {e}") from None
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.ENOMEM):
                raise errdefs.Internal(f"{what}: extracting: {e}") from None
            if isinstance(e, EOFError) or "gzip" in str(e).lower() or "compressed" in str(e).lower():
                raise BadLayer(f"{what}: invalid compressed stream: {e}") from None
            raise BadLayer(f"{what}: extracting: {e}") from None
    finally:
        ex.close()
    return ex.size
