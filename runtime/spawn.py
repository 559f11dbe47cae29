"""The parent side of spawning a container process (init or exec).

The child must end up a direct child of the caller, in a new or joined pid namespace, without the
caller's own namespaces changing; and it must be in the container's cgroup before it can execve.
"""

from __future__ import annotations

import fcntl
import os
import select

from ctrd import libc
from runtime import sigs, sync
from runtime import syscalls as sc
from runtime.errors import RuntimeErr, SpecError
from runtime.init import ChildConfig, child_main, needs_placed
from runtime.state import SETUP_TIMEOUT as SETUP_TIMEOUT  # lives in runtime.state: CLI `start` waits too

TYPE_CHECKING = False  # annotations only (runtime/cgroups.py)
if TYPE_CHECKING:
    import _socket

    from runtime.cgroups import Cgroup
    from runtime.syscalls import Syscalls


def fork_child(s: Syscalls, new_flags: int, pid_fd: int, cfg: ChildConfig, cgroup_fd: int = -1) -> int:
    """Fork the child into a new (or joined) pid namespace without moving the caller: unshare
    only changes the namespace of the caller's future children, and we switch it straight back.
    `cgroup_fd`: a cgroup2 directory the child is born in (clone3; the caller has one thread);
    OSError when the kernel refuses it, before any child exists."""
    own: list[tuple[int, int]] = []
    try:
        if new_flags or pid_fd >= 0:
            own.append((os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC), sc.CLONE_NEWPID))
            if new_flags & sc.CLONE_NEWTIME:
                own.append((os.open("/proc/self/ns/time", os.O_RDONLY | os.O_CLOEXEC), sc.CLONE_NEWTIME))
            if new_flags:
                s.unshare(new_flags)
            if pid_fd >= 0:
                s.setns(pid_fd, sc.CLONE_NEWPID)
        # one thread here (a shim's helper, the CLI): the child starts ~0.7 ms sooner than os.fork's
        pid = libc.fork_into_cgroup(cgroup_fd) if cgroup_fd >= 0 else libc.fork_lean()
        if pid == 0:
            child_main(cfg)
        return pid
    finally:
        for fd, nstype in own:
            s.setns(fd, nstype)
            os.close(fd)


def place(cg: Cgroup, pid: int, sock: _socket.socket, cfg: ChildConfig) -> None:
    """Move the forked child into the container's cgroup while it sets itself up (or, with
    cfg.self_place, only tell it that its cgroup is ready: it moves itself)."""
    try:
        if not cfg.self_place:
            cg.add(pid)
    except RuntimeErr as exc:
        # A child that failed early has exited, so it cannot be moved: report its error instead.
        if select.select([sock], [], [], 0.2)[0]:
            pkt = sync.recv(sock)
            if pkt is not None and pkt.type == sync.Msg.ERROR:
                raise pkt.error() from exc
        raise
    if needs_placed(cfg):
        try:
            sync.send(sock, sync.Packet(sync.Msg.PLACED))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child failed before it needed its cgroup: its error is queued for the caller


def above_stdio(fd: int) -> int:
    """The child dup2s its stdio onto 0/1/2: an fd it still needs must not sit there (a caller
    that closed its own stdio gets low numbers from the kernel). A duplicate is also closed by
    `close` cleanup paths, so the original is closed here when it is moved."""
    if fd > 2:
        return fd
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return high


def reap_failed(pid: int) -> None:
    try:
        os.kill(pid, sigs.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


NS_GET_NSTYPE = 0xB703


def open_ns(path: str, field: str, nstype: int) -> int:
    """Open a namespace file to join, checking that it is one, of the right type."""
    try:
        fd = above_stdio(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as exc:
        raise SpecError(field, f"{path}: {(exc.strerror or '').lower()}")
    try:
        actual = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        os.close(fd)
        raise SpecError(field, f"{path} is not a namespace file")
    if actual != nstype:
        os.close(fd)
        raise SpecError(field, f"{path} is a namespace of another type")
    return fd
