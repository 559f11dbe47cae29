"""--security-opt, --privileged and --device: validated at create, applied to the bundle at start.

Validation (`security_opts`, `devices`) runs in create so a bad value is one InvalidArgument and
nothing is recorded. `apply` runs on the spec built by daemon.containers.bundle, after the
capabilities are final, and does what docker's daemon/oci_linux.go does:

- privileged: every capability, every host device node (cgroup "allow all"), no masked or
  read-only paths, /sys and the cgroup mount writable, no seccomp unless one was asked for;
- `--device HOST[:CONTAINER[:PERMS]]`: the node in linux.devices and an allow rule in
  linux.resources.devices (after docker's default deny/allow list);
- seccomp: docker's default profile (daemon.security.seccomp_default) unless `unconfined` or a
  profile of the user's, resolved against the container's final bounding set;
- no-new-privileges: process.noNewPrivileges.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ctrd.errdefs import InvalidArgument
from daemon.containers.record import DeviceMapping, HostConfig
from daemon.security import seccomp as sec
from daemon.security import seccomp_default
from runtime import caps as caps_mod
from runtime.errors import SpecError
from runtime.seccomp import profile as oci_profile

_BOOL = {"": True, "true": True, "1": True, "false": False, "0": False}
# Never copied from the host: the runtime makes them, or they are per-container mounts.
_HOST_DEV_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
_HOST_DEV_SKIP = frozenset({"/dev/console", "/dev/ptmx", "/dev/tty"})


@dataclass(frozen=True, slots=True)
class Options:
    seccomp: str = "builtin"  # "builtin", "unconfined" or a profile's JSON
    no_new_privileges: bool = False


def _split(opt: str) -> tuple[str, str]:
    # docker also accepts the older "key:value" form
    key, sep, value = opt.partition("=")
    if not sep and ":" in opt:
        key, _, value = opt.partition(":")
    return key.strip(), value


def parse(values: Iterable[str]) -> Options:
    """The options as recorded (already validated by `security_opts`)."""
    profile, nnp = "builtin", False
    for opt in values:
        key, value = _split(opt)
        if key == "seccomp":
            profile = value
        elif key == "no-new-privileges":
            nnp = _BOOL.get(value.lower(), False)
    return Options(profile, nnp)


def security_opts(values: Iterable[str], field: str = "security_opt") -> tuple[str, ...]:
    out: list[str] = []
    for opt in values:
        key, value = _split(opt)
        if key == "seccomp":
            if not value:
                raise InvalidArgument(f"{field}: seccomp needs a value: unconfined or a profile")
            if value not in ("unconfined", "builtin"):
                profile = sec.parse_profile(value, "given")
                # Checked now, with the runtime's own rules, rather than failing at every start.
                resolved = sec.resolve(profile, (), where=f"{field}: seccomp")
                try:
                    oci_profile.parse(resolved, "seccomp")
                except SpecError as exc:
                    raise InvalidArgument(f"{field}: {exc.field}: {exc.message.rpartition(': ')[2]}")
            out.append(f"seccomp={value}")
        elif key == "no-new-privileges":
            if value.lower() not in _BOOL:
                raise InvalidArgument(f"{field}: invalid no-new-privileges value {value!r} (true or false)")
            out.append(f"no-new-privileges={'true' if _BOOL[value.lower()] else 'false'}")
        elif key == "apparmor":
            if value != "unconfined":
                raise InvalidArgument(f"{field}: apparmor={value}: ctrd applies no AppArmor profile "
                                      "(only apparmor=unconfined is accepted)")
            out.append(opt)
        elif key == "label":
            if value not in ("disable", "disable:true"):
                raise InvalidArgument(f"{field}: label={value}: ctrd applies no SELinux labels "
                                      "(only label=disable is accepted)")
            out.append(opt)
        else:
            raise InvalidArgument(f"{field}: invalid option {opt!r} (seccomp=, no-new-privileges, apparmor=, label=)")
    return tuple(out)


def _device_node(path: str, field: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(f"{field}: error gathering device information for {path!r}: "
                              f"{(exc.strerror or str(exc)).lower()}")
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidArgument(f"{field}: {path} is not a device node")
    return st


def devices(values: Sequence[Any], field: str = "devices") -> tuple[DeviceMapping, ...]:
    """DeviceMapping messages (path_on_host, path_in_container, cgroup_permissions) checked."""
    out = []
    for d in values:
        host = d.path_on_host
        if not host or not os.path.isabs(host):
            raise InvalidArgument(f"{field}: {host!r} is not an absolute path")
        _device_node(host, field)
        inside = d.path_in_container or host
        if not os.path.isabs(inside) or ".." in inside.split("/"):
            raise InvalidArgument(f"{field}: {inside!r} is not an absolute path in the container")
        perms = d.cgroup_permissions or "rwm"
        if not set(perms) <= set("rwm") or len(set(perms)) != len(perms):
            raise InvalidArgument(f"{field}: invalid device permissions {perms!r} (a subset of rwm)")
        out.append(DeviceMapping(host, os.path.normpath(inside), perms))
    return tuple(out)


def _oci_device(path_in: str, st: os.stat_result) -> dict[str, Any]:
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
                found.append(_oci_device(path, st))
    return sorted(found, key=lambda d: d["path"])


def own_capabilities(status: str = "/proc/self/status") -> list[str]:
    """The daemon's own bounding set, by name: what --privileged can give. A host (or a sandbox
    around ctrd) that withholds a capability from the daemon withholds it from containers too;
    asking for more would make capset fail at start."""
    with open(status) as f:
        for line in f:
            if line.startswith("CapBnd:"):
                bits = int(line.split()[1], 16)
                return [name for i, name in enumerate(caps_mod.NAMES) if bits & (1 << i)]
    return []


def apply(spec: dict[str, Any], host: HostConfig, all_caps: Sequence[str] | None = None) -> None:
    """Apply the options to `spec`; `all_caps` is what --privileged grants (default: the
    daemon's own bounding set)."""
    opts = parse(host.security_opt)
    proc = spec["process"]
    linux = spec.setdefault("linux", {})
    caps = proc.setdefault("capabilities", {})
    if host.privileged:
        granted = own_capabilities() if all_caps is None else list(all_caps)
        for kind in ("bounding", "effective", "permitted"):
            caps[kind] = list(granted)
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        for m in spec.get("mounts", []):
            if m.get("destination") in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m.get("options", []) if o != "ro"] + ["rw"]
        linux["devices"] = host_devices()
        linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
    if opts.no_new_privileges:
        proc["noNewPrivileges"] = True
    for d in host.devices:
        st = _device_node(d.path_on_host, "devices")
        node = _oci_device(d.path_in_container, st)
        linux.setdefault("devices", []).append(node)
        rules = linux.setdefault("resources", {}).setdefault("devices", [])
        rules.append({"allow": True, "type": node["type"], "major": node["major"], "minor": node["minor"],
                      "access": d.cgroup_permissions})
    linux.pop("seccomp", None)
    if opts.seccomp == "unconfined" or (host.privileged and opts.seccomp == "builtin"):
        return
    profile = seccomp_default.profile() if opts.seccomp == "builtin" else sec.parse_profile(opts.seccomp, "given")
    linux["seccomp"] = sec.resolve(profile, caps.get("bounding", []))
