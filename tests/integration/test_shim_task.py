"""Task (the shim's container logic) over a fake backend whose "container" is a plain /bin/sh child:
stop escalation, exit file, log stream tags, state checks. No root, no namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from shimd import spawn
from shimd.backends.protocol import BackendConfig, ExecSpec, StatsRecord, Stdio
from shimd.reaper import Reaper
from shimd.state import Status
from shimd.task import Task


class ScriptBackend:
    """A "container" that is a plain /bin/sh child running `script`."""

    script = "exit 0"

    def __init__(self, config: BackendConfig, reaper: Reaper, state_dir: Path) -> None:
        self.config = config
        self._reaper = reaper
        self._pid = 0

    async def create(self, stdio: Stdio, start: bool = False) -> int:
        self._pid = spawn.spawn(["/bin/sh", "-c", self.script], stdin=stdio.stdin, stdout=stdio.stdout,
                                stderr=stdio.stderr)
        return self._pid

    async def start(self) -> None:
        await spawn.run(self._reaper, ["/bin/true"])

    async def kill(self, sig: int, all_procs: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, sig)

    async def pause(self) -> None:
        pass

    async def resume(self) -> None:
        pass

    async def delete(self) -> None:
        pass

    async def stats(self) -> StatsRecord:
        return StatsRecord()

    async def pids(self) -> list[int]:
        return [self._pid]

    async def exec(self, spec: ExecSpec, stdio: Stdio) -> int:
        try:
            pid = spawn.spawn(spec.args, stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr)
        finally:
            for fd in (stdio.stdin, stdio.stdout, stdio.stderr):
                os.close(fd)
        return (await self._reaper.wait_fresh(pid)).status

    def oom_killed(self) -> bool:
        return False


def run_task(tmp: Path, script: str, body) -> None:  # type: ignore[no-untyped-def]
    class B(ScriptBackend):
        pass

    B.script = script
    bundle = tmp / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text("{}")

    async def go() -> None:
        reaper = Reaper()
        reaper.install(asyncio.get_running_loop())
        task = Task("t1", tmp, reaper, B)
        try:
            await task.create(shim_pb2.CreateRequest(id="t1", bundle=str(bundle), runtime="fake",
                                                     log_path=str(tmp / "t1-json.log")))
            await task.start()
            await body(task)
        finally:
            await task.shutdown()
            reaper.uninstall()

    asyncio.run(asyncio.wait_for(go(), 60))


async def logged(tmp: Path, line: str, timeout: float = 30.0) -> None:
    """Wait until the container has written `line` to its json-file log (a handshake, e.g. after a trap)."""
    log = tmp / "t1-json.log"
    deadline = time.monotonic() + timeout
    while not (log.exists() and any(json.loads(x)["log"] == line for x in log.read_text().splitlines())):
        assert time.monotonic() < deadline, f"{line!r} never logged"
        await asyncio.sleep(0.02)


def test_stop_escalates_to_sigkill(short_tmp: Path) -> None:
    async def body(task: Task) -> None:
        await logged(short_tmp, "ready\n")  # sh has installed its trap
        t0 = time.monotonic()
        ex, killed = await task.stop(signal.SIGTERM, 1000)
        assert (ex.status, killed) == (137, True)
        assert 0.9 <= time.monotonic() - t0 < 8

    run_task(short_tmp, "trap '' TERM; echo ready; while :; do sleep 0.05; done", body)


def test_stop_returns_the_processes_own_status(short_tmp: Path) -> None:
    async def body(task: Task) -> None:
        await logged(short_tmp, "ready\n")
        ex, killed = await task.stop(signal.SIGTERM, 10_000)
        assert (ex.status, killed) == (9, False)

    run_task(short_tmp, "trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done", body)


def test_exit_file_logs_and_states(short_tmp: Path) -> None:
    async def body(task: Task) -> None:
        ex = await task.wait()
        assert ex.status == 4 and task.status is Status.STOPPED
        exit_file = json.loads((short_tmp / "exit.json").read_text())
        assert (exit_file["exit_status"], exit_file["pid"]) == (4, task.pid)
        logs = [json.loads(x) for x in (short_tmp / "t1-json.log").read_text().splitlines()]
        assert sorted((e["stream"], e["log"]) for e in logs) == [("stderr", "b\n"), ("stdout", "a\n")]
        with pytest.raises(errdefs.FailedPrecondition):
            await task.kill(signal.SIGTERM, False)
        with pytest.raises(errdefs.FailedPrecondition):
            await task.pause()
        deleted = await task.delete()
        assert deleted.status == 4 and task.status is Status.DELETED
        with pytest.raises(errdefs.NotFound):
            await task.delete()

    run_task(short_tmp, "echo a; echo b >&2; exit 4", body)


def test_create_twice_is_already_exists(short_tmp: Path) -> None:
    async def body(task: Task) -> None:
        with pytest.raises(errdefs.AlreadyExists):
            await task.create(shim_pb2.CreateRequest(id="t1", bundle=str(short_tmp / "bundle"), runtime="fake"))
        with pytest.raises(errdefs.InvalidArgument):
            await Task("t2", short_tmp, task.reaper).create(shim_pb2.CreateRequest(id="t2", bundle="/nonexistent"))

    run_task(short_tmp, "sleep 0.2", body)
