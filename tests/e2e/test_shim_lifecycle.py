"""A shim on a busybox bundle, over its socket, without ctrd; both runtime backends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.shim.v1 import shim_pb2
from daemon.shims.client import ShimClient
from tests.e2e.test_shim_support import BACKENDS, Harness, cgroup_dirs, proc_alive, reparented_to, wait_gone

pytestmark = [pytest.mark.root, pytest.mark.parametrize("backend", BACKENDS)]

LOOP = "while :; do sleep 0.1; done"


async def logged(h: Harness, cid: str, line: str, timeout: float = 30.0) -> None:
    """Wait until the container's json-file log has `line` (a handshake, not a guess at how long)."""
    deadline = time.monotonic() + timeout
    while not (h.log_path(cid).exists() and any(e["log"] == line for e in h.logs(cid))):
        assert time.monotonic() < deadline, f"{line!r} never logged"
        await asyncio.sleep(0.02)


def run(tmp: Path, backend: str, body: Callable[[Harness], Awaitable[None]]) -> None:
    async def go() -> None:
        async with Harness(tmp, backend) as h:
            await body(h)

    asyncio.run(asyncio.wait_for(go(), 120))


def test_lifecycle(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, handle, c = await h.container(["sh", "-c", f"echo out; echo err >&2; {LOOP}"], start=False)
        st = await c.state()
        assert st.status == shim_pb2.STATUS_CREATED and st.id == cid
        assert (await c.connect()).shim_pid == handle.pid
        assert (await c.start()).pid == st.pid
        assert reparented_to(st.pid, handle.pid)  # the init is the shim's child (reparented to it, subreaper)
        assert (await c.state()).status == shim_pb2.STATUS_RUNNING
        assert st.pid in (await c.pids()).pids
        ex = await c.exec(shim_pb2.ExecRequest(args=["sh", "-c", "echo hi; echo oops >&2; exit 3"]))
        assert (ex.exit_status, ex.stdout, ex.stderr) == (3, b"hi\n", b"oops\n")
        assert (await c.stats()).pids_current >= 1
        await c.pause()
        assert (await c.state()).status == shim_pb2.STATUS_PAUSED
        with pytest.raises(errdefs.FailedPrecondition):
            await c.exec(shim_pb2.ExecRequest(args=["true"]))
        await c.resume()
        assert (await c.state()).status == shim_pb2.STATUS_RUNNING
        with pytest.raises(errdefs.FailedPrecondition):
            await c.delete()  # running
        await c.kill(signal.SIGKILL)
        w = await c.wait(timeout=10)
        assert w.exit_status == 137 and w.exited_at > 0
        st = await c.state()
        assert (st.status, st.exit_status) == (shim_pb2.STATUS_STOPPED, 137)
        exit_file = json.loads((handle.state_dir / "exit.json").read_text())
        assert (exit_file["pid"], exit_file["exit_status"]) == (st.pid, 137)
        logs = h.logs(cid)
        assert {"log": "out\n", "stream": "stdout"}.items() <= logs[0].items() or \
            {"log": "out\n", "stream": "stdout"}.items() <= logs[1].items()
        assert sorted((e["stream"], e["log"]) for e in logs) == [("stderr", "err\n"), ("stdout", "out\n")]
        d = await c.delete()
        assert (d.pid, d.exit_status) == (st.pid, 137)
        assert not proc_alive(st.pid)
        assert cgroup_dirs(cid) == []

    run(short_tmp, backend, body)


def test_stop_escalates_to_sigkill_when_term_is_ignored(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        # pid 1 of a pid namespace gets no default action for SIGTERM: without a handler it ignores it
        _, _, c = await h.container(["sh", "-c", f"trap '' TERM; {LOOP}"])
        t0 = time.monotonic()
        r = await c.stop(signal.SIGTERM, 1000)
        elapsed = time.monotonic() - t0
        assert (r.exit_status, r.killed) == (137, True)
        assert 0.9 <= elapsed < 8.0

    run(short_tmp, backend, body)


def test_stop_of_a_term_handling_process_returns_its_status(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, _, c = await h.container(["sh", "-c", f"trap 'exit 7' TERM; echo ready; {LOOP}"])
        await logged(h, cid, "ready\n")  # sh has installed its trap
        t0 = time.monotonic()
        r = await c.stop(signal.SIGTERM, 10_000)
        assert (r.exit_status, r.killed) == (7, False)
        assert time.monotonic() - t0 < 5.0

    run(short_tmp, backend, body)


def test_kill9_of_the_launcher_leaves_shim_and_container_running(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        _, handle, c = await h.container(["sh", "-c", LOOP])
        pid = (await c.state()).pid
        launcher_pid = h.launcher.pid
        assert launcher_pid is not None
        os.kill(launcher_pid, signal.SIGKILL)
        assert await asyncio.to_thread(wait_gone, launcher_pid)  # gone: any death signal has been sent
        assert proc_alive(handle.pid) and proc_alive(pid)
        assert (await c.state()).status == shim_pb2.STATUS_RUNNING
        # with the launcher gone, launch falls back to exec'ing ctrd-shim start
        _, h2, c2 = await h.container(["sh", "-c", "exit 4"])
        assert (await c2.wait(timeout=10)).exit_status == 4
        assert h2.pid != handle.pid

    run(short_tmp, backend, body)


def _ctrd_shim_delete(h: Harness, cid: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "shimd.main", "delete", "--id", cid, "--exec-root",
                          str(h.exec_root)], capture_output=True, text=True, check=True, timeout=60)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def test_exit_file_survives_the_shims_death(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, handle, c = await h.container(["sh", "-c", "exit 5"])
        assert (await c.wait(timeout=10)).exit_status == 5
        os.kill(handle.pid, signal.SIGKILL)
        assert wait_gone(handle.pid)
        assert json.loads((handle.state_dir / "exit.json").read_text())["exit_status"] == 5
        out = _ctrd_shim_delete(h, cid)
        assert out["exit_status"] == 5 and out["exited_at"] > 0
        assert not handle.state_dir.exists()
        assert cgroup_dirs(cid) == []

    run(short_tmp, backend, body)


def test_delete_after_shim_death_kills_the_container(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, handle, c = await h.container(["sh", "-c", LOOP])
        pid = (await c.state()).pid
        os.kill(handle.pid, signal.SIGKILL)
        assert wait_gone(handle.pid)
        assert proc_alive(pid)  # the container outlives its shim
        out = _ctrd_shim_delete(h, cid)
        assert out["exit_status"] == 255  # the shim never saw an exit
        assert wait_gone(pid)
        assert not handle.state_dir.exists()
        assert cgroup_dirs(cid) == []

    run(short_tmp, backend, body)


def test_log_rotation_keeps_max_file_files(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, _, c = await h.container(["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done"],
                                      max_size=2048, max_file=3)
        assert (await c.wait(timeout=20)).exit_status == 0
        log = h.log_path(cid)
        names = sorted(p.name for p in log.parent.iterdir())
        assert names == [log.name, log.name + ".1", log.name + ".2"]
        last = [json.loads(x) for x in log.read_text().splitlines()][-1]
        assert (last["log"], last["stream"]) == ("line 399\n", "stdout")

    run(short_tmp, backend, body)


def test_create_and_start_in_one_call(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, handle, c = await h.container(["sh", "-c", f"echo started; {LOOP}"], one_call=True)
        st = await c.state()
        assert st.status == shim_pb2.STATUS_RUNNING and reparented_to(st.pid, handle.pid)
        await logged(h, cid, "started\n")  # released without a Start call
        with pytest.raises(errdefs.FailedPrecondition):
            await c.start()  # started once already
        await c.kill(signal.SIGKILL)
        assert (await c.wait(timeout=10)).exit_status == 137
        assert (await c.delete()).pid == st.pid
        assert cgroup_dirs(cid) == []

        # an init that cannot run fails the one call, and leaves nothing behind once deleted
        with pytest.raises(errdefs.CtrdError):
            await h.container(["/no/such/binary"], one_call=True)
        assert all(cgroup_dirs(other) == [] for other, _, _ in h.shims)

    run(short_tmp, backend, body)


def test_create_with_a_missing_executable_fails_with_a_reason(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        with pytest.raises(errdefs.CtrdError) as ei:
            await h.container(["/no/such/binary"])
        if backend == "runc":
            # runc logs no code or reason: a plain Internal error with runc's message, never a guess
            assert type(ei.value) is errdefs.Internal and ei.value.reason == ""
            assert "/no/such/binary" in ei.value.message
        else:
            assert isinstance(ei.value, errdefs.InvalidArgument)
            assert ei.value.reason == errdefs.REASON_EXEC_NOT_FOUND

    run(short_tmp, backend, body)


def test_delete_of_a_created_container_that_never_started(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, _, c = await h.container(["sh", "-c", "echo never"], start=False)
        pid = (await c.state()).pid
        assert proc_alive(pid)
        await c.delete()
        assert wait_gone(pid)
        assert cgroup_dirs(cid) == []
        assert (await c.state()).status == shim_pb2.STATUS_STOPPED
        assert not any(e["log"] == "never\n" for e in h.logs(cid)) if h.log_path(cid).exists() else True

    run(short_tmp, backend, body)


def test_logging_goes_on_with_no_client_connected(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, handle, c = await h.container(["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done"])
        await c.close()  # the daemon goes away
        before = len(h.logs(cid)) if h.log_path(cid).exists() else 0
        await logged(h, cid, f"tick {before + 2}\n")  # still logging while nobody is connected
        c2 = await ShimClient.connect(handle.address)  # the daemon comes back
        h.shims.append((cid, handle, c2))
        assert (await c2.state()).status == shim_pb2.STATUS_RUNNING
        r = await c2.stop(signal.SIGTERM, 1000)
        assert r.exit_status == 137

    run(short_tmp, backend, body)
