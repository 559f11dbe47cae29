"""ctrd's firewall on a real kernel, in a network namespace with dockerd's firewall state (root).

Outbound NAT is shown against an "upstream" namespace the test makes as the next hop: it has no
route back to the containers' subnet, so a reply reaches the container only when ctrd
masqueraded its traffic to the host's address. Nothing leaves this machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ctrd.v1 import container_pb2 as cpb
from daemon.network.firewall import OwnChains, owner_key
from tests.daemon_fixtures import DaemonProc, start_daemon, teardown
from tests.netutil import docker_firewall_netns, iptables_rules

pytestmark = pytest.mark.root

CYCLES = 100  # issue 18: 100 create/rm cycles of networks and containers

HOST_SIDE, UPSTREAM = "10.251.0.1", "10.251.0.2"
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000))
s.listen(1)
print("ready", flush=True)
c, peer = s.accept()
c.sendall(b"from upstream\\n")
print(peer[0], flush=True)
c.close()
"""


def sh(d: DaemonProc, ref: str, *args: str) -> tuple[int, str]:
    r = d.c.call(d.c.containers, "Exec", cpb.ExecRequest(id=ref, args=list(args)))
    return int(r.exit_code), (r.stdout + r.stderr).decode(errors="replace")


def ip(*args: str, pid: int = 0) -> None:
    prefix = ["nsenter", "-t", str(pid), "-n"] if pid else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)


@pytest.fixture
def daemon_behind_docker_firewall(short_tmp: Path, request: pytest.FixtureRequest) -> Iterator[DaemonProc]:
    extra: tuple[str, ...] = getattr(request, "param", ())
    with docker_firewall_netns():
        d = start_daemon(short_tmp, "--ip-forward=true", *extra)
        try:
            yield d
        finally:
            problems = teardown(d)
            print(f"--- ctrd log ({d.log_path}) ---\n{d.log()}")
    if problems:
        pytest.fail("ctrd left things behind: " + "; ".join(problems))


