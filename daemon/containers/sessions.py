"""Attach sessions to a container's init process, and its terminal size.

A running container: the relay connects to its shim's io.sock (the socket belongs to the shim, so
this works as well for a container that outlived a daemon restart). A created container (the
foreground `run -i`/`-t`, `start -a -i`: the client opens the stream, then starts; `ctrctl attach`
refuses a stopped container itself, as docker's CLI): the session answers `started`
at once and registers a waiter; the start connects every waiter to the new shim's io.sock between
the shim's create and start (`connect_early`), so the very first bytes the process writes reach
the client. docker's refusals for the other states.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from pathlib import Path

from ctrd import errdefs
from ctrd.shim import attachwire
from ctrd.v1 import container_pb2 as pb
from daemon.containers import attach
from daemon.containers.record import Container
from daemon.containers.state import Status
from daemon.logs import LogEntry

Replay = Callable[[], AsyncIterator[LogEntry]]

EarlyAttach = dict[str, list["asyncio.Future[attach.ShimIO]"]]


def io_socket(state_dir: Path) -> str:
    return str(state_dir / attachwire.SOCKET_FILE)


def _refuse(c: Container) -> errdefs.CtrdError:
    if c.status is Status.PAUSED:
        return errdefs.FailedPrecondition("You cannot attach to a paused container, unpause it first")
    if c.status is Status.RESTARTING:
        return errdefs.FailedPrecondition("You cannot attach to a restarting container, wait until it is running")
    return errdefs.FailedPrecondition("You cannot attach to a stopped container, start it first")


async def attach_init(c: Container, state_dir: Path, early: EarlyAttach, o: pb.AttachOpen,
                      requests: AsyncIterable[pb.AttachRequest], replay: Replay | None = None
                      ) -> AsyncGenerator[pb.AttachResponse, None]:
    """`replay` (AttachOpen.logs): the log so far, sent after `started` and before live output
    (docker's attach ?logs=1: read first, then attached, so a line written in between may be missed
    or, for a created container, there is nothing to replay)."""
    attach.parse_detach_keys(o.detach_keys)  # bad keys are refused with or without a tty, as docker
    seq = c.exit_seq  # the exit this session will report is the next one recorded
    tty = c.config.tty
    opts = pb.AttachOpen()
    opts.CopyFrom(o)
    opts.stdin = o.stdin and c.config.open_stdin  # docker: no stdin to attach without -i
    if replay is not None and c.status is Status.RUNNING:
        yield pb.AttachResponse(started=pb.AttachStarted(tty=tty))
        async for e in replay():
            yield pb.AttachResponse(output=pb.AttachOutput(stream=e.stream, data=e.data))
        async for r in _recorded(c, seq, attach.relay(io_socket(state_dir), opts, tty, requests, started=False)):
            yield r
        return
    if c.status in (Status.CREATED, Status.EXITED):  # the client starts it next (run, start -a)
        fut: asyncio.Future[attach.ShimIO] = asyncio.get_running_loop().create_future()
        waiters = early.setdefault(c.id, [])
        waiters.append(fut)
        try:
            yield pb.AttachResponse(started=pb.AttachStarted(tty=tty))
            io = await fut
        finally:
            if not fut.done():
                fut.cancel()
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)
                if not waiters and early.get(c.id) is waiters:
                    del early[c.id]
        async for r in _recorded(c, seq, attach.relay(io, opts, tty, requests, started=False)):
            yield r
        return
    if c.status is not Status.RUNNING:
        raise _refuse(c)
    try:
        io = await attach.connect(io_socket(state_dir))
    except errdefs.Unavailable:
        if c.status is not Status.RUNNING:  # it exited meanwhile
            raise _refuse(c) from None
        raise
    async for r in _recorded(c, seq, attach.relay(io, opts, tty, requests)):
        yield r


RECORD_WAIT = 10.0  # the exit reaches clients from the shim and the daemon's record from its watcher


async def _recorded(c: Container, seq: int, responses: AsyncGenerator[pb.AttachResponse, None]
                    ) -> AsyncGenerator[pb.AttachResponse, None]:
    """The relay's responses, the exit held back until the daemon has recorded it: a client that
    acts on the exit (rm, inspect, start again) finds the container exited, as after docker's
    attach, whose CLI takes the code from the daemon's wait."""
    try:
        async for r in responses:
            if r.WhichOneof("msg") == "exit":
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECORD_WAIT), c.changed:
                        await c.changed.wait_for(lambda: c.exit_seq > seq or c.removed)
            yield r
    finally:
        await responses.aclose()


async def connect_early(cid: str, state_dir: Path, early: EarlyAttach) -> None:
    """Between the shim's create and start: hand every waiting session its connection."""
    for fut in early.pop(cid, []):
        if fut.done():
            continue
        try:
            io = await attach.connect(io_socket(state_dir))
        except errdefs.CtrdError as exc:
            if not fut.done():
                fut.set_exception(exc)
            continue
        if fut.done():  # the client went away while we connected
            await io.close()
        else:
            fut.set_result(io)


def check_resize(c: Container, rows: int, cols: int) -> None:
    attach.check_size(rows, cols)
    if not c.config.tty:
        raise errdefs.FailedPrecondition(f"container {c.id} has no terminal (it was not created with a tty)")
