"""Container networking through a real ctrd (root): bridge reachability, -p, modes, cleanup, kill -9."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrd.errdefs import FailedPrecondition
from ctrd.v1 import container_pb2 as cpb
from tests.daemon_fixtures import DaemonProc, ctrd, start_daemon, teardown  # noqa: F401
from tests.netutil import docker_firewall_netns, iptables_rules

pytestmark = pytest.mark.root


def sh(d: DaemonProc, ref: str, *args: str) -> tuple[int, str]:
    r = d.c.call(d.c.containers, "Exec", cpb.ExecRequest(id=ref, args=list(args)))
    return int(r.exit_code), (r.stdout + r.stderr).decode(errors="replace")


def http_get(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection(host, port, timeout=3)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        except (TimeoutError, ConnectionError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


def bridge_ports(d: DaemonProc) -> list[str]:
    """Through netlink, not /sys/class/net: that shows the namespace sysfs was mounted in."""
    out = subprocess.run(["ip", "-o", "link", "show", "master", d.bridge], capture_output=True, text=True).stdout
    return sorted(ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines())


def leases(d: DaemonProc) -> dict[str, str]:
    p = d.root / "network" / f"{d.bridge}.json"
    return dict(json.loads(p.read_text())["leases"]) if p.exists() else {}


def wait_for(cond: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(cond())  # type: ignore[operator]


def httpd(d: DaemonProc, name: str, **spec: object) -> str:
    # serves the container's own /etc: /hostname and /hosts prove the resolution files too
    return d.c.run("busybox", ["httpd", "-f", "-p", "80", "-h", "/etc"], name=name, **spec)


@pytest.fixture
def ctrd_behind_docker_firewall(short_tmp: Path) -> Iterator[DaemonProc]:
    """A ctrd in a network namespace with dockerd's firewall state (FORWARD DROP, br_netfilter)."""
    with docker_firewall_netns():
        d = start_daemon(short_tmp)
        try:
            yield d
        finally:
            problems = teardown(d)
            print(f"--- ctrd log ({d.log_path}) ---\n{d.log()}")
    if problems:
        pytest.fail("ctrd left things behind: " + "; ".join(problems))


def test_bridge_containers_reach_each_other_and_the_host_reaches_httpd(ctrd: DaemonProc) -> None:  # noqa: F811
    bridge_containers_reach_each_other_and_the_host_reaches_httpd(ctrd)


def test_with_dockers_firewall_state_bridge_containers_and_the_host_still_reach_httpd(
    ctrd_behind_docker_firewall: DaemonProc,
) -> None:
    assert "-P FORWARD DROP" in iptables_rules()
    bridge_containers_reach_each_other_and_the_host_reaches_httpd(ctrd_behind_docker_firewall)


