"""The daemon's view of its collaborators, as Protocols (unit tests plug fakes in here).

Adapters in daemon/adapters.py wrap the real image/layer stores, the shim launcher and client, and
the network manager so that an API change there touches one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from daemon.containers.validate import ImageConfigLike


class ImageLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def top_layer(self) -> str | None: ...
    @property
    def config(self) -> ImageConfigLike: ...


class Images(Protocol):
    def get(self, ref: str) -> ImageLike: ...
    def ensure(self, ref: str) -> ImageLike: ...


class Layers(Protocol):
    def create_container_layers(self, container_id: str, image_top_layer: str | None) -> None: ...
    def mount(self, container_id: str) -> Path: ...
    def unmount(self, container_id: str) -> None: ...
    def is_mounted(self, container_id: str) -> bool: ...
    def remove_container_layers(self, container_id: str) -> None: ...
    def graph_data(self, container_id: str) -> dict[str, str]: ...
    def container_layer_ids(self) -> Iterable[str]: ...


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
    ports: tuple[Mapping[str, Any], ...] = ()  # {"protocol","host_ip","host_port","container_ip","container_port"}


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


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
    async def wait(self) -> Exit: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def exec(self, args: Sequence[str], env: Sequence[str], cwd: str, uid: int, gid: int) -> ExecResult: ...
    async def stats(self) -> Stats: ...
    async def pids(self) -> list[int]: ...
    async def delete(self) -> Exit: ...
    async def shutdown(self) -> None: ...
    async def close(self) -> None: ...


class Shims(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def state_dir(self, container_id: str) -> Path: ...
    async def launch(self, container_id: str) -> ShimTask: ...
    async def reconnect(self, container_id: str) -> ShimTask:
        """Connect to a shim that outlived a previous daemon; Unavailable when it is gone."""
        ...
    async def cleanup_dead(self, container_id: str) -> Exit:
        """`ctrd-shim delete`: kill what is left, unmount, report the exit (255 when unknown)."""
        ...


@dataclass(frozen=True, slots=True)
class NetRequest:
    mode: str
    hostname: str
    ports: tuple[Mapping[str, Any], ...] = ()
    publish_all_exposed: tuple[str, ...] = ()
    shared_netns: str = ""  # container:<x>: the other container's sandbox key
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    name: str = ""  # the container's name: what other containers on a user network resolve
    aliases: tuple[str, ...] = ()  # --network-alias


@dataclass(frozen=True, slots=True)
class NetResult:
    settings: dict[str, Any]  # docker's NetworkSettings (SandboxKey, IPAddress, Gateway, MacAddress, Ports)
    files: dict[str, str] = field(default_factory=dict)  # "/etc/hostname" -> host path to bind
    forwards: tuple[Mapping[str, Any], ...] = ()  # port forwards for the shim


class Network(Protocol):
    def has_network(self, name: str) -> bool:
        """Is `name` (or an id) a user-defined network? (`--network NAME` is checked at create.)"""
        ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def setup(self, container_id: str, container_dir: Path, req: NetRequest) -> NetResult: ...
    async def teardown(self, container_id: str, settings: dict[str, Any]) -> None: ...
    async def recover(self, live: dict[str, dict[str, Any]]) -> None: ...
