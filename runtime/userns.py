"""User namespaces: a two-stage start, the idea of runc's nsexec stages, in Python.

A pid namespace belongs to the user namespace its creator was in, and /proc can only be mounted
by a process with CAP_SYS_ADMIN over the pid namespace's owner. So with a user namespace the
container's pid namespace (and its mount, uts, ipc, network and cgroup namespaces) must be made
from inside it, and the caller cannot enter it itself (a multithreaded process cannot, and the
caller must stay where it is). Hence, in the forked child (the first stage):

  1. join the namespaces given by path that the user namespace must not own yet (a network
     namespace made by the engine belongs to the host's user namespace; joining it needs
     CAP_SYS_ADMIN there, which is gone once inside a new user namespace) -- or, when the user
     namespace itself is joined by path, join it first and the rest after, with its capabilities;
  2. rlimits and oom_score_adj while the host's capabilities still allow raising them (runc sets
     them from outside for the same reason);
  3. unshare(CLONE_NEWUSER), then USERNS to the parent, which writes uid_map and gid_map (as
     root: no newuidmap, no setgroups deny needed) once the cgroup placement is done, and MAPPED;
  4. become root of the new namespace, unshare the pid (and time) namespace, and clone with
     CLONE_PARENT: the second stage is pid 1 of the new pid namespace and, like an init without a
     user namespace, a direct child of the caller; its host pid goes to the parent (PID) and the
     first stage exits. The second stage inherits the cgroup, the namespaces and the setup socket
     and carries on with the ordinary setup (runtime.init), unsharing its other namespaces there.

The raw clone runs no atfork handlers: the second stage only sets itself up and execs.
"""

from __future__ import annotations

import os

from ctrd import libc
from runtime import creds, sigs
from runtime import syscalls as sc
from runtime.errors import SetupError
from runtime.spec_process import ProcessSpec
from runtime.spec_userns import IdMap, map_text
from runtime.sync import Msg, Packet, recv, send

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

    from runtime.syscalls import Syscalls

_SYS_CLONE = 56  # x86_64
_CLONE_PARENT = 0x00008000


def first_stage(s: Syscalls, join: tuple[tuple[int, int], ...], pid_flags: int, new_userns: bool,
                sock: _socket.socket, limits: ProcessSpec) -> tuple[tuple[int, int], ...]:
    """Steps 1-4 in the forked child. Returns in the second stage only, with the joins that are
    left to it (cgroup namespaces: they need the cgroup placement, which it inherits)."""
    user = [(fd, t) for fd, t in join if t == sc.CLONE_NEWUSER]
    later = tuple((fd, t) for fd, t in join if t == sc.CLONE_NEWCGROUP)
    now = [(fd, t) for fd, t in join if t not in (sc.CLONE_NEWUSER, sc.CLONE_NEWCGROUP)]
    order = user + now if user else now
    for fd, nstype in order:
        s.setns(fd, nstype)
        os.close(fd)
    creds.limits(s, limits)
    if new_userns:
        s.unshare(sc.CLONE_NEWUSER)
    send(sock, Packet(Msg.USERNS))
    pkt = recv(sock)
    if pkt is None or pkt.type != Msg.MAPPED:
        os._exit(1)  # the parent failed or went away
    s.setresgid(0)
    s.setresuid(0)
    if pid_flags:
        s.unshare(pid_flags)
    pid = _clone_parent()
    if pid == 0:
        return later
    send(sock, Packet(Msg.PID, message=str(pid)))
    os._exit(0)


def _clone_parent() -> int:
    pid = int(libc.pysyscall(_SYS_CLONE, _CLONE_PARENT | sigs.SIGCHLD, 0, 0, 0, 0))
    return libc.check(pid, "clone")


def write_maps(pid: int, uid: tuple[IdMap, ...], gid: tuple[IdMap, ...]) -> None:
    for name, maps in (("uid_map", uid), ("gid_map", gid)):
        path = f"/proc/{pid}/{name}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, map_text(maps))
            finally:
                os.close(fd)
        except OSError as exc:
            field = "linux.uidMappings" if name == "uid_map" else "linux.gidMappings"
            raise SetupError(f"{field}: writing {path}: {(exc.strerror or str(exc)).lower()}") from None


def follow(sock: _socket.socket, first: int, uid: tuple[IdMap, ...], gid: tuple[IdMap, ...]) -> int:
    """The parent's half: map the first stage's user namespace (unless it joined one), release it,
    reap it, and return the second stage's host pid. Raises the child's error."""
    pkt = recv(sock)
    if pkt is not None and pkt.type == Msg.USERNS:
        if uid:
            write_maps(first, uid, gid)
        send(sock, Packet(Msg.MAPPED))
        pkt = recv(sock)
    if pkt is None:
        raise SetupError("user namespace: the first stage exited during setup")
    if pkt.type == Msg.ERROR:
        raise pkt.error()
    if pkt.type != Msg.PID or not pkt.message.isdigit():
        raise SetupError(f"user namespace: unexpected {pkt.type} from the first stage")
    try:
        os.waitpid(first, 0)
    except ChildProcessError:
        pass  # a subreaping caller (the shim) may have collected it already
    return int(pkt.message)
