"""docker's JSON shapes for containers: the list entry, and inspect completed with every key docker
answers (zero values where ctrd has nothing to say), so templates and clients find what they look for."""

from __future__ import annotations

import ipaddress
from typing import Any

from daemon.containers import view
from daemon.containers.record import Container
from daemon.network.networks import Endpoint, NetworkRecord
from daemon.network.usernets import builtin_id

UserEndpoint = tuple[NetworkRecord, Endpoint]

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}}, "NetworkMode": "bridge",
    "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "CgroupnsMode": "host",
    "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private",
    "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
    "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": None,
    "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0,
    "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False,
    "PidsLimit": None, "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0, "MaskedPaths": [], "ReadonlyPaths": [],
}
_CTRD_ONLY_HOST = ("NetworkAliases", "IPv4Address", "MacAddress")


def network_id(c: Container, name: str) -> str:
    return builtin_id(name) if name in ("bridge", "host", "none") else ""


def _endpoint(net_id: str, ip: str, prefix: int, gateway: str, mac: str, aliases: list[str],
              fixed: str) -> dict[str, Any]:
    return {
        "IPAMConfig": {"IPv4Address": fixed} if fixed else None, "Links": None, "Aliases": aliases or None,
        "NetworkID": net_id, "EndpointID": "", "Gateway": gateway, "IPAddress": ip, "IPPrefixLen": prefix,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": mac, "DriverOpts": None,
    }


def networks_view(c: Container, ids: dict[str, str], user: list[UserEndpoint] | None = None) -> dict[str, Any]:
    """NetworkSettings.Networks: the container's network mode, plus every user network it is on. On a
    user network the short id is among the aliases, as docker answers (its DNS resolves it here too;
    compose 1.29 reads it to know a created container is already on its network)."""
    mode = c.host_config.network_mode
    if mode.startswith("container:"):
        return {}
    out: dict[str, Any] = {}
    for rec, ep in user or ():
        prefix = ipaddress.IPv4Network(rec.subnet).prefixlen
        fixed = c.host_config.ip_address if mode in (rec.name, rec.id) else ""
        out[rec.name] = _endpoint(rec.id, ep.ip if ep.veth else "", prefix if ep.veth else 0,
                                  rec.gateway if ep.veth else "", ep.mac if ep.veth else "",
                                  [c.id[:12], *ep.aliases], fixed)
    if mode in out or any(ids.get(mode) == v["NetworkID"] for v in out.values()):
        return out
    n = c.network
    out[mode] = {
        "IPAMConfig": {"IPv4Address": c.host_config.ip_address} if c.host_config.ip_address else None,
        "Links": None, "Aliases": ([c.id[:12]] if mode not in ("bridge", "host", "none") else [])
        + list(c.host_config.network_aliases) or None,
        "NetworkID": ids.get(mode, ""), "EndpointID": "",
        "Gateway": n.gateway if n else "", "IPAddress": n.ip_address if n else "",
        "IPPrefixLen": n.ip_prefix_len if n else 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "MacAddress": n.mac_address if n else "", "DriverOpts": None,
    }
    return out


def list_entry(c: Container, ids: dict[str, str], user: list[UserEndpoint]) -> dict[str, Any]:
    ports = []
    for m in c.network.ports if c.network is not None else ():
        ports.append({"IP": m.host_ip or "0.0.0.0", "PrivatePort": m.container_port, "PublicPort": m.host_port,
                      "Type": m.protocol})
    return {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.config.image, "ImageID": c.image_id,
        "Command": view.command_line(c), "Created": int(c.created), "Ports": ports,
        "Labels": dict(c.config.labels), "State": c.status.value, "Status": view.status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.network_mode},
        "NetworkSettings": {"Networks": networks_view(c, ids, user)},
        "Mounts": view.mounts_view(c),
    }


def inspect(c: Container, doc: dict[str, Any], ids: dict[str, str], user: list[UserEndpoint]) -> dict[str, Any]:
    """manager.inspect's document completed to docker's key set."""
    out = dict(doc)
    for key, zero in (("MountLabel", ""), ("ProcessLabel", ""), ("AppArmorProfile", ""), ("ExecIDs", None)):
        out.setdefault(key, zero)
    host = {**HOST_CONFIG_DEFAULTS, **doc.get("HostConfig", {})}
    for key in _CTRD_ONLY_HOST:
        host.pop(key, None)
    if host.get("Dns") is None:
        host["Dns"] = []
    for key in ("Sysctls",):  # omitempty in docker
        if not host.get(key):
            host.pop(key, None)
    out["HostConfig"] = host
    cfg = dict(doc.get("Config", {}))
    zeros: tuple[tuple[str, Any], ...] = (
        ("Domainname", ""), ("AttachStdin", False), ("AttachStdout", False), ("AttachStderr", False),
        ("Tty", False), ("OpenStdin", False), ("StdinOnce", False), ("Volumes", None), ("OnBuild", None))
    for key, zero in zeros:
        cfg.setdefault(key, zero)
    if cfg.get("StopTimeout") is None:
        cfg.pop("StopTimeout", None)
    if cfg.get("StopSignal") in ("", "SIGTERM"):  # omitempty in docker; ctrd records the default it used
        cfg.pop("StopSignal", None)
    out["Config"] = cfg
    ns = dict(doc.get("NetworkSettings", {}))
    zeros = (("SandboxID", ""), ("HairpinMode", False), ("LinkLocalIPv6Address", ""), ("LinkLocalIPv6PrefixLen", 0),
             ("SecondaryIPAddresses", None), ("SecondaryIPv6Addresses", None), ("EndpointID", ""),
             ("GlobalIPv6Address", ""), ("GlobalIPv6PrefixLen", 0), ("IPv6Gateway", ""))
    for key, default in zeros:
        ns.setdefault(key, default)
    ns["Networks"] = networks_view(c, ids, user)
    out["NetworkSettings"] = ns
    return out
