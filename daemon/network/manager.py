"""NetworkManager: a configured network namespace per container (built by start, torn down by stop).

The daemon calls setup() before the container's process exists; the namespace is persisted as an
nsfs bind mount at <exec-root>/netns/<12-hex-id> so that the runtime joins it by path, and
teardown() removes it at stop. All netlink and namespace work happens in the single-threaded
helper process (daemon.network.helper); this class keeps the state (IPAM, bridge) and the order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.network.addressing import gateway_of, mac_for, parse_subnet, pick_default_subnet
from daemon.network.client import HelperClient, NetOpsClient
from daemon.network.firewall import Firewall, FirewallNetwork
from daemon.network.ipam import Ipam
from daemon.network.portmap import PortPicker, pick_free_port, resolve_ports
from daemon.network.reaper import VethReaper
from daemon.network.settings import NetworkSettings, PortMapping

__all__ = ["NetworkManager", "NetworkSettings", "PortMapping"]

MODES = ("none", "host", "bridge")


def enable_ip_forward() -> None:
    """Route between the bridge and the host's other links (docker's --ip-forward, on by default)."""
    path = Path("/proc/sys/net/ipv4/ip_forward")
    if path.read_text().strip() != "1":
        path.write_text("1\n")


def veth_name() -> str:
    return "veth" + secrets.token_hex(4)[:7]  # 11 chars; IFNAMSIZ allows 15


class NetworkManager:
    def __init__(
        self,
        root: Path,
        exec_root: Path,
        bridge: str = "ctrd0",
        subnet: str | None = None,
        nat: bool = False,
        *,
        mtu: int = 1500,
        ops: NetOpsClient | None = None,
        port_picker: PortPicker = pick_free_port,
        firewall: Firewall | None = None,
        ip_forward: bool = False,
        internal: bool = False,
        close_ops: bool = True,
    ) -> None:
        if not 0 < len(bridge) <= 15 or "/" in bridge or " " in bridge:
            raise errdefs.InvalidArgument(f"invalid bridge name {bridge!r}")
        self.root = Path(root)
        self.exec_root = Path(exec_root)
        self.bridge = bridge
        self._subnet_arg = parse_subnet(subnet) if subnet else None
        self.nat = nat  # masquerade the subnet's traffic out of the bridge (needs a firewall)
        self.firewall = firewall  # None: ctrd leaves the host's firewall alone (--iptables=false)
        self.ip_forward = ip_forward
        self.internal = internal  # a user network with no traffic in or out of its bridge
        self._close_ops = close_ops  # False: the helper is shared with other networks' managers
        self.mtu = mtu
        self.netns_dir = self.exec_root / "netns"
        self.state_path = self.root / "network" / f"{bridge}.json"
        self._ops: NetOpsClient = ops if ops is not None else HelperClient()
        self._picker = port_picker
        self._lock = asyncio.Lock()
        self._ipam: Ipam | None = None
        self._bridge_ready = False
        self._reaper = VethReaper(self._ops)
        self._save_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.netns_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        self._ipam = Ipam.load(self.state_path)
        if self._ipam is not None and self._subnet_arg is not None and self._ipam.subnet != self._subnet_arg:
            if self._ipam.leases:
                raise errdefs.FailedPrecondition(
                    f"bridge {self.bridge} has containers on {self._ipam.subnet}; cannot switch to {self._subnet_arg}"
                )
            self._ipam = None  # nothing uses the old subnet: the new one replaces it lazily
        await self._ops.start()

    async def close(self, *, remove_bridge: bool = False) -> None:
        """Stop the helper. Container networks stay: live containers keep using them."""
        try:
            await self._reaper.close()
            if self._ipam is not None and self._ipam.dirty:
                self._ipam.save()
            if remove_bridge:
                async with self._lock:
                    info = await self._ops.call("bridge_info", name=self.bridge)
                    if info is not None and not info["ports"]:
                        await self._ops.call("link_delete", name=self.bridge)
                        if self.firewall is not None:
                            await self.firewall.remove_network(self.bridge)
                            await self.firewall.remove_chains_if_unused()
                    self._bridge_ready = False
        finally:
            if self._close_ops:
                await self._ops.close()

    @property
    def subnet(self) -> ipaddress.IPv4Network | None:
        return self._ipam.subnet if self._ipam is not None else self._subnet_arg

    def leases(self) -> dict[str, str]:
        return self._ipam.leases if self._ipam is not None else {}

    # -- bridge --------------------------------------------------------------------------------

    async def _ensure_bridge(self) -> Ipam:
        """Create or validate the bridge on first use; caller holds self._lock."""
        if self._bridge_ready and self._ipam is not None:
            return self._ipam
        net = self._subnet_arg or (self._ipam.subnet if self._ipam is not None else None)
        if net is None:
            info = await self._ops.call("bridge_info", name=self.bridge)
            if info is not None and info["addresses"]:
                net = ipaddress.IPv4Interface(info["addresses"][0]).network  # an existing bridge's subnet
            else:
                net = pick_default_subnet(await self._ops.call("routed_networks"))
        gw = gateway_of(net)
        await self._ops.call("bridge_ensure", name=self.bridge, gateway=str(gw), prefixlen=net.prefixlen, mtu=self.mtu)
        if self.firewall is not None:
            await self.firewall.add_network(
                FirewallNetwork(self.bridge, str(net), internal=self.internal, masquerade=self.nat)
            )
        if self.ip_forward:
            await asyncio.to_thread(enable_ip_forward)
        if self._ipam is None or self._ipam.subnet != net:
            self._ipam = Ipam(self.state_path, self.bridge, net)
            self._ipam.save()
        self._bridge_ready = True
        return self._ipam

    async def ensure_bridge(self) -> None:
        """Create the bridge (and its firewall rules) now rather than at the first container."""
        async with self._lock:
            await self._ensure_bridge()

    # -- per container -------------------------------------------------------------------------

    def sandbox_path(self, container_id: str) -> str:
        return str(self.netns_dir / container_id[:12])

    async def setup(
        self,
        container_id: str,
        mode: str,
        *,
        hostname: str,
        ports: Sequence[PortMapping] = (),
        publish_all_exposed: Sequence[str] = (),
        shared_netns: str | None = None,
        fixed_ip: str = "",
        mac: str = "",
    ) -> NetworkSettings:
        """Build the container's network; on any failure undo everything and raise. `fixed_ip`/`mac`:
        a fixed address (checked against the subnet and the leases) and MAC for eth0."""
        if len(container_id) < 12:
            raise errdefs.InvalidArgument(f"invalid container id {container_id!r}")
        if mode == "host":
            return NetworkSettings(mode="host")
        if mode.startswith("container:"):
            return await self._setup_shared(container_id, mode, ports, publish_all_exposed, shared_netns)
        if mode not in MODES:
            raise errdefs.InvalidArgument(f"invalid network mode {mode!r}: want none, host, bridge or container:<name|id>")
        resolved = resolve_ports(ports, publish_all_exposed, picker=self._picker) if mode == "bridge" else []
        path = self.sandbox_path(container_id)
        if mode == "none":
            try:
                await self._ops.call("sandbox_create", path=path)
            except asyncio.CancelledError:
                await self._undo_cancelled(path)
                raise
            return NetworkSettings(mode="none", sandbox_key=path)
        async with self._lock:
            ipam = await self._ensure_bridge()
            new_lease = ipam.lease_of(container_id) is None  # else: set up already, keep its lease
            ip = ipam.allocate(container_id, sync=False, want=fixed_ip)
        mac = mac or mac_for(str(ip))
        # The lease reaches the disk while the helper builds the network: both finish before the
        # address is handed out, and a crash in between leaves only what recover() removes.
        saving = asyncio.ensure_future(self._persist())
        try:
            veth = await self._build_bridged(container_id, path, ip, ipam, mac)
        except BaseException as e:
            await asyncio.gather(saving, return_exceptions=True)
            if isinstance(e, asyncio.CancelledError):
                await self._undo_cancelled(path)
            if new_lease:
                async with self._lock:
                    ipam.release(container_id, sync=False)
            raise
        try:
            await saving
        except BaseException:
            await self.teardown(container_id, NetworkSettings(mode="bridge", sandbox_key=path, ip_address=str(ip)))
            raise
        return NetworkSettings(
            mode="bridge", sandbox_key=path, ip_address=str(ip), ip_prefix_len=ipam.subnet.prefixlen,
            gateway=str(ipam.gateway), mac_address=mac, bridge=self.bridge, veth_host=veth, ports=resolved,
        )

    async def _undo_cancelled(self, path: str) -> None:
        """A cancelled setup: the helper finished the request anyway (see HelperClient.call), so
        the namespace may exist; remove it (its veth goes with it)."""
        with contextlib.suppress(errdefs.CtrdError, asyncio.CancelledError):
            await asyncio.shield(self._ops.call("sandbox_delete", path=path))

    async def _persist(self) -> None:
        """Write the newest IPAM state off the event loop; snapshots are taken in order."""
        async with self._save_lock:
            if self._ipam is None or not self._ipam.dirty:
                return
            self._ipam.dirty = False
            snap = self._ipam.to_dict()
            try:
                await asyncio.to_thread(self._ipam.write, snap)
            except BaseException:
                self._ipam.dirty = True
                raise

    async def _build_bridged(
        self, container_id: str, path: str, ip: ipaddress.IPv4Address, ipam: Ipam, mac: str
    ) -> str:
        """netns + veth in one helper request; returns the host-side veth name."""
        for _ in range(3):
            veth = veth_name()
            cfg = {
                "host_name": veth, "bridge": self.bridge, "ip": str(ip), "prefixlen": ipam.subnet.prefixlen,
                "gateway": str(ipam.gateway), "mac": mac, "mtu": self.mtu,
            }
            try:
                # the helper undoes its own half-built state (veth, mount, file) on failure
                await self._ops.call("sandbox_create", path=path, veth=cfg)
                return veth
            except errdefs.AlreadyExists as e:
                if not e.message.startswith("link "):
                    raise  # the netns file exists: the container is set up already
            except errdefs.NotFound as e:
                if not e.message.startswith("bridge ") or not self._bridge_ready:
                    raise
                # someone deleted the bridge under us: recreate it once, then retry
                async with self._lock:
                    self._bridge_ready = False
                    await self._ensure_bridge()
        raise errdefs.Internal(f"cannot find a free veth name for container {container_id}")

    async def _setup_shared(
        self, container_id: str, mode: str, ports: Sequence[PortMapping], expose: Sequence[str], shared: str | None
    ) -> NetworkSettings:
        if ports or expose:
            raise errdefs.InvalidArgument(f"container {container_id}: port publishing conflicts with network mode {mode}")
        if not shared:
            raise errdefs.InvalidArgument(f"network mode {mode} needs the other container's network namespace (is it running?)")
        info: dict[str, Any] = await self._ops.call("netns_info", netns=shared)
        return NetworkSettings(
            mode=mode, sandbox_key=shared, ip_address=info["ip"], ip_prefix_len=int(info["prefixlen"]),
            gateway=info["gateway"], mac_address=info["mac"],
        )

    async def teardown(self, container_id: str, settings: NetworkSettings) -> None:
        """Unmount and remove the netns file, release the lease, see the veth go. Idempotent.

        The kernel takes the veth pair down with the namespace, in the background (see
        daemon.network.reaper: that keeps an RCU grace period off the stop path)."""
        if settings.owns_netns:
            await self._ops.call("sandbox_delete", path=settings.sandbox_key)
        if settings.veth_host:
            if settings.owns_netns:
                self._reaper.watch(settings.veth_host)
            else:
                await self._ops.call("link_delete", name=settings.veth_host)
        if settings.mode == "bridge":
            async with self._lock:
                lease = self._ipam.lease_of(container_id) if self._ipam is not None else None
                if self._ipam is not None and lease is not None and settings.ip_address in ("", lease):
                    self._ipam.release(container_id, sync=False)
            await self._persist()  # off the event loop; stop returns with the lease gone on disk

    async def attach(self, container_id: str, netns: str, ifname: str, *, fixed_ip: str = "") -> NetworkSettings:
        """One more interface for a running container's namespace on this bridge (`network
        connect`): an address from this network (`fixed_ip`, else the next free one), no default
        route (the first network keeps it)."""
        async with self._lock:
            ipam = await self._ensure_bridge()
            ip = ipam.allocate(container_id, sync=False, want=fixed_ip)
        await self._persist()
        mac = mac_for(str(ip))
        cfg = {"bridge": self.bridge, "ip": str(ip), "prefixlen": ipam.subnet.prefixlen, "gateway": str(ipam.gateway),
               "mac": mac, "mtu": self.mtu, "ifname": ifname}
        try:
            for _ in range(3):
                veth = veth_name()
                try:
                    await self._ops.call("endpoint_add", netns=netns, veth={**cfg, "host_name": veth})
                    break
                except errdefs.AlreadyExists as e:
                    if not e.message.startswith("link "):
                        raise
            else:
                raise errdefs.Internal(f"cannot find a free veth name for container {container_id}")
        except BaseException:
            async with self._lock:
                ipam.release(container_id, sync=False)
            await self._persist()
            raise
        return NetworkSettings(
            mode="bridge", sandbox_key=netns, ip_address=str(ip), ip_prefix_len=ipam.subnet.prefixlen,
            gateway=str(ipam.gateway), mac_address=mac, bridge=self.bridge, veth_host=veth,
        )

    async def detach(self, container_id: str, veth: str) -> None:
        """Undo attach(): the veth (its peer goes with it) and the lease. Idempotent."""
        if veth:
            await self._ops.call("link_delete", name=veth)
        await self.release(container_id)

    async def release(self, container_id: str) -> None:
        async with self._lock:
            if self._ipam is not None:
                self._ipam.release(container_id, sync=False)
        await self._persist()

    async def settle(self, timeout: float | None = None) -> None:
        """Wait until every torn-down veth is gone (deleting stragglers after `timeout`)."""
        await self._reaper.settle(timeout)

    # -- recovery ------------------------------------------------------------------------------

    async def recover(self, live: Mapping[str, NetworkSettings]) -> None:
        """After a daemon restart: leases = the live containers' addresses; leftovers go."""
        async with self._lock:
            keep_ns = {s.sandbox_key for s in live.values() if s.sandbox_key}  # every network's
            live = {cid: s for cid, s in live.items() if s.bridge in ("", self.bridge)}
            bridged = [s for s in live.values() if s.mode == "bridge" and s.ip_address and s.ip_prefix_len]
            if self._ipam is None and bridged:
                # The state file is gone but containers are running: rebuild it from them rather
                # than hand their addresses out again.
                net = ipaddress.IPv4Interface(f"{bridged[0].ip_address}/{bridged[0].ip_prefix_len}").network
                self._ipam = Ipam(self.state_path, self.bridge, net)
            if bridged:
                self._bridge_ready = False
                await self._ensure_bridge()  # the bridge and its rules, as a crash may have left them
            if self._ipam is not None:
                self._ipam.reset({cid: s.ip_address for cid, s in live.items() if s.mode == "bridge" and s.ip_address})
            keep_veths = {s.veth_host for s in live.values() if s.veth_host}
            for name in await self._ops.call("bridge_ports", bridge=self.bridge):
                if name.startswith("veth") and name not in keep_veths:
                    await self._ops.call("link_delete", name=name)
            for path in await self._ops.call("list_sandboxes", directory=str(self.netns_dir)):
                if path not in keep_ns:
                    await self._ops.call("sandbox_delete", path=path)
