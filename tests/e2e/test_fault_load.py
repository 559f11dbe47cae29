"""Fault suite, scenario 7: load through the API.

- 100 containers started concurrently all reach running (and are killed and removed concurrently);
- 500 mixed concurrent calls (start, stop, kill, inspect, ps, logs) on 20 containers end in a
  consistent state: no error other than docker's refusals, every container running or exited,
  the machine agreeing with the API;
- create/rm cycles leave ctrd's fds flat and its RSS growth under 20 MB (figures printed).
  CTRD_FAULT_CYCLES overrides the number of cycles (see CYCLES for why it is what it is).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from ctrd.errdefs import CtrdError, FailedPrecondition
from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, fd_count, rss_kb, settle  # noqa: F401

pytestmark = pytest.mark.root

N_CONCURRENT = 100
N_MIXED_CONTAINERS = 20
N_MIXED_CALLS = 500
# 1000 cycles took 54 s on the 2-core build machine at load average 12 (measured); override with
# CTRD_FAULT_CYCLES for a quicker or a longer run
CYCLES = int(os.environ.get("CTRD_FAULT_CYCLES", "1000"))
WARMUP = 30
TRAP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def _kill_and_remove(d: FaultDaemon, ids: list[str], workers: int = 16) -> None:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda cid: d.c.remove(cid, force=True), ids))


def test_100_concurrent_starts(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    # a tenth on the bridge (netns + veth each), the rest with their own empty netns
    ids = [
        c.create("busybox", ["sleep", "300"], name=f"n{i}", network_mode="bridge" if i % 10 == 0 else "none",
                 stop_timeout=1)
        for i in range(N_CONCURRENT)
    ]
    t0 = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        errors = [e for e in pool.map(_start_quietly(d), ids) if e]
    elapsed = time.monotonic() - t0
    print(f"\n{N_CONCURRENT} concurrent starts: {elapsed:.1f}s; ctrd {fd_count(d.pid)} fds, {rss_kb(d.pid)} KB RSS")
    assert errors == []
    running = [x for x in c.list(all_=False) if x.state == "running"]
    assert len(running) == N_CONCURRENT
    assert len(d.shim_pids()) == N_CONCURRENT
    assert len(d.veths()) == N_CONCURRENT // 10
    assert consistency(d) == []
    _kill_and_remove(d, ids)
    assert c.list(all_=True) == []
    assert settle(lambda: consistency(d)) == []


def _start_quietly(d: FaultDaemon) -> Callable[[str], str]:
    def start(cid: str) -> str:
        try:
            d.c.start(cid)
            return ""
        except CtrdError as exc:
            return f"{cid[:12]}: {type(exc).__name__}: {exc.message}"

    return start


def test_500_mixed_concurrent_calls(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    ids = [c.create("busybox", ["sh", "-c", TRAP], name=f"m{i}", network_mode="bridge" if i % 4 == 0 else "none",
                    stop_timeout=1) for i in range(N_MIXED_CONTAINERS)]
    rng = random.Random(9)
    verbs = ["start", "start", "stop", "kill", "inspect", "inspect", "ps", "logs", "restart"]
    plan = [(rng.choice(verbs), rng.choice(ids)) for _ in range(N_MIXED_CALLS)]

    def call(step: tuple[str, str]) -> str:
        verb, cid = step
        try:
            if verb == "start":
                c.start(cid)
            elif verb == "stop":
                c.stop(cid, timeout=1)
            elif verb == "kill":
                c.kill(cid, "KILL")
            elif verb == "restart":
                from ctrd.v1 import container_pb2 as cpb

                c.call(c.containers, "Restart", cpb.RestartRequest(id=cid, timeout=1), timeout=60)
            elif verb == "inspect":
                c.inspect(cid)
            elif verb == "ps":
                c.list(all_=True)
            else:
                c.logs(cid, tail=5)
            return ""
        except FailedPrecondition:
            return ""  # "already running" / "is not running": docker's refusals, expected here
        except CtrdError as exc:
            return f"{verb} {cid[:12]}: {type(exc).__name__}: {exc.message}"

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        errors = [e for e in pool.map(call, plan) if e]
    print(f"\n{N_MIXED_CALLS} mixed calls on {N_MIXED_CONTAINERS} containers: {time.monotonic() - t0:.1f}s")
    assert errors == []
    assert settle(lambda: consistency(d)) == []
    listed = {x.id: x.state for x in c.list(all_=True)}
    for cid in ids:
        status = c.inspect(cid)["State"]["Status"]
        assert status in ("running", "exited"), (cid, status)
        assert listed[cid] == status
    _kill_and_remove(d, ids)
    assert settle(lambda: consistency(d)) == []


def test_create_rm_cycles_keep_fds_and_rss_flat(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c

    def cycle(i: int) -> None:
        cid = c.create("busybox", ["true"], name=f"cycle{i}", network_mode="none", env=[f"N={i}"])
        c.remove(cid)

    for i in range(WARMUP):  # first-use allocations (image cache, grpc buffers, name tables)
        cycle(i)
    fds0, rss0 = fd_count(d.pid), rss_kb(d.pid)
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(cycle, range(WARMUP, WARMUP + CYCLES)))
    elapsed = time.monotonic() - t0
    settle(lambda: [] if fd_count(d.pid) <= fds0 + 4 else ["fds still open"])  # connections close lazily
    fds1, rss1 = fd_count(d.pid), rss_kb(d.pid)
    print(f"\n{CYCLES} create/rm cycles: {elapsed:.1f}s; ctrd fds {fds0} -> {fds1}; "
          f"RSS {rss0} -> {rss1} KB (+{(rss1 - rss0) / 1024:.1f} MB)")
    assert fds1 <= fds0 + 4, f"ctrd fds grew from {fds0} to {fds1} over {CYCLES} cycles"
    assert rss1 - rss0 < 20 * 1024, f"ctrd RSS grew by {(rss1 - rss0) / 1024:.1f} MB over {CYCLES} cycles"
    assert c.list(all_=True) == [] and d.container_layer_dirs() == [] and d.record_ids() == []
