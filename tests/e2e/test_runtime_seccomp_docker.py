"""docker's own profile through `docker run --runtime ctrd`: Debian's dockerd writes its default
seccomp profile into config.json; ctrd-runtime applies it (Seccomp: 2) and the syscall probe gets
the same answers as with `--runtime runc` on the same dockerd."""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import probes
from tests.dockerd_env import Docker, own_bridge, private_dockerd
from tests.e2e.test_runtime_seccomp import PROBES
from tests.rootfs import make_busybox_rootfs

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker")), reason="docker not installed")]

CGROUP_PARENT = "ctrd-rt-test-docker"


@pytest.fixture
def docker(short_tmp: Path) -> Iterator[Docker]:
    with own_bridge() as (bridge, _), private_dockerd(short_tmp, bridge, CGROUP_PARENT) as d:
        yield d


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
