"""Exec: start a new process inside a running container's namespaces and cgroup (runc exec).

The process joins the init's namespaces with setns (those that differ from the caller's), is
moved into the container's cgroup, and runs its setup in the child like an init does.
"""

from __future__ import annotations

import os

from runtime import spawn, sync
from runtime import syscalls as sc
from runtime.errors import IncorrectStatus, SetupError
from runtime.init import ChildConfig
from runtime.spawn import SETUP_TIMEOUT
from runtime.spec_process import ProcessSpec

TYPE_CHECKING = False  # annotations only (runtime/cgroups.py)
if TYPE_CHECKING:
    import _socket

    from runtime.cgroups import Cgroup
    from runtime.init import SeccompLoader
    from runtime.syscalls import Syscalls

# Namespaces an exec'd process joins with setns: the user namespace first (the others belong to
# it), mount last (it resets root and cwd).
_EXEC_NS = (("user", sc.CLONE_NEWUSER), ("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
            ("cgroup", sc.CLONE_NEWCGROUP), ("mnt", sc.CLONE_NEWNS))


def exec_in(container_id: str, init_pid: int, cgroup: Cgroup, process: ProcessSpec,
            stdio: tuple[int, int, int], syscalls: Syscalls, seccomp: SeccompLoader | None = None,
            console: int = -1) -> int:
    """Start `process` in the namespaces of `init_pid` and in `cgroup` (and under the
    container's seccomp filter, as runc exec); return its host pid.
    With process.terminal and a `console` socket, the pty is made inside the container
    (runtime.console). Raises IncorrectStatus when the init is gone."""
    close: list[int] = []
    pid = 0
    parent_sock: _socket.socket | None = None
    try:
        join: list[tuple[int, int]] = []
        for name, flag in _EXEC_NS:
            theirs = f"/proc/{init_pid}/ns/{name}"
            if os.stat(theirs).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                fd = spawn.above_stdio(os.open(theirs, os.O_RDONLY | os.O_CLOEXEC))
                close.append(fd)
                join.append((fd, flag))
        pid_fd = -1
        if os.stat(f"/proc/{init_pid}/ns/pid").st_ino != os.stat("/proc/self/ns/pid").st_ino:
            pid_fd = os.open(f"/proc/{init_pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            close.append(pid_fd)
        console_fd = -1
        if console >= 0 and process.terminal:
            console_fd = spawn.above_stdio(os.dup(console))
            close.append(console_fd)
        parent_sock, child_sock = sync.pair()
        close.append(spawn.above_stdio(child_sock.detach()))
        cfg = ChildConfig(process=process, stdio=stdio, sock_fd=close[-1], spec=None, join=tuple(join),
                          seccomp=seccomp, console_fd=console_fd)
        pid = spawn.fork_child(syscalls, 0, pid_fd, cfg)
        for fd in close:
            os.close(fd)
        close.clear()
        parent_sock.settimeout(SETUP_TIMEOUT)
        spawn.place(cgroup, pid, parent_sock, cfg)
        pkt = sync.recv(parent_sock)
        if pkt is not None and pkt.type == sync.Msg.READY:
            sync.send(parent_sock, sync.Packet(sync.Msg.GO))
            pkt = sync.recv(parent_sock)
        if pkt is None:
            return pid
        if pkt.type == sync.Msg.ERROR:
            raise pkt.error()
        raise SetupError(f"container {container_id}: exec: unexpected {pkt.type} from the child")
    except FileNotFoundError:
        if pid:
            spawn.reap_failed(pid)
        raise IncorrectStatus(f"container {container_id} is not running")
    except BaseException:
        if pid:
            spawn.reap_failed(pid)
        raise
    finally:
        for fd in close:
            os.close(fd)
        if parent_sock is not None:
            parent_sock.close()

