"""Open a path as seen from inside a container's root: symlinks (absolute or relative) and `..`
never leave it, and the answer is a file descriptor, so no one can swap a component for a symlink
between the check and the use (the race of CVE-2021-30465: a path string resolved safely and then
used again is resolved again by the kernel).

openat2(2) with RESOLVE_IN_ROOT does this in the kernel (Linux 5.6+); where it is missing, a walk
one component at a time with O_PATH|O_NOFOLLOW does the same in user space (what runc's
securejoin does). Leaf module: standard library and ctrd.libc only, so `runtime/` may import it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from ctrd import libc

SYS_OPENAT2 = 437  # the same number on every architecture (added after the syscall tables merged)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
MAX_LINKS = 40
MAX_READ = 1 << 20


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_have_openat2: bool | None = None


def _openat2(dirfd: int, path: str, flags: int, mode: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    while True:
        fd = int(libc.syscall(SYS_OPENAT2, ctypes.c_int(dirfd), ctypes.c_char_p(path.encode()),
                              ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != errno.EINTR and err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), path)


def _walk(rootfd: int, path: str, flags: int) -> int:
    """User-space RESOLVE_IN_ROOT: every component opened with O_PATH|O_NOFOLLOW from the last."""
    parts = [p for p in path.split("/") if p and p != "."]
    stack = [os.dup(rootfd)]  # stack[-1]: the directory reached so far
    links = 0
    try:
        while parts:
            part = parts.pop(0)
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not parts
            fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(part, dir_fd=stack[-1])
                os.close(fd)
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                if target.startswith("/"):
                    for d in stack[1:]:
                        os.close(d)
                    del stack[1:]
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            if last:
                if flags == os.O_PATH:
                    return fd
                try:
                    # reopen the checked inode itself: /proc/self/fd/N is not a path to resolve
                    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)
                finally:
                    os.close(fd)
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return os.dup(stack[-1]) if flags == os.O_PATH else os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[-1])
    finally:
        for d in stack:
            os.close(d)


def open_in_root(root: str | int, path: str, flags: int = os.O_PATH) -> int:
    """A descriptor of `path` resolved inside `root` (a directory path or an open descriptor)."""
    global _have_openat2
    rootfd = root if isinstance(root, int) else os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        rel = path.lstrip("/") or "."
        if _have_openat2 is not False:
            try:
                return _openat2(rootfd, rel, flags)
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter said no
                    raise
                _have_openat2 = False
        return _walk(rootfd, rel, flags)
    finally:
        if not isinstance(root, int):
            os.close(rootfd)


def read_in_root(root: str, path: str, limit: int = MAX_READ) -> bytes:
    """The first `limit` bytes of a regular file inside `root` (the container's /etc/passwd, say):
    a symlink to a host path reads the container's file of that name, a FIFO or device is refused."""
    fd = open_in_root(root, path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.read(fd, limit)
    finally:
        os.close(fd)


def fd_path(fd: int) -> str:
    """What the kernel says `fd` is (for checking a descriptor lies inside a root)."""
    return os.readlink(f"/proc/self/fd/{fd}")


def read_text_in_root(root: str | os.PathLike[str], path: str) -> str | None:
    """read_in_root as text; None when it is missing, not a regular file or unreadable."""
    try:
        return read_in_root(os.fspath(root), path).decode(errors="replace")
    except OSError:
        return None
