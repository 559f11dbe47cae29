"""Daemon shutdown: stop every container (signal, timeout, KILL) and record it, or leave them
running for the next daemon (live-restore)."""

from __future__ import annotations

import asyncio
import logging

from ctrd.errdefs import CtrdError
from daemon.containers.monitor import Monitor
from daemon.containers.record import Container
from daemon.containers.state import is_alive
from daemon.containers.stop import stop_locked, stop_signal

log = logging.getLogger(__name__)


async def shutdown(m: Monitor, live_restore: bool) -> None:
    m.shutting_down = True
    m.restarts.cancel_all()
    # an exit being handled right now (a watcher inside finish_locked holds the lock) ends
    # first, so its shim gets its Shutdown and its state dir goes
    for c in m.store:
        async with c.lock:
            pass
    if not live_restore:
        alive = [c for c in m.store if is_alive(c.status)]

        async def stop_one(c: Container) -> None:
            async with c.lock:
                timeout = c.config.stop_timeout if c.config.stop_timeout is not None else m.cfg.stop_timeout
                try:
                    await stop_locked(m, c, stop_signal(c.config.stop_signal), timeout, manual=False)
                except CtrdError as exc:
                    log.error("container %s: stop at shutdown: %s", c.id, exc)

        await asyncio.gather(*(stop_one(c) for c in alive))
    await m.settle_all()
    await m.close()
