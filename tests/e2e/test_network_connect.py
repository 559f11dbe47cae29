"""`network connect --ip/--alias`, `--dns` on a user network (kept 127.0.0.11, forwarded to the
--dns servers, as docker's embedded resolver does) and inspect's `NetworkSettings.Networks` with
docker's keys (root). The "upstream" DNS server lives in a namespace the test makes, linked to the
daemon's namespace (itself the test's own) by a veth; nothing is queried beyond it."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ctrd import errdefs
from ctrd.v1 import network_pb2 as npb
from tests.daemon_fixtures import DaemonProc
from tests.dockerd_env import Docker, own_bridge, private_dockerd
from tests.e2e.test_network_user import Nets, ctrd_netns, resolves, sh  # noqa: F401
from tests.e2e.test_runtime_hooks_docker import _image
from tests.netutil import free_test_subnet

pytestmark = pytest.mark.root

HOST_SIDE, UPSTREAM = "10.251.1.1", "10.251.1.2"
FAKE_DNS = """
import socket
from dnslib import DNSRecord, RR, QTYPE
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    q = DNSRecord.parse(data)
    r = q.reply()
    name = str(q.q.qname).rstrip(".")
    if name == "outside.test" and q.q.qtype == QTYPE.A:
        r.add_answer(*RR.fromZone("outside.test. 60 A 192.0.2.77"))
    s.sendto(r.pack(), peer)
