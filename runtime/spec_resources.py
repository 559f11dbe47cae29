"""The OCI `linux.resources` object: memory, cpu, pids limits and the device cgroup rules (block IO
and cpuset lists: spec_blkio)."""

from __future__ import annotations

from runtime.errors import SpecError
from runtime.spec_blkio import BlockIO, blkio_from_oci, cpu_list
from runtime.spec_extra import Extra, extra_from_oci
from runtime.spec_fields import as_object, limit, opt_int
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class DeviceRule(Value):
    allow: bool
    type: str  # a, c, b
    major: int  # -1 = *
    minor: int
    access: str


class Resources(Value):
    memory_limit: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_cpus: str | None = None
    cpu_mems: str | None = None
    pids_limit: int | None = None
    devices: tuple[DeviceRule, ...] = ()
    blkio: BlockIO = BlockIO()
    extra: Extra = Extra()


# /dev/null, zero, full, random, urandom, tty, console, ptmx and the pts nodes.
RUNTIME_DEVICES = tuple(
    DeviceRule(True, "c", major, minor, "rwm")
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, -1))
)


def resources_from_oci(r: Any) -> Resources:
    """The OCI `linux.resources` object (also the input of `update`)."""
    r = as_object(r, "linux.resources")
    mem = as_object(r.get("memory") or {}, "linux.resources.memory")
    cpu = as_object(r.get("cpu") or {}, "linux.resources.cpu")
    pids = as_object(r.get("pids") or {}, "linux.resources.pids")
    rules = []
    for i, d in enumerate(r.get("devices") or []):
        d = as_object(d, f"linux.resources.devices[{i}]")
        t = d.get("type", "a") or "a"
        access = d.get("access", "rwm") or "rwm"
        if t not in ("a", "c", "b") or not set(access) <= set("rwm"):
            raise SpecError(f"linux.resources.devices[{i}]", "type must be a, c or b and access a subset of rwm")
        major = d.get("major", -1)
        minor = d.get("minor", -1)
        rules.append(DeviceRule(bool(d.get("allow", False)), t, -1 if major is None else int(major),
                                -1 if minor is None else int(minor), access))
    if rules:
        # Like runc, the nodes the runtime itself creates in /dev stay usable whatever the spec
        # says (a `runc spec` bundle carries only "deny all"): without them the init's own mknod
        # of /dev/null fails once it has been moved into the cgroup.
        rules.extend(RUNTIME_DEVICES)
    return Resources(
        memory_limit=limit(mem.get("limit"), "linux.resources.memory.limit"),
        memory_swap=limit(mem.get("swap"), "linux.resources.memory.swap"),
        memory_reservation=limit(mem.get("reservation"), "linux.resources.memory.reservation"),
        cpu_shares=opt_int(cpu.get("shares"), "linux.resources.cpu.shares", 2, 262144),
        cpu_quota=limit(cpu.get("quota"), "linux.resources.cpu.quota"),
        cpu_period=opt_int(cpu.get("period"), "linux.resources.cpu.period", 1000, 1_000_000),
        cpu_cpus=cpu_list(cpu.get("cpus"), "linux.resources.cpu.cpus"),
        cpu_mems=cpu_list(cpu.get("mems"), "linux.resources.cpu.mems"),
        blkio=blkio_from_oci(r.get("blockIO")),
        pids_limit=limit(pids.get("limit"), "linux.resources.pids.limit"),
        devices=tuple(rules),
        extra=extra_from_oci(r),
    )
