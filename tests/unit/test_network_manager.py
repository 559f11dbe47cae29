"""NetworkManager against a fake helper: ordering, rollback, IPAM under concurrency, recovery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ctrd import errdefs
from daemon.network import manager as manager_mod
from daemon.network.firewall import FirewallNetwork
from daemon.network.manager import NetworkManager, NetworkSettings, PortMapping

CID = "0123456789ab" + "c" * 52


class FakeOps:
    """Models the helper's visible state: netns files, host links, bridge ports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sandboxes: set[str] = set()
        self.links: dict[str, str] = {}  # name -> master ("" for none)
        self.bridge_addr: dict[str, list[str]] = {}
        self.fail: dict[str, errdefs.CtrdError] = {}
        self.started = self.closed = False
        self.veth_of: dict[str, str] = {}
        self.keep_veths = False  # True: a process still holds the netns, the veth outlives it
        self.routes = ["192.0.2.0/24", "10.88.0.0/16"]

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def call(self, op: str, **a: Any) -> Any:
        self.calls.append((op, a))
        await asyncio.sleep(0)  # let concurrent setups interleave
        if op in self.fail:
            raise self.fail[op]
        if op == "sandbox_create":
            if a["path"] in self.sandboxes:
                raise errdefs.AlreadyExists(f"network namespace file {a['path']} already exists")
            v = a.get("veth")
            if v is not None:
                if v["host_name"] in self.links:
                    raise errdefs.AlreadyExists(f"link {v['host_name']} already exists")
                self.links[v["host_name"]] = v["bridge"]
                self.veth_of[a["path"]] = v["host_name"]
            self.sandboxes.add(a["path"])
            return None
        if op == "sandbox_delete":
            self.sandboxes.discard(a["path"])
            if not self.keep_veths:  # the kernel takes the pair down with the namespace
                self.links.pop(self.veth_of.pop(a["path"], ""), None)
            return None
        if op == "list_sandboxes":
            return sorted(p for p in self.sandboxes if p.startswith(a["directory"] + "/"))
        if op == "bridge_info":
            if a["name"] not in self.bridge_addr:
                return None
            ports = [n for n, m in self.links.items() if m == a["name"]]
            return {"index": 9, "kind": "bridge", "addresses": self.bridge_addr[a["name"]], "ports": ports}
        if op == "bridge_ensure":
            self.bridge_addr[a["name"]] = [f"{a['gateway']}/{a['prefixlen']}"]
            return {"created": True}
        if op == "routed_networks":
            return self.routes
        if op == "bridge_ports":
            return [n for n, m in self.links.items() if m == a["bridge"]]
        if op == "link_delete":
            existed = a["name"] in self.links or a["name"] in self.bridge_addr
            self.links.pop(a["name"], None)
            self.bridge_addr.pop(a["name"], None)
            return existed
        if op == "links_present":
            return [n for n in a["names"] if n in self.links]
        if op == "endpoint_add":  # `network connect`: one more veth into an existing namespace
            if a["netns"] not in self.sandboxes:
                raise errdefs.NotFound(f"network namespace {a['netns']} does not exist")
            v = a["veth"]
            self.links[v["host_name"]] = v["bridge"]
            return None
        if op == "netns_info":
            return {"ip": "10.250.0.2", "prefixlen": 24, "mac": "02:42:0a:fa:00:02", "gateway": "10.250.0.1"}
        raise AssertionError(f"unexpected op {op}")

    def ops(self) -> list[str]:
        return [c[0] for c in self.calls]


