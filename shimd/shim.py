"""The shim process itself: one event loop, one reaper, one socket, one container.

`serve` runs in the child forked by `shimd.launch.fork`; it returns the process exit code once
Shutdown (or SIGTERM) has cleaned up and the socket is gone. It runs on `ShimLoop`, the shim's
small epoll loop (asyncio's tasks and futures without the stock loop's machinery).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from ctrd.shim import attachwire
from shimd import files
from shimd.backends.forked import fork_spare
from shimd.backends.spare import Unwatched
from shimd.loop import new_loop
from shimd.reaper import Reaper
from shimd.server import Server
from shimd.service import ShimService
from shimd.task import Task

QUIESCE_TIMEOUT = 2.0


async def _serve(container_id: str, state_dir: str | Path, ready_fd: int, ok_line: bytes | None,
                 helper: Unwatched | None) -> int:
    loop = asyncio.get_running_loop()
    reaper = Reaper()
    reaper.install(loop)
    task = Task(container_id, state_dir, reaper)
    # a bare future, not asyncio.Event: the Event's code (asyncio.locks) is pages each shim would copy
    stopping: asyncio.Future[None] = loop.create_future()

    def stop() -> None:
        if not stopping.done():
            stopping.set_result(None)

    server = Server(ShimService(task, stop))
    sock = f"{state_dir}/{files.SOCKET_FILE}"  # str paths here: pathlib is code each shim would run
    if os.access(sock, os.F_OK, follow_symlinks=False):
        os.unlink(sock)
    try:
        server.listen(sock)
        os.chmod(sock, 0o600)
        files.write_atomic(f"{state_dir}/{files.PID_FILE}", str(os.getpid()).encode())
    except OSError as exc:
        os.write(ready_fd, f"error {exc}\n".encode())
        os.close(ready_fd)
        return 1
    os.write(ready_fd, ok_line or f"ok {os.getpid()}\n".encode())
    os.close(ready_fd)
    # while the daemon mounts the rootfs and writes the bundle: Create then finds its helper forked
    # (a spare shim forked it while it waited for its request: the reaper now watches it)
    task.spare = helper.watch(reaper) if helper is not None else fork_spare(reaper)
    loop.add_signal_handler(signal.SIGTERM, stop)
    await stopping
    # SIGTERM without a Shutdown call: clean up the container the same way Shutdown does
    await task.shutdown()
    server.close()
    await server.quiesce(QUIESCE_TIMEOUT)
    reaper.uninstall()
    state = Path(state_dir)
    for name in (files.SOCKET_FILE, attachwire.SOCKET_FILE, files.PID_FILE, files.EXIT_FILE, files.RUNTIME_FILE, "shim.log", "init.pid"):
        (state / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        files.remove_tree(state / "runtime")
        state.rmdir()
    return 0


def serve(container_id: str, state_dir: str | Path, ready_fd: int, ok_line: bytes | None = None,
          helper: Unwatched | None = None) -> int:
    """Serve until Shutdown or SIGTERM; `ok_line` (default "ok <pid>") goes to ready_fd once the
    socket listens; `helper`: a create helper forked before the shim had its reaper. Not asyncio.run: its Runner machinery costs each shim ~0.2 MB of copied
    pages, and the shim process ends right after (os._exit), so only the task cleanup is kept."""
    # logging is configured by whoever forks the shim (the launcher, `ctrd-shim start`): not here,
    # where it would be more code for each shim to run
    loop = new_loop()
    try:
        return loop.run_until_complete(_serve(container_id, state_dir, ready_fd, ok_line, helper))
    finally:
        rest = asyncio.all_tasks(loop)
        for t in rest:
            t.cancel()
        if rest:
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
