"""A container's init places itself in its cgroups (runtime.create): on this v1 hybrid machine it
is born in its unified (cgroup2) leaf by clone3 CLONE_INTO_CGROUP and writes "0" to each v1
hierarchy's `tasks`, so no write of its pid to a cgroup.procs (which takes the kernel's global
migration lock and waits for an RCU grace period) is on a start's path. These tests check where
it ends up, that the parent writes no pid, the fallback for a kernel without clone3, and that a
failed create leaves no cgroup behind, the unified leaf made ahead included."""

# The tests take the fixtures `make` and `rootfs` (imported below) as parameters.
# ruff: noqa: F811
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


# A caller with one thread only places nothing itself (the shim's create helper, the CLI): pytest's
# process may have threads left by earlier tests, so the create runs in a fresh interpreter.
_CREATE = """
import json, os, sys
from ctrd import libc
from runtime import Container, Stdio
from runtime.cgroup_v1 import V1Cgroup
bundle, cid, mode = sys.argv[1:4]
written = []
real_add = V1Cgroup.add
def add(self, pid):
    written.append(pid)
    real_add(self, pid)
V1Cgroup.add = add
if mode == "no-clone3":
    def old_kernel(fd):
        raise OSError(38, "clone3")
    libc.fork_into_cgroup = old_kernel
null = os.open("/dev/null", os.O_RDWR)
c = Container.create(bundle, cid, Stdio(null, null, null))
with open(f"/proc/{c.pid}/cgroup") as f:
    where = f.read()
c.delete()
os.waitpid(c.pid, 0)
print(json.dumps({"pid": c.pid, "written": written, "cgroup": where}))
"""


def _create_in_fresh_process(rootfs: Path, tmp: Path, cid: str, mode: str) -> dict[str, Any]:
    bundle = write_bundle(tmp / cid, ["true"], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}")
    out = subprocess.run([sys.executable, "-c", _CREATE, str(bundle), cid, mode],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    got: dict[str, Any] = json.loads(out)
    return got


def _where(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        out[ctrls] = path
    return out


@needs_hybrid
def test_a_created_init_is_in_every_hierarchy_and_the_caller_wrote_no_pid(rootfs: Path, short_tmp: Path) -> None:
    cid = "selfplace-born"
    got = _create_in_fresh_process(rootfs, short_tmp, cid, "")
    assert got["written"] == []  # no pid written to any cgroup.procs by the caller
    where, leaf = _where(got["cgroup"]), f"/ctrd-rt-test/{cid}"
    assert where[""] == leaf  # born in the unified leaf
    v1 = {k: v for k, v in where.items() if k and not k.startswith("name=")}
    assert v1 and all(path == leaf for path in v1.values()), where
    assert not [d for d in V1Cgroup(leaf).paths.values() if os.path.isdir(d)]  # deleted with it


@needs_hybrid
def test_without_clone3_the_caller_places_the_init_by_pid(rootfs: Path, short_tmp: Path) -> None:
    cid = "selfplace-oldkernel"
    got = _create_in_fresh_process(rootfs, short_tmp, cid, "no-clone3")
    assert got["written"] == [got["pid"]]
    where, leaf = _where(got["cgroup"]), f"/ctrd-rt-test/{cid}"
    assert where[""] == leaf and where["pids"] == leaf


def test_a_started_init_runs_in_its_cgroups(make: Factory) -> None:
    run = make(["sh", "-c", "cat /proc/self/cgroup"])
    code, out = run.wait()
    assert code == 0 and f"/ctrd-rt-test/{run.container.id}" in out


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
