"""Streaming execs (docker's exec create / start / inspect): one process each, its own attach
socket served by the same `attach.Fanout` as the init's, its exit kept until the exec is deleted.

Create only listens on `<state-dir>/e<N>.sock` (short: sun_path is 108 bytes); the process is
started by a later StartExec, so a client that connected in between misses no output. Output goes
to the attached clients only: docker writes no exec output to the container's log. With a
terminal the pty is made inside the container (the runtime's console protocol) and the shim
keeps its master; without one stdout and stderr are pipes, and stdin a pipe when open_stdin.
Exec stdin closes when the first attached client's stdin ends (docker's exec CloseStdin).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass

from ctrd import errdefs, reasons
from shimd import attach, console
from shimd.backends.protocol import Backend, ExecSpec, Stdio
from shimd.logs import LogPump
from shimd.reaper import Exit
from shimd.sync import Flag

DRAIN_TIMEOUT = 2.0  # after the exit: a leftover holder of the pipes/pty must not keep the exec open
MAX_EXECS = 1024  # per container, created or kept for inspect: bounds what one shim may hold

CREATED, RUNNING, STOPPED = "created", "running", "stopped"


@dataclass(frozen=True, slots=True)
class ExecExit:
    status: int
    at: float


class ExecProcess:
    def __init__(self, exec_id: str, spec: ExecSpec, open_stdin: bool, io_path: str) -> None:
        self.id = exec_id
        self.spec = spec
        self.open_stdin = open_stdin
        self.io_path = io_path
        self.pid = 0
        self.exit: ExecExit | None = None
        self.status = CREATED
        self.done = Flag()
        self._master = -1
        self._pumps: list[LogPump] = []
        self._watch: asyncio.Task[None] | None = None
        self.fanout = attach.Fanout(stdin_once=True, resize=self.resize, lossless=True)
        self.fanout.set_flow(self._pause_output, self._resume_output)
        try:
            self.fanout.listen(io_path)
        except BaseException:
            self.fanout.close()
            raise

    async def start(self, backend: Backend) -> int:
        if self.status != CREATED:
            raise errdefs.FailedPrecondition(f"exec {self.id} is already {self.status}")
        self.status = RUNNING  # claimed now: a second StartExec while this one runs is refused
        fds: list[int] = []  # ours until exec_start takes them

        def new(fd: int) -> int:
            fds.append(fd)
            return fd

        def null() -> int:
            return new(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))

        pid = 0
        try:
            if self.spec.terminal:
                con_shim, con_rt = console.pair()
                new(con_shim)
                stdio = Stdio(null(), null(), null(), console=new(con_rt))
            else:
                stdin = null()
                if self.open_stdin:
                    r, w = os.pipe2(os.O_CLOEXEC)
                    self.fanout.set_stdin(w)
                    stdin = new(r)
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                self._pumps = [LogPump(out_r, "stdout", None, self.fanout.publish),
                               LogPump(err_r, "stderr", None, self.fanout.publish)]
                stdio = Stdio(stdin, new(out_w), new(err_w))
            given = {stdio.stdin, stdio.stdout, stdio.stderr, stdio.console}
            fds[:] = [fd for fd in fds if fd not in given]
            pid, exited = await backend.exec_start(self.spec, stdio)
            if self.spec.terminal:
                fds.remove(con_shim)  # take_master closes it
                self._master = console.take_master(con_shim, f"exec {self.id}")
                self._pumps = [LogPump(os.dup(self._master), "stdout", None, self.fanout.publish)]
                if self.open_stdin:
                    self.fanout.set_stdin(os.dup(self._master))
        except BaseException as exc:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self._close_io()
            self.status = STOPPED
            # docker's codes for a command that could not run: 127 not found, 126 otherwise
            code = reasons.exit_code(exc.reason, 126) if isinstance(exc, errdefs.CtrdError) else 126
            self.exit = ExecExit(code, _now())
            self.fanout.finish(self.exit.status)
            self.done.set()
            raise
        for fd in fds:
            os.close(fd)
        self.pid = pid
        self._watch = asyncio.create_task(self._wait(exited))
        return pid

    def _pause_output(self) -> None:
        for p in self._pumps:
            p.pause()

    def _resume_output(self) -> None:
        for p in self._pumps:
            p.resume()

    async def _wait(self, exited: asyncio.Future[Exit]) -> None:
        ex = await exited
        drained = asyncio.gather(*(p.done for p in self._pumps))
        while self._pumps:
            try:
                await asyncio.wait_for(asyncio.shield(drained), DRAIN_TIMEOUT)
                break
            except TimeoutError:
                if not self.fanout.paused:  # a leftover holder of the pipes, not a client behind
                    break
        for p in self._pumps:
            p.close()
        self.exit = ExecExit(ex.status, ex.at)
        self.status = STOPPED
        self.fanout.finish(ex.status)
        self.done.set()

    def resize(self, rows: int, cols: int) -> None:
        if self._master < 0:
            raise errdefs.FailedPrecondition(f"exec {self.id} has no terminal")
        console.resize(self._master, rows, cols)

    def _close_io(self) -> None:
        for p in self._pumps:
            p.close()
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def close(self) -> None:
        """Forget the exec: its socket is removed, its fds closed (a running process is killed)."""
        if self.status == RUNNING and self.pid > 0 and self.exit is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()
        self._close_io()
        self.fanout.close(self.io_path, drain=True)


class ExecTable:
    """The container's execs by id, and the paths of their sockets."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.execs: dict[str, ExecProcess] = {}
        self._seq = itertools.count(1)

    def create(self, exec_id: str, spec: ExecSpec, open_stdin: bool) -> ExecProcess:
        if not exec_id:
            raise errdefs.InvalidArgument("exec_id: must not be empty")
        if not spec.args:
            raise errdefs.InvalidArgument("args: must not be empty")
        if exec_id in self.execs:
            raise errdefs.AlreadyExists(f"exec {exec_id} already exists")
        if len(self.execs) >= MAX_EXECS:
            raise errdefs.FailedPrecondition(f"too many execs ({MAX_EXECS}) kept in this container: delete some")
        if spec.size is not None:
            console.check_size(*spec.size)
        e = ExecProcess(exec_id, spec, open_stdin, f"{self.state_dir}/e{next(self._seq)}.sock")
        self.execs[exec_id] = e
        return e

    def get(self, exec_id: str) -> ExecProcess:
        e = self.execs.get(exec_id)
        if e is None:
            raise errdefs.NotFound(f"no such exec instance: {exec_id}")
        return e

    def delete(self, exec_id: str) -> ExecProcess:
        e = self.get(exec_id)
        if e.status == RUNNING:
            raise errdefs.FailedPrecondition(f"exec {exec_id} is running")
        del self.execs[exec_id]
        e.close()
        return e

    def close(self) -> None:
        for e in self.execs.values():
            e.close()
        self.execs.clear()


def _now() -> float:
    return time.time()
