"""The kernel seam: every call the container setup makes, behind one Protocol.

`LinuxSyscalls` talks to libc through ctypes (Python 3.11 has no os.unshare/os.setns/mount);
unit tests pass a recording fake so that the setup sequence runs without root.
Errors surface as OSError with errno set, like the os module's own calls.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource

from ctrd import inroot, libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# os.uname().machine is what platform.machine() returns on Linux, without importing platform
# (~2 ms and a dozen regexes compiled, on every create/run/exec: bench engines section).
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}.get(os.uname().machine, 155)
_CAP_V3 = 0x20080522


if TYPE_CHECKING:  # an interface for the type checker: `typing` is not loaded at run time (runtime.value)
    class Syscalls(Protocol):
        """What the container setup asks of the kernel (all raise OSError on failure)."""

        def unshare(self, flags: int) -> None: ...
        def setns(self, fd: int, nstype: int) -> None: ...
        def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None: ...
        def umount2(self, target: str, flags: int) -> None: ...
        def pivot_root(self, new_root: str, put_old: str) -> None: ...
        def sethostname(self, name: str) -> None: ...
        def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int: ...
        def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
        def setrlimit(self, resource_id: int, soft: int, hard: int) -> None: ...
        def setgroups(self, gids: list[int]) -> None: ...
        def setresgid(self, gid: int) -> None: ...
        def setresuid(self, uid: int) -> None: ...
        def chdir(self, path: str) -> None: ...
        def mkdir(self, path: str, mode: int) -> None: ...
        def mknod(self, path: str, mode: int, device: int) -> None: ...
        def symlink(self, target: str, path: str) -> None: ...
        def write_file(self, path: str, data: bytes) -> None: ...
        def chmod(self, path: str, mode: int) -> None: ...
        def chown(self, path: str, uid: int, gid: int) -> None: ...
        def umask(self, mask: int) -> None: ...
        def touch(self, path: str) -> None: ...
        def open_in_root(self, root: str, path: str) -> int: ...
        def close(self, fd: int) -> None: ...
        def mkdir_in_root(self, root: str, parent: str, name: str, mode: int) -> None: ...
        def touch_in_root(self, root: str, parent: str, name: str) -> None: ...


class LinuxSyscalls:
    """The real thing: libc via ctypes, the rest via os."""

    def __init__(self) -> None:
        self._libc = libc

    _check = staticmethod(libc.check)

    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self._libc.setns(fd, nstype), "setns")

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        rc = self._libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        )
        self._check(rc, "mount", target)

    def umount2(self, target: str, flags: int) -> None:
        self._check(self._libc.umount2(target.encode(), flags), "umount2", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        rc = self._libc.syscall(_SYS_PIVOT_ROOT, new_root.encode(), put_old.encode())
        self._check(rc, "pivot_root", new_root)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._libc.sethostname(raw, len(raw)), "sethostname")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int:
        return self._check(self._libc.prctl(option, arg2, arg3, 0, 0), "prctl")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        header = (ctypes.c_uint32 * 2)(_CAP_V3, 0)
        data = (ctypes.c_uint32 * 6)(
            effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
            effective >> 32, permitted >> 32, inheritable >> 32,
        )
        self._check(self._libc.capset(header, data), "capset")

    def setrlimit(self, resource_id: int, soft: int, hard: int) -> None:
        resource.setrlimit(resource_id, (soft, hard))

    def setgroups(self, gids: list[int]) -> None:
        os.setgroups(gids)

    def setresgid(self, gid: int) -> None:
        os.setresgid(gid, gid, gid)

    def setresuid(self, uid: int) -> None:
        os.setresuid(uid, uid, uid)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(path, mode)

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid)

    def umask(self, mask: int) -> None:
        os.umask(mask)

    def open_in_root(self, root: str, path: str) -> int:
        """An O_PATH descriptor of `path` resolved inside `root` (ctrd.inroot), checked to lie
        inside it: mounting onto /proc/self/fd/N cannot be redirected by a symlink swapped in
        after the check (CVE-2021-30465)."""
        fd = inroot.open_in_root(root, path)
        real = inroot.fd_path(fd)
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            os.close(fd)
            raise OSError(errno.EXDEV, f"{path} resolves to {real}, outside the container's root")
        return fd

    def close(self, fd: int) -> None:
        os.close(fd)

    def mkdir_in_root(self, root: str, parent: str, name: str, mode: int) -> None:
        """mkdirat on `parent` opened inside root: a parent swapped for a symlink to a host
        directory cannot get the new directory (CVE-2024-45310); an existing entry is fine."""
        fd = self.open_in_root(root, parent or "/")
        try:
            os.mkdir(name, mode, dir_fd=fd)
        except FileExistsError:
            pass
        finally:
            os.close(fd)

    def touch_in_root(self, root: str, parent: str, name: str) -> None:
        """An empty file `name` in `parent` opened inside root (a bind target), never following
        a symlink planted at `name`."""
        fd = self.open_in_root(root, parent or "/")
        try:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644, dir_fd=fd))
        except FileExistsError:
            pass
        finally:
            os.close(fd)

    def touch(self, path: str) -> None:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644))

    def write_file(self, path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


_LINUX: LinuxSyscalls | None = None


def linux() -> LinuxSyscalls:
    """The process-wide real implementation (ctypes setup done once, before any fork)."""
    global _LINUX
    if _LINUX is None:
        _LINUX = LinuxSyscalls()
    return _LINUX
