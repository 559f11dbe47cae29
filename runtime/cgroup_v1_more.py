"""cgroup v1 cpuset and blkio, as runc sets them.

cpuset: a new cpuset directory starts with empty cpuset.cpus and cpuset.mems, and no task can
join it until both are set; so every directory made on the way down, and the leaf, gets its
parent's values unless the spec gives its own (runc's ensureParent/copyIfNeeded).
blkio: the weight goes to blkio.bfq.weight where BFQ provides it, else blkio.weight; a kernel
with neither cannot honour a weight and says so (as runc), it is never dropped silently.
"""

from __future__ import annotations

import os

from runtime import cgroupfs as fs
from runtime.errors import CgroupError

TYPE_CHECKING = False  # an annotation only (runtime/cgroups.py says why)
if TYPE_CHECKING:
    from runtime.spec_blkio import BlockIO

_THROTTLE_FILES = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


def cpuset_parents(mount: str, leaf: str) -> None:
    """Create the directories above `leaf` under the cpuset `mount`, each with its parent's cpus
    and mems when its own are empty."""
    rel = os.path.relpath(os.path.dirname(leaf), mount)
    current = mount
    for part in [] if rel == "." else rel.split("/"):
        current = os.path.join(current, part)
        try:
            os.mkdir(current)
        except FileExistsError:
            pass
        except OSError as exc:
            raise CgroupError(f"cgroup: create {current}: {exc.strerror}") from exc
        inherit_cpuset(current)


def inherit_cpuset(directory: str) -> None:
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not fs.read(f"{directory}/{name}").strip():
            fs.write(f"{directory}/{name}", fs.read(f"{parent}/{name}").strip())


def apply_cpuset(directory: str, cpus: str | None, mems: str | None) -> None:
    if cpus is not None:
        fs.write(f"{directory}/cpuset.cpus", cpus)
    if mems is not None:
        fs.write(f"{directory}/cpuset.mems", mems)


def apply_blkio(directory: str, b: BlockIO) -> None:
    bfq = os.path.exists(f"{directory}/blkio.bfq.weight")
    prefix = "blkio.bfq." if bfq else "blkio."
    if b.weight is not None:
        fs.write(_weight_file(directory, prefix + "weight"), str(b.weight))
    if b.leaf_weight is not None:
        fs.write(_weight_file(directory, "blkio.leaf_weight"), str(b.leaf_weight))
    for d in b.weight_device:
        fs.write(_weight_file(directory, prefix + "weight_device"), f"{d.major}:{d.minor} {d.value}")
    for name, rates in b.throttle:
        for d in rates:
            fs.write(f"{directory}/{_THROTTLE_FILES[name]}", f"{d.major}:{d.minor} {d.value}")


def _weight_file(directory: str, name: str) -> str:
    path = f"{directory}/{name}"
    if not os.path.exists(path):
        raise CgroupError(f"cgroup: linux.resources.blockIO: this kernel has no {name} (no CFQ/BFQ io scheduler): "
                          "block IO weights cannot be honoured")
    return path
