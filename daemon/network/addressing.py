"""Pure address arithmetic: the default subnet pick, the gateway, MACs derived from IPs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ctrd import errdefs

DEFAULT_POOL_START = ipaddress.IPv4Network("10.88.0.0/16")
DEFAULT_POOL_END = ipaddress.IPv4Address("10.255.255.255")


def parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(subnet, strict=False)
    except ValueError:
        raise errdefs.InvalidArgument(f"invalid subnet {subnet!r}: want an ipv4 cidr like 10.88.0.0/16")
    if net.prefixlen > 30:
        raise errdefs.InvalidArgument(f"subnet {subnet} is too small: the prefix must be /30 or shorter")
    return net


def gateway_of(net: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The bridge's address: the first usable address of the subnet (docker's choice)."""
    return net.network_address + 1


def pick_default_subnet(routed: Iterable[str]) -> ipaddress.IPv4Network:
    """The first /16 from 10.88.0.0 upwards that overlaps nothing routed on the host.

    `routed` are the host's route destinations and interface networks as CIDRs; the default
    route (0.0.0.0/0) overlaps everything and is ignored, as docker does."""
    taken = []
    for r in routed:
        try:
            n = ipaddress.ip_network(r, strict=False)
        except ValueError:
            continue
        if isinstance(n, ipaddress.IPv4Network) and n.prefixlen > 0:
            taken.append(n)
    cand = DEFAULT_POOL_START
    while cand.broadcast_address <= DEFAULT_POOL_END:
        if not any(cand.overlaps(t) for t in taken):
            return cand
        cand = ipaddress.IPv4Network((int(cand.network_address) + (1 << 16), 16))
    raise errdefs.FailedPrecondition("no free /16 left in 10.88.0.0-10.255.255.255 for the default bridge")


def mac_for(ip: str) -> str:
    """02:42 followed by the address's four bytes: locally administered, stable for an IP, so a
    reused address never leaves a stale ARP entry pointing at another MAC."""
    b = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)
