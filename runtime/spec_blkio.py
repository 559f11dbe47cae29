"""`linux.resources.blockIO` and the cpuset part of `linux.resources.cpu` (cpus, mems)."""

from __future__ import annotations

from runtime.errors import SpecError
from runtime.spec_fields import as_object, opt_int
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

THROTTLES = ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice")


class DeviceValue(Value):
    major: int
    minor: int
    value: int


class BlockIO(Value):
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: tuple[DeviceValue, ...] = ()  # value: the weight
    # Each of THROTTLES: a rate per device.
    throttle: tuple[tuple[str, tuple[DeviceValue, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.weight or self.leaf_weight or self.weight_device or self.throttle)


def cpu_list(v: Any, where: str) -> str | None:
    """A cpuset list ("0", "0-3,5"); "" or missing: not set."""
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not all(_cpu_range(part) for part in v.split(",")):
        raise SpecError(where, f"{v!r} is not a cpu list like 0-2,4")
    return v


def _cpu_range(part: str) -> bool:
    """"3" or "0-2" (ASCII digits). By hand, not a regex: `re` is ~5 ms of a `ctrd-runtime create`
    (runtime/value.py has the measurement)."""
    return all(n.isascii() and n.isdigit() for n in part.split("-", 1))


def blkio_from_oci(v: Any) -> BlockIO:
    b = as_object(v or {}, "linux.resources.blockIO")
    weights = []
    for i, d in enumerate(b.get("weightDevice") or []):
        where = f"linux.resources.blockIO.weightDevice[{i}]"
        d = as_object(d, where)
        w = opt_int(d.get("weight"), f"{where}.weight", 10, 1000)
        if w is not None:
            weights.append(DeviceValue(*_device(d, where), w))
    throttle = []
    for name in THROTTLES:
        rates = []
        for i, d in enumerate(b.get(name) or []):
            where = f"linux.resources.blockIO.{name}[{i}]"
            d = as_object(d, where)
            rate = d.get("rate")
            if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
                raise SpecError(f"{where}.rate", f"{rate!r} is not an unsigned integer")
            rates.append(DeviceValue(*_device(d, where), rate))
        if rates:
            throttle.append((name, tuple(rates)))
    return BlockIO(
        weight=opt_int(b.get("weight"), "linux.resources.blockIO.weight", 10, 1000),
        leaf_weight=opt_int(b.get("leafWeight"), "linux.resources.blockIO.leafWeight", 10, 1000),
        weight_device=tuple(weights),
        throttle=tuple(throttle),
    )


def _device(d: Any, where: str) -> tuple[int, int]:
    major, minor = d.get("major"), d.get("minor")
    for name, n in (("major", major), ("minor", minor)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise SpecError(f"{where}.{name}", f"{n!r} is not a device number")
    return major, minor
