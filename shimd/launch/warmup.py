"""Launcher warm-up: run the shim's code paths before gc.freeze() and fork.

Every object a forked shim creates or touches on first use (protobuf message classes' lazy
state, asyncio's loop machinery, bytecode specialisation counters, module caches) costs that
shim private, copied pages. Running a whole container lifecycle a few times in the launcher
(the real ForkedBackend, with a stand-in runtime whose "container" is /bin/sh) puts that state
in pages all shims share. The launcher is the child subreaper meanwhile, as a shim is, so the
/bin/sh "containers" its helper forks come back to it to be reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from ctrd.shim import attachwire, framing
from ctrd.shim.v1 import shim_pb2
from runtime import container as runtime_library
from shimd import files, prctl, spawn
from shimd.backends.bundle import check_terminal
from shimd.backends.forked import ForkedBackend, fork_spare
from shimd.backends.protocol import BackendConfig, StatsRecord, Stdio
from shimd.launch import fork
from shimd.loop import new_loop
from shimd.reaper import Reaper
from shimd.server import Server
from shimd.service import ShimService
from shimd.task import Task

log = logging.getLogger("ctrd-shim")

_SH = ["/bin/sh", "-c", "echo out; echo err >&2; exec sleep 5"]
# An interactive "container": what it reads comes back (through the pty's echo as well, with a terminal).
_CAT = ["/bin/sh", "-c", "echo out; exec cat"]
_INTERACTIVE = "interactive"  # in the stand-in's bundle: its "container" is _CAT, not _SH


def _spawn(argv: list[str], stdio: Stdio) -> int:
    """argv on the stdio, or with a console socket on a new pty's slave, its master sent back over
    the socket as the runtime does (runc's console-socket message; the host's devpts will do here)."""
    if stdio.console < 0:
        return spawn.spawn(argv, stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr)
    master, slave = os.openpty()
    try:
        pid = spawn.spawn(argv, stdin=slave, stdout=slave, stderr=slave)
        with socket.socket(fileno=os.dup(stdio.console)) as sock:
            socket.send_fds(sock, [b"/dev/ptmx"], [master])
    finally:
        os.close(master)
        os.close(slave)
    return pid


class _ShContainer:
    """Stands in for runtime.container.Container: the "container" is a /bin/sh child, so the
    warm-up drives the real ForkedBackend (forks, helper pipes, reaping) without namespaces."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @classmethod
    def create(cls, bundle: str, container_id: str, stdio: Stdio, state_dir: str = "",
               terminal: bool | None = None) -> _ShContainer:
        if terminal is not None:  # as the runtime checks in its own parse (runtime.create)
            check_terminal(bundle, terminal)
        interactive = stdio.console >= 0 or os.path.exists(f"{bundle}/{_INTERACTIVE}")
        return cls(_spawn(_CAT if interactive else _SH, stdio))

    @classmethod
    def load(cls, container_id: str, state_dir: str = "", bundle: str = "", pid: int = 0) -> _ShContainer:
        return cls(pid)

    def start(self) -> None:
        pass

    def kill(self, sig: int, all: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def delete(self) -> None:
        pass

    def stats(self) -> StatsRecord:
        return StatsRecord()

    def pids(self) -> list[int]:
        return [self.pid]

    def exec(self, proc: dict[str, Any], stdio: Stdio) -> int:
        return _spawn(proc["args"], stdio)


class _ShProcessSpec:
    @staticmethod
    def from_oci(proc: dict[str, Any]) -> dict[str, Any]:
        return proc


class _ShRuntime:
    """The stand-in for the runtime.container module."""

    Container = _ShContainer
    Stdio = Stdio
    ProcessSpec = _ShProcessSpec


def _sh_backend(config: BackendConfig, reaper: Reaper, state_dir: str) -> ForkedBackend:
    return ForkedBackend(config, reaper, state_dir, runtime=_ShRuntime)


class _WarmClient:
    """The daemon's side of the warm-up: framed calls over a socketpair, one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.next_id = 0

    async def call(self, method: str, req: Message, check: bool = False) -> bytes:
        """The response's payload; with `check`, a failed call raises its error."""
        loop = asyncio.get_running_loop()
        self.next_id += 1
        env = shim_pb2.Envelope(id=self.next_id, method=method, payload=req.SerializeToString())
        await loop.sock_sendall(self.sock, framing.encode(env))
        while True:
            frames = framing.take_frames(self.buf)
            if frames:
                if check and frames[0].HasField("error"):
                    raise framing.to_error(frames[0].error)
                return frames[0].payload
            data = await loop.sock_recv(self.sock, 65536)
            if not data:
                raise ConnectionError("warm-up shim closed the connection")
            self.buf += data


class _Attached:
    """An attached client (the daemon's Attach stream) on a shim's attach socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    @classmethod
    async def connect(cls, path: str) -> _Attached:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, path)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def until(self, marker: bytes = b"", kind: int = attachwire.STDOUT) -> None:
        """Frames until one of `kind` holding `marker`."""
        loop = asyncio.get_running_loop()
        while True:
            for k, payload in attachwire.take_frames(self.buf):
                if k == kind and marker in payload:
                    return
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), _IO_TIMEOUT)
            if not data:
                raise ConnectionError("warm-up shim closed the attach socket")
            self.buf += data

    def close(self) -> None:
        self.sock.close()


_IO_TIMEOUT = 10.0


async def _interactive(client: _WarmClient, state_dir: Path, terminal: bool) -> None:
    """`run -d -i[t]` then `attach` (stdin in, output back, a resize, detach) and a streaming
    `exec -i[t]` to its end: the attach and terminal paths, as a shim runs them."""
    attached = await _Attached.connect(f"{state_dir}/{attachwire.SOCKET_FILE}")
    try:
        if terminal:
            await attached.send(attachwire.resize(24, 80))
        await attached.send(attachwire.frame(attachwire.STDIN, b"warm\n"))
        await attached.until(b"warm")
        if terminal:
            await client.call("ResizePty", shim_pb2.ResizePtyRequest(rows=25, cols=81), check=True)
        exec_id = "x"
        created = shim_pb2.CreateExecResponse.FromString(await client.call("CreateExec", shim_pb2.CreateExecRequest(
            exec_id=exec_id, args=_CAT, terminal=terminal, open_stdin=True, rows=24 if terminal else 0,
            cols=80 if terminal else 0), check=True))
        streamed = await _Attached.connect(created.io_path)
        try:
            await client.call("StartExec", shim_pb2.StartExecRequest(exec_id=exec_id), check=True)
            await streamed.send(attachwire.frame(attachwire.STDIN, b"exec\n"))
            await streamed.until(b"exec")
            if terminal:
                await client.call("ResizeExec", shim_pb2.ResizeExecRequest(exec_id=exec_id, rows=25, cols=81), check=True)
                await streamed.send(attachwire.frame(attachwire.STDIN, b"\x04"))  # ^D: cat's EOF
            await streamed.send(attachwire.frame(attachwire.STDIN_EOF))
            await streamed.until(kind=attachwire.EXIT)
        finally:
            streamed.close()
        await client.call("WaitExec", shim_pb2.WaitExecRequest(exec_id=exec_id), check=True)
        await client.call("ExecState", shim_pb2.ExecStateRequest(exec_id=exec_id), check=True)
        await client.call("DeleteExec", shim_pb2.DeleteExecRequest(exec_id=exec_id), check=True)
    finally:
        attached.close()  # a detach: the container goes on


_ENDING: tuple[tuple[str, Message], ...] = (
    ("Stop", shim_pb2.StopRequest(signal=signal.SIGKILL, timeout_ms=5000)),
    ("Wait", shim_pb2.WaitRequest()), ("Delete", shim_pb2.DeleteRequest()), ("Shutdown", shim_pb2.ShutdownRequest()))
_LIFECYCLE: tuple[tuple[str, Message], ...] = (  # after a Create that started it ("Start": refused)
    ("Start", shim_pb2.StartRequest()), ("State", shim_pb2.StateRequest()), ("Pids", shim_pb2.PidsRequest()),
    ("Stats", shim_pb2.StatsRequest()), ("Pause", shim_pb2.PauseRequest()), ("Resume", shim_pb2.ResumeRequest()),
    ("Exec", shim_pb2.ExecRequest(args=["/bin/sh", "-c", "echo x"])),
    ("Kill", shim_pb2.KillRequest(signal=signal.SIGTERM)), *_ENDING)


async def _session(state_dir: Path, interactive: bool = False, terminal: bool = False) -> None:
    loop = asyncio.get_running_loop()
    reaper = Reaper()
    reaper.install(loop)
    bundle = state_dir / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text('{"process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/", '
                                        f'"terminal": {"true" if terminal else "false"}}}}}')
    if interactive:
        (bundle / _INTERACTIVE).touch()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    task: Task | None = None
    try:
        task = Task("warmup", state_dir, reaper, _sh_backend)
        # as shim._serve does: Create then hands the container to a helper forked ahead (its
        # code, run only here, would otherwise be first run, and its pages copied, in each shim)
        task.spare = fork_spare(reaper, runtime=_ShRuntime)
        server = Server(ShimService(task, lambda: None))
        server.listen(str(state_dir / files.SOCKET_FILE))
        server.serve_socket(a)
        b.setblocking(False)
        client = _WarmClient(b)
        await client.call("Connect", shim_pb2.ConnectRequest())
        await client.call("Start", shim_pb2.StartRequest())  # refused: nothing created yet
        await client.call("Create", shim_pb2.CreateRequest(id="warmup", bundle=str(bundle), runtime="sh",
                                                           log_path=str(state_dir / "log"), log_max_size=64,
                                                           log_max_file=2, terminal=terminal,
                                                           open_stdin=interactive,
                                                           start=not interactive),  # as ctrd asks
                                check=True)
        if interactive:  # the rest of the lifecycle is the plain session's
            try:
                await client.call("Start", shim_pb2.StartRequest(), check=True)
                await _interactive(client, state_dir, terminal)
            except BaseException:
                await task.shutdown()  # no stand-in left running in the launcher
                server.close()
                server.drop_connections()
                raise
            calls = _ENDING
        else:
            calls = _LIFECYCLE
        for method, req in calls:
            await client.call(method, req)
        await server.quiesce(1.0)
        server.close()
        server.drop_connections()
    finally:
        if task is not None and task.spare is not None:  # a Create that failed before taking it
            await task.spare.discard()
        b.close()
        reaper.uninstall()


async def _listen(sock: str) -> None:
    """What shim.serve does before its first request: a Task, a Server, a listening socket."""
    # shim._serve's own check, keyword included: os.access's argument parser interns its keyword
    # names on the first call with a keyword. Made first in a shim, that call inserted
    # "effective_ids" into the interpreter's interned-string table the shims share with the
    # launcher, copying 3 of its pages (12 KB) into every shim: measured 2026-12-06 by reading the
    # table's header from /proc/<pid>/mem (libpython's `interned`) and comparing its pages' PFNs
    # (/proc/<pid>/pagemap) between the launcher and 12 sleeping containers' shims.
    if os.access(sock, os.F_OK, follow_symlinks=False):
        os.unlink(sock)
    server = Server(ShimService(Task("warm", Path(sock).parent, Reaper()), lambda: None))
    server.listen(sock)
    server.close()


def _start_path(root: Path, n: int) -> None:
    """What a shim runs once, before its first request (request parsing, state dir, a new loop
    with a unix server), run here often enough (CPython 3.11 quickens a function after 8 calls)
    that the shim runs specialised bytecode instead of generic lookups, which write to the type
    cache and to reference counts of the names they look up."""
    (root / "shims").mkdir(exist_ok=True)
    cid = f"w{n}"
    request = f'{{"id": "{cid}"}}\n'.encode()
    state = fork._lean_prepare(str(root), fork._lean_id(request) or cid) if fork._PLAIN.match(str(root)) else None
    if state is not None:
        loop = new_loop()
        try:
            loop.run_until_complete(_listen(f"{state}/{files.SOCKET_FILE}"))
        finally:
            loop.close()


def warm_up(rounds: int = 10, start_rounds: int = 10) -> None:
    """Needs SIGCHLD at its default disposition (the reaper must see the fake container exit)."""
    runtime_library.preload()  # what the runtime imports on first use, imported once for all shims
    prctl.set_child_subreaper(True)
    try:
        _warm_sessions(rounds)
    finally:
        prctl.set_child_subreaper(False)
    with tempfile.TemporaryDirectory(prefix="ctrd-warm-") as tmp:
        for n in range(start_rounds):
            _start_path(Path(tmp), n)


# a plain container; `-i` and `-it` ones with an attached client and a streaming exec each
_KINDS: tuple[tuple[bool, bool], ...] = ((False, False), (True, False), (True, True))


def _warm_sessions(rounds: int) -> None:
    kinds = _KINDS
    for _ in range(rounds):  # bytecode is specialised after a few calls: do it here, not in each shim
        for interactive, terminal in kinds:
            with tempfile.TemporaryDirectory(prefix="ctrd-warm-") as tmp:
                loop = new_loop()
                try:
                    loop.run_until_complete(_session(Path(tmp), interactive, terminal))
                except Exception as exc:
                    if not interactive:
                        raise
                    # a host without ptys (or a stalled stand-in): the launcher still serves, its
                    # shims only pay for the interactive paths themselves
                    log.warning("launcher warm-up: the interactive paths are not warmed: %s", exc)
                    kinds = _KINDS[:1]
                finally:
                    loop.close()
                files.write_json(Path(tmp) / files.EXIT_FILE, {"exit_status": 0})
                framing.decode(framing.encode(shim_pb2.Envelope(id=1))[4:])
