"""The network as the container manager uses it: the default bridge's NetworkManager, the
user-defined networks, and the per-container files."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.network.api import NetRequest, NetResult
from daemon.network.client import HelperClient
from daemon.network.endpoint_view import container_networks
from daemon.network.files import container_files, write_container_files
from daemon.network.firewall import Firewall
from daemon.network.manager import NetworkManager
from daemon.network.settings import NetworkSettings, PortForward
from daemon.network.usernets import DNS_SERVER, UserNetworks


class RealNetwork:
    """The default bridge's NetworkManager and the user-defined networks (one helper process for
    all), plus the hostname/hosts/resolv.conf files bound over the init layer."""

    BUILTIN_MODES = ("none", "host", "bridge")

    def __init__(self, cfg: Config) -> None:
        firewall = Firewall(cfg.root) if cfg.iptables else None
        ops = HelperClient()
        self.manager = NetworkManager(
            cfg.root, cfg.exec_root, cfg.bridge, cfg.subnet, nat=cfg.ip_masq, ip_forward=cfg.ip_forward,
            firewall=firewall, ops=ops,
        )
        self.user = UserNetworks(cfg.root, cfg.exec_root, ops, firewall=firewall, ip_forward=cfg.ip_forward,
                                 taken=[cfg.subnet] if cfg.subnet else [])

    def has_network(self, name: str) -> bool:
        return self.user.find(name) is not None

    async def start(self) -> None:
        await self.manager.start()
        await self.user.start()

    async def close(self, *, remove_bridge: bool = False) -> None:
        try:
            await self.user.close()
        finally:
            await self.manager.close(remove_bridge=remove_bridge)

    def expected(self, container_id: str, container_dir: Path, req: NetRequest) -> tuple[str, dict[str, str]] | None:
        if req.mode in ("none", "bridge"):
            key = self.manager.sandbox_path(container_id)
        elif req.mode == "host":
            key = ""
        else:  # a user network's or another container's namespace: known once set up
            return None
        return key, {k: str(v) for k, v in container_files(Path(container_dir)).items()}

    async def setup(self, container_id: str, container_dir: Path, req: NetRequest) -> NetResult:
        on_user_network = not (req.mode in self.BUILTIN_MODES or req.mode.startswith("container:"))
        # on a user network the embedded resolver answers, and forwards what it does not know
        # to --dns's servers (else the host's), as docker's: resolv.conf keeps 127.0.0.11
        dns = [DNS_SERVER] if on_user_network else list(req.dns)

        def files_for(ip: str | None) -> Awaitable[dict[str, Path]]:
            return asyncio.to_thread(
                write_container_files, container_dir, hostname=req.hostname, ip=ip,
                extra_hosts=list(req.extra_hosts), dns=dns, host_network=req.mode == "host",
                dns_search=list(req.dns_search),
            )

        # Without an address of its own (none, host) the files need nothing from the namespace:
        # they are written while it is made (~0.8 ms off a `--network none` start here).
        early = asyncio.ensure_future(files_for(None)) if req.mode in ("none", "host") else None
        try:
            if on_user_network:
                s, _ = await self.user.setup(
                    container_id, req.mode, name=req.name, hostname=req.hostname, aliases=req.aliases,
                    ports=list(req.ports), publish_all_exposed=list(req.publish_all_exposed), fixed_ip=req.ip,
                    mac=req.mac, dns=list(req.dns),
                )
            else:
                s = await self.manager.setup(
                    container_id, req.mode, hostname=req.hostname, ports=list(req.ports),
                    publish_all_exposed=list(req.publish_all_exposed), shared_netns=req.shared_netns or None,
                    mac=req.mac,
                )
        except BaseException:
            if early is not None:
                await asyncio.gather(early, return_exceptions=True)
            raise
        try:
            if s.owns_netns:
                await self.user.attach_pending(container_id, s.sandbox_key)  # `network connect` while stopped
                await self.user.sync_dns()
            files = await (early if early is not None else files_for(s.ip_address or None))
        except BaseException:
            if early is not None:
                await asyncio.gather(early, return_exceptions=True)
            await self.teardown(container_id, s)
            raise
        forwards = tuple(
            PortForward(p.protocol, p.host_ip, p.host_port, s.ip_address, p.container_port) for p in s.ports
        )
        return NetResult(s, {k: str(v) for k, v in files.items()}, forwards)

    async def teardown(self, container_id: str, settings: NetworkSettings) -> None:
        on_user_network = self.user.by_bridge(settings.bridge) is not None if settings.bridge else False
        if not on_user_network:
            await self.manager.teardown(container_id, settings)
        if on_user_network or any(container_id in r.endpoints for r in self.user.store):
            await self.user.teardown(container_id, settings)

    def networks_view(self, container_id: str, mode: str, settings: NetworkSettings | None) -> dict[str, Any]:
        return container_networks(container_id, mode, settings, list(self.user.store))

    async def recover(self, live: dict[str, NetworkSettings]) -> None:
        await self.manager.recover(live)
        await self.user.recover(live)

    async def rename(self, container_id: str, name: str) -> None:
        await self.user.rename(container_id, name)
