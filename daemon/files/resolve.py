"""Paths inside a container's root, resolved the way the container itself would see them.

Every component, and every symlink met on the way (absolute or relative, `..` included), is
resolved against the container's root, never the host's: `/etc/passwd -> /../../etc/shadow`
names the container's /etc/shadow. The walk is pure (`canonical` takes a `readlink` callback, so
unit tests run it over a fake tree); the canonical result has no symlinks and no `..`, and it is
then opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the root's fd — or, where
openat2 is missing, one component at a time with O_NOFOLLOW. A symlink swapped in between the two
steps (a running container racing us, CVE-2018-15664) makes the open fail; it is never followed.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable

from ctrd import errdefs, libc

MAX_SYMLINKS = 40  # Linux's MAXSYMLINKS
_SYS_OPENAT2 = 437
_RESOLVE_NO_XDEV, _RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x01, 0x02, 0x04, 0x08
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Readlink = Callable[[list[str]], "str | None"]  # canonical parts → its link target, None if not a symlink


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2_ok = True


def split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def canonical(path: str, readlink: Readlink, follow_last: bool = True) -> list[str]:
    """`path` (relative paths are taken from the root) as symlink-free components inside the root.

    A missing component ends the resolution: the rest is appended lexically (`..` clamped at the
    root), as a path that does not exist yet can still be created there."""
    todo = split(path)
    todo.reverse()
    done: list[str] = []
    links = 0
    missing = False
    while todo:
        comp = todo.pop()
        if comp == "..":
            if done:
                done.pop()
            continue
        if missing or (not todo and not follow_last):
            done.append(comp)
            continue
        target = readlink([*done, comp])
        if target is None:
            done.append(comp)
            continue
        if target == "":
            missing = True
            done.append(comp)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise errdefs.InvalidArgument(f"{path}: too many levels of symbolic links")
        if target.startswith("/"):
            done = []
        rest = split(target)
        rest.reverse()
        todo.extend(rest)
    return done


def fs_readlink(root_fd: int) -> Readlink:
    """readlink over a real tree under `root_fd`: None for a non-link, "" for a missing path."""

    def readlink(parts: list[str]) -> str | None:
        try:
            parent = open_parts(root_fd, parts[:-1], _DIR)
        except FileNotFoundError:
            return ""
        except NotADirectoryError:
            return ""
        try:
            return os.readlink(parts[-1], dir_fd=parent)
        except FileNotFoundError:
            return ""
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOTDIR):
                return None
            raise
        finally:
            os.close(parent)

    return readlink


def open_parts(root_fd: int, parts: list[str], flags: int) -> int:
    """Open canonical `parts` beneath `root_fd`, following no symlink at all (the last included)."""
    global _openat2_ok
    if not parts:
        return os.open(".", flags & ~os.O_NOFOLLOW, dir_fd=root_fd)
    if _openat2_ok:
        how = _OpenHow(flags | os.O_CLOEXEC | os.O_NOFOLLOW, 0,
                       _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
        fd = libc.syscall(_SYS_OPENAT2, ctypes.c_int(root_fd), os.fsencode("/".join(parts)),
                          ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != errno.ENOSYS:
            raise OSError(err, os.strerror(err), "/" + "/".join(parts))
        _openat2_ok = False
    fd = os.dup(root_fd)
    try:
        for comp in parts[:-1]:
            nxt = os.open(comp, _DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


def resolve(root_fd: int, path: str, follow_last: bool = True) -> list[str]:
    return canonical(path, fs_readlink(root_fd), follow_last)
