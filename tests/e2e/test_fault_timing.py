"""Fault suite, scenario 4 by timing: kill -9 of ctrd at random instants of busy lifecycles.

The named injection points (test_fault_points.py) cover the steps between awaits; this covers
the instants inside them (network setup, shim launch, layer removal...). Clients drive create →
start → stop → rm loops on several containers while ctrd is killed at a seeded random moment;
after a restart everything must be consistent and every survivor must finish its life.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import pytest

from ctrd.errdefs import CtrdError
from tests.daemon_fixtures import Client
from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, settle  # noqa: F401

pytestmark = pytest.mark.root

ROUNDS = int(os.environ.get("CTRD_FAULT_ROUNDS", "4"))  # more seeds for a local soak
WORKERS = 3


def _churn(address: str, tag: str, stop: threading.Event) -> None:
    """create → start → stop → rm until the daemon is gone (every error ends the loop)."""
    client = Client(address)
    try:
        i = 0
        while not stop.is_set():
            mode = "bridge" if i % 2 else "none"
            cid = client.create("busybox", ["sleep", "300"], name=f"{tag}-{i}", network_mode=mode, stop_timeout=1)
            client.start(cid)
            client.stop(cid, timeout=0)
            client.remove(cid)
            i += 1
    except CtrdError:
        return
    finally:
        client.close()


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_kill9_at_a_random_instant(seed: int, fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    steady = d.c.run("busybox", ["sleep", "300"], name="steady", network_mode="none", stop_timeout=1)
    pid = d.c.inspect(steady)["State"]["Pid"]
    stop = threading.Event()
    threads = [threading.Thread(target=_churn, args=(d.address, f"w{k}", stop), daemon=True)
               for k in range(WORKERS)]
    for t in threads:
        t.start()
    time.sleep(random.Random(seed).uniform(0.3, 2.0))
    d.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    d.parse_metadata()

    d.start()
    c = d.c
    assert settle(lambda: consistency(d)) == [], d.log()
    info = c.inspect(steady)["State"]
    assert info["Status"] == "running" and info["Pid"] == pid
    for x in c.list(all_=True):
        status = c.inspect(x.id)["State"]["Status"]
        assert status in ("created", "running", "exited"), (x.names, status)
        if status != "running":
            c.start(x.id)
        c.stop(x.id, timeout=0)
        c.remove(x.id)
    assert c.list(all_=True) == [] and d.container_layer_dirs() == []
    assert settle(lambda: consistency(d)) == []


def test_kill9_during_shutdown(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    """SIGTERM starts stopping everything; a SIGKILL half-way leaves a state the next start sorts out."""
    d = fault_ctrd()
    c = d.c
    trap = "trap 'echo term; sleep 0.5; exit 5' TERM; echo ready; while true; do sleep 0.1; done"
    traps = [c.run("busybox", ["sh", "-c", trap], name=f"t{i}", network_mode="bridge" if i % 2 else "none",
                   stop_timeout=3) for i in range(3)]
    ids = traps + [c.run("busybox", ["sleep", "300"], name=f"s{i}", network_mode="none", stop_timeout=2)
                   for i in range(2)]
    for cid in traps:
        c.wait_logged(cid, b"ready\n")  # the shell has installed its trap
    assert d.proc is not None
    d.c.close()
    d.client = None
    d.proc.send_signal(signal.SIGTERM)
    # the TERM handlers run (read from the logs on disk: the API is going away), the sleepers wait for KILL
    logs = [d.root / "containers" / cid / f"{cid}-json.log" for cid in traps]
    assert settle(lambda: [str(p) for p in logs if b'"log":"term\\n"' not in p.read_bytes()], 30) == []
    d.kill9()
    d.start()
    c = d.c
    assert settle(lambda: consistency(d)) == [], d.log()
    for cid in ids:
        st = c.inspect(cid)["State"]
        assert st["Status"] in ("running", "exited"), st
        if st["Status"] == "exited":
            assert st["ExitCode"] in (5, 137, 255), st
    for cid in ids:
        c.remove(cid, force=True)
    assert settle(lambda: consistency(d)) == []


def test_kill9_during_recovery(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    """A daemon killed while it recovers (reconnecting shims, cleaning dead ones) recovers next time."""
    d = fault_ctrd()
    c = d.c
    ids = [c.run("busybox", ["sleep", "300"], name=f"r{i}", network_mode="bridge" if i % 2 else "none",
                 stop_timeout=1) for i in range(6)]
    pids = {cid: c.inspect(cid)["State"]["Pid"] for cid in ids}
    d.kill9()
    for cid in ids[:3]:  # work for the recovery: three containers died while ctrd was away
        os.kill(pids[cid], signal.SIGKILL)
    phases = []
    pid_file = d.exec_root / "ctrd.pid"
    for delay in (0.0, 0.1, 0.25, 0.5, 0.8, 1.2):
        pid_file.unlink(missing_ok=True)
        log = d.base / f"killed-{len(phases)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(d.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        # ctrd.pid is written under the root lock, just before the launcher, network and recovery
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text().strip() == str(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.005)
        time.sleep(delay)
        proc.kill()
        proc.wait(10)
        phases.append("after recovery" if "recovered" in log.read_text(errors="replace") else "before or during")
    print(f"\nctrd killed {phases}")
    d.start()
    c = d.c
    assert settle(lambda: consistency(d)) == [], d.log()
    for cid in ids[:3]:
        assert c.inspect(cid)["State"]["Status"] == "exited"
    for cid in ids[3:]:
        st = c.inspect(cid)["State"]
        assert (st["Status"], st["Pid"]) == ("running", pids[cid])
    for cid in ids:
        c.remove(cid, force=True)
    assert settle(lambda: consistency(d)) == []
