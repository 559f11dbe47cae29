"""Extract a tar stream into a directory inside a container's root, as `docker cp` does.

Docker extracts in a chroot of the container's root; here every member's parent is resolved with
`resolve.canonical` (symlinks followed, but inside the root) and opened from the root's fd, and the
member itself is created with *at calls on that fd, never following its last component. As in
docker's untar, a member name or a hardlink that climbs out of the extraction directory with
`..` is refused, and so is a relative symlink whose target does.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from typing import BinaryIO

from ctrd import errdefs
from daemon.files.resolve import canonical, fs_readlink, open_parts
from daemon.tarcap import CappedTarInfo
from daemon.tarmember import set_xattrs, write_body

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _lexical(base: list[str], name: str, floor: int | None = None) -> list[str] | None:
    """`base` joined with `name` and cleaned, or None when `..` climbs above the first `floor`
    components (all of `base` by default)."""
    out = list(base)
    floor = len(base) if floor is None else floor
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if len(out) <= floor:
                return None
            out.pop()
        else:
            out.append(comp)
    return out


class Extractor:
    def __init__(self, root_fd: int, dest: list[str], shown: str, *, no_overwrite_dir_non_dir: bool = False,
                 owner: tuple[int, int] | None = None) -> None:
        self.root_fd = root_fd
        self.dest = dest
        self.shown = shown  # the destination as the user wrote it, for messages
        self.no_overwrite = no_overwrite_dir_non_dir
        self.owner = owner
        self.as_root = os.geteuid() == 0
        self.readlink = fs_readlink(root_fd)
        self.dir_times: list[tuple[list[str], int]] = []

    def bad(self, name: str, why: str) -> errdefs.InvalidArgument:
        return errdefs.InvalidArgument(f"{name!r}: {why}")

    def ensure_dir(self, parts: list[str]) -> int:
        """An fd for canonical `parts`, making missing directories (0755, as docker) on the way."""
        fd = os.dup(self.root_fd)
        try:
            for comp in parts:
                try:
                    nxt = os.open(comp, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nxt = os.open(comp, _DIR, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = _lexical([], m.name)
        full = _lexical(self.dest, m.name)
        if rel is None or full is None:
            raise self.bad(m.name, f"is outside of {self.shown}")
        if not rel:
            if m.isdir():  # "./": docker applies its metadata to the destination itself
                fd = open_parts(self.root_fd, self.dest, _DIR)
                try:
                    self.meta_fd(fd, m)
                finally:
                    os.close(fd)
                self.dir_times.append((self.dest, int(m.mtime)))
            return
        parent_parts = canonical("/".join(full[:-1]), self.readlink)
        base = full[-1]
        parent = self.ensure_dir(parent_parts)
        try:
            self.create(tf, m, parent, parent_parts, base, full)
        finally:
            os.close(parent)

    def _clear(self, parent: int, base: str, m: tarfile.TarInfo) -> bool:
        """Remove what is at `base` unless both are directories (True: keep it)."""
        try:
            st = os.lstat(base, dir_fd=parent)
        except FileNotFoundError:
            return False
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir and m.isdir():
            return True
        if self.no_overwrite and is_dir and not m.isdir():
            raise errdefs.InvalidArgument(f"cannot overwrite directory {base!r} with non-directory {m.name!r}")
        if self.no_overwrite and not is_dir and m.isdir():
            raise errdefs.InvalidArgument(f"cannot overwrite non-directory {base!r} with directory {m.name!r}")
        if is_dir:
            shutil.rmtree(base, dir_fd=parent)
        else:
            os.unlink(base, dir_fd=parent)
        return False

    def ids(self, m: tarfile.TarInfo) -> tuple[int, int]:
        return self.owner if self.owner is not None else (m.uid, m.gid)

    def meta_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.as_root:
            os.fchown(fd, *self.ids(m))
        os.fchmod(fd, m.mode & 0o7777)  # after chown: chown clears setuid bits

    def create(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parent: int, parent_parts: list[str], base: str,
               full: list[str]) -> None:
        keep = self._clear(parent, base, m)
        if m.isdir():
            if not keep:
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = os.open(base, _DIR, dir_fd=parent)
            try:
                self.meta_fd(fd, m)
            finally:
                os.close(fd)
            self.dir_times.append(([*parent_parts, base], int(m.mtime)))
        elif m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                write_body(tf, m, fd)
                self.meta_fd(fd, m)
                if self.as_root:
                    set_xattrs(fd, m)
                os.utime(fd, (m.mtime, m.mtime))
            finally:
                os.close(fd)
        elif m.issym():
            if not m.linkname.startswith("/") and _lexical(full[:-1], m.linkname, len(self.dest)) is None:
                raise self.bad(m.name, f"symlink target {m.linkname!r} is outside of {self.shown}")
            os.symlink(m.linkname, base, dir_fd=parent)
            if self.as_root:
                os.chown(base, *self.ids(m), dir_fd=parent, follow_symlinks=False)
            os.utime(base, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
        elif m.islnk():
            target = _lexical(self.dest, m.linkname)
            if target is None or not target[len(self.dest):]:
                raise self.bad(m.name, f"hardlink target {m.linkname!r} is outside of {self.shown}")
            tparts = canonical("/".join(target), self.readlink, follow_last=False)
            tparent = open_parts(self.root_fd, tparts[:-1], _DIR)
            try:
                try:
                    os.link(tparts[-1], base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    raise self.bad(m.name, f"hardlink target {m.linkname!r} does not exist") from None
            finally:
                os.close(tparent)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0, dir_fd=parent)
            if self.as_root:
                os.chown(base, *self.ids(m), dir_fd=parent, follow_symlinks=False)
            fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                os.chmod(f"/proc/self/fd/{fd}", m.mode & 0o7777)
            finally:
                os.close(fd)
            os.utime(base, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
        else:
            raise self.bad(m.name, f"unsupported tar entry type {m.type!r}")

    def finish(self) -> None:
        for parts, mtime in reversed(self.dir_times):  # children first: their creation bumped the parents
            try:
                fd = open_parts(self.root_fd, parts, _DIR)
            except OSError:
                continue
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)


def extract(root_fd: int, dest: list[str], shown: str, stream: BinaryIO, *, no_overwrite_dir_non_dir: bool = False,
            owner: tuple[int, int] | None = None) -> None:
    """Extract the plain tar `stream` into canonical directory `dest` of the root at `root_fd`."""
    ex = Extractor(root_fd, dest, shown, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, owner=owner)
    try:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2, tarinfo=CappedTarInfo) as tf:
            for member in tf:
                ex.entry(tf, member)
    except errdefs.CtrdError:
        raise
    except (tarfile.TarError, EOFError, ValueError, UnicodeError) as e:
        raise errdefs.InvalidArgument(f"invalid tar archive: {e}") from None
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.ENOMEM):
            raise errdefs.Internal(f"extracting to {shown}: {e}") from None
        raise errdefs.InvalidArgument(f"extracting to {shown}: {e}") from None
    ex.finish()
