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
import time
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


def test_swappiness_and_oom_killer_switch_like_runc(short_tmp: Path, rootfs: Path) -> None:
    res = {"memory": {"limit": 64 << 20, "swappiness": 0, "disableOOMKiller": True}}
    probe = "cat /sys/fs/cgroup/memory/memory.swappiness; head -1 /sys/fs/cgroup/memory/memory.oom_control"
    results = {rt: _run(rt, short_tmp, rootfs, ["sh", "-c", probe], res)[0] for rt in RUNTIMES}
    assert results["ctrd"].returncode == results["runc"].returncode == 0, results["ctrd"].stderr
    assert results["ctrd"].stdout == results["runc"].stdout == "0\noom_kill_disable 1\n"


EXTRA = "hugetlb,net_cls,net_prio,perf_event"


def test_hugetlb_net_cls_net_prio_perf_event_like_runc(short_tmp: Path, rootfs: Path) -> None:
    """This host mounts none of these v1 controllers: each runtime runs in a private mount
    namespace where /sys/fs/cgroup is a fresh tmpfs holding the host's hierarchies again plus
    these as one more (runc looks for hierarchies under /sys/fs/cgroup only); all of it goes
    with the namespace."""
    if not Path("/sys/kernel/mm/hugepages/hugepages-2048kB").exists():
        pytest.skip("no 2MB huge pages on this kernel")
    hierarchies = {line.split()[0]: line.split()[1] for line in Path("/proc/cgroups").read_text().splitlines()[1:]}
    if any(hierarchies.get(c, "0") != "0" for c in EXTRA.split(",")):
        pytest.skip("this host mounts some of these controllers already")
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}],
           "network": {"classID": 0x100001, "priorities": [{"name": "lo", "priority": 3}]}}
    probe = ("cat $(ls /sys/fs/cgroup/*/hugetlb.2MB.limit_in_bytes | head -1) $(ls /sys/fs/cgroup/*/net_cls.classid | head -1); "
             "grep -o 'lo 3' $(ls /sys/fs/cgroup/*/net_prio.ifpriomap | head -1); grep -c perf_event /proc/self/cgroup")
    saved = dict(RUNTIMES)
    outs = {}
    try:
        for rt, argv in saved.items():
            old = short_tmp / f"old-{rt}"
            old.mkdir()
            script = ('mount --rbind /sys/fs/cgroup "$0" && mount -t tmpfs -o mode=755 ctrdtest /sys/fs/cgroup && '
                      'for d in $(ls "$0"); do mkdir /sys/fs/cgroup/$d && mount --rbind "$0/$d" /sys/fs/cgroup/$d || exit 1; '
                      f'done && mkdir /sys/fs/cgroup/{EXTRA} && mount -t cgroup -o {EXTRA} ctrdtest /sys/fs/cgroup/{EXTRA} || exit 1; '
                      # The runtimes remove their leaf but not the parents they made: a hierarchy
                      # left with a child outlives its last mount (for good: it can no longer be
                      # reached), so empty it before the namespace goes.
                      f'"$@"; rc=$?; find /sys/fs/cgroup/{EXTRA} -mindepth 1 -depth -type d -exec rmdir {{}} +; '
                      f'umount /sys/fs/cgroup/{EXTRA}; exit $rc')
            # (a removed cgroup is released asynchronously: if it was still dying at the umount,
            # the hierarchy stays; _release_hierarchy then ends it with one more empty mount)
            RUNTIMES[rt] = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(old), *argv]
            outs[rt] = _run(rt, short_tmp, rootfs, ["sh", "-c", probe], res)[0]
    finally:
        RUNTIMES.update(saved)
        _release_hierarchy(short_tmp)
    assert outs["runc"].returncode == 0, outs["runc"].stderr
    assert outs["ctrd"].returncode == 0, outs["ctrd"].stderr
    assert outs["ctrd"].stdout == outs["runc"].stdout == f"{4 << 21}\n{0x100001}\nlo 3\n1\n"
    assert "hugetlb" not in Path("/proc/self/cgroup").read_text(), "the test's hierarchy outlived its namespace"


def _release_hierarchy(tmp: Path) -> None:
    """Mount the test's hierarchy once more, with no children left, and unmount it: the kernel
    destroys an unmounted v1 hierarchy only when it has no cgroups below its root."""
    deadline = time.monotonic() + 10
    while "hugetlb" in Path("/proc/self/cgroup").read_text() and time.monotonic() < deadline:
        counts = {line.split()[0]: line.split()[2] for line in Path("/proc/cgroups").read_text().splitlines()[1:]}
        if counts.get("hugetlb") != "1":
            time.sleep(0.05)  # dying children are released after an RCU grace period: no event to wait on
            continue
        mnt = tmp / "release"
        mnt.mkdir(exist_ok=True)
        subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f'mount -t cgroup -o {EXTRA} ctrdtest "$0" && umount "$0"', str(mnt)], check=True, timeout=30)
        mnt.rmdir()
        time.sleep(0.05)


def test_hugetlb_without_the_controller_fails_naming_the_field(short_tmp: Path, rootfs: Path) -> None:
    if "hugetlb" in Path("/proc/self/mountinfo").read_text():
        pytest.skip("this host mounts hugetlb")
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}
    p, _ = _run("ctrd", short_tmp, rootfs, ["true"], res)
    assert p.returncode != 0
    assert "linux.resources.hugepageLimits: the hugetlb controller is not mounted" in p.stderr
