"""The cgroup migration lock warmed at the beginning of a start (daemon.containers.cgwarm)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from daemon.containers import cgwarm

MOUNTINFO = """\
25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
"""


def test_mounts_of_v1_and_v2_hierarchies(tmp_path: Path) -> None:
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    found = cgwarm.cgroup_mounts(str(tmp_path / "mountinfo"))
    # (other super options, rw or xattr, come along: no /proc/self/cgroup line names them)
    assert found.items() >= {
        "": "/sys/fs/cgroup/unified", "systemd": "/sys/fs/cgroup/systemd", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "pids": "/sys/fs/cgroup/pids",
    }.items()
    assert "tmpfs" not in found.values()
    assert cgwarm.cgroup_mounts(str(tmp_path / "missing")) == {}


def test_own_procs_file_is_in_the_cgroup_the_process_is_in(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    mounts = {"": "/u", "pids": "/p", "systemd": "/s"}
    proc.write_text("12:cpuset:/x\n9:name=systemd:/system.slice/ctrd.service\n8:pids:/\n0::/top\n")
    assert cgwarm.own_procs_file(str(proc), {"pids": "/p"}) == "/p/cgroup.procs"  # the root: no double slash
    assert cgwarm.own_procs_file(str(proc), mounts) == "/s/system.slice/ctrd.service/cgroup.procs"
    proc.write_text("0::/top/ctrd\n")  # a pure cgroup v2 host
    assert cgwarm.own_procs_file(str(proc), mounts) == "/u/top/ctrd/cgroup.procs"
    assert cgwarm.own_procs_file(str(proc), {"pids": "/p"}) is None
    assert cgwarm.own_procs_file(str(tmp_path / "missing"), mounts) is None


def test_kick_writes_the_daemons_own_pid_once_at_a_time(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    warmer = cgwarm.MigrationWarmer(str(procs))
    release = threading.Event()
    calls: list[int] = []
    real = warmer.migrate_self

    def slow() -> None:  # a migration waiting for its grace period
        calls.append(1)
        release.wait(10)
        real()

    warmer.migrate_self = slow  # type: ignore[method-assign]

    async def run() -> None:
        warmer.kick()
        warmer.kick()  # the first is still in flight: the same wait, not a second one
        await asyncio.sleep(0)
        release.set()
        assert warmer._inflight is not None
        await warmer._inflight
        warmer.kick()  # over: a new one renews the window
        await warmer._inflight

    asyncio.run(run())
    assert calls == [1, 1]
    assert procs.read_text() == str(os.getpid())


def test_kick_without_a_cgroup_fs_or_permission_is_harmless(tmp_path: Path) -> None:
    async def run() -> None:
        none = cgwarm.MigrationWarmer(None)
        none.kick()
        assert none._inflight is None
        denied = cgwarm.MigrationWarmer(str(tmp_path / "no" / "cgroup.procs"))
        denied.kick()
        assert denied._inflight is not None
        await denied._inflight  # the OSError is swallowed: the start pays the wait as before

    asyncio.run(run())


def test_the_warm_up_only_where_a_start_still_places_by_pid(tmp_path: Path) -> None:
    # ctrd's own runtime on v1 hierarchies places the init itself (runtime/create.py): no warm-up
    v2_marker = tmp_path / "cgroup.controllers"
    assert not cgwarm.needed("", str(v2_marker))
    assert cgwarm.needed("/usr/bin/runc", str(v2_marker))  # runc writes the init's pid
    v2_marker.write_text("cpu memory pids\n")  # a cgroup v2 host: the runtime writes the pid there too
    assert cgwarm.needed("", str(v2_marker))
