"""NetworkManager against a fake helper: modes, ordering, rollback, IPAM under concurrency
(recovery, close and cancellation: test_network_recovery.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.network import manager as manager_mod
from daemon.network.firewall import FirewallNetwork
from daemon.network.manager import NetworkManager, NetworkSettings, PortMapping
from tests.unit.network_fakes import CID, FakeFirewall, FakeOps, make, run


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
