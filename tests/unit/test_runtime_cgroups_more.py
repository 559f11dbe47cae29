"""cpuset and blkio without root: the spec fields (each bad one named), cpus/mems inherited down a
fake cpuset hierarchy, blkio files chosen as runc chooses them, a weight the kernel has no file
for is an error; v2's io weight conversion; the unified hierarchy joined but not shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import cgroup_v1_more, cgroup_v2_io, cgroupfs, cgroups, errors
from runtime.spec_blkio import BlockIO, DeviceValue
from runtime.spec_resources import Resources, resources_from_oci


@pytest.fixture(autouse=True)
def plain_files(monkeypatch: pytest.MonkeyPatch) -> None:
    def write(path: str, value: str) -> None:
        with open(path, "w") as f:
            f.write(value)

    monkeypatch.setattr(cgroupfs, "write", write)


def test_resources_parse_cpuset_and_blkio() -> None:
    r = resources_from_oci({"cpu": {"cpus": "0-1,3", "mems": "0"}, "blockIO": {
        "weight": 300, "leafWeight": 20, "weightDevice": [{"major": 8, "minor": 0, "weight": 50}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}]}})
    assert (r.cpu_cpus, r.cpu_mems) == ("0-1,3", "0")
    assert r.blkio == BlockIO(300, 20, (DeviceValue(8, 0, 50),),
                              (("throttleReadBpsDevice", (DeviceValue(8, 0, 100),)),))
    assert not resources_from_oci({"cpu": {"cpus": ""}, "blockIO": {}}).blkio


@pytest.mark.parametrize("raw, field", [
    ({"cpu": {"cpus": "0-a"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"mems": 1}}, "linux.resources.cpu.mems"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
    ({"blockIO": {"weightDevice": [{"major": 8, "weight": 100}]}}, "linux.resources.blockIO.weightDevice[0].minor"),
    ({"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": -1}]}},
     "linux.resources.blockIO.throttleWriteIOPSDevice[0].rate"),
])
def test_resources_name_the_bad_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(errors.SpecError) as e:
        resources_from_oci(raw)
    assert e.value.field == field


def _cpuset_root(tmp: Path) -> Path:
    root = tmp / "cpuset"
    root.mkdir()
    (root / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset.mems").write_text("0\n")
    return root


def test_cpuset_parents_and_leaf_inherit_unless_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _cpuset_root(tmp_path)
    # A real cpuset directory is born with empty cpus/mems files.
    real_mkdir = cgroup_v1_more.os.mkdir

    def mkdir(path: str, mode: int = 0o777) -> None:
        real_mkdir(path, mode)
        for name in ("cpuset.cpus", "cpuset.mems"):
            Path(path, name).write_text("")

    monkeypatch.setattr(cgroup_v1_more.os, "mkdir", mkdir)
    monkeypatch.setattr(cgroupfs.os, "mkdir", mkdir)
    cg = cgroups.V1Cgroup("/a/b/c1", {"cpuset": str(root)})
    cg.create(Resources(cpu_cpus="1"))
    assert (root / "a/cpuset.cpus").read_text() == "0-1" and (root / "a/b/cpuset.mems").read_text() == "0"
    assert (root / "a/b/c1/cpuset.cpus").read_text() == "1"
    assert (root / "a/b/c1/cpuset.mems").read_text() == "0"  # inherited: no mems in the spec


def test_cpus_without_a_cpuset_hierarchy_is_an_error(tmp_path: Path) -> None:
    cg = cgroups.V1Cgroup("/a/c1", {"pids": str(tmp_path / "pids")})
    with pytest.raises(errors.CgroupError, match="cpuset controller is not mounted"):
        cg.create(Resources(cpu_cpus="0"))
    assert not (tmp_path / "pids/a/c1").exists()  # nothing half-created


def test_blkio_prefers_bfq_then_plain_then_refuses(tmp_path: Path) -> None:
    b = BlockIO(weight=400, throttle=(("throttleWriteBpsDevice", (DeviceValue(8, 0, 9),)),))
    (tmp_path / "blkio.bfq.weight").write_text("")
    (tmp_path / "blkio.weight").write_text("")
    cgroup_v1_more.apply_blkio(str(tmp_path), b)
    assert (tmp_path / "blkio.bfq.weight").read_text() == "400" and (tmp_path / "blkio.weight").read_text() == ""
    assert (tmp_path / "blkio.throttle.write_bps_device").read_text() == "8:0 9"
    (tmp_path / "blkio.bfq.weight").unlink()
    cgroup_v1_more.apply_blkio(str(tmp_path), b)
    assert (tmp_path / "blkio.weight").read_text() == "400"
    (tmp_path / "blkio.weight").unlink()
    with pytest.raises(errors.CgroupError, match=r"no blkio\.weight .*cannot be honoured"):
        cgroup_v1_more.apply_blkio(str(tmp_path), b)


def test_v2_io_weight_conversion_and_max(tmp_path: Path) -> None:
    assert (cgroup_v2_io.weight_v2(10), cgroup_v2_io.weight_v2(1000), cgroup_v2_io.weight_v2(500)) == (1, 10000, 4950)
    (tmp_path / "io.weight").write_text("")
    cgroup_v2_io.apply(str(tmp_path), BlockIO(weight=1000, throttle=(("throttleReadIOPSDevice", (DeviceValue(8, 0, 5),)),)))
    assert (tmp_path / "io.weight").read_text() == "default 10000"
    assert (tmp_path / "io.max").read_text() == "8:0 riops=5"
    with pytest.raises(errors.CgroupError, match="leafWeight"):
        cgroup_v2_io.apply(str(tmp_path), BlockIO(leaf_weight=100))


def test_unified_hierarchy_is_joined_not_mounted(tmp_path: Path) -> None:
    cg = cgroups.V1Cgroup("/a/c1", {"pids": str(tmp_path / "pids"), "unified": str(tmp_path / "unified")})
    cg.create(Resources())
    assert sorted(cg.procs_files()) == [f"{tmp_path}/pids/a/c1/cgroup.procs", f"{tmp_path}/unified/a/c1/cgroup.procs"]
    assert cgroups.mount_sources(cg) == [("pids", f"{tmp_path}/pids/a/c1")]
