"""`ctrd-runtime create|run|exec` warms the kernel's cgroup migration lock while it starts up.

The container's process is placed in its cgroups by writing its pid to each cgroup.procs, and the
first such write after a quiet spell waits for an RCU grace period (ctrd/cgwarm.py says why).
An engine starts one `ctrd-runtime create` per container, so every create paid that wait: ~16 ms
of a ~46 ms `ctrd-runtime run` here (strace -T of the first cgroup.procs write, 2026-12-06; runc's
run of the same bundle paid ~7 ms of its 25 ms). ctrd's own starts get the warm-up from the daemon
(daemon/containers/cgwarm.py); a process started by containerd or dockerd has no daemon of ours
beside it, and it must not start a thread (it forks the container's init), so `start()` forks a
small child at the beginning of the verb: it makes the no-op migration (its own pid, its own
cgroup) and repeats it every few milliseconds, well within a grace period, so that the semaphore
is still in its slow mode when the init is placed. The caller ends it with `stop()` once the init
is in its cgroups; the child also ends when the caller's end of the pipe closes (the caller died)
or after LIMIT seconds. Without a cgroup filesystem it is not started at all. On v1 hierarchies
only `exec` starts it: there a created init places itself without that lock (runtime/create.py).
"""

from __future__ import annotations

import os
import select
import time

from ctrd.cgwarm import cgroup_v2_host, migrate_self, own_procs_file

__all__ = ["Warmer", "cgroup_v2_host", "start"]

PERIOD_MS = 3  # between no-op migrations: well under a grace period (~5-20 ms here)
LIMIT = 5.0  # seconds: a create that takes longer pays the wait where it would have


class Warmer:
    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd = fd

    def stop(self) -> None:
        """End the child and reap it; idempotent."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def start(procs_file: str | None = None) -> Warmer | None:
    """The warming child, or None when this process is in no cgroup hierarchy it can see."""
    procs = own_procs_file() if procs_file is None else procs_file
    if procs is None:
        return None
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's side (tests/unit/test_runtime_cgwarm.py runs it)
        try:
            os.close(w)
            # Hold none of the caller's descriptors (the container's stdio pipes among them).
            os.closerange(0, r)
            os.closerange(r + 1, os.sysconf("SC_OPEN_MAX"))
            _keep_warm(procs, r)
        finally:
            os._exit(0)
    os.close(r)
    return Warmer(pid, w)


def _keep_warm(procs: str, done_fd: int) -> None:
    poller = select.poll()
    poller.register(done_fd, select.POLLIN)
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        migrate_self(procs)
        if poller.poll(PERIOD_MS):  # the caller closed its end: stop() or its exit
            return
