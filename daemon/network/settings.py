"""The records the network layer hands to the daemon (stored in config.v2.json, shown by inspect)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PortMapping:
    """One published port: host_ip:host_port/protocol → container_port (docker's -p)."""

    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    container_port: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "host_ip": self.host_ip,
            "host_port": self.host_port,
            "container_port": self.container_port,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PortMapping:
        return cls(
            protocol=str(d.get("protocol", "tcp")),
            host_ip=str(d.get("host_ip", "")),
            host_port=int(d.get("host_port", 0)),
            container_port=int(d.get("container_port", 0)),
        )


@dataclass(frozen=True, slots=True)
class PortForward:
    """One port the shim relays: host_ip:host_port/protocol → container_ip:container_port."""

    protocol: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """A container's network as built by NetworkManager.setup (enough to tear it down again)."""

    mode: str
    sandbox_key: str = ""  # netns file path; "" for host network
    ip_address: str = ""
    ip_prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""
    bridge: str = ""
    veth_host: str = ""
    ports: list[PortMapping] = field(default_factory=list)

    @property
    def owns_netns(self) -> bool:
        """False for host and container:<x> modes: the netns file is not ours to remove."""
        return self.mode in ("none", "bridge") and bool(self.sandbox_key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "sandbox_key": self.sandbox_key,
            "ip_address": self.ip_address,
            "ip_prefix_len": self.ip_prefix_len,
            "gateway": self.gateway,
            "mac_address": self.mac_address,
            "bridge": self.bridge,
            "veth_host": self.veth_host,
            "ports": [p.to_dict() for p in self.ports],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkSettings:
        return cls(
            mode=str(d.get("mode", "none")),
            sandbox_key=str(d.get("sandbox_key", "")),
            ip_address=str(d.get("ip_address", "")),
            ip_prefix_len=int(d.get("ip_prefix_len", 0)),
            gateway=str(d.get("gateway", "")),
            mac_address=str(d.get("mac_address", "")),
            bridge=str(d.get("bridge", "")),
            veth_host=str(d.get("veth_host", "")),
            ports=[PortMapping.from_dict(p) for p in d.get("ports", [])],
        )
