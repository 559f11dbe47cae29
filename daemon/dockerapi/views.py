"""docker's JSON shapes for containers: the list entry, and inspect completed with every key docker
answers (zero values where ctrd has nothing to say), so templates and clients find what they look for."""

from __future__ import annotations

from typing import Any

from daemon.containers import view
from daemon.containers.record import Container

BUILTIN = ("bridge", "host", "none")

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


def shape_networks(cid: str, nets: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    """The domain's NetworkSettings.Networks as the asked version has it (no DNSNames before 1.44).
    On user networks the short id leads the Aliases, as docker answered before 1.45: compose 1.29
    negotiates the newest version and still reads it there to know that a container it just
    created is on its network (without it, it disconnects and reconnects a container that never
    ran, which ctrd refuses)."""
    out: dict[str, Any] = {}
    for name, ep in nets.items():
        ep = dict(ep)
        if version < (1, 44):
            ep.pop("DNSNames", None)
        if name not in BUILTIN:
            aliases = list(ep.get("Aliases") or [])
            ep["Aliases"] = ([cid[:12]] if cid[:12] not in aliases else []) + aliases
        out[name] = ep
    return out


def list_entry(c: Container, networks: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    ports = []
    for m in c.network.ports if c.network is not None else ():
        ports.append({"IP": m.host_ip or "0.0.0.0", "PrivatePort": m.container_port, "PublicPort": m.host_port,
                      "Type": m.protocol})
    return {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.config.image, "ImageID": c.image_id,
        "Command": view.command_line(c), "Created": int(c.created), "Ports": ports,
        "Labels": dict(c.config.labels), "State": c.status.value, "Status": view.status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.network_mode},
        "NetworkSettings": {"Networks": shape_networks(c.id, networks, version)},
        "Mounts": view.mounts_view(c),
    }


def inspect(c: Container, doc: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
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
    ns["Networks"] = shape_networks(c.id, ns.get("Networks") or {}, version)
    out["NetworkSettings"] = ns
    return out
