"""Exec create / start / attach / inspect / resize: docker's exec flow over the shim's streaming
execs (`CreateExec` → connect to the exec's attach socket → `StartExec`, so no output is lost).

An attached start (`Attach` with `open.exec_id`, docker's hijacked exec start) relays through the
shared attach relay (daemon.containers.attach). With a tty, the client's first resize (ctrctl
sends its terminal size right after `started`) is taken as the pty's first size, so the process
never sees a 0x0 terminal, unless the create gave one (docker's ConsoleSize, sent by ctrctl). The exit is recorded (exec inspect, `exec_die`) before the stream's
exit message goes out, so an inspect right after it sees the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from pathlib import Path

from ctrd import errdefs, reasons
from ctrd.v1 import container_pb2 as pb
from daemon.containers import attach
from daemon.containers.bundle import exec_user
from daemon.containers.execs import ExecConfig, ExecStore
from daemon.containers.monitor import Monitor
from daemon.containers.record import Container
from daemon.containers.state import Status
from daemon.layers.api import Layers
from daemon.shims.api import ExecProcess, ShimTask

FIRST_RESIZE_WAIT = 1.0  # a tty exec waits this long at most for the client's terminal size
RECORD_WAIT = 5.0  # the exit frame waits (bounded) for the exit to be recorded


class ExecRunner:
    def __init__(self, monitor: Monitor, layers: Layers) -> None:
        self.monitor = monitor
        self.layers = layers
        self.store = ExecStore()
        self._done: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------ create / inspect

    def create(self, c: Container, args: list[str], env: list[str], user: str, working_dir: str, tty: bool,
               attach_stdin: bool, attach_stdout: bool, attach_stderr: bool, privileged: bool,
               detach_keys: str, console_size: tuple[int, int] | None = None) -> str:
        if not args:
            raise errdefs.InvalidArgument("args: no command specified")
        for i, kv in enumerate(env):
            if "=" not in kv or kv.startswith("="):
                raise errdefs.InvalidArgument(f"env[{i}]: {kv!r} is not NAME=VALUE")
        if working_dir and not working_dir.startswith("/"):
            raise errdefs.InvalidArgument(
                f"working_dir: the working directory '{working_dir}' is invalid, it needs to be an absolute path")
        if privileged:
            raise errdefs.InvalidArgument("privileged: a privileged exec is not supported by ctrd")
        attach.parse_detach_keys(detach_keys)
        if console_size is not None:
            attach.check_size(*console_size)
        self._running(c)
        e = ExecConfig(self.store.new_id(), c.id, list(args), list(env), user, working_dir, tty, attach_stdin,
                       attach_stdout, attach_stderr, privileged, detach_keys, console_size if tty else None)
        self.store.add(e)
        self.monitor.emit(c, "exec_create", execID=e.id)
        return e.id

    def inspect(self, exec_id: str) -> ExecConfig:
        return self.store.get(exec_id)

    def drop_container(self, container_id: str) -> None:
        for e in self.store.of_container(container_id):
            self._done.pop(e.id, None)
        self.store.drop_container(container_id)

    # ------------------------------------------------------------------ start

    def _running(self, c: Container) -> ShimTask:
        if c.status is Status.PAUSED:
            raise errdefs.FailedPrecondition(f"Container {c.id} is paused, unpause the container before exec")
        if c.status is Status.RESTARTING:
            raise errdefs.FailedPrecondition(f"Container {c.id} is restarting, wait until the container is running")
        shim = self.monitor.tasks.get(c.id)
        if c.status is not Status.RUNNING or shim is None:
            raise errdefs.FailedPrecondition(f"Container {c.id} is not running")
        return shim

    async def _launch(self, e: ExecConfig, c: Container, size: tuple[int, int] | None) -> tuple[ShimTask, str]:
        """The shim's exec, listening and not started; the exec is claimed (a second start refused)."""
        e.check_startable()
        shim = self._running(c)
        e.started = True
        try:
            rootfs = self.layers.graph_data(c.id).get("MergedDir", "")
            uid, gid, gids = await asyncio.to_thread(
                exec_user, Path(rootfs), e.user or c.config.user, c.host_config.group_add)
            proc = ExecProcess(
                e.id, tuple(e.args), tuple(list(c.config.env) + e.env), e.working_dir or c.config.working_dir or "/",
                uid, gid, tuple(gids), terminal=e.tty, open_stdin=e.attach_stdin, size=size)
            return shim, await shim.create_exec(proc)
        except BaseException:
            e.started = False
            raise

    async def _start(self, e: ExecConfig, c: Container, shim: ShimTask) -> None:
        done = self._done.setdefault(e.id, asyncio.Event())
        try:
            e.pid = await shim.start_exec(e.id)
        except errdefs.CtrdError as exc:
            e.exit_code = reasons.exit_code(exc.reason, 126)
            done.set()
            with contextlib.suppress(errdefs.CtrdError):
                await shim.delete_exec(e.id)
            raise
        e.running = True
        self.monitor.emit(c, "exec_start", execID=e.id)
        self.monitor.spawn(self._reap(e, c, shim, done))

    async def _reap(self, e: ExecConfig, c: Container, shim: ShimTask, done: asyncio.Event) -> None:
        try:
            ex = await shim.wait_exec(e.id)
            e.exit_code = ex.status
        except errdefs.CtrdError:  # the shim is gone (the container's end took the exec with it)
            e.exit_code = 137 if e.exit_code is None else e.exit_code
        e.running = False
        done.set()
        self.monitor.emit(c, "exec_die", execID=e.id, exitCode=str(e.exit_code))
        with contextlib.suppress(errdefs.CtrdError):
            await shim.delete_exec(e.id)

    async def start_detached(self, c: Container, exec_id: str) -> None:
        e = self.store.get(exec_id)
        shim, _ = await self._launch(e, c, e.console_size)
        await self._start(e, c, shim)

    async def attach(self, c: Container, opts: pb.AttachOpen,
                     requests: AsyncIterable[pb.AttachRequest]) -> AsyncGenerator[pb.AttachResponse, None]:
        e = self.store.get(opts.exec_id)
        e.check_startable()
        self._running(c)
        o = pb.AttachOpen()
        o.CopyFrom(opts)
        o.detach_keys = opts.detach_keys or e.detach_keys
        attach.parse_detach_keys(o.detach_keys)
        yield pb.AttachResponse(started=pb.AttachStarted(tty=e.tty))
        it = aiter(requests)
        first: asyncio.Future[pb.AttachRequest | None] | None = None
        size = e.console_size
        if e.tty and size is None:
            # never cancelled: a request read cut short could lose it; an unused one is relayed
            first = asyncio.ensure_future(_next(it))
            await asyncio.wait({first}, timeout=FIRST_RESIZE_WAIT)
            got = first.result() if first.done() and first.exception() is None else None
            if got is not None and got.WhichOneof("msg") == "resize":
                r = got.resize
                attach.check_size(r.rows, r.cols)
                size, first = (r.rows, r.cols), None
        shim, path = await self._launch(e, c, size)
        try:
            io = await attach.connect(path)
        except BaseException:
            e.started = False
            with contextlib.suppress(errdefs.CtrdError):
                await shim.delete_exec(e.id)
            raise
        try:
            await self._start(e, c, shim)
        except BaseException:
            await io.close()
            raise
        async for resp in attach.relay(io, o, e.tty, _chain(first, it), started=False):
            if resp.WhichOneof("msg") == "exit":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._done[e.id].wait(), RECORD_WAIT)
            yield resp

    # ------------------------------------------------------------------ resize

    async def resize(self, c: Container, exec_id: str, rows: int, cols: int) -> None:
        e = self.store.get(exec_id)
        attach.check_size(rows, cols)
        if not e.running:
            raise errdefs.FailedPrecondition(f"exec {exec_id} is not running")
        if not e.tty:
            raise errdefs.FailedPrecondition(f"exec {exec_id} has no terminal")
        await self._running(c).resize_exec(exec_id, rows, cols)


async def _next(it: AsyncIterator[pb.AttachRequest]) -> pb.AttachRequest | None:
    try:
        return await anext(it)
    except StopAsyncIteration:
        return None


async def _chain(first: asyncio.Future[pb.AttachRequest | None] | None,
                 rest: AsyncIterator[pb.AttachRequest]) -> AsyncIterator[pb.AttachRequest]:
    if first is not None:
        req = await first
        if req is None:
            return
        yield req
    async for req in rest:
        yield req
