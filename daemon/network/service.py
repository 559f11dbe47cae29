"""The network as the container manager uses it: NetworkManager plus the per-container files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from daemon.network.api import NetRequest, NetResult
from daemon.network.files import write_container_files
from daemon.network.manager import NetworkManager
from daemon.network.settings import NetworkSettings, PortForward


class RealNetwork:
    """NetworkManager plus the hostname/hosts/resolv.conf files bound over the init layer."""

    def __init__(self, root: Path, exec_root: Path, bridge: str, subnet: str) -> None:
        self.manager = NetworkManager(root, exec_root, bridge, subnet, nat=False)

    async def start(self) -> None:
        await self.manager.start()

    async def close(self) -> None:
        await self.manager.close()

    async def setup(self, container_id: str, container_dir: Path, req: NetRequest) -> NetResult:
        s = await self.manager.setup(
            container_id, req.mode, hostname=req.hostname, ports=list(req.ports),
            publish_all_exposed=list(req.publish_all_exposed), shared_netns=req.shared_netns or None,
        )
        try:
            files = await asyncio.to_thread(
                write_container_files, container_dir, hostname=req.hostname, ip=s.ip_address or None,
                extra_hosts=list(req.extra_hosts), dns=list(req.dns), host_network=req.mode == "host",
            )
        except BaseException:
            await self.manager.teardown(container_id, s)
            raise
        forwards = tuple(
            PortForward(p.protocol, p.host_ip, p.host_port, s.ip_address, p.container_port) for p in s.ports
        )
        return NetResult(s, {k: str(v) for k, v in files.items()}, forwards)

    async def teardown(self, container_id: str, settings: NetworkSettings) -> None:
        await self.manager.teardown(container_id, settings)

    async def recover(self, live: dict[str, NetworkSettings]) -> None:
        await self.manager.recover(live)
