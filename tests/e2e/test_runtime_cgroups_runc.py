"""cgroup v1 coverage compared with runc on the same bundle: the init joins every hierarchy runc
joins (cpuset, blkio, name=systemd and a hybrid host's unified one included), cpuset cpus/mems
are honoured, the container's /sys/fs/cgroup shows the same hierarchies, blkio throttles land,
and what the kernel cannot honour fails both the same way and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed"),
              pytest.mark.skipif(os.path.exists("/sys/fs/cgroup/cgroup.controllers"), reason="cgroup v1 host only")]

RUNTIMES = {"runc": ["runc"], "ctrd": [sys.executable, "-m", "runtime.cli"]}
PROBE = "grep Cpus_allowed_list /proc/self/status; grep Mems_allowed_list /proc/self/status; cat /proc/self/cgroup; " \
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/cpuset/cpuset.cpus"


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-crfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run(runtime: str, tmp: Path, rootfs: Path, args: list[str], resources: dict[str, Any],
         ) -> tuple[subprocess.CompletedProcess[str], str]:
    """`<runtime> run` of one bundle; returns the result and the cgroup path it used."""
    name = f"cg{uuid.uuid4().hex[:10]}"
    cgpath = f"/ctrd-rt-test/{name}"

    def mutate(spec: dict[str, Any]) -> None:
        spec["linux"]["resources"] = resources

    bundle = write_bundle(tmp / f"b-{name}", args, rootfs, cgroups_path=cgpath, mutate=mutate)
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.run([*RUNTIMES[runtime], "--root", str(tmp / runtime), "run", "--bundle", str(bundle), name],
                           stdout=o, stderr=e, stdin=subprocess.DEVNULL, text=True, timeout=60,
                           cwd=Path(__file__).parents[2])
    p.stdout, p.stderr = out.read_text().replace(cgpath, "<cg>"), err.read_text()
    left = [c for c in os.listdir("/sys/fs/cgroup") if os.path.isdir(f"/sys/fs/cgroup/{c}{cgpath}")]
    assert left == [], f"{runtime} left cgroups {left}"
    return p, cgpath


def test_cpuset_and_hierarchies_match_runc(short_tmp: Path, rootfs: Path) -> None:
    res = {"cpu": {"cpus": "0", "mems": "0"}}
    results = {rt: _run(rt, short_tmp, rootfs, ["sh", "-c", PROBE], res)[0] for rt in RUNTIMES}
    for rt, p in results.items():
        assert p.returncode == 0, (rt, p.stderr)
    out = results["ctrd"].stdout
    assert out == results["runc"].stdout
    assert "Cpus_allowed_list:\t0\n" in out
    for line in ("cpuset:<cg>", "blkio:<cg>", "name=systemd:<cg>", "pids:<cg>"):
        assert line in out


def test_blkio_throttle_lands_like_runc(short_tmp: Path, rootfs: Path) -> None:
    dev = Path("/sys/block").iterdir().__next__().joinpath("dev").read_text().strip()
    major, minor = (int(x) for x in dev.split(":"))
    res = {"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                       "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]}}
    probe = "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device"
    results = {rt: _run(rt, short_tmp, rootfs, ["sh", "-c", probe], res)[0] for rt in RUNTIMES}
    assert results["ctrd"].returncode == results["runc"].returncode == 0, results["ctrd"].stderr
    assert results["ctrd"].stdout == results["runc"].stdout == f"{major}:{minor} 1048576\n{major}:{minor} 300\n"


def test_blkio_weight_as_runc(short_tmp: Path, rootfs: Path) -> None:
    """Honoured where the kernel has a weight file; where it has none (no CFQ/BFQ), an error for
    both, never silently dropped."""
    res = {"blockIO": {"weight": 500}}
    probe = "cat /sys/fs/cgroup/blkio/blkio.bfq.weight 2>/dev/null || cat /sys/fs/cgroup/blkio/blkio.weight"
    results = {rt: _run(rt, short_tmp, rootfs, ["sh", "-c", probe], res)[0] for rt in RUNTIMES}
    assert results["ctrd"].returncode == results["runc"].returncode, (results["ctrd"].stderr, results["runc"].stderr)
    if results["runc"].returncode == 0:
        assert results["ctrd"].stdout == results["runc"].stdout
    else:
        assert "blkio.weight" in results["ctrd"].stderr and "cannot be honoured" in results["ctrd"].stderr


def test_cpuset_beyond_the_host_fails_like_runc(short_tmp: Path, rootfs: Path) -> None:
    res = {"cpu": {"cpus": f"{os.cpu_count() or 1}-{(os.cpu_count() or 1) + 3}"}}
    results = {rt: _run(rt, short_tmp, rootfs, ["true"], res)[0] for rt in RUNTIMES}
    assert results["runc"].returncode != 0 and results["ctrd"].returncode != 0
    assert "cpuset.cpus" in results["ctrd"].stderr
