"""Debian's dockerd with --userns-remap drives ctrd-runtime (`--runtime ctrd`) like runc: the
container's root is the remapped host id (`/proc/self/uid_map` shows docker's mapping), it can
write its own rootfs, and its process runs as that id on the host."""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerd_env import Docker, own_bridge, private_dockerd
from tests.rootfs import make_busybox_rootfs

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker")), reason="docker not installed")]

CGROUP_PARENT = "ctrd-rt-test-duserns"
REMAP_USER, REMAP_GROUP = "nobody", "nogroup"
BASE = 231072
SIZE = 65536


@pytest.fixture
def subids() -> Iterator[None]:
    """A subordinate id range for the remap user, for this test only: /etc/subuid and /etc/subgid
    are put back exactly as they were (or removed when they did not exist)."""
    saved: dict[str, bytes | None] = {}
    for name, owner in (("/etc/subuid", REMAP_USER), ("/etc/subgid", REMAP_USER)):
        saved[name] = Path(name).read_bytes() if os.path.exists(name) else None
        with open(name, "ab") as f:
            if saved[name] and not saved[name].endswith(b"\n"):
                f.write(b"\n")
            f.write(f"{owner}:{BASE}:{SIZE}\n".encode())
    try:
        yield
    finally:
        for name, data in saved.items():
            if data is None:
                os.unlink(name)
            else:
                Path(name).write_bytes(data)


@pytest.fixture
def docker(short_tmp: Path, subids: None) -> Iterator[Docker]:
    os.chmod(short_tmp, 0o711)  # the remapped root must reach dockerd's data root below it
    with own_bridge() as (bridge, _), \
            private_dockerd(short_tmp, bridge, CGROUP_PARENT, ("--userns-remap", f"{REMAP_USER}:{REMAP_GROUP}")) as d:
        yield d


def _image(docker: Docker, tmp: Path) -> str:
    root = make_busybox_rootfs(tmp / "rootfs")
    tar = tmp / "img.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    r = docker("import", str(tar), "userns:1")
    assert r.returncode == 0, r.stderr
    return "userns:1"


def test_userns_remap_dockerd_runs_ctrd_runtime_like_runc(docker: Docker, short_tmp: Path) -> None:
    image = _image(docker, short_tmp)
    script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /made && echo wrote; echo $$"
    outs = {}
    for runtime in ("runc", "ctrd"):
        r = docker("run", "--rm", "--network", "none", "--runtime", runtime, image, "sh", "-c", script)
        assert r.returncode == 0, f"{runtime}: {r.stderr}"
        outs[runtime] = r.stdout.split()
    expected = ["0", str(BASE), str(SIZE), "0", str(BASE), str(SIZE), "0", "wrote", "1"]
    assert outs["runc"] == expected
    assert outs["ctrd"] == expected


def test_userns_remap_container_runs_as_the_remapped_host_id(docker: Docker, short_tmp: Path) -> None:
    image = _image(docker, short_tmp)
    r = docker("run", "-d", "--network", "none", "--runtime", "ctrd", image, "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    pid = docker("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids == [str(BASE)] * 4
    e = docker("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert e.returncode == 0, e.stderr
    assert e.stdout.split() == ["0", "0", str(BASE), str(SIZE)]
