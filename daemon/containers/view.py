"""What inspect and ps show: docker's keys, built from the record and the layer store."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ctrd.errdefs import InvalidArgument
from ctrd.humanize import human_duration
from ctrd.timefmt import rfc3339
from daemon.containers import record
from daemon.containers.record import Container
from daemon.containers.state import Status
from daemon.network.settings import NetworkSettings


def mounts_view(c: Container) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in c.host_config.mounts:
        if m.type == "bind":
            out.append({"Type": "bind", "Source": m.source, "Destination": m.target, "Mode": "ro" if m.read_only else "",
                        "RW": not m.read_only, "Propagation": "rprivate"})
        else:
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.target, "Mode": m.options,
                        "RW": not m.read_only, "Propagation": ""})
    return out


def ports_view(c: Container) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed/published port, with its host bindings (null if none)."""
    ports: dict[str, Any] = {}
    for key in c.config.exposed_ports:
        ports[key] = None
    for p in c.host_config.port_bindings:
        ports.setdefault(record.port_key(p), None)
    for m in c.network.ports if c.network is not None else ():
        key = f"{m.container_port}/{m.protocol}"
        entry = {"HostIp": m.host_ip or "0.0.0.0", "HostPort": str(m.host_port)}
        if ports.get(key) is None:
            ports[key] = []
        ports[key].append(entry)
    return ports


def network_view(c: Container, networks: Mapping[str, Any] | None = None) -> dict[str, Any]:
    n = c.network if c.network is not None else NetworkSettings(mode="")
    return {
        "SandboxKey": n.sandbox_key,
        "IPAddress": n.ip_address,
        "IPPrefixLen": n.ip_prefix_len,
        "Gateway": n.gateway,
        "MacAddress": n.mac_address,
        "Bridge": n.bridge,
        "Ports": ports_view(c),
        "Networks": dict(networks or {}),
    }


def inspect(
    c: Container, graph_data: Mapping[str, str], container_dir: str, networks: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    host = record.host_config_to_json(c.host_config)
    host.pop("Mounts", None)
    return {
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.path,
        "Args": list(c.args),
        "State": c.state.to_json(),
        "Image": c.image_id,
        "ResolvConfPath": f"{container_dir}/resolv.conf",
        "HostnamePath": f"{container_dir}/hostname",
        "HostsPath": f"{container_dir}/hosts",
        "LogPath": c.log_path,
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "GraphDriver": {"Name": "overlay2", "Data": dict(graph_data)},
        "Mounts": mounts_view(c),
        "Config": record.config_to_json(c.config),
        "HostConfig": host,
        "NetworkSettings": network_view(c, networks),
    }


def command_line(c: Container) -> str:
    return " ".join([c.path, *c.args])


def status_text(c: Container, now: float | None = None) -> str:
    now = time.time() if now is None else now
    s = c.state
    if s.status is Status.RUNNING:
        return f"Up {human_duration(now - s.started_at)}"
    if s.status is Status.PAUSED:
        return f"Up {human_duration(now - s.started_at)} (Paused)"
    if s.status is Status.RESTARTING:
        return f"Restarting ({s.exit_code}) {human_duration(now - s.finished_at)} ago"
    if s.status is Status.EXITED:
        if not s.finished_at:
            return "Created"
        return f"Exited ({s.exit_code}) {human_duration(now - s.finished_at)} ago"
    if s.status is Status.CREATED:
        return "Created"
    if s.status is Status.REMOVING:
        return "Removal In Progress"
    return "Dead"


LIST_FILTERS = frozenset({"name", "id", "status", "label", "ancestor"})
STATUSES = frozenset(s.value for s in Status)


def check_filters(filters: Mapping[str, str]) -> None:
    for key, value in filters.items():
        if key not in LIST_FILTERS:
            raise InvalidArgument(f"filters: invalid filter {key!r} ({', '.join(sorted(LIST_FILTERS))})")
        if key == "status" and value not in STATUSES:
            raise InvalidArgument(f"filters: invalid status {value!r} ({', '.join(sorted(STATUSES))})")


def matches(c: Container, filters: Mapping[str, str]) -> bool:
    for key, value in filters.items():
        if key == "name" and value.lstrip("/") not in c.name:
            return False
        if key == "id" and not c.id.startswith(value):
            return False
        if key == "status" and c.status.value != value:
            return False
        if key == "label":
            k, sep, v = value.partition("=")
            labels = dict(c.config.labels)
            if k not in labels or (sep and labels[k] != v):
                return False
        if key == "ancestor" and value not in (c.config.image, c.image_id):
            return False
    return True
