"""Applying runtime.spec_extra: hugetlb, net_cls/net_prio, swappiness, the OOM killer switch and
`unified`, on cgroup v1 and v2. A field the host cannot honour is an error naming it (runc drops
some of these silently; an engine asking for a limit must know it did not get it)."""

from __future__ import annotations

import os

from runtime import cgroupfs as fs
from runtime.errors import CgroupError

TYPE_CHECKING = False  # an annotation only (runtime/cgroups.py says why)
if TYPE_CHECKING:
    from runtime.spec_extra import Extra

# The v1 controllers these fields need, for V1Cgroup's list of hierarchies to join.
V1_EXTRA_CONTROLLERS = ("hugetlb", "net_cls", "net_prio", "perf_event")


def _missing(field: str, what: str) -> CgroupError:
    return CgroupError(f"cgroup: {field}: {what}")


def _page_file(directory: str, size: str, v1: bool) -> str:
    # The kernel names hugetlb files 2MB, 1GB, 64KB (the spec's own spelling).
    name = f"hugetlb.{size}.limit_in_bytes" if v1 else f"hugetlb.{size}.max"
    path = f"{directory}/{name}"
    if not os.path.exists(path):
        raise _missing("linux.resources.hugepageLimits", f"this host has no {size} huge pages ({name})")
    return path


def apply_v1(paths: dict[str, str], e: Extra) -> None:
    if e.hugepage_limits:
        if "hugetlb" not in paths:
            raise _missing("linux.resources.hugepageLimits", "the hugetlb controller is not mounted")
        for size, limit in e.hugepage_limits:
            fs.write(_page_file(paths["hugetlb"], size, True), str(limit))
    if e.net_class_id is not None:
        if "net_cls" not in paths:
            raise _missing("linux.resources.network.classID", "the net_cls controller is not mounted")
        fs.write(f"{paths['net_cls']}/net_cls.classid", str(e.net_class_id))
    if e.net_priorities:
        if "net_prio" not in paths:
            raise _missing("linux.resources.network.priorities", "the net_prio controller is not mounted")
        for name, prio in e.net_priorities:
            fs.write(f"{paths['net_prio']}/net_prio.ifpriomap", f"{name} {prio}")
    if e.swappiness is not None or e.oom_kill_disable is not None:
        if "memory" not in paths:
            raise _missing("linux.resources.memory", "the memory controller is not mounted")
        if e.swappiness is not None:
            fs.write(f"{paths['memory']}/memory.swappiness", str(e.swappiness))
        if e.oom_kill_disable is not None:
            fs.write(f"{paths['memory']}/memory.oom_control", "1" if e.oom_kill_disable else "0")
    if e.unified:
        raise _missing("linux.resources.unified", "needs cgroup v2 (this container's cgroups are v1)")


def wanted_v2(e: Extra) -> list[str]:
    want = ["hugetlb"] if e.hugepage_limits else []
    for k, _ in e.unified:
        ctrl = k.split(".", 1)[0]
        if ctrl not in want and ctrl not in ("cgroup",):
            want.append(ctrl)
    return want


def apply_v2(directory: str, e: Extra) -> None:
    for size, limit in e.hugepage_limits:
        fs.write(_page_file(directory, size, False), str(limit))
    if e.net_class_id is not None or e.net_priorities:
        raise _missing("linux.resources.network", "net_cls and net_prio do not exist on cgroup v2")
    if e.swappiness is not None:
        raise _missing("linux.resources.memory.swappiness", "cgroup v2 has no per-cgroup swappiness")
    if e.oom_kill_disable:
        raise _missing("linux.resources.memory.disableOOMKiller", "cgroup v2 cannot disable the OOM killer")
    for key, value in e.unified:
        path = f"{directory}/{key}"
        if not os.path.exists(path):
            raise _missing(f"linux.resources.unified.{key}", f"no such file in {directory} (controller not enabled?)")
        fs.write(path, value)