"""


def ip(*args: str, pid: int = 0) -> None:
    prefix = ["nsenter", "-t", str(pid), "-n"] if pid else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)


@contextmanager
def fake_upstream_dns() -> Iterator[str]:
    """A DNS server at UPSTREAM:53 in a namespace of its own; it knows only outside.test."""
    server = subprocess.Popen(["unshare", "-n", sys.executable, "-c", FAKE_DNS], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        ip("link", "add", "ctrddns0", "type", "veth", "peer", "name", "dns0")
        ip("link", "set", "dns0", "netns", str(server.pid))
        ip("addr", "add", f"{HOST_SIDE}/30", "dev", "ctrddns0")
        ip("link", "set", "ctrddns0", "up")
        ip("link", "set", "lo", "up", pid=server.pid)
        ip("addr", "add", f"{UPSTREAM}/30", "dev", "dns0", pid=server.pid)
        ip("link", "set", "dns0", "up", pid=server.pid)
        yield UPSTREAM
    finally:
        server.kill()  # our own child, by its pid; the veth pair goes with its namespace
        server.wait()


def addr_on(d: DaemonProc, ref: str, ifname: str) -> str:
    rc, out = sh(d, ref, "ip", "-4", "-o", "addr", "show", "dev", ifname)
    assert rc == 0, out
    return out.split()[3].split("/")[0]


def test_connect_with_ip_and_alias_running_and_stopped(ctrd_netns: DaemonProc) -> None:  # noqa: F811
    d, n = ctrd_netns, Nets(ctrd_netns)
    subnet = ipaddress.IPv4Network(free_test_subnet())
    n.create("fixed", subnet=str(subnet))
    want = str(subnet.network_address + 77)
    peer = d.c.run("busybox", ["sleep", "300"], name="peer", network_mode="fixed")
    box = d.c.run("busybox", ["sleep", "300"], name="box")  # on the default bridge
    n.call("Connect", npb.NetworkConnectRequest(network="fixed", container="box", aliases=["side"], ip=want))
    assert addr_on(d, box, "eth1") == want
    entry = d.c.inspect(box)["NetworkSettings"]["Networks"]["fixed"]
    assert entry["IPAddress"] == want and entry["IPAMConfig"] == {"IPv4Address": want}
    assert entry["Aliases"] == ["side"] and set(entry["DNSNames"]) == {"box", box[:12], "side"}
    assert resolves(d, peer, "side") == want and resolves(d, peer, "box") == want

    # bad addresses: one line naming the field, nothing connected
    bad_ips: list[tuple[str, type[errdefs.CtrdError]]] = [
        (str(subnet.network_address + 1), errdefs.InvalidArgument),  # the gateway
        ("10.0.0.300", errdefs.InvalidArgument),
        ("192.0.2.5", errdefs.InvalidArgument),  # outside the subnet
        (want, errdefs.AlreadyExists),
    ]
    for i, (bad, kind) in enumerate(bad_ips):
        other = d.c.create("busybox", ["sleep", "300"], name=f"bad{i}")
        with pytest.raises(kind, match=r"^ip: "):
            n.call("Connect", npb.NetworkConnectRequest(network="fixed", container=other, ip=bad))
        assert other not in n.inspect("fixed")["Containers"]
        assert "fixed" not in d.c.inspect(other)["NetworkSettings"]["Networks"]
        d.c.remove(other)

    # stopped: the address is kept for the next start
    d.c.stop(box, timeout=1)
    stopped = d.c.inspect(box)["NetworkSettings"]["Networks"]["fixed"]
    assert stopped["IPAddress"] == "" and stopped["IPAMConfig"] == {"IPv4Address": want}
    d.c.start(box)
    assert addr_on(d, box, "eth1") == want
    for ref in (box, peer):
        d.c.stop(ref, timeout=1)
        d.c.remove(ref)
    n.call("Remove", npb.NetworkRemoveRequest(id="fixed"))


def test_dns_on_a_user_network_keeps_the_embedded_resolver_and_forwards_to_the_dns_servers(
    ctrd_netns: DaemonProc,  # noqa: F811
) -> None:
    d, n = ctrd_netns, Nets(ctrd_netns)
    n.create("dnsnet", subnet=free_test_subnet())
    with fake_upstream_dns() as upstream:
        a = d.c.run("busybox", ["sleep", "300"], name="aa", network_mode="dnsnet", dns=[upstream])
        b = d.c.run("busybox", ["sleep", "300"], name="bb", network_mode="dnsnet")
        rc, conf = sh(d, a, "cat", "/etc/resolv.conf")
        assert rc == 0 and [ln for ln in conf.splitlines() if ln.startswith("nameserver")] == [
            "nameserver 127.0.0.11"], conf
        assert d.c.inspect(a)["HostConfig"]["Dns"] == [upstream]
        assert resolves(d, a, "outside.test") == "192.0.2.77"  # forwarded to --dns's server
        assert resolves(d, a, "bb") == d.c.inspect(b)["NetworkSettings"]["Networks"]["dnsnet"]["IPAddress"]
        assert resolves(d, b, "outside.test") == ""  # b has no --dns: the host's resolvers don't know it
        for ref in (a, b):
            d.c.stop(ref, timeout=1)
            d.c.remove(ref)
    n.call("Remove", npb.NetworkRemoveRequest(id="dnsnet"))


@pytest.fixture
def docker_beside(short_tmp: Path) -> Iterator[Docker]:
    """Debian's dockerd (private roots, its own bridge, --iptables=false) in the test's namespace."""
    base = short_tmp / "docker"
    base.mkdir()
    with own_bridge() as (name, _), private_dockerd(base, name, "ctrdt-netconnect") as d:
        yield d


SCALAR_KEYS = ("MacAddress", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway",
               "GlobalIPv6Address", "GlobalIPv6PrefixLen")
NEWER_API_KEYS = {"DNSNames"}  # Engine API 1.44 (docker 25); Debian's dockerd 20.10 speaks 1.41


def _networks(inspect: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nets: dict[str, dict[str, Any]] = inspect["NetworkSettings"]["Networks"]
    return nets


def test_networks_in_inspect_have_dockerds_keys(
    ctrd_netns: DaemonProc, docker_beside: Docker, short_tmp: Path,  # noqa: F811
) -> None:
    import json

    docker = docker_beside
    image = _image(docker, short_tmp / "docker")
    dsub = free_test_subnet()
    assert docker("network", "create", "--subnet", dsub, "usr").returncode == 0
    ids = []
    for net in ("bridge", "usr"):
        r = docker("run", "-d", "--network", net, "--network-alias", "www", image, "sleep", "300") if net == "usr" \
            else docker("run", "-d", "--network", net, image, "sleep", "300")
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.strip())
    got = json.loads(docker("inspect", *ids).stdout)
    theirs = {"bridge": _networks(got[0])["bridge"], "usr": _networks(got[1])["usr"]}

    d, n = ctrd_netns, Nets(ctrd_netns)
    n.create("usr", subnet=free_test_subnet())
    c1 = d.c.run("busybox", ["sleep", "300"])
    c2 = d.c.run("busybox", ["sleep", "300"], network_mode="usr", network_aliases=["www"])
    ours = {"bridge": _networks(d.c.inspect(c1))["bridge"], "usr": _networks(d.c.inspect(c2))["usr"]}
    assert list(_networks(d.c.inspect(c1))) == ["bridge"] and list(_networks(d.c.inspect(c2))) == ["usr"]
    for net in ("bridge", "usr"):
        t, o = theirs[net], ours[net]
        assert set(t) <= set(o) and set(o) - set(t) <= NEWER_API_KEYS, (net, sorted(t), sorted(o))
        for key in SCALAR_KEYS:
            assert type(o[key]) is type(t[key]), (net, key, o[key], t[key])
        for key in ("IPAMConfig", "Links", "DriverOpts"):
            assert o[key] is None and t[key] is None, (net, key)
        assert o["IPAddress"] and o["EndpointID"] and o["NetworkID"] and o["Gateway"]
    assert ours["bridge"]["Aliases"] is None and theirs["bridge"]["Aliases"] is None
    assert "www" in ours["usr"]["Aliases"] and "www" in theirs["usr"]["Aliases"]
    for ref in (c1, c2):
        d.c.stop(ref, timeout=1)
        d.c.remove(ref)
    n.call("Remove", npb.NetworkRemoveRequest(id="usr"))
