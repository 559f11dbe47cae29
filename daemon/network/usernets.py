"""User-defined networks: one bridge, IPAM, firewall rules and DNS table each (docker's
`network create` / `connect` / `disconnect` / `rm` / `prune`, and `run --network NAME`).

Each network gets its own NetworkManager (its bridge `br-<12 hex>`, its subnet, its IPAM file)
sharing the daemon's one network helper and one Firewall. A container's first network gives it
eth0 and the default route; `connect` adds eth1, eth2, ... without a route. Endpoints are kept in
the network's record: a connection made while the container is stopped is applied at its next
start, as docker does. Names resolve through the resolver process (daemon.network.dns).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ctrd import errdefs
from ctrd.timefmt import rfc3339
from daemon.network.client import NetOpsClient
from daemon.network.dns.client import DnsClient
from daemon.network.firewall import Firewall
from daemon.network.manager import NetworkManager
from daemon.network.networks import Endpoint, NetworkRecord, NetworkStore, new_record
from daemon.network.settings import NetworkSettings, PortMapping

DNS_SERVER = "127.0.0.11"


def check_fixed_ip(rec: NetworkRecord, container_id: str, ip: str) -> None:
    """`network connect --ip`: an IPv4 address inside the network's subnet, not its network,
    broadcast or gateway address, and not another endpoint's (asked for or held)."""
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        raise errdefs.InvalidArgument(f"ip: invalid IPv4 address {ip!r}") from None
    subnet = ipaddress.IPv4Network(rec.subnet)
    if addr not in subnet:
        raise errdefs.InvalidArgument(f"ip: {ip} is outside the subnet {subnet} of network {rec.name}")
    if addr in (subnet.network_address, subnet.broadcast_address) or ip == rec.gateway:
        what = "gateway" if ip == rec.gateway else "network or broadcast"
        raise errdefs.InvalidArgument(f"ip: {ip} is the {what} address of network {rec.name}")
    for cid, ep in rec.endpoints.items():
        if cid != container_id and ip in (ep.ip, ep.ipam_ip):
            raise errdefs.AlreadyExists(f"ip: {ip} is already in use on network {rec.name}")


