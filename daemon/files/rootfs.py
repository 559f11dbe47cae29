"""The root of a container for the length of one file operation, running or not.

`cp` of a running (or paused) container works on the root its process sees,
`/proc/<pid>/root`: its bind mounts, tmpfs and /etc/hosts, /etc/resolv.conf, /etc/hostname are
there, as docker shows them (docker mounts them beside the rootfs for the copy). Export and
the rest work on the merged overlay alone (docker's export leaves volumes out).

For the merged root: a running container's root is mounted already; a created or stopped one is mounted for the
operation and unmounted after it — unless the container started meanwhile (its start found the
mount in place and uses it) or another operation still holds it. Mount and unmount happen under
the container's lock, as start and stop do theirs, so neither can interleave with them; the
operation itself runs on an fd of the root, which stays valid even if a stop detaches the mount.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ctrd import errdefs
from daemon.containers.manager import ContainerManager
from daemon.containers.record import Container
from daemon.containers.state import Status, is_alive

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class RootfsUse:
    def __init__(self, manager: ContainerManager) -> None:
        self.m = manager
        self.users: Counter[str] = Counter()

    @asynccontextmanager
    async def open(self, ref: str, live: bool = False) -> AsyncIterator[tuple[Container, int]]:
        """(container, root fd); `live`: the running process's view when there is one."""
        c = self.m.get(ref)
        async with c.lock:
            _check(c, ref)
            fd = _process_root(c) if live else -1
        if fd >= 0:
            try:
                yield c, fd
            finally:
                os.close(fd)
            return
        async with c.lock:
            _check(c, ref)  # (again: it may have gone while the lock was free)
            merged = await asyncio.to_thread(self.m.layers.mount, c.id)
            fd = os.open(merged, _DIR)
            self.users[c.id] += 1
        try:
            yield c, fd
        finally:
            os.close(fd)
            async with c.lock:
                self.users[c.id] -= 1
                if self.users[c.id] <= 0:
                    del self.users[c.id]
                    if not c.removed and not is_alive(c.status):
                        await asyncio.to_thread(self.m.layers.unmount, c.id)


def _check(c: Container, ref: str) -> None:
    if c.removed or c.status is Status.REMOVING:
        raise errdefs.NotFound(f"no such container: {ref}")


def _process_root(c: Container) -> int:
    """An fd of the container's process's root, or -1 (not running, or already gone). Called under
    the container's lock: its process cannot be reaped (and its pid reused) meanwhile."""
    if not is_alive(c.status) or c.state.pid <= 0:
        return -1
    try:
        return os.open(f"/proc/{c.state.pid}/root", _DIR)
    except OSError:
        return -1
