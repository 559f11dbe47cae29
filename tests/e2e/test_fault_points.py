"""Fault suite, scenario 4: ctrd killed with SIGKILL at each step of create, start, stop and rm.

daemon/faults.py kills the daemon at a named step (CTRD_FAULTS). After the crash the metadata on
disk must parse; after a restart with no fault armed every container is in a valid state that
matches the machine (tests/fault_helpers.consistency: no stray mount, netns, veth, shim, state dir
or layer), the container can be driven to its end (start, stop, rm) and its name reused.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ctrd.errdefs import CtrdError, NotFound
from tests.fault_helpers import FaultDaemon, consistency, fault_ctrd, settle  # noqa: F401

pytestmark = pytest.mark.root

# what the container may look like after the crash and the restart (None: it must not exist)
EXPECT: dict[str, set[str | None]] = {
    "create.validated": {None},
    "create.after_layers": {None},
    "create.after_record": {"created"},
    "start.after_mount": {"created"},
    "start.after_network": {"created"},
    "start.after_bundle": {"created"},
    "start.after_shim_launch": {"created"},
    "start.after_shim_create": {"created", "exited", "running"},  # the record is written beside the create
    "start.after_record": {"running"},
    "stop.after_signal": {"running", "exited"},  # the shim goes on with the stop while ctrd is away
    "stop.after_exit": {"exited"},
    "stop.after_network_teardown": {"exited"},
    "stop.after_unmount": {"exited"},
    "rm.after_layers_removed": {None},
    "rm.after_record_removed": {None},
}
# a step that is one await (the shim signals, then waits for the exit): die while it waits
DELAY = {"stop.after_signal": "@0.5"}
NAME = "subject"
STOP_TIMEOUT = 2


def _status(d: FaultDaemon) -> str | None:
    try:
        return str(d.c.inspect(NAME)["State"]["Status"])
    except NotFound:
        return None


@pytest.mark.parametrize("point", list(EXPECT))
def test_crash_at_each_step(point: str, fault_ctrd: Callable[..., FaultDaemon]) -> None:  # noqa: F811
    verb = point.split(".")[0]
    d = fault_ctrd(faults=point + DELAY.get(point, ""))
    c = d.c
    # `sleep` as a namespace's init ignores TERM: the stop step waits its timeout, then kills
    spec = {"name": NAME, "stop_timeout": STOP_TIMEOUT}
    if verb != "create":
        c.create("busybox", ["sleep", "300"], **spec)
    if verb == "stop":
        c.start(NAME)

    with pytest.raises(CtrdError):  # the connection drops with the daemon (Unavailable)
        if verb == "create":
            c.create("busybox", ["sleep", "300"], **spec)
        elif verb == "start":
            c.start(NAME)
        elif verb == "stop":
            c.stop(NAME, timeout=STOP_TIMEOUT)
        else:
            c.remove(NAME)
    assert d.wait_killed() == -9
    assert f"fault injected at {point}" in d.log()
    d.parse_metadata()  # whatever instant the kill hit, every record parses

    d.restart_clean()
    c = d.c
    assert settle(lambda: consistency(d)) == [], d.log()
    assert _status(d) in EXPECT[point]

    # the survivor (if any) goes through its whole life again; the name is free afterwards
    if _status(d) is not None:
        if _status(d) != "running":
            c.start(NAME)
        info = c.inspect(NAME)
        assert info["State"]["Status"] == "running" and info["State"]["Pid"] > 0
        c.stop(NAME, timeout=0)
        assert c.inspect(NAME)["State"]["ExitCode"] == 137
        c.remove(NAME)
    assert c.list(all_=True) == []
    assert d.container_layer_dirs() == [] and d.record_ids() == []
    again = c.run("busybox", ["true"], name=NAME, network_mode="none")
    assert c.wait(again, timeout=20) == 0
    c.remove(again)
    assert settle(lambda: consistency(d)) == []
