"""Fault suite, scenario 5: SIGTERM to ctrd, with and without --live-restore.

Without it (docker's default) every container is stopped — its stop signal, then SIGKILL at its
stop timeout, a paused one resumed first — and the exit is recorded; the daemon exits 0 and
leaves nothing behind; an `always` container comes back at the next start, like docker's.
With it the containers, their mounts, netns and shims stay, keep logging, and are reattached.
(tests/e2e/test_daemon_recovery.py covers one TERM-handling container each way.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ctrd.v1 import container_pb2 as cpb
from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, pid_alive, settle  # noqa: F401

pytestmark = pytest.mark.root

TRAP = "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done"
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


def test_sigterm_stops_every_container(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    polite = c.run("busybox", ["sh", "-c", TRAP], name="polite", stop_timeout=5)
    stubborn = c.run("busybox", ["sleep", "300"], name="stubborn", network_mode="none", stop_timeout=2)
    frozen = c.run("busybox", ["sleep", "300"], name="frozen", network_mode="none", stop_timeout=1)
    c.pause(frozen)
    always = c.run("busybox", ["sh", "-c", TRAP], name="always", network_mode="none", stop_timeout=5,
                   restart_policy=cpb.RestartPolicy(name="always"))
    done = c.run("busybox", ["sh", "-c", "exit 9"], name="done", network_mode="none")
    assert c.wait(done) == 9
    for cid in (polite, always):
        c.wait_logged(cid, b"ready\n")  # the shell has installed its trap
    pids = {cid: c.inspect(cid)["State"]["Pid"] for cid in (polite, stubborn, frozen, always)}

    t0 = time.monotonic()
    assert d.stop() == 0
    elapsed = time.monotonic() - t0
    assert 1.8 <= elapsed < 20, f"shutdown took {elapsed:.1f}s (stubborn has a 2 s stop timeout)"
    assert not [p for p in pids.values() if pid_alive(p)]
    assert d.leftovers() == [] and d.veths() == [] and d.shim_dirs() == []
    assert not (d.exec_root / "ctrd.sock").exists()

    d.start()
    c = d.c
    for cid, code in ((polite, 5), (stubborn, 137), (frozen, 137), (done, 9)):
        st = c.inspect(cid)["State"]
        assert (st["Status"], st["ExitCode"]) == ("exited", code), (cid, st)
        assert st["FinishedAt"] >= st["StartedAt"]
    # a shutdown is not a user's stop: `always` restarts, the others keep their exit
    assert c.wait_status(always, "running", timeout=15)["State"]["Status"] == "running"
    assert settle(lambda: consistency(d)) == []


def test_live_restore_keeps_containers_and_reattaches(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd("--live-restore")
    c = d.c
    ticker = c.run("busybox", ["sh", "-c", TICKER], name="ticker", stop_timeout=1)
    quiet = c.run("busybox", ["sleep", "300"], name="quiet", network_mode="none", stop_timeout=1)
    frozen = c.run("busybox", ["sleep", "300"], name="frozen", network_mode="none", stop_timeout=1)
    c.pause(frozen)
    quitter = c.run("busybox", ["sh", "-c", "sleep 1; exit 4"], name="quitter", network_mode="none")
    pids = {cid: c.inspect(cid)["State"]["Pid"] for cid in (ticker, quiet, frozen)}
    quitter_pid = c.inspect(quitter)["State"]["Pid"]
    shims = sorted(d.shim_pids())
    c.wait_logged(ticker, b"tick 1\n")
    ticks = sum(1 for e in c.logs(ticker) if e.data.startswith(b"tick"))
    mounts = sorted(d.mounts())

    assert d.stop() == 0
    assert all(pid_alive(p) for p in pids.values())
    assert sorted(d.shim_pids()) == shims[: len(shims)] or set(d.shim_pids()) <= set(shims)
    assert set(mounts) <= set(d.mounts()) and d.veths() and d.netns_files()
    # while the daemon is down: quitter exits, ticker writes on through its shim
    log = d.root / "containers" / ticker / f"{ticker}-json.log"
    assert settle(lambda: ["quitter still runs"] if pid_alive(quitter_pid) else [], timeout=30) == []
    assert settle(lambda: [] if log.read_bytes().count(b'"log":"tick') >= ticks + 4 else ["too few ticks"],
                  timeout=30) == []
    d.start()
    c = d.c

    for cid, pid in pids.items():
        assert c.inspect(cid)["State"]["Pid"] == pid
    assert c.inspect(ticker)["State"]["Status"] == "running"
    assert c.inspect(frozen)["State"]["Status"] == "paused"
    assert sum(1 for e in c.logs(ticker) if e.data.startswith(b"tick")) >= ticks + 4
    st = c.inspect(quitter)["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 4)
    assert settle(lambda: consistency(d)) == []
    c.resume(frozen)
    c.stop(frozen, timeout=0)
    c.stop(ticker, timeout=1)
    assert c.inspect(ticker)["State"]["ExitCode"] == 137
    assert settle(lambda: consistency(d)) == []
    # without live-restore this time: the last one is stopped by the shutdown
    d.stop()
    d.extra = []
    d.start()
    assert d.stop() == 0
    assert not pid_alive(pids[quiet]) and d.leftovers() == []
    d.start()
    assert d.c.inspect(quiet)["State"]["Status"] == "exited"
