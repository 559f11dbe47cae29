"""cgroups v1 and v2 behind one interface (`Cgroup`).

v1 (this build machine, hybrid): one directory per controller, <mnt>/<controller>/<cgroupsPath>.
v2: one directory, <unified>/<cgroupsPath>; limits only for controllers the parent delegates.
Only the leaf directory is created and removed: parents like /ctrd are shared between containers.
A leaf that already exists means another container owns the id (ContainerExists).
"""

from __future__ import annotations

import os

from runtime.cgroupfs import Stats

# Each manager is imported when a cgroup of its kind is made: a v1 host's `ctrd-runtime state`
# never loads the v2 manager (its BPF device filter brings ctypes), nor either of them the spec
# modules (Resources is only an annotation here). See runtime/container.py for the measurement.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from runtime.cgroup_v1 import V1_CONTROLLERS, V1Cgroup, v1_mounts
    from runtime.cgroup_v2 import V2Cgroup
    from runtime.spec_resources import Resources

CGROUP_ROOT = "/sys/fs/cgroup"
__all__ = ["CGROUP_ROOT", "V1_CONTROLLERS", "Cgroup", "Stats", "V1Cgroup", "V2Cgroup", "for_path", "from_state", "mount_sources", "v1_mounts"]


if TYPE_CHECKING:  # the interface, for the type checker only: `typing` is ~3 ms of each CLI call
    from typing import Protocol

    class Cgroup(Protocol):
        kind: str  # "v1" | "v2"
        paths: dict[str, str]  # controller (or "" for v2) -> leaf directory

        def create(self, resources: Resources) -> None: ...
        def update(self, resources: Resources) -> None: ...
        def procs_files(self) -> list[str]: ...
        def add(self, pid: int) -> None: ...
        def self_placement(self) -> tuple[int, tuple[str, ...]]: ...
        def drop_ahead(self) -> None: ...
        def freeze(self) -> None: ...
        def thaw(self) -> None: ...
        def frozen(self) -> bool: ...
        def pids(self) -> list[int]: ...
        def stats(self) -> Stats: ...
        def kill_all(self, sig: int) -> None: ...
        def destroy(self) -> None: ...
        def exists(self) -> bool: ...


def for_path(cgroups_path: str) -> Cgroup:
    """The right implementation for this host: pure v2 when the root is cgroup2, else v1."""
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
        from runtime.cgroup_v2 import V2Cgroup

        return V2Cgroup(cgroups_path, CGROUP_ROOT)
    from runtime.cgroup_v1 import V1Cgroup

    return V1Cgroup(cgroups_path)


def mount_sources(cg: Cgroup) -> list[tuple[str, str]]:
    """What the container's cgroup mount shows: every v1 hierarchy (not a hybrid host's unified
    one, as runc), or the v2 leaf."""
    from runtime.cgroup_v1 import V1Cgroup

    if isinstance(cg, V1Cgroup):
        return cg.mount_sources()
    return list(cg.paths.items())


def from_state(kind: str, cgroups_path: str, root: str = "") -> Cgroup:
    if kind == "v2":
        from runtime.cgroup_v2 import V2Cgroup

        return V2Cgroup(cgroups_path, root or CGROUP_ROOT)
    from runtime.cgroup_v1 import V1Cgroup

    return V1Cgroup(cgroups_path)


def __getattr__(name: str) -> object:
    # The managers stay reachable as runtime.cgroups.V1Cgroup etc. (tests, callers) without
    # importing both on every use of this module.
    if name in ("V1_CONTROLLERS", "V1Cgroup", "v1_mounts"):
        from runtime import cgroup_v1

        return getattr(cgroup_v1, name)
    if name == "V2Cgroup":
        from runtime.cgroup_v2 import V2Cgroup

        return V2Cgroup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
