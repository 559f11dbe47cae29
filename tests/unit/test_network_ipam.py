"""IPAM: lowest-free allocation, reuse, persistence, reset, exhaustion, and a model check."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrd import errdefs
from daemon.network.ipam import Ipam

NET = ipaddress.IPv4Network("10.250.9.0/24")


def make(tmp_path: Path, net: ipaddress.IPv4Network = NET) -> Ipam:
    return Ipam(tmp_path / "network" / "ctrdt0.json", "ctrdt0", net)


def test_allocates_from_after_the_gateway_and_persists(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    assert str(ipam.allocate("a")) == "10.250.9.2"
    assert str(ipam.allocate("b")) == "10.250.9.3"
    saved = json.loads(ipam.path.read_text())
    assert saved["leases"] == {"a": "10.250.9.2", "b": "10.250.9.3"}
    assert saved["subnet"] == "10.250.9.0/24" and saved["gateway"] == "10.250.9.1"


def test_same_container_gets_its_existing_lease(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    assert ipam.allocate("a") == ipam.allocate("a")
    assert len(ipam.leases) == 1


def test_released_address_is_reused_lowest_first(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    for cid in "abc":
        ipam.allocate(cid)
    assert ipam.release("b") is True
    assert ipam.release("b") is False
    assert str(ipam.allocate("d")) == "10.250.9.3"


def test_state_survives_a_reload_and_never_hands_out_a_leased_address(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    ipam.allocate("a")
    ipam.allocate("b")
    again = Ipam.load(ipam.path)
    assert again is not None
    assert again.leases == {"a": "10.250.9.2", "b": "10.250.9.3"}
    assert str(again.allocate("c")) == "10.250.9.4"


def test_unsynced_release_is_written_by_the_next_save(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    ipam.allocate("a")
    ipam.release("a", sync=False)
    assert ipam.dirty and "a" in json.loads(ipam.path.read_text())["leases"]  # over-reserved only
    ipam.allocate("b")
    assert json.loads(ipam.path.read_text())["leases"] == {"b": "10.250.9.2"}


def test_load_missing_is_none_and_corrupt_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    assert Ipam.load(p) is None
    p.write_text("{not json")
    with pytest.raises(errdefs.Internal, match="ipam state"):
        Ipam.load(p)
    p.write_text(json.dumps({"bridge": "b", "subnet": "10.0.0.0/24", "leases": {"a": "10.0.0.1"}}))
    with pytest.raises(errdefs.Internal, match="outside the usable range"):
        Ipam.load(p)  # the gateway is never a lease


def test_duplicate_lease_on_disk_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(errdefs.Internal, match="leased twice"):
        Ipam(tmp_path / "x.json", "b", NET, {"a": "10.250.9.5", "b": "10.250.9.5"})


def test_reset_keeps_exactly_the_live_leases(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    for cid in "abcd":
        ipam.allocate(cid)
    dropped = ipam.reset({"b": "10.250.9.3", "z": "10.250.9.40", "other-net": "192.168.0.5"})
    assert sorted(dropped) == ["a", "c", "d"]
    assert ipam.leases == {"b": "10.250.9.3", "z": "10.250.9.40"}
    assert json.loads(ipam.path.read_text())["leases"] == ipam.leases
    assert str(ipam.allocate("n")) == "10.250.9.2"


def test_exhaustion_is_a_clear_error(tmp_path: Path) -> None:
    ipam = make(tmp_path, ipaddress.IPv4Network("10.250.9.0/29"))  # .2-.6 usable
    for i in range(5):
        ipam.allocate(str(i))
    with pytest.raises(errdefs.FailedPrecondition, match=r"no free address left in subnet 10\.250\.9\.0/29"):
        ipam.allocate("x")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=60))
def test_model_never_duplicates_and_always_lowest_free(tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[bool, int]]) -> None:
    ipam = make(tmp_path_factory.mktemp("ipam"), ipaddress.IPv4Network("10.250.9.0/28"))
    model: dict[str, int] = {}
    for alloc, n in ops:
        cid = f"c{n}"
        if alloc:
            got = int(ipam.allocate(cid).packed[-1])
            if cid not in model:
                free = [h for h in range(2, 15) if h not in model.values()]
                assert got == free[0]
                model[cid] = got
            assert got == model[cid]
        else:
            ipam.release(cid)
            model.pop(cid, None)
        values = list(ipam.leases.values())
        assert len(values) == len(set(values))
    ipam.save()
    reloaded = Ipam.load(ipam.path)
    assert reloaded is not None and reloaded.leases == ipam.leases


def test_a_wanted_address_is_leased_when_inside_the_subnet_and_free(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    assert str(ipam.allocate("a", want="10.250.9.200")) == "10.250.9.200"
    assert str(ipam.allocate("b")) == "10.250.9.2"  # the lowest free one is unaffected
    assert json.loads(ipam.path.read_text())["leases"]["a"] == "10.250.9.200"
    assert str(ipam.allocate("a", want="10.250.9.201")) == "10.250.9.200"  # its lease stays


@pytest.mark.parametrize(("want", "err", "msg"), [
    ("10.250.10.5", errdefs.InvalidArgument, "outside the network's subnet 10.250.9.0/24"),
    ("10.250.9.1", errdefs.InvalidArgument, "is the gateway address"),
    ("10.250.9.0", errdefs.InvalidArgument, "network or broadcast"),
    ("10.250.9.255", errdefs.InvalidArgument, "network or broadcast"),
    ("10.250.9.2", errdefs.AlreadyExists, "10.250.9.2 is already in use"),
    ("fd00::1", errdefs.InvalidArgument, "invalid IPv4 address"),
])
def test_a_wanted_address_that_cannot_be_had_is_one_error_and_no_lease(
    tmp_path: Path, want: str, err: type[Exception], msg: str
) -> None:
    ipam = make(tmp_path)
    ipam.allocate("taken")
    with pytest.raises(err, match=msg):
        ipam.allocate("b", want=want)
    assert ipam.leases == {"taken": "10.250.9.2"}
