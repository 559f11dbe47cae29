"""What inspect and ps show: docker's keys, built from the record and the layer store."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ctrd.errdefs import InvalidArgument
from ctrd.humanize import human_duration
from ctrd.timefmt import rfc3339
from daemon.containers import healthcheck, mountview, record
from daemon.containers.record import Container
from daemon.containers.state import Status
from daemon.network.settings import NetworkSettings


def mounts_view(c: Container) -> list[dict[str, Any]]:
    return mountview.mount_points(c)


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
    host.pop("Mounts", None)  # the record's own list; docker's fields follow
    host.update(mountview.host_fields(c))
    config = record.config_to_json(c.config)
    config["Volumes"] = mountview.config_volumes(c)
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
        "Config": config,
        "HostConfig": host,
        "NetworkSettings": network_view(c, networks),
    }


def mount_names(c: Container) -> list[str]:
    """ps's MOUNTS as docker's: each of inspect's Mounts by its Name (a volume) or its Source
    (a bind; "" for a --mount tmpfs; --tmpfs mounts are not listed)."""
    return [str(p.get("Name") or p["Source"]) for p in mounts_view(c)]


def local_volume_count(c: Container) -> int:
    """ps's LOCAL VOLUMES and df -v's: the mounts of volumes with the local driver."""
    return sum(p.get("Driver") == "local" for p in mounts_view(c))


def network_names(c: Container) -> list[str]:
    mode = c.host_config.network_mode
    return [] if mode.startswith("container:") else [mode]


def command_line(c: Container) -> str:
    return " ".join([c.path, *c.args])


def status_text(c: Container, now: float | None = None) -> str:
    now = time.time() if now is None else now
    s = c.state
    if s.status is Status.RUNNING:
        return f"Up {human_duration(now - s.started_at)}{healthcheck.suffix(s.health)}"
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


LIST_FILTERS = frozenset({"name", "id", "status", "label", "ancestor", "network", "health", "exited", "before",
                          "since", "volume"})
STATUSES = frozenset(s.value for s in Status)


def check_filters(filters: Mapping[str, str]) -> None:
    for key, value in filters.items():
        if key not in LIST_FILTERS:
            raise InvalidArgument(f"filters: invalid filter {key!r} ({', '.join(sorted(LIST_FILTERS))})")
        for v in _values(value):
            if key == "status" and v not in STATUSES:
                raise InvalidArgument(f"filters: invalid status {v!r} ({', '.join(sorted(STATUSES))})")
            if key == "health" and v not in healthcheck.STATUSES:
                raise InvalidArgument(f"filters: invalid health {v!r} ({', '.join(healthcheck.STATUSES)})")
            if key == "exited" and not v.lstrip("-").isdigit():
                raise InvalidArgument(f"filters: invalid exited code {v!r} (an integer)")


def _values(value: str) -> list[str]:
    """A filter given more than once arrives as its values joined by newlines: any may match."""
    return value.split("\n")


def _health(c: Container) -> str:
    return c.state.health.status if c.state.health is not None else healthcheck.NONE


def _one(c: Container, key: str, value: str, ref: Callable[[str], Container | None]) -> bool:
    if key == "name":
        return value.lstrip("/") in c.name
    if key == "id":
        return c.id.startswith(value)
    if key == "status":
        return c.status.value == value
    if key == "label":
        k, sep, v = value.partition("=")
        labels = dict(c.config.labels)
        return k in labels and (not sep or labels[k] == v)
    if key == "ancestor":
        return _ancestor(c, value)
    if key == "network":
        return value == c.host_config.network_mode
    if key == "health":
        return _health(c) == value
    if key == "exited":
        return c.status is Status.EXITED and c.state.finished_at > 0 and c.state.exit_code == int(value)
    if key in ("before", "since"):
        other = ref(value)
        if other is None:
            return False
        return c.created < other.created if key == "before" else c.created > other.created
    if key == "volume":  # docker's: a mount's Name (Source when it has none) or Destination
        return any(value in (p.get("Name") or p["Source"], p["Destination"]) for p in mounts_view(c))
    return True


def _untagged(ref: str) -> str:
    name, sep, tag = ref.rpartition(":")
    return name if sep and "/" not in tag else ref


def _ancestor(c: Container, value: str) -> bool:
    """docker's: the image's name (with or without its tag), its id or a prefix of the id."""
    image = c.config.image.partition("@")[0]
    if value in (c.config.image, c.image_id) or _untagged(image) == value:
        return True
    short = value.removeprefix("sha256:")
    return len(short) >= 4 and c.image_id.removeprefix("sha256:").startswith(short)


def matches(c: Container, filters: Mapping[str, str], ref: Callable[[str], Container | None] = lambda _: None) -> bool:
    """docker's rules: every filter key must match; within one key, any of its values."""
    return all(any(_one(c, key, v, ref) for v in _values(value)) for key, value in filters.items())
