"""The network helper's namespace made ahead (daemon.network.nsops.NetOps.make_spare): the next
sandbox binds it instead of making one, with lo up; it is used once; without one a sandbox is
made as before; nothing of it is left behind. Real namespaces (root), nothing but lo."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.network import syscalls
from daemon.network.nsops import NetOps

pytestmark = pytest.mark.root


@pytest.fixture
def ops() -> Iterator[NetOps]:
    o = NetOps()
    try:
        yield o
    finally:
        o.close()


def _lo_up(netns: Path) -> bool:
    out = subprocess.run(["nsenter", f"--net={netns}", "cat", "/sys/class/net/lo/flags"],
                         capture_output=True, text=True, check=True).stdout
    return bool(int(out, 16) & 1)  # IFF_UP


def _drop(path: Path) -> None:
    syscalls.umount_detach(str(path))
    path.unlink()


def test_a_sandbox_binds_the_namespace_made_ahead_once(ops: NetOps, short_tmp: Path) -> None:
    ops.make_spare()
    assert ops.has_spare
    spare = ops._spare
    assert spare is not None
    made_ahead = os.fstat(spare[0]).st_ino
    first, second = short_tmp / "ns" / "first", short_tmp / "ns" / "second"
    ops.sandbox_create(str(first))
    try:
        assert os.stat(first).st_ino == made_ahead and not ops.has_spare
        assert _lo_up(first)
        ops.sandbox_create(str(second))  # none made ahead: a new one, as before
        try:
            assert os.stat(second).st_ino not in (made_ahead, os.stat("/proc/self/ns/net").st_ino)
            assert _lo_up(second)
        finally:
            _drop(second)
    finally:
        _drop(first)
    assert os.readlink("/proc/self/ns/net") == os.readlink("/proc/thread-self/ns/net")  # back home


def test_a_spare_that_is_never_used_goes_with_the_helper(short_tmp: Path) -> None:
    o = NetOps()
    o.make_spare()
    spare = o._spare
    assert spare is not None
    fd = spare[0]
    o.close()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed: the namespace is freed with its last reference
