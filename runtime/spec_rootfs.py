"""What config.json puts into the container's filesystem: mounts (with their option flags) and
device nodes (`linux.devices`)."""

from __future__ import annotations

import os

from runtime import syscalls as sc
from runtime.errors import SpecError
from runtime.spec_fields import as_object, ident, strs
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MOUNT_FLAGS: dict[str, tuple[bool, int]] = {  # option -> (clear?, flag)
    "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID), "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV), "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC), "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS), "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC), "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME), "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME), "nodiratime": (False, sc.MS_NODIRATIME),
    "bind": (False, sc.MS_BIND), "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW), "symfollow": (True, sc.MS_NOSYMFOLLOW),
}
PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
PROC_BIND_ALLOWED = frozenset(
    f"/proc/{p}" for p in ("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo",
                           "sys/kernel/ns_last_pid", "sys/crypto/fips_enabled")
)


class Mount(Value):
    destination: str
    type: str
    source: str
    flags: int
    clear: int  # flags explicitly turned off (rw, suid, ...): matters for bind remounts
    propagation: tuple[int, ...]
    data: str

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND) or self.type == "bind"


class Device(Value):
    path: str
    type: str  # c, b, u, p
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int


def parse_mount_options(options: list[str]) -> tuple[int, int, tuple[int, ...], str]:
    flags = clear = 0
    prop: list[int] = []
    data: list[str] = []
    for o in options:
        if o in MOUNT_FLAGS:
            off, f = MOUNT_FLAGS[o]
            if off:
                flags &= ~f
                clear |= f
            else:
                flags |= f
        elif o in PROPAGATION:
            prop.append(PROPAGATION[o])
        else:
            data.append(o)
    return flags, clear, tuple(prop), ",".join(data)


def mount_from_oci(m: Any, where: str) -> Mount:
    m = as_object(m, where)
    dest = m.get("destination")
    if not isinstance(dest, str) or not os.path.isabs(dest):
        raise SpecError(f"{where}.destination", f"{dest!r} is not an absolute path")
    mtype = m.get("type", "") or ""
    source = m.get("source", "") or ""
    if not isinstance(mtype, str) or not isinstance(source, str):
        raise SpecError(where, "type and source must be strings")
    opts = strs(m.get("options", []) or [], f"{where}.options")
    flags, clear, prop, data = parse_mount_options(opts)
    if mtype == "bind":
        flags |= sc.MS_BIND
    if flags & sc.MS_BIND and not os.path.isabs(source):
        raise SpecError(f"{where}.source", f"{source!r} is not an absolute path")
    dest = os.path.normpath(dest)
    # Only procfs itself on /proc, and below it only the files lxcfs overlays: anything else could
    # shadow what the runtime or an LSM writes to (CVE-2019-16884).
    if (dest == "/proc" and mtype != "proc") or (
        dest.startswith("/proc/") and (not flags & sc.MS_BIND or dest not in PROC_BIND_ALLOWED)
    ):
        raise SpecError(f"{where}.destination", f"{dest} cannot be mounted over procfs")
    return Mount(dest, mtype, source, flags, clear, prop, data)


def device_from_oci(d: Any, where: str) -> Device:
    d = as_object(d, where)
    path = d.get("path")
    if not isinstance(path, str) or not path.startswith("/dev/"):
        raise SpecError(f"{where}.path", f"{path!r} is not under /dev")
    t = d.get("type")
    if t not in ("c", "b", "u", "p"):
        raise SpecError(f"{where}.type", f"{t!r} is not c, b, u or p")
    return Device(path, t, int(d.get("major", 0)), int(d.get("minor", 0)), int(d.get("fileMode", 0o666)),
                  ident(d.get("uid", 0), f"{where}.uid"), ident(d.get("gid", 0), f"{where}.gid"))
