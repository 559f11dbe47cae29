"""kill -9 of ctrd with many containers, while some of them change under it: recovery reconnects
to every shim at once (Connect, State and Wait in one write per shim) and must still lose nothing.

While the daemon is down: one sleeper's shim is killed (recorded as exited, 137 or 255), one
container exits 9 (its shim keeps the status), one exits 7 and then its shim is killed (the code
comes from the exit-status file the shim left). After the restart the listing says so for each,
the others run with the same pids, and the Wait each recovered shim was sent with its connection
reports the later exits (a container killed from outside, a stop).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, pid_alive, settle, shim_of  # noqa: F401

pytestmark = pytest.mark.root

N_SLEEPERS = 24


def _gone(pid: int) -> list[str]:
    return [f"pid {pid} alive"] if pid_alive(pid) else []


def test_restart_with_many_containers_while_some_change(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    with ThreadPoolExecutor(4) as pool:
        sleepers = list(pool.map(lambda i: c.run("busybox", ["sleep", "300"], name=f"s{i}", network_mode="none",
                                                 stop_timeout=1), range(N_SLEEPERS)))
    # both wait for a file the test creates while the daemon is down, then exit with their code
    keeper = c.run("busybox", ["sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 9"], name="keeper",
                   network_mode="none")
    orphan = c.run("busybox", ["sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 7"], name="orphan",
                   network_mode="none")
    pids = {cid: c.inspect(cid)["State"]["Pid"] for cid in [*sleepers, keeper, orphan]}
    victim = sleepers[0]
    victim_shim, orphan_shim = shim_of(d, pids[victim]), shim_of(d, pids[orphan])

    d.kill9()
    os.kill(victim_shim, signal.SIGKILL)
    for cid in (keeper, orphan):
        open(f"/proc/{pids[cid]}/root/go", "w").close()
    assert settle(lambda: _gone(pids[keeper]) + _gone(pids[orphan]) + _gone(victim_shim), 20) == []
    # the orphan's shim recorded the exit on disk; now it dies too, before any daemon asked it
    exit_file = d.exec_root / "shims" / orphan / "exit.json"
    assert settle(lambda: [] if exit_file.exists() else ["no exit file"], 10) == []
    os.kill(orphan_shim, signal.SIGKILL)
    assert settle(lambda: _gone(orphan_shim), 10) == []

    d.start()
    c = d.c
    listed = {s.id: s.state for s in c.list(all_=True)}
    assert set(listed) == set(pids), "a container was lost"
    for cid in sleepers[1:]:
        st = c.inspect(cid)["State"]
        assert (st["Status"], st["Pid"]) == ("running", pids[cid]), cid
    v = c.wait_status(victim, "exited", timeout=20)["State"]
    assert v["ExitCode"] in (137, 255) and v["Pid"] == 0, v
    for cid, code in ((keeper, 9), (orphan, 7)):
        st = c.wait_status(cid, "exited", timeout=20)["State"]
        assert st["ExitCode"] == code and st["FinishedAt"] != "0001-01-01T00:00:00Z", (cid, st)
        assert c.wait(cid, timeout=5) == code
    assert not pid_alive(pids[victim])
    assert settle(lambda: consistency(d)) == []

    # the exit watchers armed by recovery: a process killed from outside, then a stop
    shot, stopped = sleepers[1], sleepers[2]
    os.kill(pids[shot], signal.SIGKILL)
    st = c.wait_status(shot, "exited", timeout=20)["State"]
    assert st["ExitCode"] == 137, st
    t0 = time.monotonic()
    c.stop(stopped, timeout=1)
    assert c.inspect(stopped)["State"]["Status"] == "exited" and time.monotonic() - t0 < 10
    assert c.inspect(sleepers[3])["State"]["Pid"] == pids[sleepers[3]]
    assert settle(lambda: consistency(d)) == []
