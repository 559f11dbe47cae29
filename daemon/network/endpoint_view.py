"""`NetworkSettings.Networks` of a container's inspect: one entry per network it is on, with
docker's keys (Engine API 1.44+, the ones a v28 docker CLI reads), built from the network side's
records (the default bridge's settings, the user networks' endpoints)."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any

from daemon.network.networks import Endpoint, NetworkRecord
from daemon.network.settings import NetworkSettings

BUILTIN_MODES = ("bridge", "host", "none")


def builtin_id(name: str) -> str:
    """The stable id `network ls` shows for bridge/host/none."""
    return hashlib.sha256(f"ctrd-builtin-network:{name}".encode()).hexdigest()


def endpoint_id(network_id: str, container_id: str) -> str:
    return hashlib.sha256(f"{network_id}/{container_id}".encode()).hexdigest()


def entry(
    network_id: str, container_id: str, *, ip: str = "", prefixlen: int = 0, gateway: str = "", mac: str = "",
    aliases: Iterable[str] = (), dns_names: Iterable[str] | None = None, ipam_ip: str = "", live: bool = False,
) -> dict[str, Any]:
    """One network's entry, as docker's EndpointSettings (null where docker has null)."""
    al = list(aliases)
    dn = list(dns_names) if dns_names is not None else []
    return {
        "IPAMConfig": {"IPv4Address": ipam_ip} if ipam_ip else None,
        "Links": None,
        "Aliases": al or None,
        "MacAddress": mac if live else "",
        "DriverOpts": None,
        "NetworkID": network_id,
        "EndpointID": endpoint_id(network_id, container_id) if live else "",
        "Gateway": gateway if live else "",
        "IPAddress": ip if live else "",
        "IPPrefixLen": prefixlen if live else 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": dn if live and dn else None,
    }


def _user_entry(rec: NetworkRecord, container_id: str, ep: Endpoint) -> dict[str, Any]:
    live = bool(ep.veth)
    return entry(
        rec.id, container_id, ip=ep.ip, prefixlen=ipaddress.IPv4Network(rec.subnet).prefixlen, gateway=rec.gateway,
        mac=ep.mac, aliases=ep.aliases, dns_names=ep.names(container_id), ipam_ip=ep.ipam_ip, live=live,
    )


def container_networks(
    container_id: str, mode: str, settings: NetworkSettings | None, user: Iterable[NetworkRecord],
) -> dict[str, dict[str, Any]]:
    """Every network of the container: its first (`mode`) and those `network connect` added."""
    out: dict[str, dict[str, Any]] = {}
    live = settings is not None
    if mode in BUILTIN_MODES:
        s = settings or NetworkSettings(mode=mode)
        out[mode] = entry(builtin_id(mode), container_id, ip=s.ip_address, prefixlen=s.ip_prefix_len,
                          gateway=s.gateway, mac=s.mac_address, live=live)
    for rec in user:
        ep = rec.endpoints.get(container_id)
        if ep is not None:
            out[rec.name] = _user_entry(rec, container_id, ep)
        elif mode in (rec.name, rec.id):  # the first network of a container that never ran
            out[rec.name] = entry(rec.id, container_id)
    return out
