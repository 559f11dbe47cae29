"""User-defined networks through a real ctrd (root), in a network namespace with dockerd's
firewall state: names resolve through the embedded DNS at 127.0.0.11 within a network and not
across, connect/disconnect change that at run time, networks are isolated from each other, and
names survive a kill -9 of ctrd. Nothing is queried beyond this namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctrd import errdefs
from ctrd.v1 import container_pb2 as cpb
from ctrd.v1 import network_pb2 as npb
from ctrd.v1 import network_pb2_grpc
from tests.daemon_fixtures import DaemonProc, start_daemon, teardown
from tests.netutil import docker_firewall_netns, free_test_subnet, iptables_rules

pytestmark = pytest.mark.root


class Nets:
    def __init__(self, d: DaemonProc) -> None:
        self.d = d

    def call(self, method: str, req: Any) -> Any:
        stub = network_pb2_grpc.NetworkServiceStub(self.d.c.channel)  # type: ignore[no-untyped-call]
        return self.d.c.call(stub, method, req)

    def create(self, name: str, **kw: Any) -> str:
        return str(self.call("Create", npb.NetworkCreateRequest(name=name, **kw)).id)

    def inspect(self, ref: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.call("Inspect", npb.NetworkInspectRequest(id=ref)).json)
        return out

    def rm(self, ref: str) -> None:
        self.call("Remove", npb.NetworkRemoveRequest(id=ref))

    def connect(self, net: str, ctr: str, *aliases: str) -> None:
        self.call("Connect", npb.NetworkConnectRequest(network=net, container=ctr, aliases=list(aliases)))

    def disconnect(self, net: str, ctr: str) -> None:
        self.call("Disconnect", npb.NetworkDisconnectRequest(network=net, container=ctr))


@pytest.fixture
def ctrd_netns(short_tmp: Path) -> Iterator[DaemonProc]:
    with docker_firewall_netns():
        d = start_daemon(short_tmp)
        try:
            yield d
        finally:
            problems = teardown(d)
            problems += resolver_left(d)
            print(f"--- ctrd log ({d.log_path}) ---\n{d.log()}")
    if problems:
        pytest.fail("ctrd left things behind: " + "; ".join(problems))


def resolver_left(d: DaemonProc) -> list[str]:
    """The resolver exits on its own about a second after its daemon is gone and it serves no
    namespace; one that stays is a leak (killed here, by its pid, after it is reported)."""
    deadline = time.monotonic() + 5
    while resolver_pids(d) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = resolver_pids(d)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return [f"dns resolver pid {p}" for p in left]


def resolver_pids(d: DaemonProc) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and str(d.exec_root).encode() in (p / "cmdline").read_bytes() and \
                    (p / "comm").read_text().strip() == "ctrd-dns":
                out.append(int(p.name))
        except OSError:
            continue
    return out


def sh(d: DaemonProc, ref: str, *args: str) -> tuple[int, str]:
    r = d.c.call(d.c.containers, "Exec", cpb.ExecRequest(id=ref, args=list(args)))
    return int(r.exit_code), (r.stdout + r.stderr).decode(errors="replace")


def resolves(d: DaemonProc, ref: str, name: str) -> str:
    """The address `name` resolves to inside container `ref` ("" when it does not)."""
    rc, out = sh(d, ref, "nslookup", name)
    if rc != 0:
        return ""
    addrs = [ln.split()[-1] for ln in out.splitlines()[2:] if ln.startswith("Address")]
    return addrs[0] if addrs else ""


def sleeper(d: DaemonProc, name: str, network: str, *aliases: str) -> str:
    return d.c.run("busybox", ["sleep", "300"], name=name, network_mode=network, network_aliases=list(aliases))


def ip_of(d: DaemonProc, ref: str) -> str:
    return str(d.c.inspect(ref)["NetworkSettings"]["IPAddress"])


def test_two_containers_resolve_each_other_by_name_and_alias(ctrd_netns: DaemonProc) -> None:
    d, n = ctrd_netns, Nets(ctrd_netns)
    subnet = free_test_subnet()
    nid = n.create("app", subnet=subnet, labels={"tier": "test"})
    info = n.inspect("app")
    assert info["Id"] == nid and info["Driver"] == "bridge" and info["IPAM"]["Config"][0]["Subnet"] == subnet
    assert info["Labels"] == {"tier": "test"}
    web = d.c.run("busybox", ["httpd", "-f", "-p", "80", "-h", "/etc"], name="web", network_mode="app",
                  network_aliases=["www"], hostname="webhost")
    client = sleeper(d, "client", "app")
    rc, out = sh(d, client, "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in out
    web_ip = ip_of(d, web)
    assert web_ip.startswith(subnet.rsplit(".", 2)[0])
    for name in ("web", "WEB", "www", web[:12]):
        assert resolves(d, client, name) == web_ip, name
    assert resolves(d, web, "client") == ip_of(d, client)
    rc, out = sh(d, client, "wget", "-q", "-O", "-", "http://web/hostname")  # the libc path too
    assert rc == 0 and out == "webhost\n", out
    assert set(n.inspect("app")["Containers"]) == {web, client}
    with pytest.raises(errdefs.FailedPrecondition, match="active endpoints"):
        n.rm("app")
    for ref in (web, client):
        d.c.stop(ref, timeout=1)
    assert n.inspect("app")["Containers"] == {}
    n.rm("app")
    assert "CTRD" not in "".join(r for r in iptables_rules().splitlines() if "br-" in r)
    with pytest.raises(errdefs.NotFound):
        n.inspect("app")


def reaches(d: DaemonProc, ref: str, ip: str) -> bool:
    return sh(d, ref, "ping", "-c", "1", "-W", "1", ip)[0] == 0


def test_two_networks_are_isolated_and_connect_disconnect_change_what_resolves(ctrd_netns: DaemonProc) -> None:
    d, n = ctrd_netns, Nets(ctrd_netns)
    n.create("front", subnet=free_test_subnet())
    n.create("back", subnet=free_test_subnet())
    a = sleeper(d, "aa", "front")
    b = sleeper(d, "bb", "back")
    a2 = sleeper(d, "aa2", "front")
    assert resolves(d, a2, "aa") == ip_of(d, a)
    assert resolves(d, a, "bb") == ""  # not across networks
    assert not reaches(d, a, ip_of(d, b))  # isolated (CTRD-ISOLATION-1/2)
    assert reaches(d, a, ip_of(d, a2))

    n.connect("back", a, "api")  # a joins back at run time: eth1 with an address on back
    back_ip = n.inspect("back")["Containers"][a]["IPv4Address"].split("/")[0]
    rc, out = sh(d, a, "ip", "-o", "-4", "addr", "show", "eth1")
    assert rc == 0 and f"inet {back_ip}/" in out, out
    assert resolves(d, a, "bb") == ip_of(d, b)  # a now sees back's names
    assert resolves(d, b, "aa") == back_ip and resolves(d, b, "api") == back_ip
    assert reaches(d, b, back_ip)
    rc, out = sh(d, a, "ip", "route")
    assert out.startswith("default via ") and "eth0" in out.splitlines()[0]  # the first network keeps the route

    n.disconnect("back", a)
    assert resolves(d, a, "bb") == "" and resolves(d, b, "aa") == ""
    assert sh(d, a, "ip", "link", "show", "eth1")[0] != 0
    assert a not in n.inspect("back")["Containers"]

    n.connect("back", a2)  # while stopped: applied at the next start
    d.c.stop(a2, timeout=1)
    assert a2 not in n.inspect("back")["Containers"]
    d.c.start(a2)
    assert resolves(d, b, "aa2") == n.inspect("back")["Containers"][a2]["IPv4Address"].split("/")[0]
    for ref in (a, b, a2):
        d.c.stop(ref, timeout=1)
    for name in ("front", "back"):
        n.rm(name)


def test_names_keep_resolving_through_a_kill9_of_ctrd_and_after_its_restart(ctrd_netns: DaemonProc) -> None:
    d, n = ctrd_netns, Nets(ctrd_netns)
    n.create("keep", subnet=free_test_subnet())
    d.stop()
    d.extra = ["--live-restore"]
    d.start()
    web = sleeper(d, "web", "keep", "www")
    client = sleeper(d, "client", "keep")
    web_ip = ip_of(d, web)
    d.kill9()
    # the daemon is gone: the resolver (its own process, like the shims) still answers
    rc = subprocess.run(
        ["nsenter", f"--net={d.exec_root}/netns/{client[:12]}", "/bin/busybox", "nslookup", "www", "127.0.0.11"],
        capture_output=True, text=True, timeout=10,
    ).returncode
    assert rc == 0
    d.extra = []
    d.start()
    assert resolves(d, client, "web") == web_ip and resolves(d, client, "www") == web_ip
    assert n.inspect("keep")["Name"] == "keep"
    other = sleeper(d, "other", "keep")  # a new name after the restart reaches the old container
    assert resolves(d, client, "other") == ip_of(d, other)
    for ref in (web, client, other):
        d.c.stop(ref, timeout=1)
    n.rm("keep")


def test_rename_moves_the_name_on_the_embedded_dns(ctrd_netns: DaemonProc) -> None:
    """After `rename`, the new name answers and the old one does not, with no restart (docker's
    sandbox Rename); a stopped container renamed answers by its new name when it starts."""
    d, n = ctrd_netns, Nets(ctrd_netns)
    n.create("ren", subnet=free_test_subnet())
    web = sleeper(d, "web", "ren", "www")
    client = sleeper(d, "client", "ren")
    other = d.c.create("busybox", ["sleep", "300"], name="other", network_mode="ren")
    web_ip = ip_of(d, web)
    assert resolves(d, client, "web") == web_ip
    d.c.call(d.c.containers, "Rename", cpb.RenameRequest(id="web", name="api"))
    assert resolves(d, client, "api") == web_ip
    assert resolves(d, client, "web") == ""
    assert resolves(d, client, "www") == web_ip  # aliases stay
    assert n.inspect("ren")["Containers"][web]["Name"] == "api"
    d.c.call(d.c.containers, "Rename", cpb.RenameRequest(id="other", name="other2"))
    d.c.start(other)
    assert resolves(d, client, "other2") == ip_of(d, other) and resolves(d, client, "other") == ""
    for ref in (web, client, other):
        d.c.remove(ref, force=True)
    n.rm("ren")


def test_bad_input_is_one_clear_error_and_creates_nothing(ctrd_netns: DaemonProc) -> None:
    d, n = ctrd_netns, Nets(ctrd_netns)
    subnet = free_test_subnet()
    for kw, err, msg in (
        ({"name": "bridge"}, errdefs.InvalidArgument, "reserved"),
        ({"name": "-x"}, errdefs.InvalidArgument, "invalid network name"),
        ({"name": "x", "subnet": "10.0.0.0/33"}, errdefs.InvalidArgument, "invalid subnet"),
        ({"name": "x", "subnet": subnet, "gateway": "10.1.1.1"}, errdefs.InvalidArgument, "gateway"),
        ({"name": "x", "options": {"foo": "1"}}, errdefs.InvalidArgument, "option 'foo'"),
        ({"name": "x", "subnet": d.subnet}, errdefs.AlreadyExists, "overlaps"),
    ):
        with pytest.raises(err, match=msg):
            n.create(**kw)
    names = [x.name for x in n.call("List", npb.NetworkListRequest()).networks]
    assert names == ["bridge", "host", "none"]
    n.create("x", subnet=subnet)
    with pytest.raises(errdefs.AlreadyExists, match="already exists"):
        n.create("x")
    with pytest.raises(errdefs.InvalidArgument, match="network_mode: network nope not found"):
        d.c.run("busybox", ["true"], network_mode="nope")
    with pytest.raises(errdefs.InvalidArgument, match="network_aliases"):
        d.c.create("busybox", ["true"], network_aliases=["a"])  # default bridge: no aliases
    removed = list(n.call("Prune", npb.NetworkPruneRequest()).removed)
    assert removed == ["x"]
    assert not list((d.root / "network" / "networks").iterdir())


def test_ctrctl_network_verbs(ctrd_netns: DaemonProc) -> None:
    from tests.e2e.test_ctrctl_e2e import ctl

    d = ctrd_netns
    subnet = free_test_subnet()
    r = ctl(d, "network", "create", "--subnet", subnet, "--label", "env=test", "app")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64, r.stderr
    r = ctl(d, "network", "ls")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [ln.split()[1] for ln in lines[1:]] == ["bridge", "host", "none", "app"]
    assert ctl(d, "network", "inspect", "-f", "{{.Name}} {{.Labels.env}}", "app").stdout == "app test\n"
    r = ctl(d, "run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", "-h", "webhost",
            "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    assert r.returncode == 0, r.stderr
    r = ctl(d, "run", "--rm", "--network", "app", "busybox", "wget", "-q", "-O", "-", "http://www/hostname")
    assert r.returncode == 0 and r.stdout == "webhost\n", r.stderr
    assert ctl(d, "run", "-d", "--name", "side", "busybox", "sleep", "300").returncode == 0  # default bridge
    assert ctl(d, "network", "connect", "--alias", "helper", "app", "side").returncode == 0
    r = ctl(d, "exec", "web", "nslookup", "helper")
    assert r.returncode == 0 and "Address" in r.stdout.split("Name:", 1)[-1], r.stdout
    r = ctl(d, "network", "rm", "app")
    assert r.returncode == 1 and "active endpoints" in r.stderr
    assert ctl(d, "network", "disconnect", "app", "side").returncode == 0
    r = ctl(d, "network", "disconnect", "app", "side")
    assert r.returncode == 1 and "is not connected to network app" in r.stderr
    r = ctl(d, "network", "create", "bridge")
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "reserved" in r.stderr
    assert ctl(d, "rm", "-f", "web", "side").returncode == 0
    assert ctl(d, "network", "prune").returncode == 125
    r = ctl(d, "network", "prune", "-f")
    assert r.returncode == 0 and r.stdout == "Deleted Networks:\napp\n", r.stdout + r.stderr
