"""The merged root of a container for the length of one file operation, running or not.

A running container's root is mounted already; a created or stopped one is mounted for the
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
    async def open(self, ref: str) -> AsyncIterator[tuple[Container, int]]:
        c = self.m.get(ref)
        async with c.lock:
            if c.removed or c.status is Status.REMOVING:
                raise errdefs.NotFound(f"no such container: {ref}")
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
