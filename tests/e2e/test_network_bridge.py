"""Real namespaces, veths and a test bridge (root). Traffic only between our namespaces and the host."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ctrd import errdefs
from daemon.network.firewall import Firewall
from daemon.network.manager import NetworkManager, NetworkSettings
from tests.netutil import docker_firewall_netns, free_test_subnet, iptables_rules

pytestmark = pytest.mark.root
BUSYBOX = "/bin/busybox"


@pytest.fixture
def env(short_tmp: Path) -> Iterator[dict[str, Any]]:
    bridge = "ctrdt" + secrets.token_hex(2)
    yield {"root": short_tmp / "root", "exec_root": short_tmp / "run", "bridge": bridge, "subnet": free_test_subnet()}
    if bridge in host_links():  # last resort: the tests delete it themselves
        subprocess.run(["ip", "link", "del", bridge], check=False)


def run_with(env: dict[str, Any], body: Callable[[NetworkManager], Awaitable[None]]) -> None:
    async def main() -> None:
        nm = NetworkManager(env["root"], env["exec_root"], bridge=env["bridge"], subnet=env["subnet"], firewall=Firewall(env["root"]))
        await nm.start()
        try:
            await body(nm)
        finally:
            await nm.close(remove_bridge=True)

    asyncio.run(main())


def in_ns(netns: str, *argv: str, timeout: float = 10, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={netns}", BUSYBOX, *argv], capture_output=True, text=True, timeout=timeout, **kw)


def ifaces(netns: str) -> set[str]:
    out = subprocess.run(["nsenter", f"--net={netns}", "cat", "/proc/net/dev"], capture_output=True, text=True, check=True).stdout
    return {ln.split(":")[0].strip() for ln in out.splitlines()[2:]}


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nsfs_mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(str(path))]


def test_two_bridge_namespaces_and_the_host_reach_each_other(env: dict[str, Any]) -> None:
    two_namespaces_and_the_host_reach_each_other(env)


def test_with_dockers_firewall_state_namespaces_and_the_host_still_reach_each_other(env: dict[str, Any]) -> None:
    """FORWARD policy DROP + bridge-nf-call-iptables=1 (what dockerd leaves): ctrd's own chains
    accept its bridge's traffic; without them the same ping is dropped (checked first)."""
    with docker_firewall_netns():
        assert "-P FORWARD DROP" in iptables_rules()
        dropped_without_ctrd_rules(env)
        two_namespaces_and_the_host_reach_each_other(env)
        assert "CTRD" not in iptables_rules() + iptables_rules("nat")  # removed with the bridge


def dropped_without_ctrd_rules(env: dict[str, Any]) -> None:
    async def body(nm: NetworkManager) -> None:
        a = await nm.setup("a" * 64, "bridge", hostname="a")
        b = await nm.setup("b" * 64, "bridge", hostname="b")
        assert nm.firewall is not None
        await nm.firewall.remove_network(env["bridge"])
        assert in_ns(a.sandbox_key, "ping", "-c", "1", "-W", "1", b.ip_address).returncode != 0
        for cid, s in (("a" * 64, a), ("b" * 64, b)):
            await nm.teardown(cid, s)
        await nm.settle(5)

    run_with(env, body)


