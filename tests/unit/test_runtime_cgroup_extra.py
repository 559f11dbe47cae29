"""hugetlb, net_cls/net_prio, swappiness, the OOM switch and `unified`: parsed with the field
named on bad input, written to the right files, and refused (never dropped) where the host
cannot honour them."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroup_extra import apply_v1, apply_v2
from runtime.errors import CgroupError, SpecError
from runtime.spec_extra import Extra, extra_from_oci

FULL = {
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
    "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
    "memory": {"swappiness": 0, "disableOOMKiller": True},
}


def _files(d: Path, *names: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        (d / n).write_text("")


def test_parse_keeps_zero_swappiness_and_every_field() -> None:
    e = extra_from_oci(FULL)
    assert e == Extra(hugepage_limits=(("2MB", 4194304),), net_class_id=1048577, net_priorities=(("eth0", 5),),
                      swappiness=0, oom_kill_disable=True)
    assert not extra_from_oci({})


@pytest.mark.parametrize(("r", "field"), [
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize"),
    ({"hugepageLimits": [{"pageSize": "2MB"}]}, "linux.resources.hugepageLimits[0].limit"),
    ({"network": {"priorities": [{"name": "a/b", "priority": 1}]}}, "linux.resources.network.priorities[0].name"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"memory": {"disableOOMKiller": "yes"}}, "linux.resources.memory.disableOOMKiller"),
    ({"unified": {"../x": "1"}}, "linux.resources.unified.../x"),
])
def test_bad_values_name_their_field(r: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as err:
        extra_from_oci(r)
    assert f": {field}: " in str(err.value)


def test_v1_writes_each_controller_file(tmp_path: Path) -> None:
    paths = {c: str(tmp_path / c) for c in ("hugetlb", "net_cls", "net_prio", "memory")}
    _files(tmp_path / "hugetlb", "hugetlb.2MB.limit_in_bytes")
    _files(tmp_path / "net_cls", "net_cls.classid")
    _files(tmp_path / "net_prio", "net_prio.ifpriomap")
    _files(tmp_path / "memory", "memory.swappiness", "memory.oom_control")
    apply_v1(paths, extra_from_oci(FULL))
    assert (tmp_path / "hugetlb/hugetlb.2MB.limit_in_bytes").read_text() == "4194304"
    assert (tmp_path / "net_cls/net_cls.classid").read_text() == "1048577"
    assert (tmp_path / "net_prio/net_prio.ifpriomap").read_text() == "eth0 5"
    assert (tmp_path / "memory/memory.swappiness").read_text() == "0"
    assert (tmp_path / "memory/memory.oom_control").read_text() == "1"


@pytest.mark.parametrize(("r", "field"), [
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}, "linux.resources.hugepageLimits"),
    ({"network": {"classID": 7}}, "linux.resources.network.classID"),
    ({"unified": {"memory.high": "1G"}}, "linux.resources.unified"),
])
def test_v1_without_the_controller_refuses_naming_the_field(tmp_path: Path, r: dict[str, object], field: str) -> None:
    with pytest.raises(CgroupError) as err:
        apply_v1({"memory": str(tmp_path)}, extra_from_oci(r))
    assert f"cgroup: {field}: " in str(err.value)


def test_v1_unknown_page_size_is_refused(tmp_path: Path) -> None:
    _files(tmp_path / "hugetlb", "hugetlb.2MB.limit_in_bytes")
    with pytest.raises(CgroupError, match="no 1GB huge pages"):
        apply_v1({"hugetlb": str(tmp_path / "hugetlb")}, extra_from_oci({"hugepageLimits": [{"pageSize": "1GB", "limit": 0}]}))


def test_v2_writes_unified_and_hugetlb_and_refuses_v1_only_fields(tmp_path: Path) -> None:
    _files(tmp_path, "memory.high", "hugetlb.2MB.max")
    apply_v2(str(tmp_path), extra_from_oci({"unified": {"memory.high": "1073741824"},
                                            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}))
    assert (tmp_path / "memory.high").read_text() == "1073741824"
    assert (tmp_path / "hugetlb.2MB.max").read_text() == "0"
    for r, field in (({"network": {"classID": 1}}, "linux.resources.network"),
                     ({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
                     ({"unified": {"io.weight": "10"}}, "linux.resources.unified.io.weight")):
        with pytest.raises(CgroupError) as err:
            apply_v2(str(tmp_path), extra_from_oci(r))
        assert f"cgroup: {field}: " in str(err.value)
