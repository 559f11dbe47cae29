"""cgroup v2 device rules as a BPF program attached to the container's cgroup, proved in the
unified hierarchy this (hybrid) machine has beside v1: a process in the cgroup opens an allowed
device and is refused a denied one; an update replaces the program."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cgroup_v2 import V2Cgroup
from runtime.cgroup_v2_devices import attached
from runtime.spec_resources import Resources, resources_from_oci

pytestmark = pytest.mark.root

UNIFIED = next((p for p in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup") if os.path.exists(f"{p}/cgroup.procs")
                and os.path.exists(f"{p}/cgroup.controllers")), None)


@pytest.fixture
def cgroup() -> Iterator[V2Cgroup]:
    if UNIFIED is None:
        pytest.skip("no cgroup v2 hierarchy")
    cg = V2Cgroup(f"/ctrd-rt-test/dev{uuid.uuid4().hex[:8]}", root=UNIFIED)
    yield cg
    cg.destroy()
    assert not os.path.exists(cg.dir)


def _probe(cg: V2Cgroup, paths: list[str]) -> dict[str, str]:
    """Open each path for reading and writing from a child placed in `cg`."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(go_w)
        os.read(go_r, 1)
        out = []
        for p in paths:
            try:
                os.close(os.open(p, os.O_RDWR))
                out.append(f"{p}=ok")
            except OSError as exc:
                out.append(f"{p}={exc.errno}")
        os.write(w, " ".join(out).encode())
        os._exit(0)
    os.close(w)
    os.close(go_r)
    try:
        cg.add(pid)
    finally:
        os.write(go_w, b"x")
        os.close(go_w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return dict(item.split("=", 1) for item in data.decode().split())


def _rules(extra: list[dict[str, object]]) -> Resources:
    return resources_from_oci({"devices": [{"allow": False, "access": "rwm"}, *extra]})


def test_denied_device_is_refused_and_allowed_one_opens(cgroup: V2Cgroup) -> None:
    cgroup.create(_rules([{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]))
    fd = os.open(cgroup.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        progs = attached(fd)
        assert len(progs) == 1
        for p in progs:
            os.close(p)
    finally:
        os.close(fd)
    # /dev/kmsg (1:11) is not among the nodes the runtime always allows (RUNTIME_DEVICES)
    res = _probe(cgroup, ["/dev/null", "/dev/kmsg"])
    assert res == {"/dev/null": "ok", "/dev/kmsg": "1"}  # EPERM


def test_update_replaces_the_program(cgroup: V2Cgroup) -> None:
    cgroup.create(_rules([]))
    assert _probe(cgroup, ["/dev/kmsg"]) == {"/dev/kmsg": "1"}
    cgroup.update(_rules([{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"}]))
    assert _probe(cgroup, ["/dev/kmsg"]) == {"/dev/kmsg": "ok"}
    fd = os.open(cgroup.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        progs = attached(fd)
        assert len(progs) == 1  # the old one is gone
        for p in progs:
            os.close(p)
    finally:
        os.close(fd)
    assert Path(cgroup.dir).is_dir()
