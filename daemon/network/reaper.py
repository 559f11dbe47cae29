"""Torn-down veths, watched until the kernel has removed them.

Deleting a veth costs the kernel an RCU grace period (15-35 ms on this machine) under the RTNL
lock. Unmounting the container's namespace instead lets the kernel's netns cleanup take the pair
down in the background, batched across containers, so stop does not wait for it. This watcher
deletes any veth that outlives its namespace (a process still holding it) after a grace period,
and settle() lets tests and shutdown wait for them all.
"""

from __future__ import annotations

import asyncio
import time

from ctrd import errdefs
from daemon.network.client import NetOpsClient

REAP_INTERVAL = 0.5  # seconds between checks
REAP_GRACE = 2.0  # a veth still there after this is deleted explicitly


class VethReaper:
    def __init__(self, ops: NetOpsClient, interval: float = REAP_INTERVAL, grace: float = REAP_GRACE) -> None:
        self._ops = ops
        self.interval = interval
        self.grace = grace
        self._dying: dict[str, float] = {}  # veth name -> when its namespace was released
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> list[str]:
        return list(self._dying)

    def watch(self, name: str) -> None:
        self._dying.setdefault(name, time.monotonic())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while self._dying:
            await asyncio.sleep(self.interval)
            try:
                await self._once(force_after=self.grace)
            except errdefs.CtrdError:
                pass  # the helper restarts on the next call; try again next round

    async def _once(self, force_after: float) -> None:
        names = list(self._dying)
        if not names:
            return
        alive = set(await self._ops.call("links_present", names=names))
        now = time.monotonic()
        for name in names:
            if name not in alive:
                self._dying.pop(name, None)
            elif now - self._dying.get(name, now) >= force_after:
                await self._ops.call("link_delete", name=name)
                self._dying.pop(name, None)

    async def settle(self, timeout: float | None = None) -> None:
        """Wait until every watched veth is gone, deleting stragglers after `timeout`."""
        timeout = self.grace if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while self._dying and time.monotonic() < deadline:
            await self._once(force_after=timeout)
            if self._dying:
                await asyncio.sleep(0.01)
        await self._once(force_after=0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._dying:
            await self.settle()
