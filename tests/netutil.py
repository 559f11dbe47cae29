"""Network helpers shared by the e2e tests."""

from __future__ import annotations

import ipaddress
import secrets


def routed_networks() -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes (from /proc/net/route), the default route left out."""
    routed = []
    with open("/proc/net/route") as f:
        for line in list(f)[1:]:
            parts = line.split()
            dst, mask = (ipaddress.IPv4Address(bytes.fromhex(x)[::-1]) for x in (parts[1], parts[7]))
            if int(mask):
                routed.append(ipaddress.IPv4Network(f"{dst}/{mask}", strict=False))
    return routed


def free_test_subnet() -> str:
    """A random 10.250.x.0/24 that nothing on the host routes yet."""
    routed = routed_networks()
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.250.{secrets.randbelow(256)}.0/24")
        if not any(net.overlaps(r) for r in routed):
            return str(net)
    raise RuntimeError("no free 10.250.x.0/24 for the test")
