"""Other engines' execs through ctrd-runtime: Debian's dockerd (`--add-runtime ctrd=...`, a
private dockerd on its own bridge) and containerd's `ctr task exec -t` get a pty made in the
container's devpts (`tty` prints /dev/pts/N), streams and exit codes as with runc."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.dockerd_env import Docker, own_bridge, private_dockerd
from tests.e2e.test_runtime_console import read_until
from tests.rootfs import make_busybox_rootfs

pytestmark = pytest.mark.root

CGROUP_PARENT = "ctrd-rt-test-dexec"


@pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker")), reason="docker not installed")
def test_dockerd_exec_with_ctrd_runtime(short_tmp: Path) -> None:
    with own_bridge() as bridge, private_dockerd(short_tmp, bridge[0], CGROUP_PARENT) as docker:
        _docker_cases(docker, short_tmp)


def _docker_cases(docker: Docker, tmp: Path) -> None:
    root = make_busybox_rootfs(tmp / "rootfs")
    tar = tmp / "img.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    assert docker("import", str(tar), "ctrdexec:1").returncode == 0
    r = docker("run", "--rm", "-t", "--runtime", "ctrd", "--network", "none", "ctrdexec:1", "tty")
    assert (r.returncode, r.stdout.strip()) == (0, "/dev/pts/0"), r.stderr
    r = docker("run", "-d", "--runtime", "ctrd", "--network", "none", "--name", "dx", "ctrdexec:1", "sleep", "300")
    assert r.returncode == 0, r.stderr
    try:
        r = docker("exec", "-t", "dx", "tty")
        assert (r.returncode, r.stdout.strip()) == (0, "/dev/pts/0"), r.stderr
        r = docker("exec", "dx", "sh", "-c", "echo out; echo err >&2; exit 7")
        assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
        r = docker("exec", "dx", "tty")
        assert r.returncode == 1 and r.stdout == "not a tty\n"
    finally:
        docker("rm", "-f", "dx")


@pytest.mark.skipif(not (shutil.which("containerd") and shutil.which("ctr")), reason="containerd not installed")
def test_containerd_task_exec_t(short_tmp: Path) -> None:
    from tests.e2e.test_runtime_containerd import start_containerd

    rootfs = make_busybox_rootfs(short_tmp / "rootfs")
    with start_containerd(short_tmp) as ctr:
        cid = "cx" + uuid.uuid4().hex[:8]
        r = ctr("run", "-d", "--runc-binary", ctr.runtime, "--cgroup", f"/ctrd-rt-test/{cid}", "--rootfs", str(rootfs),
                cid, "sleep", "300")
        assert r.returncode == 0, r.stderr
        try:
            pid, master = pty.fork()
            if pid == 0:  # the child: ctr with the pty as its terminal
                try:
                    os.execvp("ctr", ["ctr", "--address", ctr.address, "--namespace", ctr.namespace, "task", "exec",
                                      "-t", "--exec-id", "t1", cid,
                                      "sh", "-c", "tty; exit 6"])
                finally:
                    os._exit(127)
            try:
                out = read_until(master, b"/dev/pts/", timeout=60)
                if b"\n" not in out.partition(b"/dev/pts/")[2]:  # the line may have come in one read
                    out += read_until(master, b"\n", timeout=30)
                _, status = os.waitpid(pid, 0)
                pid = 0
            finally:
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                os.close(master)
            assert b"/dev/pts/0" in out, out
            assert os.waitstatus_to_exitcode(status) == 6
            p = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "tty; exit 3")
            assert (p.returncode, p.stdout) == (3, "not a tty\n"), p.stderr
        finally:
            ctr("task", "kill", "-s", "SIGKILL", cid)
            ctr("task", "rm", "-f", cid)
            ctr("container", "rm", cid)
