"""NetworkManager against a fake helper: recovery after a restart, subnet changes, close,
leftover veths and cancelled setups."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ctrd import errdefs
from tests.unit.network_fakes import CID, FakeOps, make, run


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
        gate, entered = asyncio.Event(), asyncio.Event()
        plain = fake.call

        async def slow(op: str, **a: Any) -> Any:
            if op == "sandbox_create":
                entered.set()
                await gate.wait()
            return await plain(op, **a)

        fake.call = slow  # type: ignore[method-assign]
        nm = make(tmp_path, fake)
        await nm.start()
        for mode in ("bridge", "none"):
            task = asyncio.ensure_future(nm.setup(CID, mode, hostname="h"))
            await entered.wait()  # the helper is building the sandbox
            task.cancel()
            gate.set()  # the helper finishes the request anyway
            with pytest.raises(asyncio.CancelledError):
                await task
            assert fake.sandboxes == set() and nm.leases() == {}
            gate.clear()
            entered.clear()
        await nm.close()

    run(main())
