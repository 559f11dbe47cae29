"""Published-port planning in the daemon: validate -p/-P, pick host ports for port 0, and turn the
result into the shim's PortForward messages (the shim's relays do the forwarding)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

from ctrd import errdefs
from daemon.network.settings import PortMapping

PortPicker = Callable[[str, str], int]  # (protocol, host_ip) -> a free port


def pick_free_port(protocol: str, host_ip: str) -> int:
    """A port the kernel considers free right now on host_ip (the shim binds it for real)."""
    fam = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(fam, kind) as s:
        s.bind((host_ip, 0))
        return int(s.getsockname()[1])


def parse_exposed(spec: str) -> tuple[str, int]:
    """'80', '80/tcp', '53/udp' → (protocol, port)."""
    port_s, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    try:
        port = int(port_s)
    except ValueError:
        port = 0
    if proto not in ("tcp", "udp") or not 0 < port < 65536:
        raise errdefs.InvalidArgument(f"invalid exposed port {spec!r}")
    return proto, port


def resolve_ports(
    ports: Sequence[PortMapping], publish_all_exposed: Sequence[str] = (), *, picker: PortPicker = pick_free_port
) -> list[PortMapping]:
    """The final mappings: host_ip '' becomes 0.0.0.0, host port 0 becomes a free port, and every
    exposed port not already published gets one (docker's -P)."""
    out: list[PortMapping] = []
    seen: set[tuple[str, str, int]] = set()
    for pm in ports:
        proto = (pm.protocol or "tcp").lower()
        if proto not in ("tcp", "udp"):
            raise errdefs.InvalidArgument(f"invalid protocol {pm.protocol!r} for published port {pm.container_port}")
        if not 0 < pm.container_port < 65536:
            raise errdefs.InvalidArgument(f"invalid container port {pm.container_port}")
        if not 0 <= pm.host_port < 65536:
            raise errdefs.InvalidArgument(f"invalid host port {pm.host_port}")
        host_ip = pm.host_ip or "0.0.0.0"
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise errdefs.InvalidArgument(f"invalid host ip {pm.host_ip!r} for published port {pm.container_port}")
        host_port = pm.host_port or picker(proto, host_ip)
        key = (proto, host_ip, host_port)
        if key in seen:
            raise errdefs.InvalidArgument(f"host port {host_ip}:{host_port}/{proto} is published twice")
        seen.add(key)
        out.append(PortMapping(proto, host_ip, host_port, pm.container_port))
    published = {(p.protocol, p.container_port) for p in out}
    for spec in publish_all_exposed:
        proto, cport = parse_exposed(spec)
        if (proto, cport) in published:
            continue
        published.add((proto, cport))
        out.append(PortMapping(proto, "0.0.0.0", picker(proto, "0.0.0.0"), cport))
    return out

