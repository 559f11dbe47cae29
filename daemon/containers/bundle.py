"""The OCI bundle (config.json) that start hands to the shim, which hands it to the runtime.

It starts from the runtime's defaults (docker's capabilities, masked and read-only paths, /dev,
namespaces) and sets what belongs to this container: the overlay merged dir as root, the process,
hostname, the hostname/hosts/resolv.conf binds over the init layer's placeholders, user mounts,
the persisted network namespace, the cgroup path and resources.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ctrd.errdefs import InvalidArgument
from ctrd.inroot import read_text_in_root
from daemon.atomic import write_json_atomic
from daemon.containers.record import Container
from daemon.containers.validate import KNOWN_CAPS
from daemon.security import limits, options
from runtime.defaults import default_spec, thermal_throttle_paths

CPU_PERIOD = 100_000
MAX_ID = 2**31 - 1


def _lookup(rootfs: Path, path: str, key: str, by_name: bool) -> list[str] | None:
    text = read_text_in_root(rootfs, path)  # inside the rootfs: a symlink to /etc/shadow reads the image's
    if text is None:
        return None
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4:
            continue
        if (parts[0] == key) if by_name else (parts[2] == key):
            return parts
    return None


def resolve_user(rootfs: Path, user: str) -> tuple[int, int, list[int]]:
    """docker's user lookup in the container's /etc/passwd and /etc/group."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    for part in (name, group):
        # a number that does not fit in 31 bits must never wrap (to 0, say) or be taken for a name
        # (CVE-2024-40635); docker's range for ids
        if part.isdigit() and int(part) > MAX_ID:
            raise InvalidArgument(f"user: uids and gids must be in range 0-{MAX_ID}, not {part}")
    passwd = "/etc/passwd"
    if name.isdigit():
        uid = int(name)
        entry = _lookup(rootfs, passwd, name, by_name=False)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
        uname = entry[0] if entry else ""
    else:
        entry = _lookup(rootfs, passwd, name, by_name=True)
        if entry is None or not entry[2].isdigit():
            raise InvalidArgument(f"user: unable to find user {name}: no matching entries in passwd file")
        uid, gid, uname = int(entry[2]), int(entry[3]) if entry[3].isdigit() else 0, name
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = _lookup(rootfs, "/etc/group", group, by_name=True)
            if g is None or not g[2].isdigit():
                raise InvalidArgument(f"user: unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    extra: list[int] = []
    if uname:
        for line in (read_text_in_root(rootfs, "/etc/group") or "").splitlines():
            parts = line.split(":")
            if len(parts) >= 4 and uname in parts[3].split(",") and parts[2].isdigit():
                g2 = int(parts[2])
                if g2 != gid and g2 not in extra:
                    extra.append(g2)
    return uid, gid, extra


def exec_user(rootfs: Path, user: str, group_add: Sequence[str]) -> tuple[int, int, list[int]]:
    """An exec's credentials as docker's getUser gives them: the user's uid, gid and supplementary
    groups from the container's files, plus the container's --group-add groups."""
    uid, gid, extra = resolve_user(rootfs, user)
    return uid, gid, limits.add_groups(rootfs, group_add, extra)


def _caps(base: list[str], add: tuple[str, ...], drop: tuple[str, ...]) -> list[str]:
    caps = [] if "ALL" in drop else [c for c in base if c not in drop]
    if "ALL" in add:
        caps = sorted("CAP_" + c for c in KNOWN_CAPS)
    else:
        caps += [c for c in add if c not in caps]
    return caps


def build_spec(
    c: Container,
    rootfs: Path,
    etc_files: Mapping[str, str],
    sandbox_key: str,
    cgroup_parent: str,
    security: options.Defaults = options.DOCKER_DEFAULTS,
) -> dict[str, Any]:
    cfg, host = c.config, c.host_config
    spec = default_spec([c.path, *c.args])
    spec["linux"]["maskedPaths"] += thermal_throttle_paths()  # docker's, for the CPUs present
    spec["root"] = {"path": str(rootfs), "readonly": host.read_only_rootfs}
    uid, gid, extra = resolve_user(rootfs, cfg.user)
    proc = spec.setdefault("process", {})
    proc["args"] = [c.path, *c.args]
    proc["env"] = list(cfg.env)
    if not any(e.startswith("PATH=") for e in cfg.env):
        proc["env"].insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if not any(e.startswith("HOSTNAME=") for e in cfg.env):
        proc["env"].append(f"HOSTNAME={cfg.hostname}")
    proc["cwd"] = cfg.working_dir or "/"
    proc["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
    proc["terminal"] = cfg.tty
    if cfg.tty and host.console_size != (0, 0):
        proc["consoleSize"] = {"height": host.console_size[0], "width": host.console_size[1]}
    if cfg.tty and not any(e.startswith("TERM=") for e in cfg.env):
        proc["env"].append("TERM=xterm")  # as docker does for a tty
    caps = proc.setdefault("capabilities", {})
    base = list(caps.get("bounding", []))
    final = _caps(base, host.cap_add, host.cap_drop)
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = list(final)
    caps.setdefault("inheritable", [])
    caps.setdefault("ambient", [])
    spec["hostname"] = cfg.hostname

    mounts: list[dict[str, Any]] = list(spec.get("mounts", []))
    user_targets = {m.target for m in host.mounts}
    mounts = [m for m in mounts if m.get("destination") not in user_targets]
    for dest in ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts"):
        src = etc_files.get(dest)
        if src and dest not in user_targets:
            opts = ["rbind", "rprivate"] + (["ro"] if host.read_only_rootfs else [])
            mounts.append({"destination": dest, "type": "bind", "source": src, "options": opts})
    for m in host.mounts:
        if m.type in ("bind", "volume"):  # a volume is a bind of its _data
            opts = ["rbind", m.propagation or "rprivate", "ro" if m.read_only else "rw"]
            mounts.append({"destination": m.target, "type": "bind", "source": m.source, "options": opts})
        else:
            opts = ["nosuid", "nodev", *(o for o in m.options.split(",") if o)]
            if m.read_only:
                opts.append("ro")
            mounts.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
    spec["mounts"] = mounts

    linux = spec.setdefault("linux", {})
    namespaces = [ns for ns in linux.get("namespaces", []) if ns.get("type") != "network"]
    if host.network_mode != "host":
        namespaces.append({"type": "network", **({"path": sandbox_key} if sandbox_key else {})})
    linux["namespaces"] = namespaces
    linux["cgroupsPath"] = f"/{cgroup_parent.strip('/')}/{c.id}"
    res = linux.setdefault("resources", {})
    if host.memory:
        res["memory"] = {"limit": host.memory}
    if host.nano_cpus:
        res["cpu"] = {"quota": host.nano_cpus * CPU_PERIOD // 1_000_000_000, "period": CPU_PERIOD}
    options.apply(spec, security_opt=host.security_opt, privileged=host.privileged, devices=host.devices,
                  defaults=security)
    limits.apply(spec, rootfs, shm_size=host.shm_size, ulimits=host.ulimits, sysctls=host.sysctls,
                 group_add=host.group_add, pids_limit=host.pids_limit, device_cgroup_rules=host.device_cgroup_rules)
    return spec


def write_bundle(bundle_dir: Path, spec: dict[str, Any]) -> Path:
    os.makedirs(bundle_dir, mode=0o700, exist_ok=True)
    path = bundle_dir / "config.json"
    # runtime state under the exec-root, rebuilt at every start: atomic, no fsync needed
    write_json_atomic(path, spec, mode=0o600, durable=False)
    return path
