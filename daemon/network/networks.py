"""User-defined networks: their records, persisted one file each under <root>/network/networks/.

A record is what `network create` was given plus what the daemon chose (id, bridge device,
subnet), and the endpoints on it (container id → name, aliases, address): the embedded DNS
answers from these, and a restarted daemon recovers them from here. Addresses themselves are
leased by the network's own IPAM (<root>/network/<bridge>.json), like the default bridge's.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.atomic import write_json_atomic
from daemon.network.addressing import gateway_of, parse_subnet

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# names that mean something else in --network (docker refuses them too)
RESERVED = ("bridge", "host", "none", "default")
USER_POOL = ipaddress.IPv4Network("10.89.0.0/16")  # user networks get /24s from here by default
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
KNOWN_OPTIONS = (OPT_BRIDGE_NAME, OPT_MASQUERADE)


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # the container's name, without docker's leading "/"
    ip: str
    mac: str = ""
    aliases: tuple[str, ...] = ()
    veth: str = ""  # host side; "" while the container is not running
    ifname: str = ""  # inside the container: eth0 for its first network
    sandbox_key: str = ""
    ipam_ip: str = ""  # the address asked for (--ip on run or connect): docker's IPAMConfig.IPv4Address
    dns: tuple[str, ...] = ()  # the container's --dns servers: where 127.0.0.11 forwards other names

    def names(self, container_id: str) -> list[str]:
        """What resolves to this endpoint: docker's name, short id and aliases."""
        return [n for n in (self.name, container_id[:12], *self.aliases) if n]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ip": self.ip, "mac": self.mac, "aliases": list(self.aliases), "veth": self.veth,
                "ifname": self.ifname, "sandbox_key": self.sandbox_key, "ipam_ip": self.ipam_ip, "dns": list(self.dns)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Endpoint:
        return cls(str(d.get("name", "")), str(d.get("ip", "")), str(d.get("mac", "")),
                   tuple(str(a) for a in d.get("aliases") or ()), str(d.get("veth", "")), str(d.get("ifname", "")),
                   str(d.get("sandbox_key", "")), str(d.get("ipam_ip", "")), tuple(str(s) for s in d.get("dns") or ()))


