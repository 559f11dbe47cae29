"""The few namespace and mount syscalls Python 3.11 lacks, through libc (the helper's, and the
daemon's removal of netns files)."""

from __future__ import annotations

import ctypes
import errno
import os

from ctrd import libc

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2


def unshare(flags: int) -> None:
    libc.check(libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    libc.check(libc.setns(fd, nstype), "setns")


def bind_mount(source: str, target: str) -> None:
    libc.check(libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"bind mount {source} on {target}")


def umount_detach(target: str) -> bool:
    """Lazily unmount `target`; False when nothing was mounted there (or it does not exist)."""
    if libc.umount2(target.encode(), MNT_DETACH) == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(e, f"umount {target}: {os.strerror(e)}")
