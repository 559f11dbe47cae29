"""--security-opt, --privileged, --device and docker's default seccomp profile in the bundle."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2 as pb
from daemon.containers.bundle import build_spec
from daemon.containers.record import host_config_from_json, host_config_to_json
from daemon.security import options, seccomp_default
from daemon.security import seccomp as dsec
from daemon.security.devices import DeviceMapping
from runtime import seccomp as rseccomp
from tests.daemon_fakes import write_rootfs_files
from tests.unit.test_daemon_record import make
from tests.unit.test_daemon_validate import norm


def spec_for(tmp_path: Path, **host: Any) -> dict[str, Any]:
    rootfs = tmp_path / "merged"
    write_rootfs_files(rootfs)
    c = make()
    c.host_config = dataclasses.replace(c.host_config, **host)
    return build_spec(c, rootfs, {}, "", "ctrd")


def allowed(seccomp: dict[str, Any]) -> set[str]:
    """Names allowed without argument conditions."""
    return {n for r in seccomp["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}


def test_default_profile_is_written_into_the_bundle(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, cap_add=(), cap_drop=())
    sc = spec["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO" and sc["defaultErrnoRet"] == 1
    assert sc["architectures"][0] == dsec.native_arch()[1]
    ok = allowed(sc)
    assert len(set(seccomp_default.ALWAYS)) > 350
    assert set(seccomp_default.ALWAYS) <= ok
    assert "chroot" in ok  # CAP_SYS_CHROOT is one of docker's 14
    for never in ("keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "kexec_load", "mount",
                  "unshare", "setns", "bpf", "perf_event_open", "pivot_root"):
        assert never not in ok, never
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in sc["syscalls"]
    rseccomp.parse(sc)  # the runtime accepts what the daemon writes
    assert spec["process"]["noNewPrivileges"] is False


def test_capability_conditional_rules_follow_cap_add_and_cap_drop(tmp_path: Path) -> None:
    admin = spec_for(tmp_path, cap_add=("CAP_SYS_ADMIN", "CAP_SYS_PTRACE"))["linux"]["seccomp"]
    ok = allowed(admin)
    assert {"mount", "unshare", "setns", "clone", "clone3", "kcmp", "pidfd_getfd"} <= ok
    assert not any(r["names"] == ["clone3"] and r["action"] == "SCMP_ACT_ERRNO" for r in admin["syscalls"])
    assert "keyctl" not in ok
    dropped = spec_for(tmp_path, cap_drop=("ALL",))["linux"]["seccomp"]
    assert "chroot" not in allowed(dropped)


def test_resolve_honours_arches_and_min_kernel() -> None:
    p = seccomp_default.profile()
    old = dsec.resolve(p, [], machine=("amd64", "SCMP_ARCH_X86_64"), kernel=(4, 4))
    new = dsec.resolve(p, [], machine=("amd64", "SCMP_ARCH_X86_64"), kernel=(6, 1))
    assert "ptrace" not in allowed(old) and "ptrace" in allowed(new)
    assert "arch_prctl" in allowed(new)
    arm = dsec.resolve(p, [], machine=("arm64", "SCMP_ARCH_AARCH64"), kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in allowed(arm) and "set_tls" in allowed(arm)
    with pytest.raises(InvalidArgument, match="either 'architectures' or 'archMap'"):
        dsec.resolve({**p, "architectures": ["SCMP_ARCH_X86_64"]}, [])


def test_unconfined_and_privileged(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, security_opt=("seccomp=unconfined",))
    assert "seccomp" not in spec["linux"]
    assert spec["linux"]["maskedPaths"]  # only seccomp is lifted
    priv = spec_for(tmp_path, privileged=True)
    assert "seccomp" not in priv["linux"]
    caps = priv["process"]["capabilities"]
    assert "CAP_SYS_ADMIN" in caps["bounding"] and caps["bounding"] == caps["effective"]
    assert caps["bounding"] == options.own_capabilities()
    assert priv["linux"]["maskedPaths"] == [] and priv["linux"]["readonlyPaths"] == []
    by_dest = {m["destination"]: m for m in priv["mounts"]}
    assert "ro" not in by_dest["/sys"]["options"] and "ro" not in by_dest["/sys/fs/cgroup"]["options"]
    assert priv["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert any(d["path"] == "/dev/null" for d in priv["linux"]["devices"])


def test_custom_profile_and_no_new_privileges(tmp_path: Path) -> None:
    mine = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    spec = spec_for(tmp_path, security_opt=(f"seccomp={json.dumps(mine)}", "no-new-privileges=true"))
    assert spec["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW",
                                        "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    assert spec["process"]["noNewPrivileges"] is True


def test_device_mapping(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, devices=(DeviceMapping("/dev/null", "/dev/mynull", "rw"),))
    assert {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3}.items() <= spec["linux"]["devices"][-1].items()
    assert spec["linux"]["resources"]["devices"][-1] == {"allow": True, "type": "c", "major": 1, "minor": 3,
                                                         "access": "rw"}


@pytest.mark.parametrize(("kw", "needle"), [
    ({"security_opt": ["seccomp"]}, "seccomp needs a value"),
    ({"security_opt": ["seccomp={not json"]}, "not valid json"),
    ({"security_opt": ['seccomp={"defaultAction": "SCMP_ACT_NOPE"}']}, "seccomp.defaultAction: unknown action"),
    ({"security_opt": ['seccomp={"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], '
                      '"action": "SCMP_ACT_ALLOW"}, {"names": ["b"], "action": "X"}]}']},
     "seccomp.syscalls[1].action: unknown action"),
    ({"security_opt": ["no-new-privileges=maybe"]}, "no-new-privileges"),
    ({"security_opt": ["apparmor=docker-default"]}, "no AppArmor profile"),
    ({"security_opt": ["label=type:svirt_t"]}, "no SELinux labels"),
    ({"security_opt": ["bogus=1"]}, "invalid option"),
    ({"devices": [pb.DeviceMapping(path_on_host="/dev/nope-nothing")]}, "error gathering device information"),
    ({"devices": [pb.DeviceMapping(path_on_host="/etc/hostname")]}, "not a device node"),
    ({"devices": [pb.DeviceMapping(path_on_host="/dev/null", cgroup_permissions="rwx")]}, "invalid device permissions"),
    ({"devices": [pb.DeviceMapping(path_on_host="/dev/null", path_in_container="rel")]}, "not an absolute path"),
])
def test_refusals_are_one_invalid_argument(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        norm(**kw)
    assert needle in exc.value.message
    assert exc.value.message.split(":")[0] in ("security_opt", "devices")


def test_options_are_normalised_and_survive_the_record() -> None:
    n = norm(security_opt=["no-new-privileges", "seccomp=unconfined", "apparmor=unconfined"], privileged=True,
             devices=[pb.DeviceMapping(path_on_host="/dev/null")])
    h = n.host_config
    assert h.security_opt == ("no-new-privileges=true", "seccomp=unconfined", "apparmor=unconfined")
    assert h.devices == (DeviceMapping("/dev/null", "/dev/null", "rwm"),)
    back = host_config_from_json(json.loads(json.dumps(host_config_to_json(h))))
    assert back == h
    assert options.parse(h.security_opt) == options.Options("unconfined", True)
