"""Fault suite, scenario 4 by timing: kill -9 of ctrd at random instants of busy lifecycles.

The named injection points (test_fault_points.py) cover the steps between awaits; this covers
the instants inside them (network setup, shim launch, layer removal...). Clients drive create →
start → stop → rm loops on several containers while ctrd is killed at a seeded random moment;
after a restart everything must be consistent and every survivor must finish its life.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from ctrd.errdefs import CtrdError
from tests.daemon_fixtures import Client
from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, settle  # noqa: F401

pytestmark = pytest.mark.root

ROUNDS = 4
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
