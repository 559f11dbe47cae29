"""Validation of the per-container network options --dns-search, --ip and --mac-address (the
subnet and "already taken" checks of --ip happen where the network's addresses live, at start)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from ctrd.errdefs import InvalidArgument

DOMAIN_RE = re.compile(r"^[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)*\.?$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
BUILTIN = ("bridge", "none", "host")


def _own_netns(network_mode: str) -> bool:
    return network_mode not in ("none", "host") and not network_mode.startswith("container:")


def dns_search(values: Iterable[str]) -> tuple[str, ...]:
    """Search domains; "." alone means "no search line" (as docker's)."""
    out: list[str] = []
    for v in values:
        if v != "." and (len(v) > 253 or not DOMAIN_RE.match(v)):
            raise InvalidArgument(f"dns_search: invalid search domain {v!r}")
        out.append(v)
    return tuple(out)


def fixed_ip(value: str, network_mode: str) -> str:
    if not value:
        return ""
    if network_mode in BUILTIN or network_mode.startswith("container:"):
        raise InvalidArgument("ip_address: user specified IP address is supported on user defined networks only")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise InvalidArgument(f"ip_address: invalid IPv4 address {value!r}") from None


def mac_address(value: str, network_mode: str) -> str:
    if not value:
        return ""
    mac = value.lower().replace("-", ":")
    if not MAC_RE.match(mac):
        raise InvalidArgument(f"mac_address: invalid MAC address {value!r} (want six hex octets, 02:42:ac:11:00:02)")
    if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
        raise InvalidArgument(f"mac_address: {value!r} is a multicast or zero address, not one for an interface")
    if not _own_netns(network_mode):
        raise InvalidArgument(f"mac_address: conflicting options: mac-address and the {network_mode} network mode")
    return mac