def two_namespaces_and_the_host_reach_each_other(env: dict[str, Any]) -> None:
    async def body(nm: NetworkManager) -> None:
        a = await nm.setup("a" * 64, "bridge", hostname="a")
        b = await nm.setup("b" * 64, "bridge", hostname="b")
        assert a.ip_address != b.ip_address
        assert ifaces(a.sandbox_key) == {"lo", "eth0"}
        addr = in_ns(a.sandbox_key, "ip", "-o", "addr", "show", "eth0").stdout
        assert f"inet {a.ip_address}/24" in addr
        link = in_ns(a.sandbox_key, "ip", "-o", "link", "show", "eth0").stdout
        assert a.mac_address in link and "UP" in link
        assert f"default via {a.gateway} dev eth0" in in_ns(a.sandbox_key, "ip", "route").stdout
        ping = in_ns(a.sandbox_key, "ping", "-c", "1", "-W", "3", b.ip_address)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        # a TCP exchange between the namespaces with busybox nc
        server = subprocess.Popen(
            ["nsenter", f"--net={b.sandbox_key}", BUSYBOX, "nc", "-l", "-p", "7000"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        try:
            for _ in range(50):
                c = in_ns(a.sandbox_key, "nc", "-w", "2", b.ip_address, "7000", input="hello from a\n")
                if c.returncode == 0:
                    break
                time.sleep(0.05)
            out, _ = server.communicate(timeout=10)
            assert out == "hello from a\n"
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        # the host reaches a namespace by its address (through the bridge's gateway address)
        server = subprocess.Popen(
            ["nsenter", f"--net={a.sandbox_key}", BUSYBOX, "nc", "-l", "-p", "7001"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection((a.ip_address, 7001), timeout=2) as s:
                        s.sendall(b"hello from host\n")
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            out, _ = server.communicate(timeout=10)
            assert out == "hello from host\n"
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        for cid, s in (("a" * 64, a), ("b" * 64, b)):
            await nm.teardown(cid, s)

    run_with(env, body)


def test_none_sees_only_lo_and_container_mode_shares_the_namespace(env: dict[str, Any]) -> None:
    async def body(nm: NetworkManager) -> None:
        none = await nm.setup("c" * 64, "none", hostname="c")
        assert ifaces(none.sandbox_key) == {"lo"}
        assert "UP" in in_ns(none.sandbox_key, "ip", "-o", "link", "show", "lo").stdout
        assert in_ns(none.sandbox_key, "ping", "-c", "1", "-W", "2", "127.0.0.1").returncode == 0
        web = await nm.setup("d" * 64, "bridge", hostname="d")
        side = await nm.setup("e" * 64, "container:web", hostname="e", shared_netns=web.sandbox_key)
        assert side.sandbox_key == web.sandbox_key
        assert (side.ip_address, side.mac_address, side.gateway) == (web.ip_address, web.mac_address, web.gateway)
        assert os.stat(side.sandbox_key).st_ino == os.stat(web.sandbox_key).st_ino
        await nm.teardown("e" * 64, side)
        assert ifaces(web.sandbox_key) == {"lo", "eth0"}  # the owner's network is untouched
        host = await nm.setup("f" * 64, "host", hostname="f")
        assert host.sandbox_key == "" and host.ip_address == ""
        await nm.teardown("f" * 64, host)
        await nm.teardown("d" * 64, web)
        await nm.teardown("c" * 64, none)

    run_with(env, body)


def test_teardown_removes_veth_netns_file_mount_and_lease(env: dict[str, Any]) -> None:
    async def body(nm: NetworkManager) -> None:
        s = await nm.setup("a" * 64, "bridge", hostname="a")
        assert s.veth_host in host_links() and Path(s.sandbox_key).exists()
        assert nsfs_mounts_under(env["exec_root"]) == [s.sandbox_key]
        await nm.teardown("a" * 64, s)
        assert not Path(s.sandbox_key).exists() and nsfs_mounts_under(env["exec_root"]) == []
        assert nm.leases() == {}
        await nm.settle()
        assert s.veth_host not in host_links()
        await nm.teardown("a" * 64, s)  # idempotent

    run_with(env, body)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_fifty_cycles_leak_nothing(env: dict[str, Any]) -> None:
    async def body(nm: NetworkManager) -> None:
        warm = await nm.setup("f" * 64, "bridge", hostname="w")  # creates the bridge and warms caches
        await nm.teardown("f" * 64, warm)
        await nm.settle()
        helper = nm._ops.pid  # type: ignore[attr-defined]
        brif = Path("/sys/class/net") / env["bridge"] / "brif"  # other suites may add host links meanwhile
        before = (os.listdir(brif), _fds(os.getpid()), _fds(helper), nsfs_mounts_under(env["exec_root"]))
        assert before[0] == []
        for i in range(50):
            cid = f"{i:012x}" + "0" * 52
            s = await nm.setup(cid, "bridge" if i % 5 else "none", hostname="x")
            await nm.teardown(cid, s)
        await nm.settle()
        after = (os.listdir(brif), _fds(os.getpid()), _fds(helper), nsfs_mounts_under(env["exec_root"]))
        assert after == before
        assert nm.leases() == {} and os.listdir(env["exec_root"] / "netns") == []
        assert nm._ops.pid == helper  # type: ignore[attr-defined]  # no helper crash on the way

    run_with(env, body)


def test_concurrent_setups_get_distinct_reachable_addresses(env: dict[str, Any]) -> None:
    async def body(nm: NetworkManager) -> None:
        ids = [f"{i:012x}" + "0" * 52 for i in range(8)]
        got = await asyncio.gather(*(nm.setup(c, "bridge", hostname="x") for c in ids))
        assert len({s.ip_address for s in got}) == 8
        for s in got:
            r = subprocess.run([BUSYBOX, "ping", "-c", "1", "-W", "3", s.ip_address], capture_output=True, text=True)
            assert r.returncode == 0, r.stdout
        await asyncio.gather(*(nm.teardown(c, s) for c, s in zip(ids, got, strict=True)))

    run_with(env, body)


def test_failed_setup_leaves_nothing_behind(env: dict[str, Any]) -> None:
    # the bridge name is taken by a non-bridge link
    subprocess.run(["ip", "link", "add", env["bridge"], "type", "veth", "peer", "name", env["bridge"] + "p"], check=True)

    async def body(nm: NetworkManager) -> None:
        with pytest.raises(errdefs.FailedPrecondition, match=f"link {env['bridge']} exists and is a veth link"):
            await nm.setup("a" * 64, "bridge", hostname="a")
        assert os.listdir(env["exec_root"] / "netns") == [] and nm.leases() == {}
        assert nsfs_mounts_under(env["exec_root"]) == []
        s = await nm.setup("b" * 64, "none", hostname="b")
        with pytest.raises(errdefs.AlreadyExists, match="already exists"):
            await nm.setup("b" * 64, "none", hostname="b")
        assert Path(s.sandbox_key).exists()
        await nm.teardown("b" * 64, s)

    try:
        run_with(env, body)
    finally:
        subprocess.run(["ip", "link", "del", env["bridge"]], check=False)


def test_recover_after_restart_keeps_live_and_removes_leftovers(env: dict[str, Any]) -> None:
    saved: dict[str, NetworkSettings] = {}

    async def first(nm: NetworkManager) -> None:
        for c in "ab":
            saved[c * 64] = await nm.setup(c * 64, "bridge", hostname=c)
        saved["n" * 64] = await nm.setup("n" * 64, "none", hostname="n")

    async def main() -> None:
        nm = NetworkManager(env["root"], env["exec_root"], bridge=env["bridge"], subnet=env["subnet"], firewall=Firewall(env["root"]))
        await nm.start()
        await first(nm)
        await nm.close()  # the daemon exits; networks stay (live-restore)
        a, b, n = saved["a" * 64], saved["b" * 64], saved["n" * 64]
        assert {a.veth_host, b.veth_host} <= host_links()
        nm = NetworkManager(env["root"], env["exec_root"], bridge=env["bridge"], subnet=env["subnet"], firewall=Firewall(env["root"]))
        await nm.start()
        try:
            await nm.recover({"a" * 64: a})
            assert nm.leases() == {"a" * 64: a.ip_address}
            assert os.listdir(env["exec_root"] / "netns") == [Path(a.sandbox_key).name]
            assert nsfs_mounts_under(env["exec_root"]) == [a.sandbox_key]
            assert b.veth_host not in host_links() and a.veth_host in host_links()
            assert not Path(n.sandbox_key).exists()
            r = subprocess.run([BUSYBOX, "ping", "-c", "1", "-W", "3", a.ip_address], capture_output=True, text=True)
            assert r.returncode == 0, r.stdout
            c = await nm.setup("c" * 64, "bridge", hostname="c")
            assert c.ip_address == b.ip_address  # b's address was released and is reused
            await nm.teardown("c" * 64, c)
            await nm.teardown("a" * 64, a)
        finally:
            await nm.close(remove_bridge=True)

    asyncio.run(main())
    assert env["bridge"] not in host_links()


def test_a_bridge_deleted_under_the_daemon_is_recreated(env: dict[str, Any]) -> None:
    async def body(nm: NetworkManager) -> None:
        a = await nm.setup("a" * 64, "bridge", hostname="a")
        await nm.teardown("a" * 64, a)
        await nm.settle()
        subprocess.run(["ip", "link", "del", env["bridge"]], check=True)
        b = await nm.setup("b" * 64, "bridge", hostname="b")
        assert env["bridge"] in host_links() and b.veth_host in os.listdir(f"/sys/class/net/{env['bridge']}/brif")
        r = subprocess.run([BUSYBOX, "ping", "-c", "1", "-W", "3", b.ip_address], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout
        await nm.teardown("b" * 64, b)

    run_with(env, body)
