"""The runtime library's isolation: cgroups (freeze, stats, pids and memory limits, delete) and
joined namespaces."""

# The tests take the fixtures `make` and `rootfs` (imported below) as parameters.
# ruff: noqa: F811
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from runtime import ProcessSpec, Status, Stdio, errors
from runtime.cgroups import V2Cgroup
from runtime.spec import Resources
from tests.runtime_fixtures import Factory, make, rootfs  # noqa: F401

pytestmark = pytest.mark.root


def test_pause_freezes_every_process_and_resume_thaws(make: Factory) -> None:
    run = make(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    c = run.container
    deadline = time.monotonic() + 20  # generous: a loaded machine is slow, not wrong
    while len(c.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(c.pids()) == 3
    c.pause()
    assert c.status() == Status.PAUSED
    freezer = Path(c.cgroup.paths["freezer"]) / "freezer.state"
    assert freezer.read_text().strip() == "FROZEN"
    c.resume()
    assert freezer.read_text().strip() == "THAWED"
    assert c.status() == Status.RUNNING
    c.kill(signal.SIGKILL, all=True)
    run.wait()


def test_stats_and_delete_removes_cgroup(make: Factory) -> None:
    def limits(s: dict[str, Any]) -> None:
        s["linux"]["resources"].update(memory={"limit": 64 << 20}, pids={"limit": 50})

    run = make(["sleep", "30"], mutate=limits)
    c = run.container
    st = c.stats()
    assert st.memory_limit == 64 << 20
    assert st.pids_limit == 50
    assert st.pids_current == 1
    assert st.memory_usage > 0
    assert not c.oom_killed()
    dirs = list(c.cgroup.paths.values())
    assert all(os.path.isdir(d) for d in dirs)
    c.delete()
    assert not any(os.path.isdir(d) for d in dirs)
    c.delete()  # idempotent
    code, _ = run.wait()
    assert code == -signal.SIGKILL


def test_fork_bomb_stops_at_pids_limit(make: Factory) -> None:
    def limits(s: dict[str, Any]) -> None:
        s["linux"]["resources"]["pids"] = {"limit": 10}

    run = make(["sleep", "30"], mutate=limits)
    c = run.container
    r, w = os.pipe()
    bomb = ProcessSpec.from_oci({"args": ["sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done"],
                                 "cwd": "/"})
    pid = c.exec(bomb, Stdio(w, w, w))
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 65536).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) != 0
    assert "can't fork" in out
    assert 1 < c.stats().pids_current <= 10
    events = Path(c.cgroup.paths["pids"], "pids.events").read_text().split()
    assert int(events[events.index("max") + 1]) >= 1
    c.kill(signal.SIGKILL, all=True)
    assert run.wait()[0] == -signal.SIGKILL


def test_memory_hog_is_oom_killed(make: Factory) -> None:
    def limits(s: dict[str, Any]) -> None:
        s["linux"]["resources"]["memory"] = {"limit": 16 << 20, "swap": 16 << 20}

    run = make(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], mutate=limits)
    code, _ = run.wait()
    assert code == -signal.SIGKILL
    assert run.container.oom_killed()
    assert run.container.stats().oom_kills >= 1


def test_joins_an_existing_network_namespace_by_path(make: Factory) -> None:
    import subprocess

    holder = subprocess.Popen(["unshare", "-n", "sleep", "30"])
    try:
        deadline = time.monotonic() + 20  # generous: a loaded machine is slow, not wrong
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        want = os.readlink(f"/proc/{holder.pid}/ns/net")

        def join(s: dict[str, Any]) -> None:
            for ns in s["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = f"/proc/{holder.pid}/ns/net"

        run = make(["readlink", "/proc/self/ns/net"], mutate=join)
        code, out = run.wait()
        assert code == 0
        assert out.strip() == want
    finally:
        holder.kill()
        holder.wait()


def test_v2_freeze_in_the_unified_hierarchy() -> None:
    import subprocess

    root = "/sys/fs/cgroup/unified"
    if not os.path.exists(f"{root}/cgroup.controllers"):
        pytest.skip("no cgroup2 hierarchy")
    cg = V2Cgroup(f"/ctrd-rt-test/v2-{uuid.uuid4().hex[:8]}", root=root)
    cg.create(Resources())
    proc = subprocess.Popen(["sleep", "30"])
    try:
        cg.add(proc.pid)
        assert cg.pids() == [proc.pid]
        cg.freeze()
        assert cg.frozen()
        assert "frozen 1" in Path(cg.dir, "cgroup.events").read_text()
        cg.thaw()
        assert not cg.frozen()
        cg.kill_all(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
        proc.wait()
        cg.destroy()
    assert not os.path.exists(cg.dir)


def test_delete_of_a_paused_container_kills_and_removes_everything(make: Factory) -> None:
    run = make(["sh", "-c", "sleep 30 & exec sleep 30"])
    c = run.container
    deadline = time.monotonic() + 20  # generous: a loaded machine is slow, not wrong
    while len(c.pids()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    c.pause()
    dirs = list(c.cgroup.paths.values())
    c.delete()
    assert run.wait()[0] == -signal.SIGKILL
    assert not any(os.path.isdir(d) for d in dirs)


def test_joining_a_file_that_is_not_a_namespace_fails_cleanly(make: Factory) -> None:
    def bogus(s: dict[str, Any]) -> None:
        for ns in s["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = "/etc/hostname"

    with pytest.raises(errors.SpecError, match=r"linux.namespaces\[\d\].path: /etc/hostname is not a namespace"):
        make(["true"], mutate=bogus)

    def wrong_type(s: dict[str, Any]) -> None:
        for ns in s["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = "/proc/self/ns/uts"

    with pytest.raises(errors.SpecError, match="another type"):
        make(["true"], mutate=wrong_type)