@dataclass(frozen=True, slots=True)
class NetworkRecord:
    id: str
    name: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool = False
    masquerade: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "bridge": self.bridge, "subnet": self.subnet, "gateway": self.gateway,
            "internal": self.internal, "masquerade": self.masquerade, "labels": dict(self.labels),
            "options": dict(self.options), "created": self.created,
            "endpoints": {cid: ep.to_dict() for cid, ep in sorted(self.endpoints.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetworkRecord:
        return cls(
            id=str(d["id"]), name=str(d["name"]), bridge=str(d["bridge"]), subnet=str(d["subnet"]),
            gateway=str(d["gateway"]), internal=bool(d.get("internal", False)),
            masquerade=bool(d.get("masquerade", True)), labels=dict(d.get("labels") or {}),
            options=dict(d.get("options") or {}), created=float(d.get("created", 0.0)),
            endpoints={str(k): Endpoint.from_dict(v) for k, v in (d.get("endpoints") or {}).items()},
        )

    def with_endpoint(self, container_id: str, ep: Endpoint | None) -> NetworkRecord:
        eps = dict(self.endpoints)
        if ep is None:
            eps.pop(container_id, None)
        else:
            eps[container_id] = ep
        return replace(self, endpoints=eps)

    def dns_table(self) -> dict[str, list[str]]:
        """name (lower-case) → addresses, for the embedded resolver."""
        table: dict[str, list[str]] = {}
        for cid, ep in sorted(self.endpoints.items()):
            if not ep.ip or not ep.veth:
                continue  # not running: docker's resolver does not answer for it either
            for n in ep.names(cid):
                table.setdefault(n.lower(), []).append(ep.ip)
        return table


def validate_name(name: str) -> str:
    if not name or not NAME_RE.match(name) or len(name) > 128:
        raise errdefs.InvalidArgument(f"invalid network name {name!r}: want [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    if name in RESERVED:
        raise errdefs.InvalidArgument(f"network name {name} is reserved (bridge, host, none, default)")
    return name


def plan_addresses(subnet: str, gateway: str, taken: Iterable[ipaddress.IPv4Network]) -> tuple[str, str]:
    """(subnet, gateway) for a new network: the given subnet, or the first free /24 of 10.89.0.0/16
    that overlaps nothing in `taken` (routed networks and the other ctrd networks)."""
    taken = list(taken)
    if subnet:
        net = parse_subnet(subnet)
        clash = next((t for t in taken if net.overlaps(t)), None)
        if clash is not None:
            raise errdefs.AlreadyExists(f"subnet {net} overlaps {clash}, which is already in use")
    elif gateway:
        raise errdefs.InvalidArgument("gateway: needs --subnet")
    else:
        free = next((n for n in USER_POOL.subnets(new_prefix=24) if not any(n.overlaps(t) for t in taken)), None)
        if free is None:
            raise errdefs.FailedPrecondition(f"no free /24 left in {USER_POOL} for a new network")
        net = free
    gw = gateway_of(net)
    if gateway and gateway != str(gw):
        # the IPAM leases from the address after the gateway: only the first address fits it
        raise errdefs.InvalidArgument(f"gateway {gateway}: only the subnet's first address ({gw}) is supported")
    return str(net), str(gw)


def new_record(
    name: str, subnet: str, gateway: str, *, internal: bool, labels: Mapping[str, str], options: Mapping[str, str],
    taken: Iterable[ipaddress.IPv4Network],
) -> NetworkRecord:
    validate_name(name)
    for key in options:
        if key not in KNOWN_OPTIONS:
            raise errdefs.InvalidArgument(f"option {key!r} is not supported (known: {', '.join(KNOWN_OPTIONS)})")
    net, gw = plan_addresses(subnet, gateway, taken)
    nid = secrets.token_hex(32)
    bridge = options.get(OPT_BRIDGE_NAME) or f"br-{nid[:12]}"
    if not 0 < len(bridge) <= 15 or "/" in bridge or " " in bridge:
        raise errdefs.InvalidArgument(f"option {OPT_BRIDGE_NAME}: invalid bridge name {bridge!r}")
    masq = options.get(OPT_MASQUERADE, "true").lower()
    if masq not in ("true", "false"):
        raise errdefs.InvalidArgument(f"option {OPT_MASQUERADE}: want true or false, not {masq!r}")
    return NetworkRecord(nid, name, bridge, net, gw, internal=internal, masquerade=masq == "true",
                         labels=dict(labels), options=dict(options), created=time.time())


class NetworkStore:
    """The records in memory, each change written to disk (atomic) before it is visible."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / "network" / "networks"
        self._by_id: dict[str, NetworkRecord] = {}

    def load(self) -> None:
        self._by_id.clear()
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.glob("*.json")):
            try:
                rec = NetworkRecord.from_dict(json.loads(p.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise errdefs.Internal(f"corrupt network record {p}: {e}")
            self._by_id[rec.id] = rec

    def __iter__(self) -> Iterator[NetworkRecord]:
        return iter(sorted(self._by_id.values(), key=lambda r: (r.created, r.name)))

    def put(self, rec: NetworkRecord) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json_atomic(self.dir / f"{rec.id}.json", rec.to_dict(), mode=0o600)
        self._by_id[rec.id] = rec

    def delete(self, rec: NetworkRecord) -> None:
        (self.dir / f"{rec.id}.json").unlink(missing_ok=True)
        self._by_id.pop(rec.id, None)

    def find(self, ref: str) -> NetworkRecord | None:
        """By name, full id, or unique id prefix (docker's order)."""
        for rec in self._by_id.values():
            if rec.name == ref:
                return rec
        if ref in self._by_id:
            return self._by_id[ref]
        hits = [r for r in self._by_id.values() if ref and r.id.startswith(ref)]
        if len(hits) > 1:
            raise errdefs.InvalidArgument(f"network {ref} is ambiguous ({len(hits)} matches)")
        return hits[0] if hits else None

    def get(self, ref: str) -> NetworkRecord:
        rec = self.find(ref)
        if rec is None:
            raise errdefs.NotFound(f"network {ref} not found")
        return rec
