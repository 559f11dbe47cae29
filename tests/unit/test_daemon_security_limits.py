"""--shm-size, --ulimit, --sysctl, --group-add, --pids-limit, --device-cgroup-rule: the create-time
checks (one InvalidArgument naming the field), the bundle they produce, and the record round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ctrctl import limits as cli_limits
from ctrctl.errors import UsageError
from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2 as pb
from daemon.containers.bundle import build_spec
from daemon.containers.record import host_config_from_json, host_config_to_json
from daemon.containers.validate import normalize
from daemon.security import limits
from daemon.security.limits import DEFAULT_PIDS_LIMIT, Ulimit
from tests.daemon_fakes import FakeImageConfig, write_rootfs_files
from tests.unit.test_daemon_record import make

CID = "0123456789ab" + "c" * 52


def host(**kw: Any) -> Any:
    return normalize(pb.ContainerSpec(image="busybox", **kw), "busybox", FakeImageConfig(), CID, ncpu=2).host_config


def test_values_are_recorded() -> None:
    h = host(shm_size=1 << 27, ulimits=[pb.Ulimit(name="nofile", soft=10, hard=20), pb.Ulimit(name="nofile", soft=5, hard=5)],
             sysctls={"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096", "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4"},
             group_add=["50", "staff", "50"], device_cgroup_rules=["c  1:3   rwm", "b *:* m", "a"])
    assert h.shm_size == 1 << 27
    assert h.ulimits == (Ulimit("nofile", 5, 5),)  # the last one given wins
    assert dict(h.sysctls)["kernel.sem"] == "1 2 3 4" and len(h.sysctls) == 4
    assert h.group_add == ("50", "staff")
    assert h.device_cgroup_rules == ("c 1:3 rwm", "b *:* m", "a")
    assert h.pids_limit == DEFAULT_PIDS_LIMIT and host(pids_limit=-1).pids_limit == -1 and host(pids_limit=7).pids_limit == 7


@pytest.mark.parametrize(("kw", "needle"), [
    ({"shm_size": -1}, "shm_size"),
    ({"pids_limit": -2}, "pids_limit"),
    ({"ulimits": [pb.Ulimit(name="nofiles", soft=1, hard=1)]}, "ulimits: invalid ulimit type 'nofiles'"),
    ({"ulimits": [pb.Ulimit(name="core", soft=-2, hard=1)]}, "ulimits: core"),
    ({"ulimits": [pb.Ulimit(name="nofile", soft=9, hard=8)]}, "ulimits: nofile: soft limit 9 is above"),
    ({"ulimits": [pb.Ulimit(name="nofile", soft=-1, hard=8)]}, "ulimits: nofile: soft limit -1"),
    ({"sysctls": {"vm.swappiness": "1"}}, "sysctls: vm.swappiness is not a namespaced sysctl"),
    ({"sysctls": {"kernel.hostname": "x"}}, "sysctls: kernel.hostname"),
    ({"sysctls": {"kernel.shm_next_id": "1"}}, "sysctls: kernel.shm_next_id"),
    ({"sysctls": {"fs.file-max": "1"}}, "sysctls: fs.file-max"),
    ({"sysctls": {"../x": "1"}}, "sysctls: invalid sysctl name"),
    ({"sysctls": {"net.core.somaxconn": "1\n2"}}, "sysctls: net.core.somaxconn: invalid value"),
    ({"sysctls": {"net.ipv4.ip_forward": "1"}, "network_mode": "host"}, "sysctls: net.ipv4.ip_forward: net.* sysctls"),
    ({"group_add": ["a:b"]}, "group_add: invalid group 'a:b'"),
    ({"group_add": ["99999999999"]}, "group_add: gid 99999999999"),
    ({"device_cgroup_rules": ["x 1:3 rwm"]}, "device_cgroup_rules: invalid device cgroup rule 'x 1:3 rwm'"),
    ({"device_cgroup_rules": ["c 1:3 rwx"]}, "device_cgroup_rules"),
    ({"device_cgroup_rules": ["c 1:3 rrw"]}, "device_cgroup_rules"),
    ({"device_cgroup_rules": ["c 1 rwm"]}, "device_cgroup_rules"),
])
def test_each_refusal_is_one_line_naming_the_field(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        host(**kw)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_bundle(tmp_path: Path) -> None:
    write_rootfs_files(tmp_path)  # /etc/group has staff:50
    c = make()
    c.host_config = dataclasses.replace(
        c.host_config, shm_size=1 << 27, ulimits=(Ulimit("nofile", 10, 20), Ulimit("core", -1, -1)),
        sysctls=(("kernel.shmmax", "4096"),), group_add=("4242", "staff"), pids_limit=-1,
        device_cgroup_rules=("c 10:200 rwm", "b *:* m", "a"))
    spec = build_spec(c, tmp_path, {}, "", "ctrd")
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert [o for o in shm["options"] if o.startswith("size=")] == [f"size={1 << 27}"]
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20},
                                          {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    assert spec["linux"]["sysctl"]["kernel.shmmax"] == "4096"
    assert spec["process"]["user"]["additionalGids"][-2:] == [4242, 50]
    res = spec["linux"]["resources"]
    assert res["pids"] == {"limit": -1}
    assert res["devices"][0] == {"allow": False, "access": "rwm"}  # docker's deny-all stays first
    assert res["devices"][-3:] == [{"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
                                   {"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"},
                                   {"allow": True, "type": "a", "access": "rwm"}]
    c.host_config = dataclasses.replace(c.host_config, group_add=("nosuch",))
    with pytest.raises(InvalidArgument, match="group_add: unable to find group nosuch"):
        build_spec(c, tmp_path, {}, "", "ctrd")


def test_defaults_in_the_bundle(tmp_path: Path) -> None:
    write_rootfs_files(tmp_path)
    c = make()
    spec = build_spec(c, tmp_path, {}, "", "ctrd")
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={64 << 20}" in shm["options"]
    assert "rlimits" not in spec["process"] and spec["linux"]["resources"]["pids"] == {"limit": 50}


def test_record_round_trip() -> None:
    h = dataclasses.replace(make().host_config, shm_size=1 << 27, ulimits=(Ulimit("nofile", 10, 20),),
                            sysctls=(("kernel.sem", "1 2 3 4"),), group_add=("50",), device_cgroup_rules=("a",))
    d = host_config_to_json(h)
    assert d["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 20}] and d["Sysctls"] == {"kernel.sem": "1 2 3 4"}
    assert host_config_from_json(d) == h
    default = make().host_config
    assert host_config_to_json(default)["ShmSize"] == limits.DEFAULT_SHM_SIZE
    assert host_config_from_json(host_config_to_json(default)) == default


def test_cli_parsing() -> None:
    assert cli_limits.parse_ulimit("nofile=10") == pb.Ulimit(name="nofile", soft=10, hard=10)
    assert cli_limits.parse_ulimit("nproc=10:-1") == pb.Ulimit(name="nproc", soft=10, hard=-1)
    assert cli_limits.parse_sysctl("kernel.sem=1 2 3 4") == ("kernel.sem", "1 2 3 4")
    assert cli_limits.parse_shm_size("1g") == 1 << 30
    assert cli_limits.parse_device_cgroup_rule(" c  1:3  rwm ") == "c 1:3 rwm"
    for fn, bad, flag in [(cli_limits.parse_ulimit, "nofile", "--ulimit"), (cli_limits.parse_ulimit, "nofile=x", "--ulimit"),
                          (cli_limits.parse_ulimit, "nofile=-5", "--ulimit"), (cli_limits.parse_sysctl, "net.x", "--sysctl"),
                          (cli_limits.parse_shm_size, "0", "--shm-size"), (cli_limits.parse_shm_size, "lots", "--shm-size"),
                          (cli_limits.parse_device_cgroup_rule, "c 1:3", "--device-cgroup-rule")]:
        with pytest.raises(UsageError, match=flag):
            fn(bad)  # type: ignore[operator]
