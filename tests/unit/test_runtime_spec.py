"""config.json parsing and validation: every refusal names its field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import caps, defaults, errors, spec_resources, spec_rootfs
from runtime import spec as spec_mod
from runtime import syscalls as sc
from runtime.spec_process import ProcessSpec


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def parse(bundle: Path, obj: dict[str, Any]) -> spec_mod.Spec:
    return spec_mod.parse(obj, str(bundle))


def test_default_spec_parses_to_dockers_defaults(bundle: Path) -> None:
    s = parse(bundle, defaults.default_spec(["sh", "-c", "true"]))
    assert s.root == str(bundle / "rootfs")
    assert s.process.args == ("sh", "-c", "true")
    assert s.process.capabilities is not None
    assert set(s.process.capabilities.effective) == set(defaults.CAPABILITIES)
    assert s.process.capabilities.inheritable == () and s.process.capabilities.ambient == ()
    assert {n.type for n in s.namespaces} == {"pid", "network", "ipc", "uts", "mount"}
    assert "/proc/kcore" in s.masked_paths and "/proc/sysrq-trigger" in s.readonly_paths
    shm = next(m for m in s.mounts if m.destination == "/dev/shm")
    assert shm.flags == sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV
    assert shm.data == f"mode=1777,size={64 << 20}"
    sysfs = next(m for m in s.mounts if m.destination == "/sys")
    assert sysfs.flags & sc.MS_RDONLY
    n = len(defaults.DEVICE_RULES)
    assert s.resources.devices[0].allow is False and s.resources.devices[n - 1].major == 10
    assert s.resources.devices[n:] == spec_resources.RUNTIME_DEVICES


def test_deny_all_keeps_the_nodes_the_runtime_creates(bundle: Path) -> None:
    # `runc spec` writes only "deny all"; the init must still be able to mknod /dev/null etc.
    obj = defaults.default_spec(["true"])
    obj["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    rules = parse(bundle, obj).resources.devices
    assert rules[0].allow is False and rules[0].type == "a"
    assert {(r.major, r.minor) for r in rules[1:] if r.allow} >= {(1, 3), (1, 5), (1, 9), (5, 2), (136, -1)}


def test_no_device_rules_leaves_the_devices_cgroup_alone(bundle: Path) -> None:
    obj = defaults.default_spec(["true"])
    obj["linux"]["resources"] = {}
    assert parse(bundle, obj).resources.devices == ()


def test_docker_capability_mask() -> None:
    assert caps.mask(defaults.CAPABILITIES) == 0xA80425FB


def test_load_reports_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(errors.SpecError, match="does not exist"):
        spec_mod.load(str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(errors.SpecError, match="not valid json"):
        spec_mod.load(str(tmp_path))


BAD: list[tuple[str, Any, str]] = [
    ("process.args", lambda s: s["process"].update(args=[]), "must not be empty"),
    ("process.args", lambda s: s["process"].update(args="sh"), "list of strings"),
    ("process.cwd", lambda s: s["process"].update(cwd="relative"), "not an absolute path"),
    ("process.env[0]", lambda s: s["process"].update(env=["NOEQUALS"]), "KEY=value"),
    ("process.user.uid", lambda s: s["process"].update(user={"uid": 2**31, "gid": 0}), "not an id"),
    ("process.user.gid", lambda s: s["process"].update(user={"uid": 0, "gid": -1}), "not an id"),
    ("process.capabilities.bounding", lambda s: s["process"]["capabilities"]["bounding"].append("CAP_NOPE"),
     "unknown capability"),
    ("process.rlimits[0].type", lambda s: s["process"].update(rlimits=[{"type": "RLIMIT_X", "soft": 1, "hard": 1}]),
     "unknown rlimit"),
    ("process.rlimits[0]", lambda s: s["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}]),
     "soft limit"),
    ("process.oomScoreAdj", lambda s: s["process"].update(oomScoreAdj=5000), "-1000..1000"),
    ("linux.namespaces[5].type", lambda s: s["linux"]["namespaces"].append({"type": "bogus"}), "unknown namespace"),
    ("linux.namespaces[5].type", lambda s: s["linux"]["namespaces"].append({"type": "pid"}), "duplicate"),
    ("linux.uidMappings", lambda s: s["linux"]["namespaces"].append({"type": "user"}), "needs uid and gid mappings"),
    ("linux.uidMappings", lambda s: s["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "need a user namespace"),
    ("linux.uidMappings", lambda s: (s["linux"]["namespaces"].append({"type": "user"}), s["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 5, "hostID": 1, "size": 1}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])), "overlap"),
    ("linux.namespaces[5].path", lambda s: s["linux"]["namespaces"].append({"type": "cgroup", "path": "rel"}),
     "absolute"),
    ("linux.cgroupsPath", lambda s: s["linux"].update(cgroupsPath="/ctrd/../../etc"), "not a cgroup path"),
    ("hostname", lambda s: s.update(hostname="h") or s["linux"].update(namespaces=[{"type": "mount"}]),
     "uts namespace"),
    ("root.path", lambda s: s["root"].update(path="missing"), "does not exist"),
    ("mounts[7].destination", lambda s: s["mounts"].append({"destination": "rel", "type": "tmpfs"}), "absolute"),
    ("mounts[7].destination", lambda s: s["mounts"].append({"destination": "/proc/sys", "type": "tmpfs"}),
     "procfs"),
    ("mounts[7].destination", lambda s: s["mounts"].append({"destination": "/proc//sys", "type": "bind",
                                                            "source": "/tmp", "options": ["rbind"]}), "procfs"),
    ("linux.resources.memory.limit", lambda s: s["linux"]["resources"].update(memory={"limit": -5}), "positive"),
    ("linux.resources.pids.limit", lambda s: s["linux"]["resources"].update(pids={"limit": "x"}), "positive"),
    ("linux.sysctl.a/b", lambda s: s["linux"].update(sysctl={"a/b": "1"}), "dotted key"),
    ("linux.sysctl.vm.swappiness", lambda s: s["linux"].update(sysctl={"vm.swappiness": "1"}), "not a namespaced"),
    ("linux.sysctl.net.ipv4.ip_forward", lambda s: s["linux"].update(
        sysctl={"net.ipv4.ip_forward": "1"}, namespaces=[{"type": "mount"}]), "needs its own network namespace"),
    ("linux.sysctl.kernel.msgmax", lambda s: s["linux"].update(
        sysctl={"kernel.msgmax": "1"}, namespaces=[{"type": "mount"}]), "needs its own ipc namespace"),
]


@pytest.mark.parametrize(("field", "mutate", "problem"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_invalid_values_name_their_field(bundle: Path, field: str, mutate: Any, problem: str) -> None:
    obj = copy.deepcopy(defaults.default_spec(["true"]))
    mutate(obj)
    with pytest.raises(errors.SpecError) as ei:
        parse(bundle, obj)
    assert ei.value.field == field
    assert problem in str(ei.value)
    assert str(ei.value).startswith(f"config.json: {field}: ")


def test_unknown_fields_are_ignored(bundle: Path) -> None:
    obj = defaults.default_spec(["true"])
    obj["futureField"] = {"x": 1}
    obj["process"]["somethingNew"] = True
    assert parse(bundle, obj).process.args == ("true",)


def test_lxcfs_style_binds_under_proc_are_allowed(bundle: Path) -> None:
    obj = defaults.default_spec(["true"])
    obj["mounts"].append({"destination": "/proc/meminfo", "type": "bind", "source": "/tmp/meminfo", "options": ["bind"]})
    assert parse(bundle, obj).mounts[-1].destination == "/proc/meminfo"


def test_mount_options() -> None:
    flags, clear, prop, data = spec_rootfs.parse_mount_options(["rbind", "ro", "nosuid", "rw", "rslave", "size=1m"])
    assert flags == sc.MS_BIND | sc.MS_REC | sc.MS_NOSUID
    assert clear & sc.MS_RDONLY
    assert prop == (sc.MS_SLAVE | sc.MS_REC,)
    assert data == "size=1m"


def test_process_from_oci_for_exec() -> None:
    p = ProcessSpec.from_oci({"args": ["ls"], "cwd": "/tmp", "user": {"uid": 5, "gid": 6, "additionalGids": [7]},
                              "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
                              "noNewPrivileges": True, "oomScoreAdj": 10})
    assert (p.uid, p.gid, p.additional_gids, p.no_new_privileges, p.oom_score_adj) == (5, 6, (7,), True, 10)
    assert p.capabilities is None
    assert p.rlimits[0].soft == 100
    with pytest.raises(errors.SpecError, match=r"process\.cwd"):
        ProcessSpec.from_oci({"args": ["ls"], "cwd": "x"})


def test_default_spec_is_json_serialisable() -> None:
    assert json.loads(json.dumps(defaults.default_spec(["a"], rootfs="/r")))["root"]["path"] == "/r"
