"""The escape catalogue as named regression tests, through ctrctl and a real ctrd: what issue 17
found by probing ctrd as an attacker would, and docker's answers to the same probes.

`secprobe:1` is a busybox rootfs plus a static syscall probe (tests/syscall_probe.c) imported
with `ctrctl image import`; `probe NAME...` prints NAME=errno (0 = the call ran).
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from tests import probes
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import ctl
from tests.rootfs import make_busybox_rootfs

pytestmark = pytest.mark.root

EPERM, ENOSYS = 1, 38
IMAGE = "secprobe:1"
KERNEL_SURFACE = ("mount", "bpf", "userfaultfd", "perf_event_open", "io_uring_setup", "kexec_load", "setns",
                  "unshare_user", "clone_newuser", "socket_alg")


def with_probe_image(d: DaemonProc, tmp: Path) -> None:
    root = make_busybox_rootfs(tmp / "probe-rootfs")
    probes.build(root / "bin" / "probe")
    tar = tmp / "probe.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    r = ctl(d, "image", "import", str(tar), IMAGE)
    assert r.returncode == 0, r.stderr


def run(d: DaemonProc, *args: str) -> tuple[int, str]:
    r = ctl(d, "run", "--rm", "--network", "none", *args)
    return r.returncode, r.stdout + r.stderr


def status_field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {out!r}")


def test_default_container_runs_in_seccomp_filter_mode(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert code == 0, out
    assert status_field(out, "Seccomp") == "2"


def test_nested_user_namespace_is_refused(ctrd: DaemonProc) -> None:  # noqa: F811
    """Issue 17: `unshare -U -r id` printed uid=0 with every capability."""
    code, out = run(ctrd, "busybox", "unshare", "-U", "-r", "id")
    assert code != 0
    assert "uid=0" not in out


def test_host_keyrings_are_refused(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    """Issue 17: a container's root read and wrote host root's user keyring (keyctl/add_key on @u)."""
    with_probe_image(ctrd, short_tmp)
    code, out = run(ctrd, IMAGE, "probe", "keyctl", "add_key")
    assert code == 0, out
    assert probes.parse(out) == {"keyctl": EPERM, "add_key": EPERM}


def test_kernel_attack_surface_is_refused(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    with_probe_image(ctrd, short_tmp)
    code, out = run(ctrd, IMAGE, "probe", *KERNEL_SURFACE, "clone3", "getpid", "clone", "socket_unix")
    assert code == 0, out
    got = probes.parse(out)
    assert {k: got[k] for k in KERNEL_SURFACE} == dict.fromkeys(KERNEL_SURFACE, EPERM)
    assert got["clone3"] == ENOSYS  # so libc falls back to clone
    assert got["getpid"] == got["clone"] == got["socket_unix"] == 0


def test_seccomp_unconfined_lifts_the_filter(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    with_probe_image(ctrd, short_tmp)
    code, out = run(ctrd, "--security-opt", "seccomp=unconfined", IMAGE, "sh", "-c",
                    "grep Seccomp: /proc/self/status; probe keyctl unshare_user clone3")
    assert code == 0, out
    assert status_field(out, "Seccomp") == "0"
    got = probes.parse(out)
    assert got["keyctl"] == 0 and got["unshare_user"] == 0 and got["clone3"] != ENOSYS


def test_custom_profile_file(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    profile = short_tmp / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    code, out = run(ctrd, "--security-opt", f"seccomp={profile}", "busybox", "sh", "-c",
                    "mkdir /x || echo REFUSED; unshare -U true && echo UNSHARED")
    assert code == 0, out
    assert "REFUSED" in out and "Permission denied" in out
    assert "UNSHARED" in out  # only what the profile names is refused
    bad = short_tmp / "bad.json"
    bad.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW"}, {"names": ["b"], "action": "SCMP_ACT_WHAT"}]}))
    r = ctl(ctrd, "run", "--rm", "--security-opt", f"seccomp={bad}", "busybox", "true")
    assert r.returncode == 125
    assert r.stderr.count("\n") == 1 and "syscalls[1].action" in r.stderr


def test_cap_add_sys_admin_opens_the_gated_rules(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    with_probe_image(ctrd, short_tmp)
    code, out = run(ctrd, "--cap-add", "SYS_ADMIN", IMAGE, "sh", "-c",
                    "grep Seccomp: /proc/self/status; probe mount unshare_user keyctl")
    assert code == 0, out
    assert status_field(out, "Seccomp") == "2"
    got = probes.parse(out)
    assert got["mount"] == 0 and got["unshare_user"] == 0
    assert got["keyctl"] == EPERM  # never, whatever the capabilities


def test_cap_drop_is_visible_in_capeff(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--cap-drop", "ALL", "--cap-add", "CAP_KILL", "busybox", "grep", "^Cap", "/proc/self/status")
    assert code == 0, out
    assert int(status_field(out, "CapEff"), 16) == 1 << 5  # CAP_KILL
    assert int(status_field(out, "CapBnd"), 16) == 1 << 5
    code, out = run(ctrd, "--cap-drop", "chown", "busybox", "sh", "-c", "touch /f; chown 1000 /f || echo REFUSED")
    assert "REFUSED" in out


def test_no_new_privileges(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--security-opt", "no-new-privileges", "busybox", "grep", "-E", "^(NoNewPrivs|Seccomp):",
                    "/proc/self/status")
    assert code == 0, out
    assert status_field(out, "NoNewPrivs") == "1" and status_field(out, "Seccomp") == "2"


def test_privileged_works(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--privileged", "busybox", "sh", "-c",
                    "grep -E '^(Seccomp|CapEff):' /proc/self/status; mkdir /m && mount -t tmpfs none /m && "
                    "echo MOUNTED; cat /proc/timer_list | head -c 10 | wc -c; ls /dev | wc -l")
    assert code == 0, out
    assert status_field(out, "Seccomp") == "0"
    # every capability the daemon itself holds (this sandbox withholds some from root)
    assert int(status_field(out, "CapEff"), 16) == int(status_field(Path("/proc/self/status").read_text(), "CapBnd"), 16)
    assert "MOUNTED" in out
    lines = out.split()
    assert lines[-2] == "10"  # /proc/timer_list is not masked
    assert int(lines[-1]) > 20  # the host's device nodes


def test_device_mapping(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--device", "/dev/null:/dev/mynull:rw", "busybox", "sh", "-c",
                    "ls -l /dev/mynull; echo x > /dev/mynull && echo WROTE")
    assert code == 0, out
    assert out.startswith("crw") and "1,   3" in out and "WROTE" in out
    r = ctl(ctrd, "run", "--rm", "--device", "/etc/hostname", "busybox", "true")
    assert r.returncode == 125 and "not a device node" in r.stderr
