"""Docker's defaults (moby daemon/pkg/oci/defaults.go, caps/defaults.go) and a full OCI spec built
from them. The daemon's bundle writer imports this; `ctrd-runtime spec` writes it."""

from __future__ import annotations

import copy
import os

from runtime.version import OCI_VERSION  # one place for it (runtime.version)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHM_SIZE = 64 * 1024 * 1024

CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
CPU_SYSFS = "/sys/devices/system/cpu"


def thermal_throttle_paths(cpu_dir: str = CPU_SYSFS) -> list[str]:
    """docker's per-CPU masks (moby daemon/pkg/oci/defaults.go, GHSA-6fw5-f8r9-fgfm: the throttle
    counters are a side channel): `<cpu_dir>/cpu<N>/thermal_throttle` for each CPU that has one.
    Paths are returned as the container sees them (under /sys/devices/system/cpu)."""
    try:
        names = os.listdir(cpu_dir)
    except OSError:
        return []
    out = []
    for name in names:
        if name.startswith("cpu") and name[3:].isdigit() and os.path.isdir(
                os.path.join(cpu_dir, name, "thermal_throttle")):
            out.append((int(name[3:]), f"{CPU_SYSFS}/{name}/thermal_throttle"))
    return [p for _, p in sorted(out)]


READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
NAMESPACES: tuple[str, ...] = ("pid", "network", "ipc", "uts", "mount")
# Set by docker when the container has its own network namespace (daemon/oci_linux.go). Not in
# default_spec: a host-network container must not get them (the runtime refuses net.* sysctls
# without the container's own network namespace); add them to linux.sysctl otherwise.
NETWORK_SYSCTLS: dict[str, str] = {
    "net.ipv4.ip_unprivileged_port_start": "0",
    "net.ipv4.ping_group_range": "0 2147483647",
}

MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_SIZE}"]},
)

# Device cgroup rules, in docker's order: deny all, allow the standard nodes, deny fuse.
DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)


def default_spec(args: list[str], rootfs: str = "rootfs") -> dict[str, Any]:
    """A complete OCI config.json dict with docker's hardening defaults."""
    caps = list(CAPABILITIES)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [f"PATH={DEFAULT_PATH}"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": list(caps), "permitted": list(caps),
                "inheritable": [], "ambient": [],
            },
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": "",
        "mounts": copy.deepcopy(list(MOUNTS)),
        "linux": {
            "resources": {"devices": copy.deepcopy(list(DEVICE_RULES))},
            "namespaces": [{"type": t} for t in NAMESPACES],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
