"""shimd.execs with a fake backend (no container): an exec listens before it starts, its output
reaches a client connected in between (and never a log), its exit is kept until it is deleted,
a second start and a delete while running are refused, a start that fails is 126/127 with the
exit frame sent, the socket path is short, and the table is bounded."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ctrd import errdefs, reasons
from ctrd.shim import attachwire as wire
from shimd import execs
from shimd.backends.protocol import ExecSpec, Stdio
from shimd.reaper import Exit
from tests.unit.test_shim_fanout import frames_until


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


class FakeBackend:
    """exec_start writes to the stdio it is given, closes it, and exits when told."""

    def __init__(self, fail: errdefs.CtrdError | None = None) -> None:
        self.fail = fail
        self.exited: asyncio.Future[Exit] | None = None
        self.specs: list[ExecSpec] = []
        self.stdin = -1

    async def exec_start(self, spec: ExecSpec, stdio: Stdio) -> tuple[int, asyncio.Future[Exit]]:
        self.specs.append(spec)
        if self.fail is not None:
            for fd in {stdio.stdin, stdio.stdout, stdio.stderr, stdio.console} - {-1}:
                os.close(fd)
            raise self.fail
        os.write(stdio.stdout, b"out\n")
        os.write(stdio.stderr, b"err\n")
        self.stdin = stdio.stdin
        for fd in (stdio.stdout, stdio.stderr):
            os.close(fd)
        self.exited = asyncio.get_running_loop().create_future()
        return 4242, self.exited


def spec(*args: str) -> ExecSpec:
    return ExecSpec(list(args) or ["true"], [], "/", 0, 0)


def test_an_exec_streams_to_a_client_connected_before_start_and_keeps_its_exit(tmp_path: Path) -> None:
    async def body() -> None:
        table = execs.ExecTable(str(tmp_path))
        e = table.create("x1", spec("sh"), open_stdin=True)
        assert e.io_path == f"{tmp_path}/e1.sock" and e.status == execs.CREATED
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(e.io_path)
        sock.setblocking(False)
        backend = FakeBackend()
        assert await e.start(backend) == 4242  # type: ignore[arg-type]
        assert e.status == execs.RUNNING
        with pytest.raises(errdefs.FailedPrecondition):
            await e.start(backend)  # type: ignore[arg-type]
        with pytest.raises(errdefs.FailedPrecondition):
            table.delete("x1")
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, wire.frame(wire.STDIN, b"in\n") + wire.frame(wire.STDIN_EOF))
        assert backend.exited is not None
        backend.exited.set_result(Exit(4242, 3, 1700000000.0))
        got = await frames_until(sock, wire.EXIT)
        assert (wire.STDOUT, b"out\n") in got and (wire.STDERR, b"err\n") in got
        assert got[-1] == (wire.EXIT, (3).to_bytes(4, "big"))
        await e.done.wait()
        assert e.exit == execs.ExecExit(3, 1700000000.0) and e.status == execs.STOPPED
        # the client's stdin reached the process's pipe, then EOF (exec stdin closes with it)
        assert os.read(backend.stdin, 100) == b"in\n" and os.read(backend.stdin, 100) == b""
        os.close(backend.stdin)
        assert table.get("x1") is e  # kept for inspect
        assert table.delete("x1").exit == execs.ExecExit(3, 1700000000.0)
        assert not os.path.exists(e.io_path)
        with pytest.raises(errdefs.NotFound, match="no such exec instance: x1"):
            table.get("x1")
        sock.close()

    run(body)


@pytest.mark.parametrize(("reason", "code"), [(reasons.EXEC_NOT_FOUND, 127), (reasons.EXEC_NOT_INVOKABLE, 126), ("", 126)])
def test_a_start_that_fails_is_docker_s_code_and_an_exit_frame(tmp_path: Path, reason: str, code: int) -> None:
    async def body() -> None:
        table = execs.ExecTable(str(tmp_path))
        e = table.create("f1", spec("nosuch"), open_stdin=False)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(e.io_path)
        sock.setblocking(False)
        with pytest.raises(errdefs.InvalidArgument):
            await e.start(FakeBackend(errdefs.InvalidArgument("exec: not found", reason=reason)))  # type: ignore[arg-type]
        assert e.status == execs.STOPPED and e.exit is not None and e.exit.status == code
        assert (await frames_until(sock, wire.EXIT))[-1] == (wire.EXIT, code.to_bytes(4, "big"))
        table.close()
        assert not os.path.exists(e.io_path)
        sock.close()

    run(body)


def test_bad_requests_and_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        table = execs.ExecTable(str(tmp_path))
        with pytest.raises(errdefs.InvalidArgument, match="exec_id"):
            table.create("", spec(), False)
        with pytest.raises(errdefs.InvalidArgument, match="args"):
            table.create("a", ExecSpec([], [], "/", 0, 0), False)
        with pytest.raises(errdefs.InvalidArgument, match="size"):
            table.create("a", ExecSpec(["sh"], [], "/", 0, 0, terminal=True, size=(0, 80)), False)
        table.create("a", spec(), False)
        with pytest.raises(errdefs.AlreadyExists):
            table.create("a", spec(), False)
        with pytest.raises(errdefs.FailedPrecondition, match="no terminal"):
            table.get("a").resize(10, 10)
        monkeypatch.setattr(execs, "MAX_EXECS", 2)
        table.create("b", spec(), False)
        with pytest.raises(errdefs.FailedPrecondition, match="too many"):
            table.create("c", spec(), False)
        paths = [e.io_path for e in table.execs.values()]
        table.close()
        assert table.execs == {} and not any(os.path.exists(p) for p in paths)

    run(body)


def test_an_exec_fanout_pauses_its_output_for_a_slow_client_and_never_cuts_it_off() -> None:
    async def body() -> None:
        from shimd import attach

        events: list[str] = []
        hub = attach.Fanout(lossless=True)
        hub.set_flow(lambda: events.append("pause"), lambda: events.append("resume"))
        ours, theirs = socket.socketpair()
        hub.add(theirs.detach())
        ours.setblocking(False)
        chunk = b"x" * 65536
        sent = 0
        while not hub.paused:  # the client reads nothing: its queue grows past CLIENT_BUFFER
            hub.publish("stdout", chunk)
            sent += len(chunk)
        assert events == ["pause"] and len(hub.clients) == 1
        hub.finish(0)
        hub.close(drain=True)  # deleted after the exit: the client still gets everything
        got = await frames_until(ours, wire.EXIT)
        assert sum(len(d) for k, d in got if k == wire.STDOUT) == sent
        assert events == ["pause", "resume"]
        ours.close()

    run(body)
