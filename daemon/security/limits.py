"""--shm-size, --ulimit, --sysctl, --group-add, --pids-limit and --device-cgroup-rule.

The `check_*` functions run in create (a bad value is one InvalidArgument naming the field, and
nothing is recorded); `apply` runs on the spec built by daemon.containers.bundle at start.

Sysctls: only those the kernel namespaces (docker's list, opts.ValidateSysctl): the IPC ones
follow the container's IPC namespace, net.* its network namespace, so neither touches the host.
Anything else (kernel.*, vm.*, fs.* outside mqueue) is host-wide and refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrd.errdefs import InvalidArgument
from ctrd.inroot import read_text_in_root

# A finite default: a fork bomb in one container then exhausts its own cgroup, not the host's
# pid space (pid_max) shared with every other container and the daemon. podman's default.
DEFAULT_PIDS_LIMIT = 2048
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

ULIMITS: dict[str, str] = {
    n: "RLIMIT_" + n.upper() for n in (
        "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
        "rss", "rtprio", "rttime", "sigpending", "stack")
}
_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
_SYSCTL_KEY_RE = re.compile(r"^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$")
_GROUP_RE = re.compile(r"^[a-zA-Z0-9_.][a-zA-Z0-9_.-]*$")
_RULE_RE = re.compile(r"^([abc]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
MAX_ID = 2**32 - 2


@dataclass(frozen=True, slots=True)
class Ulimit:
    name: str
    soft: int
    hard: int


def check_shm_size(value: int) -> int:
    if value < 0:
        raise InvalidArgument(f"shm_size: must be positive, got {value}")
    return value


def check_pids_limit(value: int) -> int:
    """0 (unset) becomes the finite default, recorded so inspect shows what applies; -1 = unlimited."""
    if value < -1:
        raise InvalidArgument("pids_limit: must be -1 (unlimited), 0 (the default) or positive")
    return DEFAULT_PIDS_LIMIT if value == 0 else value


def check_ulimits(values: Iterable[Any]) -> tuple[Ulimit, ...]:
    out: dict[str, Ulimit] = {}
    for u in values:
        if u.name not in ULIMITS:
            raise InvalidArgument(f"ulimits: invalid ulimit type {u.name!r} ({', '.join(sorted(ULIMITS))})")
        if u.soft < -1 or u.hard < -1:
            raise InvalidArgument(f"ulimits: {u.name}: limits must be -1 (unlimited) or positive")
        soft = (2**64 - 1) if u.soft == -1 else u.soft
        hard = (2**64 - 1) if u.hard == -1 else u.hard
        if soft > hard:
            raise InvalidArgument(f"ulimits: {u.name}: soft limit {u.soft} is above the hard limit {u.hard}")
        out[u.name] = Ulimit(u.name, u.soft, u.hard)  # the last one given wins, as docker's does
    return tuple(out.values())


def check_sysctls(values: Mapping[str, str], network_mode: str) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in sorted(values.items()):
        if not _SYSCTL_KEY_RE.match(key):
            raise InvalidArgument(f"sysctls: invalid sysctl name {key!r}")
        if "\n" in value or "\0" in value:
            raise InvalidArgument(f"sysctls: {key}: invalid value {value!r}")
        if key.startswith("net."):
            if network_mode == "host" or network_mode.startswith("container:"):
                raise InvalidArgument(f"sysctls: {key}: net.* sysctls are not allowed with network mode "
                                      f"{network_mode!r} (the namespace is not the container's own)")
        elif not (key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")):
            raise InvalidArgument(f"sysctls: {key} is not a namespaced sysctl: only net.*, kernel.shm*, "
                                  "kernel.msg*, kernel.sem and fs.mqueue.* are allowed")
        out.append((key, value))
    return tuple(out)


def check_group_add(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for g in values:
        if g.isdigit():
            if int(g) > MAX_ID:
                raise InvalidArgument(f"group_add: gid {g} is out of range")
        elif not _GROUP_RE.match(g):
            raise InvalidArgument(f"group_add: invalid group {g!r} (a gid or a group name)")
        if g not in out:
            out.append(g)
    return tuple(out)


def parse_rule(rule: str) -> dict[str, Any]:
    """docker's --device-cgroup-rule ("c 1:3 rwm", "b *:* m", "a") as an OCI device rule."""
    text = " ".join(rule.split())
    if text in ("a", "a *:* rwm"):
        return {"allow": True, "type": "a", "access": "rwm"}
    m = _RULE_RE.match(text)
    if m is None or len(set(m.group(4))) != len(m.group(4)):
        raise InvalidArgument(f"device_cgroup_rules: invalid device cgroup rule {rule!r} (e.g. 'c 1:3 rwm')")
    kind, major, minor, access = m.groups()
    return {"allow": True, "type": kind, "major": -1 if major == "*" else int(major),
            "minor": -1 if minor == "*" else int(minor), "access": access}


def check_device_cgroup_rules(values: Iterable[str]) -> tuple[str, ...]:
    for r in values:
        parse_rule(r)
    return tuple(" ".join(r.split()) for r in values)


def _group_id(rootfs: Path, name: str) -> int:
    lines = (read_text_in_root(rootfs, "/etc/group") or "").splitlines()  # never a host file via a symlink
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
            return int(parts[2])
    raise InvalidArgument(f"group_add: unable to find group {name}: no matching entries in group file")


def add_groups(rootfs: Path, group_add: Sequence[str], gids: Iterable[int]) -> list[int]:
    """`gids` plus the --group-add groups (gids or names looked up in the container's /etc/group)."""
    out = list(gids)
    for g in group_add:
        gid = int(g) if g.isdigit() else _group_id(rootfs, g)
        if gid not in out:
            out.append(gid)
    return out


def apply(spec: dict[str, Any], rootfs: Path, *, shm_size: int, ulimits: Sequence[Ulimit],
          sysctls: Sequence[tuple[str, str]], group_add: Sequence[str], pids_limit: int,
          device_cgroup_rules: Sequence[str]) -> None:
    proc = spec["process"]
    linux = spec.setdefault("linux", {})
    if shm_size:
        for m in spec.get("mounts", []):
            if m.get("destination") == "/dev/shm" and m.get("type") == "tmpfs":
                m["options"] = [o for o in m.get("options", []) if not o.startswith("size=")] + [f"size={shm_size}"]
    if ulimits:
        proc["rlimits"] = [{"type": ULIMITS[u.name], "soft": 2**64 - 1 if u.soft == -1 else u.soft,
                            "hard": 2**64 - 1 if u.hard == -1 else u.hard} for u in ulimits]
    if sysctls:
        linux.setdefault("sysctl", {}).update(dict(sysctls))
    if group_add:
        user = proc.setdefault("user", {})
        user["additionalGids"] = add_groups(rootfs, group_add, user.get("additionalGids", []))
    res = linux.setdefault("resources", {})
    if pids_limit:
        res["pids"] = {"limit": pids_limit}
    for r in device_cgroup_rules:
        res.setdefault("devices", []).append(parse_rule(r))
