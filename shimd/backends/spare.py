"""A create helper forked before Create arrives: the first fork of ForkedBackend, off the start's path.

A shim's first runtime call is Create, and its helper is a fork of the shim: ~0.8 ms in the
shim's fork() and ~1.5 ms more before the child runs its first line (page tables, the first
copied pages, two busy cores), measured with timestamps written by the shim, the helper and the
init (2026-12-06, 2-core machine). The shim forks this spare as soon as its socket listens,
while the daemon still mounts the rootfs and writes the bundle; Create then hands it the
container's config and stdio (SCM_RIGHTS over a socketpair) instead of forking. The same socket
then carries "start", as the command pipe does for a fresh helper, and its close means "abort".
A shim whose container needs another backend, or that shuts down without a Create, closes its
end: the spare exits at that EOF.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import marshal
import os
import signal
import struct
from collections.abc import Callable
from typing import Any

from shimd.reaper import Exit, Reaper

_FD = struct.Struct("i")
_MAX_FDS = 4  # stdin, stdout, stderr and, with a terminal, the console socket
_MAX_MESSAGE = 65536
DISCARD_WAIT = 2.0  # seconds for a discarded spare to see its EOF and exit before SIGKILL


class Unwatched:
    """A spare forked before the shim has its reaper (in a spare shim, while it waits for its
    request: shimd.launch.spare); watch() makes it a Spare once the reaper runs. Its exit is not
    lost meanwhile: the process that forked it keeps SIGCHLD at its default (a zombie stays until
    the reaper, installed, reaps what already exited)."""

    def __init__(self, pid: int, ctl: _socket.socket, answers: int, runs: object) -> None:
        self.pid = pid
        self.ctl = ctl
        self.answers = answers
        self.runs = runs  # the runtime library (or a test's stand-in) the spare will call

    @staticmethod
    def fork(child: Callable[[int, int], object], runs: object) -> Unwatched:
        """Fork the spare; `child(ctl_fd, out_fd)` runs in it (and ends the process)."""
        mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
        except BaseException:
            for fd in (r, w):
                os.close(fd)
            mine.close()
            theirs.close()
            raise
        if pid == 0:
            os.close(r)
            mine.close()
            try:
                child(theirs.detach(), w)
            finally:
                os._exit(0)
        theirs.close()
        os.close(w)
        return Unwatched(pid, mine, r, runs)

    def watch(self, reaper: Reaper, *, fresh: bool = False) -> Spare:
        """`fresh`: forked just now, without yielding to the loop (Reaper.wait_fresh); otherwise
        forked before `reaper` existed, which may have reaped it already (Reaper.wait)."""
        waited = reaper.wait_fresh(self.pid) if fresh else reaper.wait(self.pid)
        return Spare(self.pid, self.ctl, self.answers, waited, self.runs)

    def close(self) -> None:
        """Close its socket and answer pipe: it exits at that EOF (or is gone already)."""
        self.ctl.close()
        with contextlib.suppress(OSError):
            os.close(self.answers)


class Spare(Unwatched):
    """The shim's side of a spare helper: its pid, its exit (waited for since the fork), the
    socket it takes its work from and the pipe it answers on."""

    def __init__(self, pid: int, ctl: _socket.socket, answers: int, exited: asyncio.Future[Exit], runs: object) -> None:
        super().__init__(pid, ctl, answers, runs)
        self.exited = exited

    def assign(self, config: dict[str, str], fds: list[int]) -> int:
        """Hand the spare its container; returns the socket's fd, which is now the caller's (it
        carries "start"; its close aborts). OSError when the spare is gone: the caller closes
        `answers` and forks afresh."""
        data = marshal.dumps(config)  # as the helper's answers: shimd.backends.forked
        self.ctl.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, b"".join(_FD.pack(fd) for fd in fds))])
        return self.ctl.detach()

    async def discard(self) -> None:
        """close(), then wait for the spare to exit (SIGKILL if it will not)."""
        self.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), DISCARD_WAIT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            await self.exited


def receive(ctl: int) -> tuple[dict[str, Any], list[int]] | None:
    """In the spare: block for its container's config and fds; None when the shim closed the socket."""
    sock = _socket.socket(fileno=os.dup(ctl))
    try:
        data, ancdata, _, _ = sock.recvmsg(_MAX_MESSAGE, _socket.CMSG_SPACE(_MAX_FDS * _FD.size),
                                           _socket.MSG_CMSG_CLOEXEC)
    finally:
        sock.close()
    fds: list[int] = []
    for level, kind, blob in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.extend(_FD.unpack_from(blob, at)[0] for at in range(0, len(blob) - _FD.size + 1, _FD.size))
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    return marshal.loads(data), fds
