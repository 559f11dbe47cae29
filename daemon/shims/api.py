"""What the daemon asks of a shim, as Protocols and the records they exchange.

daemon/shims/conn.py speaks these over the shim API; unit tests plug fakes in here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from daemon.health import Healthcheck, HealthState
from daemon.network.settings import PortForward


@dataclass(frozen=True, slots=True)
class Exit:
    status: int
    exited_at: float
    oom_killed: bool = False
    killed: bool = False  # stop ended with SIGKILL


@dataclass(frozen=True, slots=True)
class ShimState:
    status: str  # created | running | paused | stopped | unknown
    pid: int
    exit: Exit | None = None


@dataclass(frozen=True, slots=True)
class ShimCreate:
    bundle: str
    log_path: str
    runtime: str = ""
    runtime_root: str = ""
    log_max_size: int = 0
    log_max_file: int = 1
    ports: tuple[PortForward, ...] = ()
    terminal: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    health: Healthcheck | None = None  # run by the shim when enabled
    log_attrs: tuple[tuple[str, str], ...] = ()  # each json-file entry's "attrs"
    start: bool = False  # start it too, in the same call (create then answers the started pid)


@dataclass(frozen=True, slots=True)
class HealthReport:
    seq: int  # 0 = the shim runs no healthcheck
    state: HealthState


@dataclass(frozen=True, slots=True)
class Limits:
    """docker update's resources; None = unchanged."""

    memory: int | None = None  # bytes, -1 = unlimited
    nano_cpus: int | None = None  # 0 = unlimited
    pids_limit: int | None = None  # -1 = unlimited


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


@dataclass(frozen=True, slots=True)
class ExecProcess:
    """A streaming exec as the shim makes it (its process starts with `start_exec`)."""

    exec_id: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    terminal: bool = False
    open_stdin: bool = False
    size: tuple[int, int] | None = None  # (rows, cols) of its pty


@dataclass(frozen=True, slots=True)
class Stats:
    memory_usage: int = 0
    memory_limit: int = 0
    cpu_usage_ns: int = 0
    pids_current: int = 0
    pids_limit: int = 0


class ShimTask(Protocol):
    """One connected shim (one container start)."""

    @property
    def shim_pid(self) -> int: ...
    async def create(self, req: ShimCreate) -> int: ...
    async def start(self) -> int: ...
    async def state(self) -> ShimState: ...
    async def kill(self, sig: int, all_: bool = False) -> None: ...
    async def stop(self, sig: int, timeout_ms: int) -> Exit: ...
    def wait(self) -> Awaitable[Exit]:
        """The process's exit (an awaitable: a future or a coroutine; cancelling it ends the wait)."""
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def exec(self, args: Sequence[str], env: Sequence[str], cwd: str, uid: int, gid: int,
                   gids: Sequence[int] = (), timeout: float | None = None) -> ExecResult:
        """A buffered exec; at `timeout` (seconds) the shim kills its process, even a stopped one."""
        ...
    async def stats(self) -> Stats: ...
    async def pids(self) -> list[int]: ...
    async def delete(self) -> Exit: ...
    async def resize(self, rows: int, cols: int) -> None: ...
    async def shutdown(self) -> None: ...
    async def close(self) -> None: ...
    async def create_exec(self, p: ExecProcess) -> str:
        """Listen on the exec's attach socket (returns its path); nothing runs yet."""
        ...
    async def start_exec(self, exec_id: str) -> int: ...
    async def wait_exec(self, exec_id: str) -> Exit: ...
    async def resize_exec(self, exec_id: str, rows: int, cols: int) -> None: ...
    async def delete_exec(self, exec_id: str) -> None: ...
    async def health(self, after_seq: int) -> HealthReport:
        """The shim's healthcheck state once its sequence number is above `after_seq`."""
        ...
    async def update(self, limits: Limits) -> None: ...


class Shims(Protocol):
    async def start(self, after: Awaitable[None] | None = None) -> None:
        """Start launching shims (once `after` is done, when given)."""
        ...
    async def close(self) -> None: ...
    def state_dir(self, container_id: str) -> Path: ...
    async def launch(self, container_id: str) -> ShimTask: ...
    async def reconnect(self, container_id: str) -> ShimTask:
        """Connect to a shim that outlived a previous daemon; Unavailable when it is gone."""
        ...
    async def cleanup_dead(self, container_id: str) -> Exit:
        """`ctrd-shim delete`: kill what is left, unmount, report the exit (255 when unknown)."""
        ...
