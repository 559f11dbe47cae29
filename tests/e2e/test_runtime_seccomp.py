"""linux.seccomp applied by the runtime to a real container: docker's default profile refuses
what docker refuses (the escape catalogue's syscalls), answers ENOSYS past the profile, follows
no_new_privs ordering, reaches exec'd processes, and gives the same answers as runc for the
same config.json."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.security import seccomp as dsec
from daemon.security import seccomp_default
from runtime import Container, ProcessSpec, Stdio, errors
from tests import probes
from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root

PROBES = ("getpid", "keyctl", "add_key", "bpf", "userfaultfd", "perf_event_open", "io_uring_setup", "kexec_load",
          "mount", "unshare_user", "setns", "clone", "clone_newuser", "clone3", "socket_alg", "socket_unix",
          "personality_bad", "mseal")
EPERM, ENOSYS = 1, 38
# What docker's default profile answers (EPERM unless noted), for a container with docker's caps.
DOCKER_ANSWERS = {
    "getpid": 0, "keyctl": EPERM, "add_key": EPERM, "bpf": EPERM, "userfaultfd": EPERM, "perf_event_open": EPERM,
    "io_uring_setup": EPERM, "kexec_load": EPERM, "mount": EPERM, "unshare_user": EPERM, "setns": EPERM,
    "clone": 0, "clone_newuser": EPERM, "clone3": ENOSYS, "socket_alg": EPERM, "socket_unix": 0,
    "personality_bad": EPERM,
    # mseal is newer than Debian 12's libseccomp: the ENOSYS stub answers it (runc does the same)
    "mseal": ENOSYS,
}

Runner = Callable[..., tuple[int, str]]


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-sec-", dir="/tmp"))
    try:
        root = make_busybox_rootfs(d / "rootfs")
        probes.build(root / "bin" / "probe")
        yield root
    finally:
        shutil.rmtree(d, ignore_errors=True)


def with_default_profile(spec: dict[str, Any]) -> None:
    spec["linux"]["seccomp"] = dsec.resolve(seccomp_default.profile(), spec["process"]["capabilities"]["bounding"])


def _drain(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


@pytest.fixture
def run(rootfs: Path, short_tmp: Path) -> Runner:
    def runner(script: str, mutate: Callable[[dict[str, Any]], None] | None = with_default_profile,
               exec_script: str = "") -> tuple[int, str]:
        cid = "s" + uuid.uuid4().hex[:10]
        bundle = write_bundle(short_tmp / cid, ["sh", "-c", script], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}",
                              mutate=mutate)
        r, w = os.pipe()
        try:
            c = Container.create(bundle, cid, Stdio(w, w, w), state_dir=str(short_tmp / "state"))
        finally:
            os.close(w)
        try:
            c.start()
            if exec_script:
                er, ew = os.pipe()
                try:
                    pid = c.exec(ProcessSpec(args=("sh", "-c", exec_script), env=("PATH=/bin",)), Stdio(ew, ew, ew))
                finally:
                    os.close(ew)
                os.waitpid(pid, 0)
                c.kill(9)
                os.waitpid(c.pid, 0)
                os.close(r)
                return 0, _drain(er)
            _, status = os.waitpid(c.pid, 0)
            return os.waitstatus_to_exitcode(status), _drain(r)
        finally:
            c.delete()

    return runner


def probe_cmd() -> str:
    return "probe " + " ".join(PROBES)


def test_default_profile_is_in_force(run: Runner) -> None:
    code, out = run("grep Seccomp: /proc/self/status")
    assert code == 0
    assert out.split() == ["Seccomp:", "2"]


def test_default_profile_refuses_what_docker_refuses(run: Runner) -> None:
    _, out = run(probe_cmd())
    assert probes.parse(out) == DOCKER_ANSWERS


def test_default_profile_with_no_new_privileges(run: Runner) -> None:
    def mutate(spec: dict[str, Any]) -> None:
        spec["process"]["noNewPrivileges"] = True
        with_default_profile(spec)

    _, out = run("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; " + probe_cmd(), mutate)
    assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out
    assert probes.parse(out) == DOCKER_ANSWERS


def test_user_namespace_creation_is_refused(run: Runner) -> None:
    code, out = run("unshare -U -r id")
    assert code != 0
    assert "uid=0" not in out


def test_host_keyrings_are_out_of_reach(run: Runner) -> None:
    """The issue's finding: without seccomp a container's root shares host root's keyrings."""
    _, out = run("probe keyctl add_key")
    assert probes.parse(out) == {"keyctl": EPERM, "add_key": EPERM}


def test_without_a_profile_the_refusals_go_away(run: Runner) -> None:
    # the control: proves the probe can see a difference (add_key is left out: it would really
    # add a key to the host's root keyring)
    _, out = run("grep Seccomp: /proc/self/status; probe keyctl bpf clone3 unshare_user mseal", mutate=None)
    assert "Seccomp:\t0" in out
    got = probes.parse(out)
    assert got["keyctl"] == 0 and got["unshare_user"] == 0
    assert got["bpf"] != EPERM and got["clone3"] != ENOSYS and got["mseal"] != ENOSYS


def test_exec_gets_the_container_filter(run: Runner) -> None:
    _, out = run("sleep 100", exec_script="grep Seccomp: /proc/self/status; probe keyctl getpid")
    assert "Seccomp:\t2" in out
    assert probes.parse(out) == {"keyctl": EPERM, "getpid": 0}


def test_filter_that_refuses_the_runtime_setup_fails_at_create(run: Runner) -> None:
    def mutate(spec: dict[str, Any]) -> None:
        spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                    "syscalls": [{"names": ["setresuid"], "action": "SCMP_ACT_ERRNO"}]}

    with pytest.raises(errors.RuntimeErr) as e:
        run("true", mutate)
    assert "setresuid" in str(e.value) or "operation not permitted" in str(e.value)


def test_bad_profile_is_refused_before_anything_runs(run: Runner, short_tmp: Path) -> None:
    def mutate(spec: dict[str, Any]) -> None:
        with_default_profile(spec)
        spec["linux"]["seccomp"]["syscalls"][3]["action"] = "SCMP_ACT_NOPE"

    with pytest.raises(errors.SpecError) as e:
        run("true", mutate)
    assert e.value.field == "linux.seccomp.syscalls[3].action"


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_same_answers_as_runc_for_the_same_bundle(run: Runner, rootfs: Path, short_tmp: Path) -> None:
    _, ours = run(probe_cmd())
    cid = "r" + uuid.uuid4().hex[:10]
    bundle = write_bundle(short_tmp / cid, ["sh", "-c", probe_cmd()], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}",
                          mutate=with_default_profile)
    try:
        res = subprocess.run(["runc", "--root", str(short_tmp / "runc"), "run", "-b", str(bundle), cid],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(["runc", "--root", str(short_tmp / "runc"), "delete", "-f", cid], capture_output=True)
    assert res.returncode == 0, res.stderr
    assert probes.parse(ours) == probes.parse(res.stdout)


def test_filter_flags_are_passed_to_the_kernel(run: Runner) -> None:
    def mutate(spec: dict[str, Any]) -> None:
        with_default_profile(spec)
        spec["linux"]["seccomp"]["flags"] = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]

    code, out = run("grep Seccomp: /proc/self/status; probe keyctl", mutate)
    assert code == 0, out
    assert "Seccomp:\t2" in out and probes.parse(out) == {"keyctl": EPERM}
