"""The no-op cgroup migration that warms the kernel's cgroup migration lock, for the daemon
(daemon/containers/cgwarm.py: at the beginning of a start) and the runtime's command line
(runtime/cgwarm.py: during `ctrd-runtime create|run|exec`).

A migration takes the kernel's global cgroup_threadgroup_rwsem for writing, and the first writer
after a quiet spell waits for a full RCU grace period (rcu_sync_enter); writers that come within
about one grace period after the last one do not wait again. Writing a process's own pid to the
cgroup.procs of the cgroup it is already in is a migration that moves nothing: done ahead of the
container's placement, it takes that wait off the start's path (the two callers say how much).

Leaf module: standard library only, so that `runtime/` may import it.
"""

from __future__ import annotations

import os

V2_MARKER = "/sys/fs/cgroup/cgroup.controllers"  # only a pure cgroup v2 host has it at the root


def cgroup_v2_host(marker: str = V2_MARKER) -> bool:
    """Whether /sys/fs/cgroup is a pure cgroup v2 hierarchy (not v1, not hybrid)."""
    return os.path.exists(marker)


def cgroup_mounts(mountinfo: str = "/proc/self/mountinfo") -> dict[str, str]:
    """controller (or "" for cgroup2) -> mount point, the first of each."""
    found: dict[str, str] = {}
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, where = right.split(), left.split()
        if len(fields) < 3 or len(where) < 5:
            continue
        if fields[0] == "cgroup2":
            found.setdefault("", where[4])
        elif fields[0] == "cgroup":
            for opt in fields[2].split(","):
                found.setdefault(opt.removeprefix("name="), where[4])
    return found


def own_procs_file(proc_cgroup: str = "/proc/self/cgroup", mounts: dict[str, str] | None = None) -> str | None:
    """The cgroup.procs of the cgroup this process is in, in the first of its hierarchies that is
    mounted here; None without any."""
    mounts = cgroup_mounts() if mounts is None else mounts
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for c in [c.removeprefix("name=") for c in parts[1].split(",")] if parts[1] else [""]:
            if c in mounts:
                return f"{mounts[c]}{parts[2].rstrip('/')}/cgroup.procs"
    return None


def migrate_self(procs_file: str) -> None:
    """Write this process's pid to `procs_file` (its own cgroup's); errors are ignored: without
    the warm-up a start simply pays the wait where it would have."""
    try:
        fd = os.open(procs_file, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, str(os.getpid()).encode())
    except OSError:
        pass
    finally:
        os.close(fd)
