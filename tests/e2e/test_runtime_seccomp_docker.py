"""docker's own profile through `docker run --runtime ctrd`: Debian's dockerd writes its default
seccomp profile into config.json; ctrd-runtime applies it (Seccomp: 2) and the syscall probe gets
the same answers as with `--runtime runc` on the same dockerd."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import probes
from tests.e2e.test_runtime_seccomp import PROBES
from tests.rootfs import make_busybox_rootfs

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker")), reason="docker not installed")]

CGROUP_PARENT = "ctrd-rt-test-docker"


class Docker:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "d.sock"

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", f"unix://{self.socket}", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def docker(short_tmp: Path) -> Iterator[Docker]:
    runtime = short_tmp / "ctrd-runtime"
    runtime.write_text(f"#!/bin/sh\nexec {sys.executable} -m runtime.cli \"$@\"\n")
    runtime.chmod(0o755)
    d = Docker(short_tmp)
    argv = ["dockerd", "--data-root", str(short_tmp / "root"), "--exec-root", str(short_tmp / "e"),
            "-H", f"unix://{d.socket}", "--pidfile", str(short_tmp / "d.pid"), "--iptables=false",
            "--ip-masq=false", "--ip-forward=false", "-b", "none", "--cgroup-parent", "/" + CGROUP_PARENT,
            "--add-runtime", f"ctrd={runtime}", "--log-level", "warn"]
    with open(short_tmp / "dockerd.log", "w") as log:
        daemon = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while d("version").returncode != 0:
            assert daemon.poll() is None, (short_tmp / "dockerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "dockerd did not come up"
            time.sleep(0.2)
        yield d
    finally:
        d("rm", "-f", *d("ps", "-aq").stdout.split(), timeout=60)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        for ctl in os.listdir("/sys/fs/cgroup"):
            path = f"/sys/fs/cgroup/{ctl}/{CGROUP_PARENT}"
            if os.path.isdir(path) and not os.path.islink(f"/sys/fs/cgroup/{ctl}"):
                try:
                    os.rmdir(path)
                except OSError:
                    pass


def test_docker_profile_applied_by_ctrd_runtime_like_runc(docker: Docker, short_tmp: Path) -> None:
    root = make_busybox_rootfs(short_tmp / "rootfs")
    probes.build(root / "bin" / "probe")
    tar = short_tmp / "img.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    r = docker("import", str(tar), "secprobe:1")
    assert r.returncode == 0, r.stderr
    script = "grep Seccomp: /proc/self/status; probe " + " ".join(p for p in PROBES if p != "add_key")
    answers = {}
    for runtime in ("ctrd", "runc"):
        r = docker("run", "--rm", "--network", "none", "--runtime", runtime, "secprobe:1", "sh", "-c", script)
        assert r.returncode == 0, (runtime, r.stderr)
        assert "Seccomp:\t2" in r.stdout, (runtime, r.stdout)
        answers[runtime] = probes.parse(r.stdout)
    assert answers["ctrd"]["keyctl"] == 1 and answers["ctrd"]["unshare_user"] == 1
    assert answers["ctrd"] == answers["runc"]


def test_docker_run_t_gets_a_tty_from_the_containers_devpts(docker: Docker, short_tmp: Path) -> None:
    root = make_busybox_rootfs(short_tmp / "rootfs")
    tar = short_tmp / "img.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    assert docker("import", str(tar), "ttybox:1").returncode == 0
    r = docker("run", "--rm", "-t", "--network", "none", "--runtime", "ctrd", "ttybox:1", "sh", "-c",
               "tty; ls /dev/pts | tr '\\n' ' '; echo; exit 6")
    assert r.returncode == 6, r.stderr
    lines = [line.strip() for line in r.stdout.splitlines()]
    assert lines[0] == "/dev/pts/0", r.stdout
    assert lines[1].split() == ["0", "ptmx"], r.stdout
