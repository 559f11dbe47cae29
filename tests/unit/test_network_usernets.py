"""UserNetworks against the fake helper and a fake resolver client: records, addresses, first
and further networks, connections kept for a stopped container, what the resolver is told."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ctrd import errdefs
from daemon.network.usernets import UserNetworks
from tests.unit.network_fakes import FakeFirewall, FakeOps

A = "a" * 64
B = "b" * 64


class FakeDns:
    def __init__(self) -> None:
        self.connected = False
        self.served: dict[str, list[str]] = {}
        self.tables: dict[str, dict[str, list[str]]] = {}

    async def call(self, op: str, **a: Any) -> Any:
        self.connected = True
        if op == "names":
            self.tables[a["network"]] = a["table"]
        elif op == "attach":
            self.served[a["netns"]] = a["networks"]
        elif op == "detach":
            self.served.pop(a["netns"], None)
        elif op == "forget":
            self.tables.pop(a["network"], None)
        elif op == "state":
            return {"served": dict(self.served), "tables": self.tables}
        return None

    async def close(self) -> None:
        self.connected = False


def make(tmp_path: Path) -> tuple[UserNetworks, FakeOps, FakeFirewall, FakeDns]:
    ops, fw, dns = FakeOps(), FakeFirewall(), FakeDns()
    un = UserNetworks(tmp_path / "root", tmp_path / "run", ops, firewall=fw, ip_forward=False,  # type: ignore[arg-type]
                      taken=["10.88.0.0/16"], dns=dns)  # type: ignore[arg-type]
    return un, ops, fw, dns


def test_create_makes_the_bridge_and_rules_and_rm_takes_them_away(tmp_path: Path) -> None:
    async def main() -> None:
        un, ops, fw, _ = make(tmp_path)
        await un.start()
        rec = await un.create("app", internal=True, labels={"k": "v"})
        assert rec.subnet == "10.89.0.0/24" and ops.bridge_addr[rec.bridge] == ["10.89.0.1/24"]
        assert fw.calls[0][1].bridge == rec.bridge and fw.calls[0][1].internal and not fw.calls[0][1].masquerade
        with pytest.raises(errdefs.AlreadyExists, match="already exists"):
            await un.create("app")
        again, *_ = make(tmp_path)
        await again.start()
        assert again.find("app") == rec  # persisted
        await un.remove("app")
        assert rec.bridge not in ops.bridge_addr and ("remove", rec.bridge) in fw.calls
        assert un.find("app") is None and not (tmp_path / "root" / "network" / f"{rec.bridge}.json").exists()
        await un.close()

    asyncio.run(main())


def test_first_network_connection_and_names_for_the_resolver(tmp_path: Path) -> None:
    async def main() -> None:
        un, ops, _, dns = make(tmp_path)
        await un.start()
        app = await un.create("app")
        back = await un.create("back")
        s, _ = await un.setup(A, "app", name="web", hostname="h", aliases=["www"], ports=[], publish_all_exposed=[])
        await un.sync_dns()
        assert s.bridge == app.bridge and dns.served == {s.sandbox_key: [app.id]}
        assert dns.tables[app.id] == {"web": [s.ip_address], A[:12]: [s.ip_address], "www": [s.ip_address]}
        await un.connect("back", A, name="web", aliases=["api"], sandbox_key=s.sandbox_key)
        ep = un.store.get("back").endpoints[A]
        assert ep.ifname == "eth1" and ep.ip.startswith("10.89.1.") and ep.veth
        assert ("endpoint_add", ops.calls[-1][1]["netns"]) == ("endpoint_add", s.sandbox_key)
        assert dns.served[s.sandbox_key] == [app.id, back.id] and "api" in dns.tables[back.id]
        with pytest.raises(errdefs.FailedPrecondition, match="first network"):
            await un.disconnect("app", A, name="web")
        with pytest.raises(errdefs.FailedPrecondition, match="active endpoints"):
            await un.remove("back")
        await un.teardown(A, s)  # stop: the first network's endpoint goes, the connection stays
        assert A not in un.store.get("app").endpoints
        assert un.store.get("back").endpoints[A].veth == "" and dns.served == {}
        await un.disconnect("back", A, name="web")
        assert un.store.get("back").endpoints == {}
        with pytest.raises(errdefs.NotFound, match="not connected"):
            await un.disconnect("back", A, name="web")
        await un.close()

    asyncio.run(main())


def test_a_connection_made_while_stopped_is_applied_at_start_and_prune_spares_it(tmp_path: Path) -> None:
    async def main() -> None:
        un, _, _, dns = make(tmp_path)
        await un.start()
        await un.create("app")
        back = await un.create("back")
        await un.create("spare")
        await un.connect("back", B, name="db", aliases=[], sandbox_key="")
        assert un.store.get("back").endpoints[B].ip == "" and not dns.connected  # nothing runs: no resolver
        s, _ = await un.setup(B, "app", name="db", hostname="h", aliases=[], ports=[], publish_all_exposed=[])
        await un.attach_pending(B, s.sandbox_key)
        await un.sync_dns()
        assert un.store.get("back").endpoints[B].ifname == "eth1"
        assert dns.tables[back.id]["db"] == [un.store.get("back").endpoints[B].ip]
        assert await un.prune() == ["spare"]
        un.forget_containers([])  # the container was removed: connections of it go (running ones stay)
        assert B in un.store.get("back").endpoints
        await un.teardown(B, s)
        un.forget_containers([])
        assert un.store.get("back").endpoints == {}
        await un.close()

    asyncio.run(main())
