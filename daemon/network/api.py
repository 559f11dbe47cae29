"""What the container manager asks of the network, and the records it gets back (unit tests
plug a fake in here; daemon/network/service.py is the real one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from daemon.network.settings import NetworkSettings, PortForward, PortMapping


@dataclass(frozen=True, slots=True)
class NetRequest:
    mode: str
    hostname: str
    ports: tuple[PortMapping, ...] = ()
    publish_all_exposed: tuple[str, ...] = ()
    shared_netns: str = ""  # container:<x>: the other container's sandbox key
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    name: str = ""  # the container's name: what other containers on a user network resolve
    aliases: tuple[str, ...] = ()  # --network-alias
    dns_search: tuple[str, ...] = ()
    ip: str = ""  # --ip: a fixed address on the user network
    mac: str = ""  # --mac-address ("" = derived from the address)


@dataclass(frozen=True, slots=True)
class NetResult:
    settings: NetworkSettings
    files: dict[str, str] = field(default_factory=dict)  # "/etc/hostname" -> host path to bind
    forwards: tuple[PortForward, ...] = ()  # port forwards for the shim


class Network(Protocol):
    def has_network(self, name: str) -> bool:
        """Is `name` (or an id) a user-defined network? (`--network NAME` is checked at create.)"""
        ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def setup(self, container_id: str, container_dir: Path, req: NetRequest) -> NetResult: ...
    def expected(self, container_id: str, container_dir: Path, req: NetRequest) -> tuple[str, dict[str, str]] | None:
        """The sandbox key and files `setup` will return, when they are known before it runs
        (a start writes the bundle meanwhile); None when they depend on the setup."""
        ...
    async def teardown(self, container_id: str, settings: NetworkSettings) -> None: ...
    async def recover(self, live: dict[str, NetworkSettings]) -> None: ...
    def networks_view(self, container_id: str, mode: str, settings: NetworkSettings | None) -> dict[str, Any]:
        """inspect's NetworkSettings.Networks: docker's entry for each network of the container."""
        ...
    async def rename(self, container_id: str, name: str) -> None:
        """The container is now called `name`: the embedded resolver answers to it, not the old one."""
        ...
