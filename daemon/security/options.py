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

The daemon's `--seccomp-profile` and `--no-new-privileges` are `Defaults`: what a container gets
when its own options say nothing (docker's order: `seccomp=builtin` is docker's default profile
even where the daemon has another; `no-new-privileges=false` turns the daemon's default off).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ctrd import capabilities
from ctrd.errdefs import InvalidArgument
from daemon.security import seccomp as sec
from daemon.security import seccomp_default
from daemon.security.devices import DeviceMapping, device_node, host_devices, oci_device
from runtime.defaults import default_spec

_BOOL = {"": True, "true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True, slots=True)
class Options:
    seccomp: str = ""  # "" (not given), "builtin", "unconfined" or a profile's JSON
    no_new_privileges: bool | None = None  # None: not given


@dataclass(frozen=True, slots=True)
class Defaults:
    """The daemon's --seccomp-profile (loaded once, at start-up) and --no-new-privileges."""

    seccomp: str = "builtin"  # "builtin", "unconfined" or a profile's JSON
    no_new_privileges: bool = False


DOCKER_DEFAULTS = Defaults()


def daemon_seccomp(value: str, field: str = "seccomp_profile") -> str:
    """--seccomp-profile: "" (docker's default), "unconfined", or a profile file read and checked
    now, so a bad file stops the daemon at start-up with one line, not every container start."""
    if value in ("", "builtin", "unconfined"):
        return value or "builtin"
    profile = sec.read_profile(value, field)
    sec.check_oci(sec.resolve(profile, (), where=field), field)
    return json.dumps(profile, separators=(",", ":"))


def _split(opt: str) -> tuple[str, str]:
    # docker also accepts the older "key:value" form
    key, sep, value = opt.partition("=")
    if not sep and ":" in opt:
        key, _, value = opt.partition(":")
    return key.strip(), value


def parse(values: Iterable[str]) -> Options:
    """The options as recorded (already validated by `security_opts`)."""
    profile, nnp = "", None
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
                # Checked now, against the OCI vocabulary, rather than failing at every start.
                sec.check_oci(sec.resolve(profile, (), where=f"{field}: seccomp"), f"{field}: seccomp")
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


def own_capabilities(status: str = "/proc/self/status") -> list[str]:
    """The daemon's own bounding set, by name: what --privileged can give. A host (or a sandbox
    around ctrd) that withholds a capability from the daemon withholds it from containers too;
    asking for more would make capset fail at start."""
    with open(status) as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return capabilities.names_in(int(line.split()[1], 16))
    return []


def apply(spec: dict[str, Any], *, security_opt: Sequence[str], privileged: bool,
          devices: Sequence[DeviceMapping], all_caps: Sequence[str] | None = None,
          defaults: Defaults | None = None) -> None:
    """Apply a container's options (its HostConfig's) to `spec`; `all_caps` is what --privileged
    grants (default: the daemon's own bounding set); `defaults` the daemon's."""
    opts = parse(security_opt)
    defaults = defaults or DOCKER_DEFAULTS
    nnp = defaults.no_new_privileges if opts.no_new_privileges is None else opts.no_new_privileges
    proc = spec["process"]
    linux = spec.setdefault("linux", {})
    caps = proc.setdefault("capabilities", {})
    if privileged:
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
    if nnp:
        proc["noNewPrivileges"] = True
    for d in devices:
        st = device_node(d.path_on_host, "devices")
        node = oci_device(d.path_in_container, st)
        linux.setdefault("devices", []).append(node)
        rules = linux.setdefault("resources", {}).setdefault("devices", [])
        rules.append({"allow": True, "type": node["type"], "major": node["major"], "minor": node["minor"],
                      "access": d.cgroup_permissions})
    linux.pop("seccomp", None)
    # --privileged runs unconfined (the daemon's default included) unless the container itself
    # names a profile file
    chosen = "unconfined" if privileged and opts.seccomp in ("", "builtin") else opts.seccomp or defaults.seccomp
    if chosen == "unconfined":
        return
    linux["seccomp"] = resolved_profile(chosen, tuple(caps.get("bounding", [])))


def resolved_profile(chosen: str, bounding: tuple[str, ...]) -> dict[str, Any]:
    """The `linux.seccomp` of a container: `chosen` ("builtin" or a profile's JSON) resolved for
    its bounding set. Resolved once per (profile, capabilities) for the daemon's life (the kernel
    and the machine do not change under it); each call returns its own top-level object and
    syscalls list, sharing the rules, which nothing changes after this."""
    top = _resolved(chosen, frozenset(bounding))
    return {**top, "syscalls": list(top["syscalls"])}


@functools.lru_cache(maxsize=64)
def _resolved(chosen: str, bounding: frozenset[str]) -> dict[str, Any]:
    profile = seccomp_default.profile() if chosen == "builtin" else sec.parse_profile(chosen, "given")
    return sec.resolve(profile, bounding)


def warm_profiles(defaults: Defaults) -> list[dict[str, Any]]:
    """What the shim launcher compiles before it forks (`--seccomp-warm`): the daemon's default
    profile for a container with docker's default capabilities, the common case."""
    if defaults.seccomp == "unconfined":
        return []
    bounding = default_spec(["sh"])["process"]["capabilities"]["bounding"]
    return [resolved_profile(defaults.seccomp, tuple(bounding))]
