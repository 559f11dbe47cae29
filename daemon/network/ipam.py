"""Address management for one bridge subnet, persisted under <root>/network/.

Single writer: the NetworkManager calls these methods under its asyncio.Lock, and every change is
on disk (atomic write) before the address is handed out, so a restarted daemon never hands out an
address twice. The lowest free address is used first: released addresses are reused, and since the
MAC is derived from the IP a reused address never meets a stale ARP entry.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.atomic import write_json_atomic
from daemon.network.addressing import gateway_of

STATE_VERSION = 1


class Ipam:
    def __init__(
        self, path: Path, bridge: str, subnet: ipaddress.IPv4Network, leases: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self.bridge = bridge
        self.subnet = subnet
        self.gateway = gateway_of(subnet)
        self._leases: dict[str, ipaddress.IPv4Address] = {}
        self._used: set[ipaddress.IPv4Address] = set()
        self.dirty = False  # a release not yet on disk
        for cid, ip in (leases or {}).items():
            self._take(cid, ipaddress.IPv4Address(ip))

    # -- persistence -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Ipam | None:
        """The state saved by a previous daemon, or None when there is none."""
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise errdefs.Internal(f"cannot read ipam state {path}: {e}")
        try:
            return cls(path, str(raw["bridge"]), ipaddress.IPv4Network(raw["subnet"]), raw.get("leases", {}))
        except (KeyError, ValueError, TypeError) as e:
            raise errdefs.Internal(f"corrupt ipam state {path}: {e}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "bridge": self.bridge,
            "subnet": str(self.subnet),
            "gateway": str(self.gateway),
            "leases": {cid: str(ip) for cid, ip in sorted(self._leases.items())},
        }

    def save(self) -> None:
        self.write(self.to_dict())
        self.dirty = False

    def write(self, snapshot: dict[str, Any]) -> None:
        """Write a to_dict() snapshot (thread-safe: touches no state of self)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, snapshot, mode=0o600)

    # -- leases ------------------------------------------------------------------------------

    @property
    def leases(self) -> dict[str, str]:
        return {cid: str(ip) for cid, ip in self._leases.items()}

    def lease_of(self, container_id: str) -> str | None:
        ip = self._leases.get(container_id)
        return None if ip is None else str(ip)

    def _take(self, cid: str, ip: ipaddress.IPv4Address) -> None:
        if ip not in self.subnet or ip in (self.subnet.network_address, self.subnet.broadcast_address, self.gateway):
            raise errdefs.Internal(f"lease {ip} of container {cid} is outside the usable range of {self.subnet}")
        if ip in self._used and self._leases.get(cid) != ip:
            raise errdefs.Internal(f"address {ip} is leased twice (container {cid})")
        self._leases[cid] = ip
        self._used.add(ip)

    def allocate(self, container_id: str, *, sync: bool = True, want: str = "") -> ipaddress.IPv4Address:
        """The container's address (its existing lease, `want`, or the lowest free one), persisted
        unless sync=False (then the caller must save before it hands the address out)."""
        have = self._leases.get(container_id)
        if have is not None:
            return have
        ip = self._check_wanted(want) if want else self._lowest_free()
        self._take(container_id, ip)
        if not sync:
            self.dirty = True
            return ip
        try:
            self.save()
        except BaseException:
            self._leases.pop(container_id, None)
            self._used.discard(ip)
            raise
        return ip

    def _lowest_free(self) -> ipaddress.IPv4Address:
        for n in range(int(self.gateway) + 1, int(self.subnet.broadcast_address)):
            ip = ipaddress.IPv4Address(n)
            if ip not in self._used:
                return ip
        raise errdefs.FailedPrecondition(f"no free address left in subnet {self.subnet} of bridge {self.bridge}")

    def _check_wanted(self, want: str) -> ipaddress.IPv4Address:
        """--ip: inside the subnet, not its network/broadcast/gateway address, not leased."""
        try:
            ip = ipaddress.IPv4Address(want)
        except ValueError:
            raise errdefs.InvalidArgument(f"ip_address: invalid IPv4 address {want!r}") from None
        if ip not in self.subnet:
            raise errdefs.InvalidArgument(f"ip_address: {ip} is outside the network's subnet {self.subnet}")
        if ip in (self.subnet.network_address, self.subnet.broadcast_address, self.gateway):
            what = "gateway" if ip == self.gateway else "network or broadcast"
            raise errdefs.InvalidArgument(f"ip_address: {ip} is the {what} address of subnet {self.subnet}")
        if ip in self._used:
            raise errdefs.AlreadyExists(f"ip_address: {ip} is already in use in subnet {self.subnet}")
        return ip

    def release(self, container_id: str, *, sync: bool = True) -> bool:
        """Forget the container's lease (no-op if it has none); True if there was one.

        sync=False leaves the file to the caller (the manager writes it off the event loop); a
        stale lease on disk only over-reserves, and recover() resets the leases after a restart."""
        ip = self._leases.pop(container_id, None)
        if ip is None:
            return False
        self._used.discard(ip)
        self.dirty = True
        if sync:
            self.save()
        return True

    def reset(self, live: Mapping[str, str]) -> list[str]:
        """Make the leases exactly `live` (container id → address); returns the dropped ids."""
        dropped = [cid for cid in self._leases if cid not in live]
        self._leases.clear()
        self._used.clear()
        for cid, ip in live.items():
            addr = ipaddress.IPv4Address(ip)
            if addr in self.subnet:
                self._take(cid, addr)
        self.save()
        return dropped
