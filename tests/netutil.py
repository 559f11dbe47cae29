"""Network helpers shared by the e2e tests."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from daemon.network import syscalls


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


@contextmanager
def docker_firewall_netns(*, forward_drop: bool = True) -> Iterator[None]:
    """Run the body (and every process it starts) in a fresh network namespace with the firewall
    state dockerd leaves on a host: iptables FORWARD policy DROP and br_netfilter on
    (`net.bridge.bridge-nf-call-iptables=1`), so bridged frames go through FORWARD and are dropped
    unless a rule accepts them. A namespace of its own because other engineers' daemons share this
    host's: their bridges must not lose traffic to our test. It goes when its last process does.
    Forwarding starts off in it, as on a fresh host: a new namespace inherits the host's IPv4
    settings, and a host where dockerd (or any engine) runs has `net.ipv4.ip_forward=1`, with
    which dockerd inside would leave the FORWARD policy alone and ctrd's switch-on go unseen.

    Only the calling thread moves (setns is per thread); it is moved back at the end."""
    host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            Path("/proc/sys/net/ipv4/ip_forward").write_text("0\n")  # this namespace's own
            if forward_drop:  # else: a real dockerd started inside sets it
                subprocess.run(["iptables", "-w", "-P", "FORWARD", "DROP"], check=True)
            Path("/proc/sys/net/bridge/bridge-nf-call-iptables").write_text("1\n")
            yield
        finally:
            syscalls.setns(host, syscalls.CLONE_NEWNET)
    finally:
        os.close(host)


def iptables_rules(table: str = "filter") -> str:
    """`iptables -S` of the calling thread's network namespace."""
    return subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True, check=True).stdout
