"""What the backends read from the container's OCI bundle: its process (for execs) and its
memory cgroup's OOM-kill counter."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ctrd import errdefs
from shimd.backends.protocol import ExecSpec

CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def read_bundle_config(bundle: str | Path) -> Any:
    """The bundle's config.json, parsed (OSError or ValueError when missing or malformed).
    Plain open() on a str path: the shim runs this, and pathlib is more code for it to run."""
    with open(f"{os.fspath(bundle)}/config.json", "rb") as f:
        return json.loads(f.read())


def check_terminal(bundle: str | Path, terminal: bool) -> None:
    """The request and the bundle must agree: a runtime told of no terminal sends no master.
    Called where the runtime reads the bundle anyway (the forked backend's helper): the parse
    (~50 KB of objects for a config with a seccomp profile) would stay in a shim's private pages."""
    try:
        process = read_bundle_config(bundle).get("process") or {}
    except (OSError, ValueError) as exc:
        raise errdefs.InvalidArgument(f"bundle: cannot read {os.fspath(bundle)}/config.json: {exc}") from exc
    if bool(process.get("terminal", False)) != terminal:
        raise errdefs.InvalidArgument(
            f"terminal: the request says {terminal}, {os.fspath(bundle)}/config.json says the opposite")


def exec_process(bundle: str | Path, spec: ExecSpec) -> dict[str, Any]:
    """The OCI process object of an exec: the container's own process (capabilities, rlimits,
    no_new_privileges, env) with the exec's args, and its env/cwd/user where given. Like docker
    exec, an exec'd process gets no more privilege than the container's init."""
    try:
        config = read_bundle_config(bundle)
        proc: dict[str, Any] = dict(config.get("process") or {})
    except (OSError, ValueError):
        proc = {}
    proc["terminal"] = spec.terminal
    proc["args"] = list(spec.args)
    proc["env"] = list(spec.env) or list(proc.get("env") or [DEFAULT_PATH])
    proc["cwd"] = spec.cwd or proc.get("cwd") or "/"
    proc["user"] = {"uid": spec.uid, "gid": spec.gid}
    if spec.additional_gids:
        proc["user"]["additionalGids"] = list(spec.additional_gids)
    proc.pop("consoleSize", None)
    if spec.terminal and spec.size is not None:
        proc["consoleSize"] = {"height": spec.size[0], "width": spec.size[1]}
    return proc


def oom_killed_in_cgroup(bundle: str | Path, default_path: str = "", cgroups_path: str | None = None) -> bool:
    """The memory cgroup's OOM-kill counter for the bundle's linux.cgroupsPath (cgroup v1
    memory.oom_control, v2 memory.events); to be read before `delete` removes the cgroup.
    `cgroups_path`, when the caller knows it (the runtime's create reported it), spares the
    parse of config.json (with a seccomp profile ~10 KB) on the exit path."""
    if cgroups_path is not None:
        rel = (cgroups_path or default_path).strip("/")
    else:
        try:
            config = read_bundle_config(bundle)
            rel = str(config.get("linux", {}).get("cgroupsPath") or default_path).strip("/")
        except (OSError, ValueError, AttributeError):
            return False
    if not rel or ":" in rel:  # systemd-style slice:prefix:name paths are not used by ctrd
        return False
    for path in (f"{CGROUP_ROOT}/memory/{rel}/memory.oom_control", f"{CGROUP_ROOT}/{rel}/memory.events",
                 f"{CGROUP_ROOT}/unified/{rel}/memory.events"):
        try:
            with open(path, "rb") as f:
                lines = f.read().decode().splitlines()
            for line in lines:
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value) > 0
        except (OSError, ValueError):
            continue
    return False
