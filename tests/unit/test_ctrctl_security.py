"""ctrctl's --security-opt, --privileged, --device and --cap-add/--cap-drop flags -> ContainerSpec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctrctl.errors import UsageError
from ctrctl.parser import build
from ctrctl.spec import build_spec
from ctrd.v1 import container_pb2


def spec(*argv: str) -> container_pb2.ContainerSpec:
    return build_spec(build(["run"]).parse_args(["run", *argv]), {})


def test_security_flags_reach_the_spec(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}, indent=4))
    s = spec("--security-opt", "seccomp=unconfined", "--security-opt", f"seccomp={profile}",
             "--security-opt", "no-new-privileges", "--privileged", "--cap-add", "sys_admin", "--cap-drop", "ALL",
             "--device", "/dev/fuse", "--device", "/dev/null:/dev/n2:r", "--device", "/dev/zero:rw", "busybox")
    assert list(s.security_opt) == ["seccomp=unconfined", 'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}',
                                     "no-new-privileges"]
    assert s.privileged
    assert list(s.cap_add) == ["sys_admin"] and list(s.cap_drop) == ["ALL"]
    assert [(d.path_on_host, d.path_in_container, d.cgroup_permissions) for d in s.devices] == [
        ("/dev/fuse", "", "rwm"), ("/dev/null", "/dev/n2", "r"), ("/dev/zero", "", "rw")]


@pytest.mark.parametrize("argv", [
    ("--security-opt", "seccomp=/nonexistent/profile.json"),
    ("--device", "dev/null"),
    ("--device", "/dev/null:/x:rwx"),
    ("--device", "/dev/null:rel:r"),
    ("--device", "/a:/b:r:extra"),
])
def test_bad_values_are_usage_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError):
        spec(*argv, "busybox")


def test_bad_profile_json_is_refused_by_the_client(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(UsageError, match="not valid json"):
        spec("--security-opt", f"seccomp={bad}", "busybox")