def bridge_containers_reach_each_other_and_the_host_reaches_httpd(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    web = httpd(ctrd, "web", hostname="webhost", port_bindings=[cpb.PortBinding(host_ip="127.0.0.1", container_port=80)])
    other = c.run("busybox", ["sleep", "300"], name="other")
    net = c.inspect(web)["NetworkSettings"]
    ip = net["IPAddress"]
    assert ip and net["Bridge"] == ctrd.bridge and net["MacAddress"].startswith("02:42:")
    binding = net["Ports"]["80/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1" and int(binding["HostPort"]) > 0

    rc, out = sh(ctrd, other, "ping", "-c", "1", "-W", "3", ip)
    assert rc == 0, out
    rc, out = sh(ctrd, other, "wget", "-q", "-O", "-", f"http://{ip}/hostname")  # TCP between containers
    assert rc == 0 and out == "webhost\n", out
    rc, out = sh(ctrd, other, "sh", "-c", f"printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80")
    assert rc == 0 and out.startswith("HTTP/1.") and out.endswith("webhost\n"), out  # busybox nc
    assert http_get(ip, 80, "/hostname") == (200, b"webhost\n")  # host → container by IP
    status, hosts = http_get("127.0.0.1", int(binding["HostPort"]), "/hosts")  # through -p
    assert status == 200 and f"{ip}\twebhost" in hosts.decode()

    rc, out = sh(ctrd, other, "cat", "/proc/net/dev")
    assert {ln.split(":")[0].strip() for ln in out.splitlines()[2:]} == {"lo", "eth0"}
    for ref in (web, other):
        c.stop(ref, timeout=1)
    assert wait_for(lambda: bridge_ports(ctrd) == [])
    assert leases(ctrd) == {}
    assert list((ctrd.exec_root / "netns").iterdir()) == []


def test_none_host_and_container_modes(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    none = c.run("busybox", ["sleep", "300"], network_mode="none")
    rc, out = sh(ctrd, none, "cat", "/proc/net/dev")
    assert {ln.split(":")[0].strip() for ln in out.splitlines()[2:]} == {"lo"}
    host = c.run("busybox", ["sleep", "300"], network_mode="host")
    rc, out = sh(ctrd, host, "cat", "/proc/net/dev")
    assert {ln.split(":")[0].strip() for ln in out.splitlines()[2:]} == set(os.listdir("/sys/class/net"))
    assert c.inspect(host)["NetworkSettings"]["SandboxKey"] == ""
    web = c.run("busybox", ["sleep", "300"], name="web")
    side = c.run("busybox", ["sleep", "300"], network_mode="container:web")
    ip = c.inspect(web)["NetworkSettings"]["IPAddress"]
    rc, out = sh(ctrd, side, "ip", "-o", "-4", "addr", "show", "eth0")
    assert rc == 0 and f"inet {ip}/" in out
    for ref in (side, web, host, none):
        c.stop(ref, timeout=1)
    assert wait_for(lambda: bridge_ports(ctrd) == [])


def test_start_stop_cycles_leak_nothing(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.create("busybox", ["sleep", "300"], port_bindings=[cpb.PortBinding(host_ip="127.0.0.1", container_port=80)])
    assert ctrd.proc is not None
    c.start(cid)
    c.stop(cid, timeout=0)
    wait_for(lambda: bridge_ports(ctrd) == [])
    fds = len(os.listdir(f"/proc/{ctrd.proc.pid}/fd"))
    for _ in range(50):
        c.start(cid)
        assert bridge_ports(ctrd)  # (the previous veth may still be on its way out)
        c.stop(cid, timeout=0)
    assert wait_for(lambda: bridge_ports(ctrd) == [])
    assert list((ctrd.exec_root / "netns").iterdir()) == [] and cid not in leases(ctrd)
    assert ctrd.mounts() == []
    assert len(os.listdir(f"/proc/{ctrd.proc.pid}/fd")) <= fds + 2  # a little slack for grpc internals


def test_published_port_survives_kill9_of_ctrd_and_restart_cleans_up(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    web = httpd(ctrd, "web", hostname="webhost", port_bindings=[cpb.PortBinding(host_ip="127.0.0.1", container_port=80)])
    port = int(c.inspect(web)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert http_get("127.0.0.1", port, "/hostname") == (200, b"webhost\n")
    ctrd.kill9()
    assert http_get("127.0.0.1", port, "/hostname") == (200, b"webhost\n")  # the shim keeps forwarding
    ctrd.start()
    c = ctrd.c
    info = c.inspect(web)
    assert info["State"]["Running"]
    assert leases(ctrd) == {web: info["NetworkSettings"]["IPAddress"]}
    assert http_get("127.0.0.1", port, "/hostname") == (200, b"webhost\n")
    c.stop(web, timeout=1)
    assert wait_for(lambda: bridge_ports(ctrd) == [])
    assert list((ctrd.exec_root / "netns").iterdir()) == []
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        s.bind(("127.0.0.1", port))  # a listener is not: the relay is gone with the container
        s.listen()


def test_a_taken_host_port_fails_start_and_leaves_nothing(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cid = c.create("busybox", ["sleep", "300"], port_bindings=[cpb.PortBinding(host_ip="127.0.0.1", host_port=port, container_port=80)])
        with pytest.raises(FailedPrecondition, match=f"host port 127.0.0.1:{port}/tcp is already in use"):
            c.start(cid)
        assert c.inspect(cid)["State"]["Running"] is False
        assert list((ctrd.exec_root / "netns").iterdir()) == [] and cid not in leases(ctrd)
        assert wait_for(lambda: bridge_ports(ctrd) == [])
        assert ctrd.mounts() == []
