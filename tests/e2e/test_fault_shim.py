"""Fault suite, scenario 3: a shim killed with SIGKILL while its container runs.

ctrd notices at once when it is up (the shim connection closes) and at its next start-up when it
is down; either way the container's process is killed, the container is recorded as exited (its
code, or 255 when nobody knows it), its mount, netns, veth, cgroup and shim state are gone, and it
can be started again. Also for a paused container (a frozen process must still be killed).
(tests/e2e/test_daemon_recovery.py has the simplest case: a `none` container, ctrd up.)
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, pid_alive, settle, shim_of  # noqa: F401

pytestmark = pytest.mark.root


def _shim_of(d: FaultDaemon, cid: str) -> int:
    """The shim serving `cid`."""
    return shim_of(d, d.c.inspect(cid)["State"]["Pid"])


@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
@pytest.mark.parametrize("daemon_up", [True, False], ids=["ctrd-up", "ctrd-down"])
def test_killed_shim(daemon_up: bool, paused: bool, fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    bystander = c.run("busybox", ["sleep", "300"], name="bystander", network_mode="none", stop_timeout=1)
    cid = c.run("busybox", ["sleep", "300"], name="victim", stop_timeout=1)  # bridge: netns + veth
    if paused:
        c.pause(cid)
    pid = c.inspect(cid)["State"]["Pid"]
    shim = _shim_of(d, cid)
    calm = c.inspect(bystander)["State"]["Pid"]

    t0 = time.monotonic()
    if daemon_up:
        os.kill(shim, signal.SIGKILL)
    else:
        d.kill9()
        os.kill(shim, signal.SIGKILL)
        assert settle(lambda: ["shim alive"] if pid_alive(shim) else []) == []  # gone while ctrd is down
        d.start()
        c = d.c
    info = c.wait_status(cid, "exited", timeout=20)
    st = info["State"]
    assert st["Status"] == "exited", st
    if daemon_up:  # the shim's connection closed: noticed at once, not at some later poll
        assert time.monotonic() - t0 < 10
    assert st["ExitCode"] in (137, 255), st
    assert st["FinishedAt"] != "0001-01-01T00:00:00Z" and st["Pid"] == 0
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "the container's process outlived its shim and its daemon's cleanup"
    assert c.wait(cid, timeout=5) == st["ExitCode"]
    assert settle(lambda: consistency(d)) == []
    assert not any(cid in g for g in d.container_cgroups()), d.container_cgroups()
    # the other container never noticed
    assert c.inspect(bystander)["State"]["Pid"] == calm and pid_alive(calm)

    c.start(cid)
    info = c.inspect(cid)
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] not in (0, pid)
    c.stop(cid, timeout=0)
    c.remove(cid)
    assert settle(lambda: consistency(d)) == []
