"""cgroup v1 and v2 managers against a fake cgroup filesystem (plain files in a temp dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import cgroup_v1, cgroupfs, cgroups, errors
from runtime.spec_resources import DeviceRule, Resources


@pytest.fixture(autouse=True)
def plain_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real cgroup files exist as soon as the directory does; plain directories need O_CREAT.
    def write(path: str, value: str) -> None:
        with open(path, "w") as f:
            f.write(value)

    monkeypatch.setattr(cgroupfs, "write", write)


def _v1(tmp: Path) -> cgroups.V1Cgroup:
    mounts = {c: str(tmp / c) for c in ("memory", "pids", "freezer", "cpu", "cpuacct", "devices")}
    return cgroups.V1Cgroup("/ctrd-t/c1", mounts)


def test_v1_create_writes_limits(tmp_path: Path) -> None:
    cg = _v1(tmp_path)
    rules = (DeviceRule(False, "a", -1, -1, "rwm"), DeviceRule(True, "c", 1, 3, "rwm"), DeviceRule(True, "c", 136, -1, "rwm"))
    cg.create(Resources(memory_limit=1 << 20, memory_swap=2 << 20, cpu_shares=512, cpu_quota=50000,
                        cpu_period=100000, pids_limit=7, devices=rules))
    leaf = tmp_path / "memory" / "ctrd-t" / "c1"
    assert (leaf / "memory.limit_in_bytes").read_text() == str(1 << 20)
    assert (tmp_path / "pids/ctrd-t/c1/pids.max").read_text() == "7"
    assert (tmp_path / "cpu/ctrd-t/c1/cpu.shares").read_text() == "512"
    assert (tmp_path / "cpu/ctrd-t/c1/cpu.cfs_quota_us").read_text() == "50000"
    assert (tmp_path / "devices/ctrd-t/c1/devices.allow").read_text() == "c 136:* rwm"  # last write wins here
    assert (tmp_path / "devices/ctrd-t/c1/devices.deny").read_text() == "a"
    assert sorted(cg.procs_files()) == sorted(f"{tmp_path}/{c}/ctrd-t/c1/cgroup.procs"
                                               for c in ("memory", "pids", "freezer", "cpu", "cpuacct", "devices"))


def test_v1_existing_leaf_means_the_id_is_taken_and_nothing_is_left(tmp_path: Path) -> None:
    cg = _v1(tmp_path)
    (tmp_path / "pids/ctrd-t/c1").mkdir(parents=True)
    with pytest.raises(errors.ContainerExists):
        cg.create(Resources())
    assert not (tmp_path / "memory/ctrd-t/c1").exists()
    assert (tmp_path / "pids/ctrd-t/c1").exists()  # someone else's: untouched


def test_v1_freeze_thaw_and_stats(tmp_path: Path) -> None:
    cg = _v1(tmp_path)
    cg.create(Resources())
    cg.freeze()
    assert cg.frozen()
    cg.thaw()
    assert not cg.frozen()
    (tmp_path / "memory/ctrd-t/c1/memory.usage_in_bytes").write_text("4096\n")
    (tmp_path / "memory/ctrd-t/c1/memory.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "memory/ctrd-t/c1/memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (tmp_path / "cpuacct/ctrd-t/c1/cpuacct.usage").write_text("123\n")
    (tmp_path / "pids/ctrd-t/c1/pids.current").write_text("3\n")
    (tmp_path / "pids/ctrd-t/c1/pids.max").write_text("max\n")
    (tmp_path / "pids/ctrd-t/c1/cgroup.procs").write_text("10\n11\n")
    assert cg.stats() == cgroups.Stats(memory_usage=4096, memory_limit=0, cpu_usage_ns=123, pids_current=3,
                                       pids_limit=0, oom_kills=2)
    assert cg.pids() == [10, 11]


def test_v1_memory_limit_without_controller_is_an_error(tmp_path: Path) -> None:
    cg = cgroups.V1Cgroup("/ctrd-t/c2", {"pids": str(tmp_path / "pids")})
    with pytest.raises(errors.CgroupError, match="memory controller"):
        cg.create(Resources(memory_limit=1 << 20))
    assert not (tmp_path / "pids/ctrd-t/c2").exists()


def _v2(tmp: Path, controllers: str = "cpu memory pids") -> cgroups.V2Cgroup:
    (tmp / "cgroup.controllers").write_text(controllers + "\n")
    (tmp / "ctrd-t").mkdir()
    (tmp / "ctrd-t" / "cgroup.controllers").write_text(controllers + "\n")
    return cgroups.V2Cgroup("/ctrd-t/c1", root=str(tmp))


def test_v2_delegates_controllers_and_writes_limits(tmp_path: Path) -> None:
    cg = _v2(tmp_path)
    cg.create(Resources(memory_limit=1 << 20, pids_limit=-1, cpu_shares=1024, cpu_quota=50000, cpu_period=100000))
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (tmp_path / "ctrd-t/cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    leaf = tmp_path / "ctrd-t/c1"
    assert (leaf / "memory.max").read_text() == str(1 << 20)
    assert (leaf / "pids.max").read_text() == "max"
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "cpu.weight").read_text() == str(1 + (1022 * 9999) // 262142)


def test_v2_missing_controller_is_refused(tmp_path: Path) -> None:
    cg = _v2(tmp_path, controllers="cpu")
    with pytest.raises(errors.CgroupError, match="controller memory is not available"):
        cg.create(Resources(memory_limit=1 << 20))
    assert not (tmp_path / "ctrd-t/c1").exists()


def test_v2_no_limits_needs_no_controllers_and_freezes(tmp_path: Path) -> None:
    cg = _v2(tmp_path, controllers="")
    cg.create(Resources())
    leaf = tmp_path / "ctrd-t/c1"
    (leaf / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    cg.freeze()
    assert (leaf / "cgroup.freeze").read_text() == "1"
    assert cg.frozen()
    cg.thaw()
    assert (leaf / "cgroup.freeze").read_text() == "0"
    (leaf / "memory.events").write_text("low 0\noom 1\noom_kill 1\n")
    (leaf / "cpu.stat").write_text("usage_usec 5\n")
    st = cg.stats()
    assert (st.oom_kills, st.cpu_usage_ns) == (1, 5000)


def test_for_path_picks_v1_on_a_hybrid_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(cgroup_v1, "_V1_MOUNTS", {"pids": str(tmp_path / "pids")})
    assert cgroups.for_path("/ctrd/x").kind == "v1"
    (tmp_path / "cgroup.controllers").write_text("")
    assert cgroups.for_path("/ctrd/x").kind == "v2"
