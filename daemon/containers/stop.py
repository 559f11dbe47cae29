"""Stop and kill a running container through its shim."""

from __future__ import annotations

import asyncio
import logging
import signal

from ctrd import errdefs
from ctrd.errdefs import CtrdError
from daemon import faults
from daemon.containers.monitor import SHIM_CALL_TIMEOUT, Monitor
from daemon.containers.record import Container
from daemon.containers.signals import parse_signal
from daemon.containers.state import Action, Status, is_alive, transition
from daemon.shims.api import Exit, ShimTask

log = logging.getLogger(__name__)

STOP_GRACE = 15.0  # beyond the stop timeout, how long the shim may take to report the exit


async def stop_locked(m: Monitor, c: Container, sig: int, timeout: int, *, manual: bool = True) -> None:
    """Signal through the shim (then SIGKILL at the timeout), collect the exit, release the
    network and the rootfs."""
    if manual:
        # also when it already exited: a restart the policy has scheduled must not happen
        m.cancel_restart(c)
        if not c.has_been_manually_stopped:
            c.has_been_manually_stopped = True
            await m.save(c)
    if c.status is Status.RESTARTING:
        m.cancel_restart(c)
        c.set_state(status=transition(c.id, c.status, Action.CANCEL_RESTART))
        await m.save(c)
        return
    if not is_alive(c.status):
        return  # docker: 304 not modified
    shim = m.tasks.get(c.id)
    ex: Exit | None = None
    if shim is not None:
        try:
            if c.status is Status.PAUSED:
                await shim.resume()  # a frozen process cannot act on the signal
                c.set_state(status=transition(c.id, c.status, Action.RESUME))
            m.emit(c, "kill", signal=str(sig))
            ms = 0xFFFFFFFF if timeout < 0 else timeout * 1000
            faults.point("stop.after_signal")  # armed with a delay: fires while the shim waits
            # never wait without a bound (moby#41579): a stuck shim is killed and cleaned up
            bound = None if timeout < 0 else timeout + STOP_GRACE
            try:
                ex = await asyncio.wait_for(shim.stop(sig, ms), bound)
            except errdefs.NotFound:
                # it exited on its own just before the signal: its watcher waits for our lock
                ex = await asyncio.wait_for(shim.wait(), SHIM_CALL_TIMEOUT)
            faults.point("stop.after_exit")
        except errdefs.Unavailable:
            shim = None
        except TimeoutError:
            log.error("container %s: shim did not report the exit; killing the shim", c.id)
            await _close_quietly(shim)
            shim = None
    if ex is None:
        ex = await m.collect_dead(c.id)
    await m.finish_locked(c, shim, ex)
    m.emit(c, "stop")


async def _close_quietly(shim: ShimTask) -> None:
    try:
        await shim.close()
    except CtrdError:
        pass


async def kill_locked(m: Monitor, c: Container, sig: int) -> None:
    if not is_alive(c.status):
        raise errdefs.FailedPrecondition(f"container {c.id} is not running")
    c.has_been_manually_stopped = True
    await m.save(c)
    shim = m.tasks.get(c.id)
    if shim is None:
        raise errdefs.Unavailable(f"container {c.id}: shim is not connected")
    try:
        await asyncio.wait_for(shim.kill(sig, all_=sig == signal.SIGKILL), SHIM_CALL_TIMEOUT)
    except errdefs.NotFound:
        raise errdefs.FailedPrecondition(f"container {c.id} is not running") from None
    m.emit(c, "kill", signal=str(sig))
    if c.status is Status.PAUSED and sig == signal.SIGKILL:
        try:
            await shim.resume()
            c.set_state(status=transition(c.id, c.status, Action.RESUME))
        except CtrdError:
            pass


def stop_signal(name: str) -> int:
    """The container's configured stop signal (SIGTERM when none)."""
    return parse_signal(name or "SIGTERM", "stop_signal")
