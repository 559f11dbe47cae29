"""Recovery from <root>/containers/ after the daemon dies or restarts."""

from __future__ import annotations

import time

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401

pytestmark = pytest.mark.root

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"


def _ticks(d: DaemonProc, cid: str) -> int:
    return len([e for e in d.c.logs(cid) if e.data.startswith(b"tick")])


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_kill9_daemon_keeps_containers_and_records_exits(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    runner = c.run("busybox", ["sh", "-c", TICKER], name="runner")
    paused = c.run("busybox", ["sleep", "300"], network_mode="none", name="paused")
    c.pause(paused)
    quitter = c.run("busybox", ["sh", "-c", "sleep 1; exit 3"], network_mode="none", name="quitter")
    pid = c.inspect(runner)["State"]["Pid"]
    quitter_pid = c.inspect(quitter)["State"]["Pid"]
    c.wait_logged(runner, b"tick 1\n")
    before = _ticks(ctrd, runner)

    ctrd.kill9()
    # while the daemon is down: quitter exits, runner keeps logging (read on disk, no API)
    log = ctrd.root / "containers" / runner / f"{runner}-json.log"
    deadline = time.monotonic() + 30
    while _alive(quitter_pid) or log.read_bytes().count(b'"log":"tick') <= before + 5:
        assert time.monotonic() < deadline, "quitter did not exit or runner stopped logging"
        time.sleep(0.05)
    ctrd.start()
    c = ctrd.c

    info = c.inspect(runner)
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] == pid
    assert _ticks(ctrd, runner) > before + 5  # the shim kept logging while ctrd was away
    assert c.inspect(paused)["State"]["Status"] == "paused"
    q = c.inspect(quitter)
    assert q["State"]["Status"] == "exited" and q["State"]["ExitCode"] == 3
    assert q["State"]["FinishedAt"] != "0001-01-01T00:00:00Z"
    assert c.wait(quitter, timeout=5) == 3

    # everything still works on the recovered containers
    c.resume(paused)
    c.stop(paused, timeout=1)
    c.stop(runner, timeout=1)
    assert c.inspect(runner)["State"]["ExitCode"] == 137
    c.remove(runner)


def test_sigterm_stops_containers_unless_live_restore(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.run("busybox", ["sh", "-c", "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done"],
                network_mode="none")
    c.wait_logged(cid, b"ready\n")  # the shell has installed its trap
    assert ctrd.stop() == 0
    assert ctrd.mounts() == [] and ctrd.shim_pids() == []
    ctrd.start()
    info = ctrd.c.inspect(cid)
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 5

    ctrd.stop()
    ctrd.extra.append("--live-restore")
    ctrd.start()
    ctrd.c.start(cid)
    pid = ctrd.c.inspect(cid)["State"]["Pid"]
    assert ctrd.stop() == 0
    assert ctrd.shim_pids(), "with --live-restore the container keeps running"
    record = ctrd.root / "containers" / cid / "config.v2.json"
    written = record.stat().st_mtime_ns
    ctrd.start()
    info = ctrd.c.inspect(cid)
    # the pid comes from the shim (a start writes its record before the shim answers with it);
    # a container whose state did not change has no record write at the restart
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] == pid
    assert record.stat().st_mtime_ns == written
    ctrd.c.stop(cid, timeout=5)
    assert ctrd.c.inspect(cid)["State"]["ExitCode"] == 5


def test_killed_shim_marks_the_container_exited(ctrd: DaemonProc) -> None:  # noqa: F811
    import os
    import signal

    c = ctrd.c
    cid = c.run("busybox", ["sleep", "300"], network_mode="none")
    (shim_pid,) = ctrd.shim_pids()
    os.kill(shim_pid, signal.SIGKILL)
    info = c.wait_status(cid, "exited", timeout=20)
    assert info["State"]["Status"] == "exited"
    assert ctrd.mounts() == []
    c.start(cid)  # it can be started again
    assert c.inspect(cid)["State"]["Running"]