@contextmanager
def upstream() -> Iterator[subprocess.Popen[str]]:
    """A namespace linked to the (test's) host by a veth, listening on UPSTREAM:9000; it knows no
    route to the containers. Call inside docker_firewall_netns (the veth's host side goes there)."""
    server = subprocess.Popen(["unshare", "-n", sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        ip("link", "add", "ctrdup0", "type", "veth", "peer", "name", "up0")
        ip("link", "set", "up0", "netns", str(server.pid))
        ip("addr", "add", f"{HOST_SIDE}/30", "dev", "ctrdup0")
        ip("link", "set", "ctrdup0", "up")
        ip("link", "set", "lo", "up", pid=server.pid)
        ip("addr", "add", f"{UPSTREAM}/30", "dev", "up0", pid=server.pid)
        ip("link", "set", "up0", "up", pid=server.pid)
        yield server
    finally:
        if server.poll() is None:
            server.kill()  # our own child, by its pid; the veth pair goes with its namespace
        server.wait()


def test_outbound_nat_reaches_the_upstream_with_the_hosts_address(daemon_behind_docker_firewall: DaemonProc) -> None:
    d = daemon_behind_docker_firewall
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"
    cid = d.c.run("busybox", ["sleep", "300"], name="out")
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"  # the bridge came up
    own = OwnChains(owner_key(str(d.root)))
    assert f"-A {own.nat} -s {d.subnet} ! -o {d.bridge} -j MASQUERADE" in iptables_rules("nat")
    assert f"-A CTRD-POSTROUTING -j {own.nat}" in iptables_rules("nat")
    assert "-A FORWARD -j CTRD-FORWARD" in iptables_rules()
    with upstream() as server:
        rc, out = sh(d, cid, "sh", "-c", f"echo hi | nc -w 5 {UPSTREAM} 9000")
        assert rc == 0 and out == "from upstream\n", out
        assert server.stdout is not None and server.stdout.readline().strip() == HOST_SIDE  # masqueraded
    d.c.stop(cid, timeout=1)


@pytest.mark.parametrize("daemon_behind_docker_firewall", [("--ip-masq=false",)], indirect=True)
def test_without_ip_masq_the_upstream_cannot_answer(daemon_behind_docker_firewall: DaemonProc) -> None:
    d = daemon_behind_docker_firewall
    cid = d.c.run("busybox", ["sleep", "300"], name="out")
    assert "MASQUERADE" not in iptables_rules("nat")
    assert f"-A {OwnChains(owner_key(str(d.root))).forward} -i {d.bridge} -j ACCEPT" in iptables_rules()
    with upstream():
        rc, out = sh(d, cid, "sh", "-c", f"echo hi | nc -w 2 {UPSTREAM} 9000")
        assert rc != 0 and "from upstream" not in out
    d.c.stop(cid, timeout=1)


def test_rules_outlive_the_daemon_and_ctrd_cleanup_removes_them(daemon_behind_docker_firewall: DaemonProc) -> None:
    d = daemon_behind_docker_firewall
    cid = d.c.run("busybox", ["true"])
    d.c.wait(cid)
    d.c.remove(cid)
    d.kill9()
    before = iptables_rules() + iptables_rules("nat")
    d.start()  # set-up again after kill -9: exactly one copy of every rule
    cid = d.c.run("busybox", ["true"])
    d.c.wait(cid)
    d.c.remove(cid)
    assert iptables_rules() + iptables_rules("nat") == before
    assert d.stop() == 0
    assert f"-i {d.bridge} -j ACCEPT" in iptables_rules()  # like docker: the network outlives the daemon
    r = subprocess.run([*d.argv(), "--cleanup"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "CTRD" not in iptables_rules() + iptables_rules("nat")
    assert subprocess.run(["ip", "link", "show", d.bridge], capture_output=True).returncode != 0


def test_an_internal_network_has_no_way_out_but_talks_within(daemon_behind_docker_firewall: DaemonProc) -> None:
    from ctrd.v1 import network_pb2 as npb
    from tests.e2e.test_network_user import Nets
    from tests.netutil import free_test_subnet

    d = daemon_behind_docker_firewall
    n = Nets(d)
    n.create("sealed", subnet=free_test_subnet(), internal=True)
    bridge = n.inspect("sealed")["Options"]["com.docker.network.bridge.name"]
    assert f"-A {OwnChains(owner_key(str(d.root))).forward} -i {bridge} -j DROP" in iptables_rules()
    assert bridge not in iptables_rules("nat")  # no masquerade
    a = d.c.run("busybox", ["sleep", "300"], name="in1", network_mode="sealed")
    b = d.c.run("busybox", ["sleep", "300"], name="in2", network_mode="sealed")
    with upstream():
        rc, out = sh(d, a, "sh", "-c", f"echo hi | nc -w 2 {UPSTREAM} 9000")
        assert rc != 0 and "from upstream" not in out
        out_ok = d.c.run("busybox", ["sh", "-c", f"echo hi | nc -w 5 {UPSTREAM} 9000"])  # default bridge: NAT
        assert d.c.wait(out_ok) == 0
    ip_b = d.c.inspect(b)["NetworkSettings"]["IPAddress"]
    assert sh(d, a, "ping", "-c", "1", "-W", "2", ip_b)[0] == 0
    assert sh(d, a, "nslookup", "in2")[0] == 0
    for ref in (a, b):
        d.c.stop(ref, timeout=1)
    d.c.remove(out_ok)
    n.call("Remove", npb.NetworkRemoveRequest(id="sealed"))
    assert bridge not in iptables_rules()


def test_network_and_container_cycles_leave_no_chain_rule_bridge_veth_or_netns(
    daemon_behind_docker_firewall: DaemonProc,
) -> None:
    from ctrd.v1 import network_pb2 as npb
    from tests.e2e.test_network_user import Nets

    d = daemon_behind_docker_firewall
    n = Nets(d)
    d.c.wait(d.c.run("busybox", ["true"]))  # the default bridge and its rules exist from here on
    rules_before = iptables_rules() + iptables_rules("nat")
    links_before = _settled_links()
    for i in range(CYCLES):
        n.create(f"cyc{i}")
        cid = d.c.run("busybox", ["true"], network_mode=f"cyc{i}")
        d.c.wait(cid)
        d.c.remove(cid)
        n.call("Remove", npb.NetworkRemoveRequest(id=f"cyc{i}"))
    assert iptables_rules() + iptables_rules("nat") == rules_before
    assert _settled_links() == links_before
    assert list((d.exec_root / "netns").iterdir()) == []


def _settled_links(timeout: float = 10.0) -> set[str]:
    """The namespace's links once the veths of stopped containers are gone (the kernel removes
    them with their namespace, in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        names = {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()}
        if not any(n.startswith("veth") for n in names) or time.monotonic() > deadline:
            return names
        time.sleep(0.05)
