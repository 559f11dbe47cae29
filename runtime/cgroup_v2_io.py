"""linux.resources.blockIO on cgroup v2 (the io controller), converted as runc does: a BFQ
weight goes to io.bfq.weight unchanged; otherwise io.weight, on its 1..10000 scale; throttles
become io.max lines. A weight the kernel has no file for is an error, never dropped."""

from __future__ import annotations

import os

from runtime import cgroupfs as fs
from runtime.errors import CgroupError

TYPE_CHECKING = False  # an annotation only (runtime/cgroups.py says why)
if TYPE_CHECKING:
    from runtime.spec_blkio import BlockIO

_MAX_KEYS = {"throttleReadBpsDevice": "rbps", "throttleWriteBpsDevice": "wbps",
             "throttleReadIOPSDevice": "riops", "throttleWriteIOPSDevice": "wiops"}


def weight_v2(blkio_weight: int) -> int:
    """runc's ConvertBlkIOToIOWeightValue: 10..1000 onto 1..10000."""
    return 1 + (blkio_weight - 10) * 9999 // 990


def apply(d: str, b: BlockIO) -> None:
    if b.leaf_weight is not None:
        raise CgroupError("cgroup: linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight")
    bfq = os.path.exists(f"{d}/io.bfq.weight")
    if (b.weight is not None or b.weight_device) and not bfq and not os.path.exists(f"{d}/io.weight"):
        raise CgroupError(f"cgroup: linux.resources.blockIO: {d} has no io.weight nor io.bfq.weight")
    if b.weight is not None:
        if bfq:
            fs.write(f"{d}/io.bfq.weight", str(b.weight))
        else:
            fs.write(f"{d}/io.weight", f"default {weight_v2(b.weight)}")
    for dv in b.weight_device:
        if bfq:
            fs.write(f"{d}/io.bfq.weight", f"{dv.major}:{dv.minor} {dv.value}")
        else:
            fs.write(f"{d}/io.weight", f"{dv.major}:{dv.minor} {weight_v2(dv.value)}")
    for name, rates in b.throttle:
        for dv in rates:
            fs.write(f"{d}/io.max", f"{dv.major}:{dv.minor} {_MAX_KEYS[name]}={dv.value}")
