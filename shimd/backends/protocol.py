"""The protocol between the shim and an OCI runtime, and the records it passes.

Three implementations behind one Protocol, chosen per container by `CreateRequest.runtime`:
- `ForkedBackend` ("", the default, `shimd/backends/forked.py`): the `runtime` library, each verb
  called in a short-lived fork of the shim, so the long-lived shim does not pay for the library's code.
- `InProcessBackend` ("@library-direct", `shimd/backends/inprocess.py`): the library called in the
  shim's own process (kept to compare against, and as the simplest path).
- `OciBinaryBackend` (a path or name such as "runc" or "ctrd-runtime", `shimd/backends/oci_binary.py`):
  drives any OCI runtime binary with runc's command line, its processes reaped by the shim's reaper.

All report failures as `ctrd.errdefs` errors and all leave the container's init a child of the
shim (directly, or reparented to it as child subreaper), so the one reaper sees every exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shimd.reaper import Exit

# CreateRequest.runtime: "" = the runtime library, in short-lived forks of the shim (ForkedBackend);
# this name = the library called in the shim process itself; anything else = an OCI runtime binary.
RUNTIME_LIBRARY_DIRECT = "@library-direct"


@dataclass(frozen=True, slots=True)
class Stdio:
    stdin: int
    stdout: int
    stderr: int
    console: int = -1  # with a terminal: the runtime's end of the console socket (shimd.console)


@dataclass(frozen=True, slots=True)
class ExecSpec:
    args: list[str]
    env: list[str]
    cwd: str
    uid: int
    gid: int
    terminal: bool = False  # a pty made inside the container; Stdio.console carries the master back
    size: tuple[int, int] | None = None  # (rows, cols): the pty's first size
    additional_gids: tuple[int, ...] = ()
    on_pid: Callable[[int], None] | None = None  # told the pid to signal (a healthcheck's timeout)


@dataclass(frozen=True, slots=True)
class StatsRecord:
    memory_usage: int = 0
    memory_limit: int = 0
    cpu_usage_ns: int = 0
    pids_current: int = 0
    pids_limit: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """docker update's limits as cgroup values; None = unchanged."""

    memory: int | None = None      # bytes, -1 = unlimited
    cpu_quota: int | None = None   # microseconds per period, -1 = unlimited
    cpu_period: int | None = None
    pids: int | None = None        # -1 = unlimited

    def to_oci(self) -> dict[str, Any]:
        """The OCI `linux.resources` object (runc update -r)."""
        out: dict[str, Any] = {}
        if self.memory is not None:
            out["memory"] = {"limit": self.memory}
        if self.cpu_quota is not None:
            out["cpu"] = {"quota": self.cpu_quota, "period": self.cpu_period}
        if self.pids is not None:
            out["pids"] = {"limit": self.pids}
        return out


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """What `ctrd-shim delete` needs to find the container again after the shim died."""

    container_id: str
    bundle: str
    runtime: str  # "" = in-process library
    runtime_root: str


class Backend(Protocol):
    config: BackendConfig

    async def create(self, stdio: Stdio, start: bool = False) -> int:
        """Set the container up, its init blocked before execve; returns the init pid. `start`:
        start() follows at once, so the backend may begin it before create has answered."""
        ...

    async def start(self) -> None: ...

    async def kill(self, sig: int, all_procs: bool = False) -> None: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def delete(self) -> None:
        """Force: kill what is left, remove the runtime's state and the cgroups."""
        ...

    async def stats(self) -> StatsRecord: ...

    async def update(self, limits: Limits) -> None:
        """Change the cgroup limits of the running container."""
        ...

    async def pids(self) -> list[int]: ...

    async def exec(self, spec: ExecSpec, stdio: Stdio) -> int:
        """Run a process in the container to its end; returns its exit status (128+signal).
        Takes ownership of the three stdio fds: they are closed once the process holds them."""
        ...

    async def exec_start(self, spec: ExecSpec, stdio: Stdio) -> tuple[int, asyncio.Future[Exit]]:
        """Start a process in the container; returns its pid and the future of its exit.
        Takes ownership of the stdio fds (the console socket's runtime end included)."""
        ...

    def oom_killed(self) -> bool: ...
