"""Warm the kernel's cgroup migration lock at the beginning of a start.

Every container start moves the container's init into its cgroups (the runtime writes its pid to
each cgroup.procs). A migration takes the kernel's global cgroup_threadgroup_rwsem for writing,
and the first writer after a quiet spell waits for a full RCU grace period first (rcu_sync_enter:
the semaphore's readers are switched to their slow path); writers that come within about one
grace period after the last one do not wait again. Measured on this machine (kernel 6.18, v1
hierarchies, containers started ~50 ms apart): the first of the ten cgroup.procs writes of a start
took ~10 ms p50 (the other nine ~0.05 ms each), most of the runtime's create; with a migration
begun ~8 ms earlier by another thread, ~0.5-1.5 ms.

So the daemon begins that wait itself when a start begins, in a worker thread, while the rootfs
mount, the network, the bundle and the shim launch go on: it writes its own pid to the
cgroup.procs of the cgroup it is already in, a migration that moves nothing. It kicks again just
before it asks the shim to create (~10 ms before the placement): if the first is still waiting
that is the same wait, and if it is over, the second renews the window (a writer that comes
while the semaphore is still in its slow mode does not wait). Errors are ignored (no cgroup fs,
no permission): the start then simply pays the wait where it did before.

Only where a start's placement still writes a pid: with an OCI runtime binary (runc places the
init by pid), or on a cgroup v2 host. ctrd's own runtime on v1 hierarchies places the init
without the global lock (runtime/create.py), and there a warm-up that finds the lock cold would
hold the kernel's cgroup_mutex through its grace period, stalling the runtime's own cgroup mkdirs
(perf sched stacks, 2026-12-07: 3 starts of 10 blocked 1.6-7.8 ms in cgroup_mkdir behind it).
"""

from __future__ import annotations

import asyncio

from ctrd.cgwarm import V2_MARKER, cgroup_mounts, cgroup_v2_host, migrate_self, own_procs_file

__all__ = ["MigrationWarmer", "cgroup_mounts", "own_procs_file"]


def needed(runtime: str, v2_marker: str = V2_MARKER) -> bool:
    """Whether starts need the warm-up: `runtime` is the daemon's OCI runtime binary ("" for
    ctrd's own runtime, which places the init itself on v1 hierarchies)."""
    return bool(runtime) or cgroup_v2_host(v2_marker)


class MigrationWarmer:
    """kick() at the beginning of a start: one no-op migration in flight at a time."""

    def __init__(self, procs_file: str | None) -> None:
        self.procs_file = procs_file
        self._inflight: asyncio.Future[None] | None = None

    def kick(self) -> None:
        if self.procs_file is None or (self._inflight is not None and not self._inflight.done()):
            return
        self._inflight = asyncio.get_running_loop().run_in_executor(None, self.migrate_self)

    def migrate_self(self) -> None:
        assert self.procs_file is not None
        migrate_self(self.procs_file)