def make(tmp_path: Path, fake: FakeOps, **kw: Any) -> NetworkManager:
    kw.setdefault("subnet", "10.250.0.0/24")
    return NetworkManager(tmp_path / "root", tmp_path / "run", bridge="ctrdt0", ops=fake, port_picker=lambda p, h: 45000, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_host_mode_builds_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        s = await nm.setup(CID, "host", hostname="h", ports=[PortMapping("tcp", "", 80, 80)])
        assert s == NetworkSettings(mode="host")
        await nm.teardown(CID, s)
        assert fake.calls == []
        await nm.close()
        assert fake.closed

    run(main())


def test_none_mode_creates_a_persisted_netns_named_by_the_short_id(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        s = await nm.setup(CID, "none", hostname="h")
        assert s.mode == "none" and s.sandbox_key == str(tmp_path / "run" / "netns" / CID[:12]) and s.ip_address == ""
        assert fake.calls == [("sandbox_create", {"path": s.sandbox_key})]
        await nm.teardown(CID, s)
        await nm.teardown(CID, s)
        assert fake.sandboxes == set() and "bridge_ensure" not in fake.ops()
        await nm.close()

    run(main())


def test_bridge_mode_creates_bridge_lazily_and_derives_mac(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        assert fake.calls == []  # no bridge until a container needs it
        s = await nm.setup(CID, "bridge", hostname="h", ports=[PortMapping("tcp", "127.0.0.1", 0, 80)])
        assert (s.ip_address, s.ip_prefix_len, s.gateway, s.mac_address) == ("10.250.0.2", 24, "10.250.0.1", "02:42:0a:fa:00:02")
        assert s.bridge == "ctrdt0" and s.veth_host.startswith("veth") and len(s.veth_host) <= 15
        assert s.ports == [PortMapping("tcp", "127.0.0.1", 45000, 80)]
        assert fake.ops() == ["bridge_ensure", "sandbox_create"]
        cfg = fake.calls[1][1]["veth"]
        assert cfg["ip"] == "10.250.0.2" and cfg["gateway"] == "10.250.0.1" and cfg["mac"] == s.mac_address
        saved = json.loads((tmp_path / "root" / "network" / "ctrdt0.json").read_text())
        assert saved["leases"] == {CID: "10.250.0.2"}
        await nm.teardown(CID, s)
        assert nm.leases() == {} and s.veth_host not in fake.links
        assert json.loads((tmp_path / "root" / "network" / "ctrdt0.json").read_text())["leases"] == {}

    run(main())


def test_default_subnet_comes_from_the_route_table(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = NetworkManager(tmp_path / "root", tmp_path / "run", bridge="ctrdt0", ops=fake)
        await nm.start()
        s = await nm.setup(CID, "bridge", hostname="h")
        assert s.ip_address == "10.89.0.2" and s.ip_prefix_len == 16  # 10.88/16 is routed in the fake
        await nm.teardown(CID, s)
        await nm.close()

    run(main())


def test_existing_bridge_address_is_adopted_when_no_subnet_is_given(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        fake.bridge_addr["ctrdt0"] = ["10.251.3.1/24"]
        nm = NetworkManager(tmp_path / "root", tmp_path / "run", bridge="ctrdt0", ops=fake)
        await nm.start()
        s = await nm.setup(CID, "bridge", hostname="h")
        assert s.ip_address == "10.251.3.2"
        await nm.close()

    run(main())


def test_concurrent_setups_never_share_an_address(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        ids = [f"{i:012x}" + "0" * 52 for i in range(40)]
        got = await asyncio.gather(*(nm.setup(c, "bridge", hostname="h") for c in ids))
        ips = [s.ip_address for s in got]
        assert len(set(ips)) == 40 and fake.ops().count("bridge_ensure") == 1
        saved = json.loads((tmp_path / "root" / "network" / "ctrdt0.json").read_text())["leases"]
        assert saved == {c: s.ip_address for c, s in zip(ids, got, strict=True)}
        await asyncio.gather(*(nm.teardown(c, s) for c, s in zip(ids, got, strict=True)))
        again = await nm.setup(ids[0], "bridge", hostname="h")
        assert again.ip_address == "10.250.0.2"  # released addresses are reused
        await nm.close()

    run(main())


def test_failed_sandbox_releases_the_lease_and_raises_one_error(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        fake.fail["sandbox_create"] = errdefs.Internal("cannot create veth vethx: boom")
        with pytest.raises(errdefs.Internal, match="cannot create veth"):
            await nm.setup(CID, "bridge", hostname="h")
        assert nm.leases() == {}
        del fake.fail["sandbox_create"]
        s = await nm.setup(CID, "bridge", hostname="h")
        assert s.ip_address == "10.250.0.2"
        await nm.close()

    run(main())


def test_failed_lease_write_tears_the_network_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        first = await nm.setup(CID, "bridge", hostname="h")  # creates the state file
        await nm.teardown(CID, first)

        def broken(self: object, snap: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(manager_mod.Ipam, "write", broken)
        with pytest.raises(OSError, match="No space"):
            await nm.setup("f" * 64, "bridge", hostname="h")
        assert fake.sandboxes == set() and nm.leases() == {}
        monkeypatch.undo()
        await nm.close()

    run(main())


def test_veth_name_clash_retries_with_a_new_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        fake = FakeOps()
        fake.links["vethtaken"] = ""
        names = iter(["vethtaken", "vethfree1"])
        monkeypatch.setattr(manager_mod, "veth_name", lambda: next(names))
        nm = make(tmp_path, fake)
        await nm.start()
        s = await nm.setup(CID, "bridge", hostname="h")
        assert s.veth_host == "vethfree1" and "vethtaken" in fake.links
        await nm.close()

    run(main())


def test_netns_file_exists_is_already_exists_without_side_effects(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        s = await nm.setup(CID, "bridge", hostname="h")
        with pytest.raises(errdefs.AlreadyExists, match="already exists"):
            await nm.setup(CID + "", "none", hostname="h")
        assert nm.leases() == {CID: s.ip_address} and s.sandbox_key in fake.sandboxes
        with pytest.raises(errdefs.AlreadyExists, match="already exists"):
            await nm.setup(CID, "bridge", hostname="h")  # a second start must not drop the first's lease
        assert nm.leases() == {CID: s.ip_address} and s.sandbox_key in fake.sandboxes
        await nm.close()

    run(main())


def test_container_mode_shares_the_other_netns_and_never_removes_it(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        other = await nm.setup(CID, "bridge", hostname="h")
        s = await nm.setup("e" * 64, "container:web", hostname="h", shared_netns=other.sandbox_key)
        assert s.mode == "container:web" and s.sandbox_key == other.sandbox_key and s.ip_address == "10.250.0.2"
        await nm.teardown("e" * 64, s)
        assert other.sandbox_key in fake.sandboxes and nm.leases() == {CID: other.ip_address}
        with pytest.raises(errdefs.InvalidArgument, match="port publishing"):
            await nm.setup("e" * 64, "container:web", hostname="h", shared_netns=other.sandbox_key, ports=[PortMapping("tcp", "", 1, 1)])
        with pytest.raises(errdefs.InvalidArgument, match="needs the other container"):
            await nm.setup("e" * 64, "container:web", hostname="h")
        await nm.close()

    run(main())


@pytest.mark.parametrize("mode", ["bogus", "bridged", ""])
def test_invalid_mode(tmp_path: Path, mode: str) -> None:
    async def main() -> None:
        nm = make(tmp_path, FakeOps())
        with pytest.raises(errdefs.InvalidArgument, match="network mode"):
            await nm.setup(CID, mode, hostname="h")

    run(main())


def test_recover_keeps_live_and_removes_leftovers(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        ids = [c * 64 for c in "abc"]
        got = {c: await nm.setup(c, "bridge", hostname="h") for c in ids}
        fake.links["eth0"] = "ctrdt0"  # not ours: recover must leave non-veth ports alone
        # a restart: a new manager on the same root, only "b" still runs
        nm2 = make(tmp_path, fake)
        await nm2.start()
        assert set(nm2.leases()) == set(ids)
        await nm2.recover({ids[1]: got[ids[1]]})
        assert nm2.leases() == {ids[1]: got[ids[1]].ip_address}
        assert fake.sandboxes == {got[ids[1]].sandbox_key}
        assert set(fake.links) == {got[ids[1]].veth_host, "eth0"}
        s = await nm2.setup("d" * 64, "bridge", hostname="h")
        assert s.ip_address == "10.250.0.2"  # a's address came back, b's is still taken
        await nm2.close()

    run(main())


def test_recover_rebuilds_lost_ipam_state_from_live_containers(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        live = await nm.setup(CID, "bridge", hostname="h")
        (tmp_path / "root" / "network" / "ctrdt0.json").unlink()
        nm2 = make(tmp_path, fake)
        await nm2.start()
        await nm2.recover({CID: live})
        s = await nm2.setup("f" * 64, "bridge", hostname="h")
        assert s.ip_address != live.ip_address
        await nm2.close()

    run(main())


def test_subnet_change_with_live_leases_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        await nm.setup(CID, "bridge", hostname="h")
        nm2 = make(tmp_path, fake, subnet="10.250.1.0/24")
        with pytest.raises(errdefs.FailedPrecondition, match=r"cannot switch to 10\.250\.1\.0/24"):
            await nm2.start()

    run(main())


def test_close_remove_bridge_only_when_unused(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        nm = make(tmp_path, fake)
        await nm.start()
        s = await nm.setup(CID, "bridge", hostname="h")
        await nm.close(remove_bridge=True)
        assert "ctrdt0" in fake.bridge_addr  # a container still uses it
        nm = make(tmp_path, fake)
        await nm.start()
        await nm.teardown(CID, s)
        await nm.close(remove_bridge=True)
        assert "ctrdt0" not in fake.bridge_addr

    run(main())


def test_veth_that_outlives_its_netns_is_deleted_by_settle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        fake = FakeOps()
        fake.keep_veths = True
        nm = make(tmp_path, fake)
        await nm.start()
        s = await nm.setup(CID, "bridge", hostname="h")
        await nm.teardown(CID, s)
        assert s.veth_host in fake.links  # still held
        await nm.settle(timeout=0.05)
        assert s.veth_host not in fake.links and ("link_delete", {"name": s.veth_host}) in fake.calls
        await nm.close()

    run(main())


def test_cancelled_setup_removes_what_the_helper_built(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeOps()
        gate = asyncio.Event()
        plain = fake.call

        async def slow(op: str, **a: Any) -> Any:
            if op == "sandbox_create":
                await gate.wait()
            return await plain(op, **a)

        fake.call = slow  # type: ignore[method-assign]
        nm = make(tmp_path, fake)
        await nm.start()
        for mode in ("bridge", "none"):
            task = asyncio.ensure_future(nm.setup(CID, mode, hostname="h"))
            await asyncio.sleep(0.01)
            task.cancel()
            gate.set()  # the helper finishes the request anyway
            with pytest.raises(asyncio.CancelledError):
                await task
            assert fake.sandboxes == set() and nm.leases() == {}
            gate.clear()
        await nm.close()

    run(main())


class FakeFirewall:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def add_network(self, net: Any) -> None:
        self.calls.append(("add", net))

    async def remove_network(self, bridge: str) -> None:
        self.calls.append(("remove", bridge))

    async def remove_chains_if_unused(self) -> bool:
        self.calls.append(("chains", None))
        return True


def test_the_firewall_gets_the_network_when_its_bridge_comes_up_and_loses_it_with_the_bridge(tmp_path: Path) -> None:
    async def main() -> None:
        for nat in (False, True):
            fake, fw = FakeOps(), FakeFirewall()
            nm = make(tmp_path / str(nat), fake, nat=nat, firewall=fw)  # type: ignore[arg-type]
            await nm.start()
            s = await nm.setup(CID, "bridge", hostname="h")
            await nm.setup(CID[::-1], "bridge", hostname="h2")  # the bridge is up: no second add
            assert fw.calls == [("add", FirewallNetwork("ctrdt0", "10.250.0.0/24", masquerade=nat))]
            await nm.teardown(CID, s)
            await nm.close(remove_bridge=True)  # a container is still on it: the bridge stays
            assert len(fw.calls) == 1

    run(main())


def test_recover_with_live_bridged_containers_sets_the_rules_up_again(tmp_path: Path) -> None:
    async def main() -> None:
        fake, fw = FakeOps(), FakeFirewall()
        nm = make(tmp_path, fake, firewall=fw)  # type: ignore[arg-type]
        await nm.start()
        s = await nm.setup(CID, "bridge", hostname="h")
        await nm.close()
        nm2 = make(tmp_path, fake, firewall=fw)  # type: ignore[arg-type]
        await nm2.start()
        await nm2.recover({CID: s})
        assert [c[0] for c in fw.calls] == ["add", "add"]
        await nm2.teardown(CID, s)
        await nm2.close(remove_bridge=True)
        assert [c[0] for c in fw.calls] == ["add", "add", "remove", "chains"]

    run(main())