class UserNetworks:
    def __init__(
        self, root: Path, exec_root: Path, ops: NetOpsClient, *, firewall: Firewall | None, ip_forward: bool,
        taken: Iterable[str] = (), dns: DnsClient | None = None, mtu: int = 1500,
    ) -> None:
        self.root = Path(root)
        self.exec_root = Path(exec_root)
        self.store = NetworkStore(root)
        self._ops = ops
        self._firewall = firewall
        self._ip_forward = ip_forward
        self._mtu = mtu
        self._taken_static = list(taken)  # e.g. the default bridge's subnet
        self._managers: dict[str, NetworkManager] = {}
        self.dns = dns if dns is not None else DnsClient(self.exec_root / "dns" / "dns.sock")
        self._lock = asyncio.Lock()
        # one sync at a time, each computing what to serve when it runs: a sync that read the
        # endpoints earlier must not detach a namespace that a later start has just attached
        self._dns_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------------

    def _manager(self, rec: NetworkRecord) -> NetworkManager:
        nm = self._managers.get(rec.id)
        if nm is None:
            nm = NetworkManager(
                self.root, self.exec_root, rec.bridge, rec.subnet, nat=rec.masquerade and not rec.internal,
                mtu=self._mtu, ops=self._ops, firewall=self._firewall, ip_forward=self._ip_forward and not rec.internal,
                internal=rec.internal, close_ops=False,
            )
            self._managers[rec.id] = nm
        return nm

    async def start(self) -> None:
        self.store.load()
        for rec in self.store:
            await self._manager(rec).start()

    async def close(self) -> None:
        for nm in self._managers.values():
            await nm.close()
        await self.dns.close()

    def find(self, ref: str) -> NetworkRecord | None:
        return self.store.find(ref)

    def by_bridge(self, bridge: str) -> NetworkRecord | None:
        return next((r for r in self.store if r.bridge == bridge), None)

    # -- verbs ---------------------------------------------------------------------------------

    async def create(
        self, name: str, *, subnet: str = "", gateway: str = "", internal: bool = False,
        labels: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None,
    ) -> NetworkRecord:
        async with self._lock:
            if self.store.find(name) is not None and self.store.get(name).name == name:
                raise errdefs.AlreadyExists(f"network with name {name} already exists")
            taken = [ipaddress.IPv4Network(n, strict=False) for n in await self._ops.call("routed_networks")]
            taken += [ipaddress.IPv4Network(n) for n in self._taken_static]
            taken += [ipaddress.IPv4Network(r.subnet) for r in self.store]
            rec = new_record(name, subnet, gateway, internal=internal, labels=labels or {}, options=options or {},
                             taken=taken)
            if any(r.bridge == rec.bridge for r in self.store):
                raise errdefs.AlreadyExists(f"bridge {rec.bridge} is used by another network")
            nm = self._manager(rec)
            await nm.start()
            try:
                await nm.ensure_bridge()  # as docker: the bridge exists from `network create` on
                await asyncio.to_thread(self.store.put, rec)
            except BaseException:
                self._managers.pop(rec.id, None)
                await nm.close(remove_bridge=True)
                raise
            return rec

    async def remove(self, ref: str) -> NetworkRecord:
        async with self._lock:
            rec = self.store.get(ref)
            active = sorted(ep.name or cid[:12] for cid, ep in rec.endpoints.items() if ep.veth)
            if active:
                raise errdefs.FailedPrecondition(
                    f"network {rec.name} has active endpoints ({', '.join(active)}): stop or disconnect them first"
                )
            nm = self._manager(rec)
            await nm.close(remove_bridge=True)
            self._managers.pop(rec.id, None)
            nm.state_path.unlink(missing_ok=True)
            await asyncio.to_thread(self.store.delete, rec)
            if self.dns.connected:
                await self.dns.call("forget", network=rec.id)
            return rec

    async def prune(self) -> list[str]:
        removed = []
        for rec in list(self.store):
            if not rec.endpoints:
                await self.remove(rec.id)
                removed.append(rec.name)
        return removed

    def forget_containers(self, existing: Iterable[str]) -> None:
        """Drop endpoints of containers that were removed (connections of stopped ones stay)."""
        keep = set(existing)
        for rec in list(self.store):
            gone = [cid for cid, ep in rec.endpoints.items() if cid not in keep and not ep.veth]
            if gone:
                for cid in gone:
                    rec = rec.with_endpoint(cid, None)
                self.store.put(rec)

    # -- containers ----------------------------------------------------------------------------

    async def setup(
        self, container_id: str, network: str, *, name: str, hostname: str, aliases: Sequence[str],
        ports: Sequence[PortMapping], publish_all_exposed: Sequence[str], fixed_ip: str = "", mac: str = "",
        dns: Sequence[str] = (),
    ) -> tuple[NetworkSettings, NetworkRecord]:
        """The container's first network is this user network: netns, eth0, route, endpoint."""
        rec = self.store.get(network)
        nm = self._manager(rec)
        s = await nm.setup(container_id, "bridge", hostname=hostname, ports=ports, publish_all_exposed=publish_all_exposed,
                           fixed_ip=fixed_ip, mac=mac)
        try:
            async with self._lock:
                rec = self.store.get(rec.id)
                ep = Endpoint(name, s.ip_address, s.mac_address, tuple(aliases), s.veth_host, "eth0", s.sandbox_key,
                              fixed_ip, tuple(dns))
                rec = rec.with_endpoint(container_id, ep)
                await asyncio.to_thread(self.store.put, rec)
        except BaseException:
            await nm.teardown(container_id, s)
            raise
        return s, rec

    async def attach_pending(self, container_id: str, sandbox_key: str) -> None:
        """At start: the connections made while the container was stopped, as eth1, eth2, ..."""
        for rec in list(self.store):
            ep = rec.endpoints.get(container_id)
            if ep is not None and not ep.veth and ep.ifname != "eth0":
                await self._attach(rec, container_id, ep, sandbox_key)

    def _next_ifname(self, container_id: str) -> str:
        used = {r.endpoints[container_id].ifname for r in self.store if container_id in r.endpoints}
        return next(f"eth{i}" for i in range(1, 1000) if f"eth{i}" not in used)

    async def _attach(self, rec: NetworkRecord, container_id: str, ep: Endpoint, sandbox_key: str) -> None:
        ifname = self._next_ifname(container_id)
        s = await self._manager(rec).attach(container_id, sandbox_key, ifname, fixed_ip=ep.ipam_ip)
        async with self._lock:
            rec = self.store.get(rec.id).with_endpoint(container_id, Endpoint(
                ep.name, s.ip_address, s.mac_address, ep.aliases, s.veth_host, ifname, sandbox_key, ep.ipam_ip, ep.dns))
            await asyncio.to_thread(self.store.put, rec)

    async def teardown(self, container_id: str, settings: NetworkSettings) -> None:
        """At stop: the first network's endpoint goes; connections stay for the next start."""
        for rec in list(self.store):
            ep = rec.endpoints.get(container_id)
            if ep is None:
                continue
            nm = self._manager(rec)
            if rec.bridge == settings.bridge:
                await nm.teardown(container_id, settings)
                new: Endpoint | None = None
            else:
                await nm.release(container_id)  # the veth goes with the namespace
                new = Endpoint(ep.name, "", "", ep.aliases, ipam_ip=ep.ipam_ip, dns=ep.dns)
            async with self._lock:
                rec = self.store.get(rec.id).with_endpoint(container_id, new)
                await asyncio.to_thread(self.store.put, rec)
        await self.sync_dns()  # detaches the namespace when nothing of it is served any more

    async def connect(
        self, network: str, container_id: str, *, name: str, aliases: Sequence[str], sandbox_key: str,
        ip: str = "",
    ) -> None:
        """`network connect`: now when the container runs (sandbox_key), else at its next start.
        `ip` (--ip): a fixed address, checked now against the subnet and the other endpoints."""
        rec = self.store.get(network)
        if container_id in rec.endpoints:
            raise errdefs.AlreadyExists(f"container {name or container_id[:12]} is already connected to network {rec.name}")
        if ip:
            check_fixed_ip(rec, container_id, ip)
        ep = Endpoint(name, "", "", tuple(aliases), ipam_ip=ip)
        if sandbox_key:
            await self._attach(rec, container_id, ep, sandbox_key)
        else:
            async with self._lock:
                await asyncio.to_thread(self.store.put, self.store.get(rec.id).with_endpoint(container_id, ep))
        await self.sync_dns()

    async def disconnect(self, network: str, container_id: str, *, name: str) -> None:
        rec = self.store.get(network)
        ep = rec.endpoints.get(container_id)
        if ep is None:
            raise errdefs.NotFound(f"container {name or container_id[:12]} is not connected to network {rec.name}")
        if ep.ifname == "eth0" and ep.veth:
            raise errdefs.FailedPrecondition(
                f"container {name or container_id[:12]} runs with network {rec.name} as its first network: stop it first"
            )
        await self._manager(rec).detach(container_id, ep.veth)
        async with self._lock:
            await asyncio.to_thread(self.store.put, self.store.get(rec.id).with_endpoint(container_id, None))
        await self.sync_dns()

    async def rename(self, container_id: str, name: str) -> None:
        """`rename`: the container's endpoints carry its new name; the resolver is told at once
        (docker's sandbox Rename), so the old name stops answering and the new one starts."""
        changed = False
        async with self._lock:
            for rec in list(self.store):
                ep = rec.endpoints.get(container_id)
                if ep is None or ep.name == name:
                    continue
                rec = rec.with_endpoint(container_id, replace(ep, name=name))
                await asyncio.to_thread(self.store.put, rec)
                changed = True
        if changed:
            await self.sync_dns()

    # -- dns -----------------------------------------------------------------------------------

    async def sync_dns(self, *, full: bool = False) -> None:
        """Tell the resolver which namespaces it serves and every network's names. The whole
        state each time: a handful of networks, and a resolver that restarted needs all of it."""
        async with self._dns_lock:
            served: dict[str, list[str]] = {}
            upstreams: dict[str, list[str]] = {}
            for rec in self.store:
                for ep in rec.endpoints.values():
                    if ep.veth and ep.sandbox_key:
                        served.setdefault(ep.sandbox_key, []).append(rec.id)
                        if ep.dns:
                            upstreams.setdefault(ep.sandbox_key, list(ep.dns))
            if not served and not self.dns.connected:
                return  # no container on a user network: no resolver process at all
            for rec in self.store:
                await self.dns.call("names", network=rec.id, table=rec.dns_table())
            state = await self.dns.call("state")
            for netns in state["served"]:
                if netns not in served:
                    await self.dns.call("detach", netns=netns)
            have_up = state.get("upstreams", {})
            for netns, nets in served.items():
                ups = upstreams.get(netns, [])
                if state["served"].get(netns) != nets or have_up.get(netns, []) != ups or full:
                    await self.dns.call("attach", netns=netns, networks=nets, upstreams=ups)

    # -- recovery ------------------------------------------------------------------------------

    async def recover(self, live: Mapping[str, NetworkSettings]) -> None:
        """Endpoints of containers that are gone lose their address; bridges, rules and the
        resolver come back for the ones that live."""
        running = {s.sandbox_key for s in live.values() if s.sandbox_key}
        for rec in list(self.store):
            eps: dict[str, Endpoint] = {}
            mine: dict[str, NetworkSettings] = dict(live)
            for cid, ep in rec.endpoints.items():
                if ep.veth and ep.sandbox_key not in running:
                    if ep.ifname != "eth0":  # a connection: kept for the container's next start
                        eps[cid] = Endpoint(ep.name, "", "", ep.aliases, ipam_ip=ep.ipam_ip, dns=ep.dns)
                    continue
                eps[cid] = ep
                if ep.veth and ep.ifname != "eth0":
                    mine[cid] = NetworkSettings(mode="bridge", sandbox_key=ep.sandbox_key, ip_address=ep.ip,
                                                ip_prefix_len=ipaddress.IPv4Network(rec.subnet).prefixlen,
                                                bridge=rec.bridge, veth_host=ep.veth)
            if eps != rec.endpoints:
                rec = replace(rec, endpoints=eps)
                await asyncio.to_thread(self.store.put, rec)
            await self._manager(rec).recover(mine)
        await self.sync_dns(full=True)

    # -- views ---------------------------------------------------------------------------------

    def inspect(self, rec: NetworkRecord) -> dict[str, Any]:
        """docker's `network inspect` object."""
        prefix = ipaddress.IPv4Network(rec.subnet).prefixlen
        return {
            "Name": rec.name, "Id": rec.id, "Created": rfc3339(rec.created), "Scope": "local", "Driver": "bridge",
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": rec.subnet, "Gateway": rec.gateway}]},
            "Internal": rec.internal, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {
                cid: {"Name": ep.name, "EndpointID": hashlib.sha256(f"{rec.id}/{cid}".encode()).hexdigest(),
                      "MacAddress": ep.mac, "IPv4Address": f"{ep.ip}/{prefix}" if ep.ip else "", "IPv6Address": "",
                      "Aliases": list(ep.aliases)}
                for cid, ep in sorted(rec.endpoints.items()) if ep.veth
            },
            "Options": {"com.docker.network.bridge.name": rec.bridge, **rec.options},
            "Labels": dict(rec.labels),
        }
