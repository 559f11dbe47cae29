"""The daemon's exec store and the exec runner's refusals (no shim): docker's inspect object,
docker's messages for an unknown exec, a second start, and a container that is not running,
paused or restarting; the execs of a removed container go with it."""

from __future__ import annotations

from typing import Any

import pytest

from ctrd import errdefs
from daemon.containers import execs
from daemon.containers.exec_run import ExecRunner
from daemon.containers.record import State
from daemon.containers.state import Status
from tests.unit.test_daemon_record import make


class FakeMonitor:
    def __init__(self) -> None:
        self.tasks: dict[str, Any] = {}
        self.events: list[tuple[str, dict[str, str]]] = []

    def emit(self, c: Any, action: str, **attrs: str) -> None:
        self.events.append((action, attrs))


def test_store_and_inspect() -> None:
    store = execs.ExecStore()
    eid = store.new_id()
    e = execs.ExecConfig(eid, "c" * 64, ["sh", "-c", "exit 3"], user="1000", tty=True, attach_stdin=True,
                         attach_stdout=True, detach_keys="ctrl-a")
    store.add(e)
    assert store.get(eid) is e
    assert e.inspect() == {
        "ID": eid, "Running": False, "ExitCode": None,
        "ProcessConfig": {"tty": True, "entrypoint": "sh", "arguments": ["-c", "exit 3"], "privileged": False,
                          "user": "1000"},
        "OpenStdin": True, "OpenStderr": False, "OpenStdout": True, "CanRemove": False, "ContainerID": "c" * 64,
        "DetachKeys": "ctrl-a", "Pid": 0,
    }
    e.check_startable()
    e.started = True
    with pytest.raises(errdefs.FailedPrecondition, match=f"Error: Exec command {eid} is already running"):
        e.check_startable()
    e.exit_code = 3
    with pytest.raises(errdefs.FailedPrecondition, match=f"Error: Exec command {eid} has already run"):
        e.check_startable()
    assert e.inspect()["CanRemove"] is True
    with pytest.raises(errdefs.NotFound, match="No such exec instance: nope"):
        store.get("nope")
    with pytest.raises(errdefs.NotFound):
        store.get("")
    store.add(execs.ExecConfig(store.new_id(), "d" * 64, ["true"]))
    store.drop_container("c" * 64)
    assert len(store) == 1
    with pytest.raises(errdefs.NotFound):
        store.get(eid)


def test_store_is_bounded_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execs, "MAX_PER_CONTAINER", 2)
    store = execs.ExecStore()
    for _ in range(2):
        store.add(execs.ExecConfig(store.new_id(), "c", ["true"]))
    with pytest.raises(errdefs.FailedPrecondition):
        store.add(execs.ExecConfig(store.new_id(), "c", ["true"]))
    store.add(execs.ExecConfig(store.new_id(), "other", ["true"]))


def _runner() -> tuple[ExecRunner, FakeMonitor]:
    mon = FakeMonitor()
    return ExecRunner(mon, layers=None), mon  # type: ignore[arg-type]


def _args(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(args=["true"], env=[], user="", working_dir="", tty=False, attach_stdin=False,
                                attach_stdout=True, attach_stderr=True, privileged=False, detach_keys="")
    return base | kw


def test_create_refuses_what_docker_refuses() -> None:
    r, mon = _runner()
    c = make()
    c.state = State(Status.RUNNING, 1, 0, "", False, 1.0, 0.0)
    with pytest.raises(errdefs.FailedPrecondition, match=f"Container {c.id} is not running"):
        r.create(c, **_args())  # running, but no shim connected
    mon.tasks[c.id] = object()
    eid = r.create(c, **_args())
    assert r.inspect(eid).container_id == c.id and mon.events == [("exec_create", {"execID": eid})]
    for bad, field in ((_args(args=[]), "args"), (_args(env=["=x"]), "env"), (_args(privileged=True), "privileged"),
                       (_args(working_dir="tmp"), "working_dir"),
                       (_args(detach_keys="ctrl-zz"), "detach-keys")):
        with pytest.raises(errdefs.InvalidArgument, match=field):
            r.create(c, **bad)
    for status, words in ((Status.PAUSED, "is paused, unpause the container before exec"),
                          (Status.EXITED, "is not running"), (Status.RESTARTING, "is restarting")):
        c.state = State(status, 0, 0, "", False, 1.0, 0.0)
        with pytest.raises(errdefs.FailedPrecondition, match=f"Container {c.id} {words}"):
            r.create(c, **_args())
    r.drop_container(c.id)
    with pytest.raises(errdefs.NotFound):
        r.inspect(eid)
