"""The seam between the shim and an OCI runtime.

Three implementations behind one Protocol, chosen per container by `CreateRequest.runtime`:
- `ForkedBackend` ("", the default, `shimd/forked.py`): the `runtime` library, each verb called in
  a short-lived fork of the shim, so the long-lived shim does not pay for the library's code.
- `InProcessBackend` ("@library-direct", `shimd/inprocess.py`): the library called in the shim's
  own process (kept to compare against, and as the simplest path).
- `BinaryBackend` (a path or name such as "runc" or "ctrd-runtime", `shimd/runc.py`): drives that
  binary with runc's command line, its processes reaped by the shim's reaper.

All report failures as `ctrd.errdefs` errors and all leave the container's init a child of the
shim (directly, or reparented to it as child subreaper), so the one reaper sees every exit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CGROUP_ROOT = "/sys/fs/cgroup"
# CreateRequest.runtime: "" = the runtime library, in short-lived forks of the shim (ForkedBackend);
# this name = the library called in the shim process itself; anything else = an OCI runtime binary.
RUNTIME_LIBRARY_DIRECT = "@library-direct"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class Stdio:
    stdin: int
    stdout: int
    stderr: int


@dataclass(frozen=True, slots=True)
class ExecSpec:
    args: list[str]
    env: list[str]
    cwd: str
    uid: int
    gid: int


def read_bundle_config(bundle: str | Path) -> Any:
    """The bundle's config.json, parsed (OSError or ValueError when missing or malformed).
    Plain open() on a str path: the shim runs this, and pathlib is more code for it to run."""
    with open(f"{os.fspath(bundle)}/config.json", "rb") as f:
        return json.loads(f.read())


def exec_process(bundle: str | Path, spec: ExecSpec) -> dict[str, Any]:
    """The OCI process object of an exec: the container's own process (capabilities, rlimits,
    no_new_privileges, env) with the exec's args, and its env/cwd/user where given. Like docker
    exec, an exec'd process gets no more privilege than the container's init."""
    try:
        config = read_bundle_config(bundle)
        proc: dict[str, Any] = dict(config.get("process") or {})
    except (OSError, ValueError):
        proc = {}
    proc["terminal"] = False
    proc["args"] = list(spec.args)
    proc["env"] = list(spec.env) or list(proc.get("env") or [DEFAULT_PATH])
    proc["cwd"] = spec.cwd or proc.get("cwd") or "/"
    proc["user"] = {"uid": spec.uid, "gid": spec.gid}
    proc.pop("consoleSize", None)
    return proc


def oom_killed_in_cgroup(bundle: str | Path, default_path: str = "") -> bool:
    """The memory cgroup's OOM-kill counter for the bundle's linux.cgroupsPath (cgroup v1
    memory.oom_control, v2 memory.events); to be read before `delete` removes the cgroup."""
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


@dataclass(frozen=True, slots=True)
class StatsRecord:
    memory_usage: int = 0
    memory_limit: int = 0
    cpu_usage_ns: int = 0
    pids_current: int = 0
    pids_limit: int = 0


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """What `ctrd-shim delete` needs to find the container again after the shim died."""

    container_id: str
    bundle: str
    runtime: str  # "" = in-process library
    runtime_root: str


class Backend(Protocol):
    config: BackendConfig

    async def create(self, stdio: Stdio) -> int:
        """Set the container up, its init blocked before execve; returns the init pid."""
        ...

    async def start(self) -> None: ...

    async def kill(self, sig: int, all_procs: bool = False) -> None: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def delete(self) -> None:
        """Force: kill what is left, remove the runtime's state and the cgroups."""
        ...

    async def stats(self) -> StatsRecord: ...

    async def pids(self) -> list[int]: ...

    async def exec(self, spec: ExecSpec, stdio: Stdio) -> int:
        """Run a process in the container to its end; returns its exit status (128+signal).
        Takes ownership of the three stdio fds: they are closed once the process holds them."""
        ...

    def oom_killed(self) -> bool: ...
