"""A shim's streaming execs, without ctrd (every backend, runc's `exec --detach` with a console
socket included): output streams to a client connected before StartExec while the process still
runs, stdin through a pipe closed by the client's EOF, a pty made in the container's devpts with
resize, the exit kept for ExecState until DeleteExec, a command that cannot run, and nothing of
it in the container's log."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.shim import attachwire as wire
from ctrd.shim.v1 import shim_pb2
from tests.e2e.test_shim_attach import EXIT, Attached, run
from tests.e2e.test_shim_support import BACKENDS, Harness

pytestmark = [pytest.mark.root, pytest.mark.parametrize("backend", BACKENDS)]


async def _attach(path: str) -> Attached:
    r, w = await asyncio.open_unix_connection(path)
    return Attached(r, w)


def test_exec_streams_while_it_runs_and_keeps_its_exit(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        cid, _, c = await h.container(["sleep", "60"])
        created = await c.create_exec(shim_pb2.CreateExecRequest(
            exec_id="e1", args=["sh", "-c", "echo first; echo oops >&2; read x; echo got-$x; exit 7"],
            open_stdin=True))
        assert len(os.path.basename(created.io_path)) < 10
        st = await c.exec_state("e1")
        assert st.status == shim_pb2.STATUS_CREATED and st.pid == 0
        a = await _attach(created.io_path)
        started = await c.start_exec("e1")
        assert started.pid > 0
        await a.read_until(b"first\n")  # while the process still waits for its input
        assert (await c.exec_state("e1")).status == shim_pb2.STATUS_RUNNING
        with pytest.raises(errdefs.FailedPrecondition):
            await c.start_exec("e1")
        with pytest.raises(errdefs.FailedPrecondition):
            await c.delete_exec("e1")  # running
        # one write: `read x` returns at the newline and the exec may be gone (its stream closed)
        # before a second write's drain
        await a.send(wire.frame(wire.STDIN, b"abc\n") + wire.frame(wire.STDIN_EOF))
        assert await a.wait_exit() == 7
        assert b"got-abc\n" in a.out and a.err == b"oops\n"
        assert (await c.wait_exec("e1")).exit_status == 7
        st = await c.exec_state("e1")
        assert st.status == shim_pb2.STATUS_STOPPED and st.exit_status == 7 and st.exited_at > 0
        await a.close()
        assert (await c.delete_exec("e1")).exit_status == 7
        assert not os.path.exists(created.io_path)
        with pytest.raises(errdefs.NotFound):
            await c.exec_state("e1")
        assert h.logs(cid) == []  # docker writes no exec output to the container's log

    run(short_tmp, backend, body)


def test_exec_with_a_terminal_and_the_buffered_exec_beside_it(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        _, _, c = await h.container(["sleep", "60"])
        created = await c.create_exec(shim_pb2.CreateExecRequest(
            exec_id="t1", args=["sh"], terminal=True, open_stdin=True, rows=30, cols=90))
        a = await _attach(created.io_path)
        await c.start_exec("t1")
        await a.send(wire.frame(wire.STDIN, b"tty; stty size; echo $((6*7))\n"))
        out = await a.read_until(b"42\r\n")
        assert b"/dev/pts/" in out and b"30 90\r\n" in out
        await c.resize_exec("t1", 40, 120)
        await a.send(wire.frame(wire.STDIN, b"stty size\n"))
        await a.read_until(b"40 120\r\n")
        with pytest.raises(errdefs.InvalidArgument):
            await c.resize_exec("t1", 0, 120)
        # the old buffered Exec still answers while a streaming one runs
        r = await c.exec(shim_pb2.ExecRequest(args=["echo", "buffered"]))
        assert r.exit_status == 0 and r.stdout == b"buffered\n"
        await a.send(wire.frame(wire.STDIN, b"exit 3\n"))
        assert await a.wait_exit() == 3
        await a.close()
        await c.delete_exec("t1")

    run(short_tmp, backend, body)


def test_exec_that_cannot_run_and_bad_requests(short_tmp: Path, backend: str) -> None:
    async def body(h: Harness) -> None:
        _, _, c = await h.container(["sleep", "60"])
        await c.create_exec(shim_pb2.CreateExecRequest(exec_id="n1", args=["/no/such/binary"]))
        with pytest.raises(errdefs.CtrdError):
            await c.start_exec("n1")
        st = await c.exec_state("n1")
        assert st.status == shim_pb2.STATUS_STOPPED and st.exit_status in (126, 127)
        with pytest.raises(errdefs.AlreadyExists):
            await c.create_exec(shim_pb2.CreateExecRequest(exec_id="n1", args=["true"]))
        with pytest.raises(errdefs.InvalidArgument):
            await c.create_exec(shim_pb2.CreateExecRequest(exec_id="n2", args=[]))
        with pytest.raises(errdefs.NotFound):
            await c.start_exec("nope")
        # a detached exec (nobody attached) still runs and is waited for
        await c.create_exec(shim_pb2.CreateExecRequest(exec_id="d1", args=["sh", "-c", "exit 4"]))
        await c.start_exec("d1")
        assert (await c.wait_exec("d1")).exit_status == 4
        late = await _attach((await c.create_exec(shim_pb2.CreateExecRequest(exec_id="d2", args=["true"]))).io_path)
        await c.start_exec("d2")
        await late.read_until(EXIT)
        assert late.exit == 0
        await late.close()

    run(short_tmp, backend, body)
