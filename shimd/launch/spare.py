"""A shim forked ahead of its request: the launcher's next launch is a pipe write, not a fork.

A launch (the launcher's fork, the child's state dir and socket) costs a container start about
3 ms wherever it runs on the request path: measured 2026-12-07 on the 2-core machine, daemons
alternating, create+start+wait+rm of `true` with a `runc run` between cycles, a launch moved from
start into create made start 2.9 ms faster and create 2.9 ms slower (total 48.4 against 48.8 ms).
It is work for the same two cores as the start's mount, network and runtime. So the launcher
forks the next shim ahead, and only once it has been idle for REFILL_IDLE: a fork made while a
start is still in flight would compete with it again. With the spare, in the same loop against
the code before: 50.45 -> 47.71 ms and 54.64 -> 50.30 ms p50 (two runs of 8 and 12 alternating
rounds). The bench's latency rows, which run other engines between ctrd's cycles, showed no
difference in two runs one after the other (start step 30.3 and 30.4 ms): there the launch ran
beside the mount and the network on an otherwise idle core.

The spare blocks on its request pipe. Given a request line it does exactly what a child of
`launch_forked` does (parse, prepare the state dir, become the shim, answer on its ready pipe);
given EOF (the launcher is discarding it, or is gone) it exits. It holds no state dir, socket or
container until then, so a crash anywhere leaves nothing to recover; it lets go of the daemon's
pipes (the launcher's stdin and stdout) at once, so the daemon still sees the launcher's end.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from pathlib import Path
from typing import NoReturn

from shimd.backends.forked import fork_spare_unwatched
from shimd.backends.spare import Unwatched
from shimd.launch.fork import fork as libc_fork  # the module function; SpareShim.fork is the classmethod
from shimd.launch.fork import launch_in_child, read_ready, relay

REFILL_IDLE = 0.05  # seconds without a request before the launcher forks the next spare
DISCARD_WAIT = 2.0  # seconds for a discarded spare to see its EOF and exit before SIGKILL


class SpareShim:
    """The launcher's side: the spare's pid, the pipe its request goes down, the pipe its answer
    comes up, and a pidfd to wait for its exit (the launcher ignores SIGCHLD: no waitpid)."""

    def __init__(self, pid: int, request_w: int, ready_r: int, pidfd: int) -> None:
        self.pid = pid
        self._request_w = request_w
        self._ready_r = ready_r
        self._pidfd = pidfd

    @classmethod
    def fork(cls, exec_root: Path) -> SpareShim | None:
        """Fork a spare; None when the fork (or a pipe) fails: the next launch forks as before."""
        fds: list[int] = []
        try:
            req_r, req_w = os.pipe()
            fds += [req_r, req_w]
            ready_r, ready_w = os.pipe()
            fds += [ready_r, ready_w]
            pid = libc_fork()
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        if pid == 0:
            os.close(req_w)
            os.close(ready_r)
            _wait_for_request(exec_root, req_r, ready_w)
        os.close(req_r)
        os.close(ready_w)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
        return cls(pid, req_w, ready_r, pidfd)

    def launch(self, request: bytes) -> bytes | None:
        """Hand the spare its request; the launcher's answer line, or None when the spare was
        gone before it took the request (the caller forks a shim as before). Used once."""
        try:
            os.write(self._request_w, request)  # a short line (an id): one write, under PIPE_BUF
        except OSError:
            self.close()
            return None
        os.close(self._request_w)
        self._request_w = -1
        try:
            data = read_ready(self._ready_r)
        finally:
            self.close()
        if not data:  # died before it could answer: nothing of it is left to use
            return None
        return relay(self.pid, request, data)

    def close(self) -> None:
        for fd in (self._request_w, self._ready_r, self._pidfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._request_w = self._ready_r = self._pidfd = -1

    def discard(self) -> None:
        """Close its request pipe (it exits at that EOF) and wait for it to be gone."""
        if self._request_w >= 0:
            os.close(self._request_w)
            self._request_w = -1
        if self._pidfd >= 0:
            ready, _, _ = select.select([self._pidfd], [], [], DISCARD_WAIT)
            if not ready:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                select.select([self._pidfd], [], [], DISCARD_WAIT)
        self.close()


def _wait_for_request(exec_root: Path, req_r: int, ready_w: int) -> NoReturn:
    """In the spare: let go of the daemon's pipes, fork the shim's create helper, block for one
    request line, then be the shim `launch_forked` would have forked for it.

    The helper is forked here, while the spare waits, rather than by the shim once its socket
    listens: that fork was on a start's path, just before Create needs the helper (the shim's
    fork, then ~1.5 ms before the helper's first line: shimd/backends/spare.py). The spare
    makes its own session first (the helper and the container's init inherit it, as from the
    shim) and keeps SIGCHLD at its default, so the helper's exit waits for the shim's reaper."""
    request = b""
    helper: Unwatched | None = None
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir("/")
        try:
            helper = fork_spare_unwatched()
        except OSError:
            helper = None  # the shim forks one, as without a spare
        while not request.endswith(b"\n"):
            chunk = os.read(req_r, 4096)
            if not chunk:
                _drop(helper)
                os._exit(0)  # discarded
            request += chunk
        os.close(req_r)
    except BaseException:
        _drop(helper)
        os._exit(1)
    launch_in_child(exec_root, request, ready_w, helper)


def _drop(helper: Unwatched | None) -> None:
    """A discarded spare's helper: its socket closed, it exits at the EOF; reaped here, so no
    one else finds it as a zombie."""
    if helper is None:
        return
    helper.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(helper.pid, 0)
