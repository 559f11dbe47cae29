"""A container's init places itself in its cgroups (runtime.create): on this v1 hybrid machine it
is born in its unified (cgroup2) leaf by clone3 CLONE_INTO_CGROUP and writes "0" to each v1
hierarchy's `tasks`, so no write of its pid to a cgroup.procs (which takes the kernel's global
migration lock and waits for an RCU grace period) is on a start's path. These tests check where
it ends up, that the parent writes no pid, the fallback for a kernel without clone3, and that a
failed create leaves no cgroup behind, the unified leaf made ahead included."""

# The tests take the fixtures `make` and `rootfs` (imported below) as parameters.
# ruff: noqa: F811
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ctrd import libc
from runtime import Container, Status, Stdio, errors
from runtime.cgroup_v1 import UNIFIED, V1Cgroup, v1_mounts
from tests.rootfs import write_bundle
from tests.runtime_fixtures import Factory, make, rootfs  # noqa: F401

pytestmark = pytest.mark.root


def _hybrid() -> bool:
    return not os.path.exists("/sys/fs/cgroup/cgroup.controllers") and UNIFIED in v1_mounts()


needs_hybrid = pytest.mark.skipif(not _hybrid(), reason="needs v1 hierarchies beside a unified one (this machine kind)")


def _memberships(pid: int) -> dict[str, str]:
    """hierarchy (controllers, or "" for the unified one) -> the cgroup path the host sees."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f.read().splitlines():
            _, ctrls, path = line.split(":", 2)
            out[ctrls] = path
    return out


@needs_hybrid
def test_a_created_init_is_in_every_hierarchy_before_it_runs_anything(
        make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    # the parent must not place it: a write of the pid by the caller fails the test
    def refuse(self: V1Cgroup, pid: int) -> None:
        raise AssertionError(f"the caller wrote pid {pid} to a cgroup.procs")

    monkeypatch.setattr(V1Cgroup, "add", refuse)
    run = make(["sh", "-c", "cat /proc/self/cgroup"], start=False)
    c = run.container
    where = _memberships(c.pid)
    leaf = f"/ctrd-rt-test/{c.id}"
    assert where[""] == leaf  # born in the unified leaf
    v1 = {k: v for k, v in where.items() if k and not k.startswith("name=")}
    assert v1 and all(path == leaf for path in v1.values()), where
    c.start()
    code, out = run.wait()
    assert code == 0 and "0::/" in out


@needs_hybrid
def test_without_clone3_the_caller_places_the_init_by_pid(make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    def old_kernel(fd: int) -> int:
        raise OSError(errno.ENOSYS, "clone3")

    written: list[int] = []
    real_add = V1Cgroup.add

    def add(self: V1Cgroup, pid: int) -> None:
        written.append(pid)
        real_add(self, pid)

    monkeypatch.setattr(libc, "fork_into_cgroup", old_kernel)
    monkeypatch.setattr(V1Cgroup, "add", add)
    run = make(["true"], start=False)
    c = run.container
    assert written == [c.pid]
    where = _memberships(c.pid)
    assert where[""] == f"/ctrd-rt-test/{c.id}" and where["pids"] == f"/ctrd-rt-test/{c.id}"
    c.start()
    assert run.wait()[0] == 0


@needs_hybrid
def test_a_failed_create_leaves_no_cgroup_the_unified_leaf_included(rootfs: Path, short_tmp: Path) -> None:
    cid = "selfplace-missing"
    bundle = write_bundle(short_tmp / cid, ["no-such-command"], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}")
    null = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(errors.ExecError):
            Container.create(bundle, cid, Stdio(null, null, null))
    finally:
        os.close(null)
    left = [d for d in V1Cgroup(f"/ctrd-rt-test/{cid}").paths.values() if os.path.isdir(d)]
    assert left == []


@needs_hybrid
def test_a_second_create_of_the_same_cgroup_does_not_touch_the_first(make: Factory, rootfs: Path) -> None:
    run = make(["sleep", "30"])
    c = run.container
    null = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(errors.ContainerExists):  # its unified leaf is there: nothing made
            Container.create(c.bundle, c.id, Stdio(null, null, null))
    finally:
        os.close(null)
    assert c.status() == Status.RUNNING and _memberships(c.pid)[""] == f"/ctrd-rt-test/{c.id}"
