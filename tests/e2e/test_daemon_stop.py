"""Stop, kill, refusals and exit codes through the daemon (docker's semantics)."""

from __future__ import annotations

import time

import pytest

from ctrd.errdefs import FailedPrecondition, InvalidArgument, NotFound
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401

pytestmark = pytest.mark.root


def test_stop_term_ignoring_container_is_killed_at_the_timeout(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    # `sleep` as pid 1 has no handler for TERM: the kernel ignores it for a namespace's init
    cid = c.run("busybox", ["sleep", "300"], network_mode="none")
    t0 = time.monotonic()
    c.stop(cid, timeout=2)
    elapsed = time.monotonic() - t0
    info = c.inspect(cid)
    assert 1.8 <= elapsed < 8, elapsed
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    assert info["State"]["FinishedAt"] > info["State"]["StartedAt"]
    assert c.wait(cid, timeout=5) == 137  # returns at once for an exited container


def test_stop_term_handling_container_stops_at_once_with_its_code(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.run("busybox", ["sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done"],
                network_mode="none")
    c.wait_logged(cid, b"ready\n")  # the shell has installed its trap
    t0 = time.monotonic()
    c.stop(cid, timeout=10)
    assert time.monotonic() - t0 < 5
    assert c.inspect(cid)["State"]["ExitCode"] == 7
    c.remove(cid)
    with pytest.raises(NotFound):
        c.inspect(cid)


def test_exit_code_exec_errors_and_wait(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 3"], network_mode="none")
    assert c.wait(cid) == 3
    logs = c.logs(cid)
    assert [(e.stream, e.data) for e in logs] == [("stdout", b"out\n"), ("stderr", b"err\n")]
    cid2 = c.create("busybox", ["nosuchcmd"], network_mode="none")
    with pytest.raises(Exception) as exc:
        c.start(cid2)
    assert getattr(exc.value, "reason", "") == "exec-not-found"
    info = c.inspect(cid2)
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 127
    assert ctrd.mounts() == []  # the failed start undid its mount and netns


def test_kill_remove_force_and_bad_input(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.run("busybox", ["sleep", "300"], network_mode="none", name="victim")
    with pytest.raises(InvalidArgument, match="signal"):
        c.kill("victim", "SIGNOPE")
    c.kill("victim", "KILL")
    assert c.inspect(cid)["State"]["ExitCode"] == 137
    with pytest.raises(FailedPrecondition, match="is not running"):
        c.kill(cid)
    c.start(cid)
    c.pause(cid)
    c.kill(cid)  # SIGKILL reaches a frozen container too
    assert c.inspect(cid)["State"]["ExitCode"] == 137
    c.start(cid)
    c.pause(cid)
    c.stop(cid, timeout=1)
    assert c.inspect(cid)["State"]["Status"] == "exited"
    c.start(cid)
    c.pause(cid)
    c.remove(cid, force=True)  # a paused container is removed by force
    with pytest.raises(NotFound):
        c.inspect("victim")
    with pytest.raises(InvalidArgument, match="name"):
        c.create("busybox", ["true"], name="bad/name")
    with pytest.raises(InvalidArgument, match="image"):
        c.create("no-such-image-here", ["true"])
    with pytest.raises(InvalidArgument, match="mounts"):
        c.create("busybox", ["true"], mounts=[{"type": "bind", "source": "/tmp", "target": "/proc/x"}])
    assert c.list() == []
