"""Fault suite, scenarios 1, 2 and 6: kill -9 of ctrd, then a restart that must lose nothing.

1. 20 running containers (two publishing a port) survive a kill -9 with the same pids; their logs
   kept growing while ctrd was away; stop, pause, logs and rm work; published ports still answer.
2. What happened while ctrd was down is recorded: exits 0 / 3 / 137 with FinishedAt, `wait`
   returns at once; always and on-failure containers are restarted; an unless-stopped one that the
   user stopped stays stopped.
6. A paused container stays paused (FROZEN) across the restart, can be unpaused and stopped.
(tests/e2e/test_daemon_recovery.py covers the single-container versions of 1, 2 and 6.)
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ctrd.errdefs import FailedPrecondition
from ctrd.v1 import container_pb2 as cpb
from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, pid_alive, settle  # noqa: F401

pytestmark = pytest.mark.root

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"
HTTPD = "mkdir -p /www && echo hello $HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"
N_RUNNING = 20


def _ticks(d: FaultDaemon, cid: str) -> int:
    return sum(1 for e in d.c.logs(cid) if e.data.startswith(b"tick"))


def _ticks_on_disk(d: FaultDaemon, cid: str) -> int:
    """Ticks in the json-file log, read without the daemon (the shim writes it while ctrd is down)."""
    return (d.root / "containers" / cid / f"{cid}-json.log").read_bytes().count(b'"log":"tick')


def _until(what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    assert settle(lambda: [] if cond() else [what], timeout) == []


def _get(port: int) -> tuple[int, bytes]:
    deadline = time.monotonic() + 10
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/")
            r = conn.getresponse()
            return r.status, r.read()
        except (ConnectionError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            conn.close()


def _host_port(d: FaultDaemon, cid: str) -> int:
    ports = d.c.inspect(cid)["NetworkSettings"]["Ports"]
    return int(ports["80/tcp"][0]["HostPort"])


def test_kill9_with_20_running_containers(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    web = [
        c.run("busybox", ["sh", "-c", HTTPD], name=f"web{i}", stop_timeout=1,
              port_bindings=[cpb.PortBinding(host_ip="127.0.0.1", host_port=0, container_port=80)])
        for i in range(2)
    ]

    def run_ticker(i: int) -> str:
        mode = "bridge" if i % 2 else "none"
        return c.run("busybox", ["sh", "-c", TICKER], name=f"tick{i}", network_mode=mode, stop_timeout=1)

    with ThreadPoolExecutor(4) as pool:
        tickers = list(pool.map(run_ticker, range(N_RUNNING - len(web))))
    everyone = web + tickers
    pids = {cid: c.inspect(cid)["State"]["Pid"] for cid in everyone}
    ports = {cid: _host_port(d, cid) for cid in web}
    for cid in web:
        assert _get(ports[cid])[0] == 200
    before = {cid: _ticks(d, cid) for cid in tickers}
    shims_before = sorted(d.shim_pids())
    assert len(shims_before) == N_RUNNING

    d.kill9()
    for cid in tickers:  # the tickers keep writing through their shims
        _until(f"{cid[:12]} ticks on", lambda cid=cid: _ticks_on_disk(d, cid) >= before[cid] + 4)
    assert all(pid_alive(p) for p in pids.values()), "a container died with its daemon"
    t0 = time.monotonic()
    d.start()
    print(f"\nrestart with {N_RUNNING} running containers -> API ready: {time.monotonic() - t0:.2f}s")
    c = d.c

    for cid in everyone:
        st = c.inspect(cid)["State"]
        assert (st["Status"], st["Pid"]) == ("running", pids[cid]), cid
    assert sorted(d.shim_pids()) == shims_before
    grown = [cid for cid in tickers if _ticks(d, cid) >= before[cid] + 4]
    assert grown == tickers, "logs written while ctrd was down are missing"
    for cid in web:  # the shim's relay kept the published port
        assert _host_port(d, cid) == ports[cid]
        assert _get(ports[cid]) == (200, f"hello {c.inspect(cid)['Config']['Hostname']}\n".encode())
    assert consistency(d) == []

    # the recovered containers obey every verb
    p, s, r = tickers[0], tickers[1], tickers[2]
    c.pause(p)
    n, clock = _ticks(d, p), _ticks(d, s)
    _until("the running ticker ticks 3 times", lambda: _ticks(d, s) >= clock + 3)  # time passes...
    assert _ticks(d, p) <= n + 1  # ...and the paused one writes nothing (one tick may be in flight)
    c.resume(p)
    c.stop(s, timeout=1)
    assert c.inspect(s)["State"]["Status"] == "exited"
    c.remove(r, force=True)
    assert r not in {x.id for x in c.list(all_=True)}
    t = _ticks(d, p)
    _until("the resumed ticker ticks", lambda: _ticks(d, p) > t)
    assert consistency(d) == []


def _only_once(body: str, then: str) -> str:
    """First run: `body`; every later run (the rw layer keeps /ran): `then`."""
    return f"if [ -e /ran ]; then {then}; else touch /ran; {body}; fi"


def test_exits_while_down_and_restart_policies(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    none = {"network_mode": "none", "stop_timeout": 1}
    zero = c.run("busybox", ["sh", "-c", "sleep 1; exit 0"], name="zero", **none)
    three = c.run("busybox", ["sh", "-c", "sleep 1; exit 3"], name="three", **none)
    victim = c.run("busybox", ["sleep", "300"], name="victim", **none)
    always = c.run("busybox", ["sh", "-c", _only_once("sleep 1; exit 0", "exec sleep 300")], name="always",
                   restart_policy=cpb.RestartPolicy(name="always"), **none)
    onfail = c.run("busybox", ["sh", "-c", _only_once("sleep 1; exit 4", "exec sleep 300")], name="onfail",
                   restart_policy=cpb.RestartPolicy(name="on-failure", maximum_retry_count=3), **none)
    held = c.run("busybox", ["sleep", "300"], name="held", restart_policy=cpb.RestartPolicy(name="unless-stopped"),
                 **none)
    c.stop(held, timeout=1)
    assert c.inspect(held)["State"]["Status"] == "exited"
    victim_pid = c.inspect(victim)["State"]["Pid"]
    infos = [c.inspect(cid) for cid in (zero, three, always, onfail)]
    # (a policy container already restarted runs `sleep 300` now: only a first run exits)
    exiting = [i["State"]["Pid"] for i in infos if i["RestartCount"] == 0 and i["State"]["Pid"]]

    d.kill9()
    os.kill(victim_pid, signal.SIGKILL)
    for pid in [victim_pid, *exiting]:  # zero, three, always and onfail exit while nobody listens
        _until(f"pid {pid} exits", lambda pid=pid: not pid_alive(pid))
    d.start()
    c = d.c

    for cid, code in ((zero, 0), (three, 3), (victim, 137)):
        st = c.inspect(cid)["State"]
        assert (st["Status"], st["ExitCode"]) == ("exited", code), cid
        assert st["FinishedAt"] != "0001-01-01T00:00:00Z" and st["FinishedAt"] > st["StartedAt"]
        t0 = time.monotonic()
        assert c.wait(cid, timeout=5) == code
        assert time.monotonic() - t0 < 5  # at once: no waiting for an exit that already happened
    for cid in (always, onfail):
        info = c.wait_status(cid, "running", timeout=15)
        assert info["State"]["Status"] == "running", cid
        assert info["RestartCount"] >= 1
    # recovery applied every policy at once: always and onfail are back after their first backoff, so
    # a policy wrongly applied to `held` has acted too (it queues on the lock before this Pause)
    with pytest.raises(FailedPrecondition):
        c.pause(held)
    st = c.inspect(held)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    assert consistency(d) == []
    # a recorded exit can start again
    c.start(three)
    assert c.wait(three, timeout=10) == 3


def test_paused_container_survives_a_restart(fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    d = fault_ctrd()
    c = d.c
    cid = c.run("busybox", ["sh", "-c", TICKER], name="frozen", network_mode="none", stop_timeout=1)
    c.wait_logged(cid, b"tick 1\n")
    c.pause(cid)
    freezer = Path("/sys/fs/cgroup/freezer") / d.cgroup_parent / cid / "freezer.state"
    assert freezer.read_text().strip() == "FROZEN"
    pid = c.inspect(cid)["State"]["Pid"]
    n = _ticks(d, cid)

    d.kill9()
    time.sleep(0.5)
    d.start()
    c = d.c

    info = c.inspect(cid)
    assert info["State"]["Status"] == "paused" and info["State"]["Pid"] == pid
    assert info["State"]["Paused"] is True
    assert freezer.read_text().strip() == "FROZEN"
    assert _ticks(d, cid) <= n + 1
    assert consistency(d) == []
    c.resume(cid)
    assert freezer.read_text().strip() == "THAWED"
    _until("the resumed ticker ticks", lambda: _ticks(d, cid) > n + 1)
    c.pause(cid)
    c.stop(cid, timeout=1)  # a paused container stops (resumed to take the signal)
    st = c.inspect(cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    assert not freezer.parent.exists()
