"""Run helper binaries (an OCI runtime) as children reaped by the shim's one reaper.

No asyncio.create_subprocess_exec here: its child watcher would race our waitpid(-1).
posix_spawn starts the child; the reaper reports its exit; stdout/stderr are read from pipes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass

from shimd.reaper import Reaper

OUTPUT_CAP = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Result:
    status: int
    stdout: bytes
    stderr: bytes


def spawn(
    argv: Sequence[str], *, stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
    env: dict[str, str] | None = None, extra: dict[int, int] | None = None,
) -> int:
    """posix_spawn argv[0] (looked up in PATH) with the given fds as 0/1/2 (/dev/null when None)."""
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, stdin if stdin is not None else devnull, 0),
            (os.POSIX_SPAWN_DUP2, stdout if stdout is not None else devnull, 1),
            (os.POSIX_SPAWN_DUP2, stderr if stderr is not None else devnull, 2),
        ]
        actions += [(os.POSIX_SPAWN_DUP2, src, dst) for dst, src in (extra or {}).items()]
        return os.posix_spawnp(argv[0], list(argv), env if env is not None else dict(os.environ),
                               file_actions=actions)
    finally:
        os.close(devnull)


async def read_all(fd: int, cap: int = OUTPUT_CAP) -> bytes:
    """Read a pipe to its end without blocking the loop; keeps at most `cap` bytes."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    done: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        nonlocal size
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            if not done.done():
                done.set_result(None)
            return
        if size < cap:
            chunks.append(data[: cap - size])
            size += len(chunks[-1])

    loop.add_reader(fd, on_readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks)


async def run(reaper: Reaper, argv: Sequence[str], *, stdin: int | None = None) -> Result:
    """Run argv to completion, capturing stdout and stderr."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = spawn(argv, stdin=stdin, stdout=out_w, stderr=err_w)
    except OSError:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    exited = reaper.wait_fresh(pid)
    os.close(out_w)
    os.close(err_w)
    out, err = await asyncio.gather(read_all(out_r), read_all(err_r))
    ex = await exited
    return Result(ex.status, out, err)
