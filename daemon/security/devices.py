"""--device and --privileged's device nodes: a host node checked and described for the bundle.

`DeviceMapping` is the recorded form (docker's HostConfig.Devices entry).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ctrd.errdefs import InvalidArgument

# Never copied from the host: the runtime makes them, or they are per-container mounts.
_HOST_DEV_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
_HOST_DEV_SKIP = frozenset({"/dev/console", "/dev/ptmx", "/dev/tty"})


@dataclass(frozen=True, slots=True)
class DeviceMapping:
    path_on_host: str
    path_in_container: str
    cgroup_permissions: str = "rwm"


def device_node(path: str, field: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(f"{field}: error gathering device information for {path!r}: "
                              f"{(exc.strerror or str(exc)).lower()}")
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidArgument(f"{field}: {path} is not a device node")
    return st


def check(values: Sequence[Any], field: str = "devices") -> tuple[DeviceMapping, ...]:
    """DeviceMapping messages (path_on_host, path_in_container, cgroup_permissions) checked."""
    out = []
    for d in values:
        host = d.path_on_host
        if not host or not os.path.isabs(host):
            raise InvalidArgument(f"{field}: {host!r} is not an absolute path")
        device_node(host, field)
        inside = d.path_in_container or host
        if not os.path.isabs(inside) or ".." in inside.split("/"):
            raise InvalidArgument(f"{field}: {inside!r} is not an absolute path in the container")
        perms = d.cgroup_permissions or "rwm"
        if not set(perms) <= set("rwm") or len(set(perms)) != len(perms):
            raise InvalidArgument(f"{field}: invalid device permissions {perms!r} (a subset of rwm)")
        out.append(DeviceMapping(host, os.path.normpath(inside), perms))
    return tuple(out)


def oci_device(path_in: str, st: os.stat_result) -> dict[str, Any]:
    return {"path": path_in, "type": "c" if stat.S_ISCHR(st.st_mode) else "b", "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every char and block device node under /dev (docker's HostDevices), for --privileged."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _HOST_DEV_SKIP_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path in _HOST_DEV_SKIP:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append(oci_device(path, st))
    return sorted(found, key=lambda d: d["path"])
