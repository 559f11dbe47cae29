"""Restart policies (docker's restartmanager): no, always, on-failure[:N], unless-stopped.

Backoff: the first restart waits 100 ms, each next one doubles, capped at one minute; a container
that stayed up for 10 s or more starts again from 100 ms. An explicit stop (or kill) sets
HasBeenManuallyStopped, and the policy never undoes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ctrd.errdefs import CtrdError
from daemon.containers.record import Container, RestartPolicy
from daemon.containers.state import Action, Status, transition

log = logging.getLogger(__name__)

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


@dataclass(slots=True)
class Backoff:
    delay: float = 0.0

    def next(self, uptime: float) -> float:
        if uptime >= RESET_AFTER:
            self.delay = 0.0
        self.delay = INITIAL_DELAY if self.delay == 0.0 else min(self.delay * 2, MAX_DELAY)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def should_restart(
    policy: RestartPolicy, exit_code: int, restart_count: int, manually_stopped: bool, daemon_shutdown: bool = False
) -> bool:
    if manually_stopped or daemon_shutdown:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        if exit_code == 0:
            return False
        return policy.maximum_retry_count == 0 or restart_count < policy.maximum_retry_count
    return False


class RestartScheduler:
    """Applies a container's policy after an exit: `restarting` for the backoff, then a start.

    A scheduled restart re-checks, under the container lock, that nothing happened meanwhile
    (same generation, still exited, no explicit stop); an explicit stop cancels it.
    """

    def __init__(
        self,
        start_locked: Callable[[Container], Awaitable[None]],
        save: Callable[[Container], Awaitable[None]],
        emit: Callable[..., None],
        spawn: Callable[[Awaitable[None]], asyncio.Task[None]],
        closing: Callable[[], bool],
    ) -> None:
        self._start_locked = start_locked
        self._save = save
        self._emit = emit
        self._spawn = spawn
        self._closing = closing
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._backoff: dict[str, Backoff] = {}

    def schedule(self, c: Container) -> None:
        backoff = self._backoff.setdefault(c.id, Backoff())
        uptime = max(0.0, c.state.finished_at - c.state.started_at) if c.state.started_at else 0.0
        delay = backoff.next(uptime)
        self._tasks[c.id] = self._spawn(self._restart_later(c, c.generation, delay))

    async def _restart_later(self, c: Container, gen: int, delay: float) -> None:
        async with c.lock:
            if c.generation != gen or c.status is not Status.EXITED or c.has_been_manually_stopped:
                return
            c.set_state(status=transition(c.id, c.status, Action.RESTART_WAIT))
            await self._save(c)
        await asyncio.sleep(delay)
        async with c.lock:
            if c.generation != gen or c.state.status is not Status.RESTARTING or self._closing():
                return
            c.restart_count += 1
            try:
                await self._start_locked(c)
            except CtrdError as exc:
                log.warning("container %s: restart failed: %s", c.id, exc)
                if c.state.status is Status.RESTARTING:
                    c.set_state(status=transition(c.id, c.status, Action.EXIT), error=exc.message)
                    c.exit_seq += 1
                    await self._save(c)
                return
        self._emit(c, "restart")

    def cancel(self, cid: str) -> None:
        task = self._tasks.pop(cid, None)
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    def cancel_all(self) -> None:
        for cid in list(self._tasks):
            self.cancel(cid)

    def reset(self, cid: str) -> None:
        self._backoff.pop(cid, None)

    def forget(self, cid: str) -> None:
        self.cancel(cid)
        self._backoff.pop(cid, None)
