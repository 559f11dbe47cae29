"""The running containers' shims, their exits and what follows an exit (restart policy, auto-remove).

Locking: every method named `*_locked` must be called with `c.lock` held. The watcher of a
running container takes the lock only after its shim reported the exit, so a stop that holds the
lock handles the exit itself and the watcher, arriving later, finds its generation already
finished. No lock is global: containers proceed independently.

The verbs that drive a container live beside this module: start.py, stop.py (stop and kill) and
shutdown.py; they share the state kept here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ctrd.errdefs import CtrdError
from daemon import faults
from daemon.config import Config
from daemon.containers import healthcheck
from daemon.containers.cgwarm import MigrationWarmer
from daemon.containers.record import Container
from daemon.containers.restart import RestartScheduler, should_restart
from daemon.containers.sessions import EarlyAttach
from daemon.containers.state import Action, is_alive, transition
from daemon.containers.store import ContainerStore
from daemon.containers.volumes import ContainerVolumes
from daemon.events import Exchange
from daemon.layers.api import Layers
from daemon.network.api import Network
from daemon.network.settings import NetworkSettings
from daemon.shims.api import Exit, Shims, ShimTask

log = logging.getLogger(__name__)

UNKNOWN_EXIT = 255
SHIM_CALL_TIMEOUT = 10.0  # delete, shutdown, kill: quick calls to a healthy shim
StartFn = Callable[[Container], Awaitable[None]]


class Monitor:
    def __init__(
        self, cfg: Config, store: ContainerStore, layers: Layers, shims: Shims, network: Network, events: Exchange,
        start_locked: StartFn,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.layers = layers
        self.shims = shims
        self.network = network
        self.events = events
        self.tasks: dict[str, ShimTask] = {}  # container id -> its connected shim (alive containers)
        self.early_attach: EarlyAttach = {}  # created containers' attach sessions waiting for the start
        # container id -> its exit watcher: the shim's wait future while the container runs,
        # the task that handles the exit once it came
        self._watchers: dict[str, asyncio.Future[Any]] = {}
        self._health: dict[str, asyncio.Task[None]] = {}  # container id -> its healthcheck reader
        self._background: set[asyncio.Task[None]] = set()
        self._settling: dict[str, asyncio.Future[None]] = {}  # container id -> its last shim's shutdown
        self.closing = False  # the daemon is going away: watchers stop acting
        self.shutting_down = False  # no restart policy or auto-remove from here on
        self.on_auto_remove: Callable[[Container], Awaitable[None]] | None = None
        self.volumes: ContainerVolumes | None = None  # set by the manager
        self.migration_warmer: MigrationWarmer | None = None  # set by the real daemon (cgwarm.py)
        self.restarts = RestartScheduler(start_locked, self.save, self.emit, self.spawn, lambda: self.closing)

    # ------------------------------------------------------------------ helpers

    async def save(self, c: Container, durable: bool = True) -> None:
        await asyncio.to_thread(self.store.save, c, durable)
        await c.notify()

    def emit(self, c: Container, action: str, **attrs: str) -> None:
        self.events.publish("container", action, c.id, name=c.name, image=c.config.image, **attrs)

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def container_dir(self, c: Container) -> Path:
        return self.store.container_dir(c.id)

    # ------------------------------------------------------------------ shims after a daemon restart

    async def reconnect(self, cid: str) -> ShimTask:
        return await self.shims.reconnect(cid)

    def shim_dir_ids(self) -> list[str]:
        """The container ids that have a shim state dir (sync: called in a thread)."""
        shims_dir = self.shims.state_dir("0" * 64).parent
        return [d.name for d in sorted(shims_dir.iterdir()) if d.is_dir()] if shims_dir.is_dir() else []

    def has_leftovers(self, c: Container) -> bool:
        """A shim state dir or a mount: what a crash inside start or stop can leave behind."""
        return self.shims.state_dir(c.id).exists() or self.layers.is_mounted(c.id)

    def adopt(self, c: Container, shim: ShimTask) -> None:
        """A running container's shim found again; `watch` arms its exit watcher."""
        self.tasks[c.id] = shim
        c.generation += 1

    def watch(self, c: Container) -> None:
        self.arm_watcher(c, self.tasks[c.id])

    async def recover_network(self, live: dict[str, NetworkSettings]) -> None:
        await self.network.recover(live)

    async def clean_leftovers(self, c: Container) -> None:
        """What a not-running container must not hold: a shim, its state dir, a mount, a netns."""
        await self.collect_dead(c.id)
        await self.drop_state_dir(c.id)
        await self.release_resources(c)
        c.network = None

    # ------------------------------------------------------------------ exit

    def arm_watcher(self, c: Container, shim: ShimTask) -> None:
        old = self._watchers.pop(c.id, None)
        if old is not None and not old.done():
            old.cancel()
        # No task waits: the exit's future calls back, and only then a task handles it. A task
        # per running container suspended in `await shim.wait()` was 0.75 KB more (see conn.py).
        waiting: asyncio.Future[Exit]
        try:
            waiting = asyncio.ensure_future(shim.wait())
        except CtrdError as exc:  # the connection is gone already: handled as a lost shim
            waiting = asyncio.get_running_loop().create_future()
            waiting.set_exception(exc)
        self._watchers[c.id] = waiting
        waiting.add_done_callback(functools.partial(self._exited, c, shim, c.generation))
        old = self._health.pop(c.id, None)
        if old is not None and not old.done():
            old.cancel()
        if c.config.healthcheck is not None and c.config.healthcheck.enabled:
            self._health[c.id] = self.spawn(self._watch_health(c, shim, c.generation))

    async def _watch_health(self, c: Container, shim: ShimTask, gen: int) -> None:
        """Follow the shim's healthcheck (one long poll per probe result) into the record; a
        status change (also one that happened while the daemon was down: the first answer is the
        shim's current state) is saved and becomes a `health_status` event."""
        seq = 0
        while not self.closing:
            try:
                report = await shim.health(seq)
            except CtrdError:
                break
            if report.seq <= seq or c.generation != gen or not is_alive(c.status):
                break  # no healthcheck (seq 0), or no newer result: the shim's checks have ended
            seq = report.seq
            old = c.state.health
            c.set_state(health=report.state)
            # the event goes out with the state change, before the save awaits: whoever sees the
            # new status in inspect also finds its event in the history
            action = healthcheck.event(old, report.state)
            if action is not None:
                self.emit(c, action)
            if old is None or old.status != report.state.status:
                try:
                    await self.save(c)
                except OSError as exc:  # being removed meanwhile: its record is going anyway
                    log.info("container %s: saving its health: %s", c.id, exc)
                    break
        if self._health.get(c.id) is asyncio.current_task():
            del self._health[c.id]

    def _exited(self, c: Container, shim: ShimTask, gen: int, waiting: asyncio.Future[Exit]) -> None:
        """The shim's wait ended: the exit is handled in a task, which replaces the future as
        the container's watcher (so a remove cancels it as it would have cancelled the wait)."""
        if waiting.cancelled():
            return
        waiting.exception()  # retrieved here: a lost connection is not "never retrieved"
        if self._watchers.get(c.id) is not waiting:
            return  # re-armed or forgotten: someone else handles this container now
        if self.closing:
            return
        self._watchers[c.id] = self.spawn(self._watch(c, shim, gen, waiting))

    async def _watch(self, c: Container, shim: ShimTask, gen: int, waiting: asyncio.Future[Exit]) -> None:
        ex: Exit | None
        try:
            ex = waiting.result()
        except CtrdError as exc:
            if self.closing:
                return
            log.warning("container %s: lost its shim (%s)", c.id, exc)
            ex = None
        if self.closing:
            return
        async with c.lock:
            if c.generation != gen or not is_alive(c.status):
                return  # a stop or remove already handled this exit
            if ex is None:
                ex = await self.collect_dead(c.id)
            await self.finish_locked(c, shim, ex)
        await self.after_exit(c)

    async def collect_dead(self, cid: str) -> Exit:
        """The shim is gone: `ctrd-shim delete` reports what it can (255 when unknown)."""
        try:
            return await self.shims.cleanup_dead(cid)
        except CtrdError as exc:
            log.warning("container %s: shim cleanup failed: %s", cid, exc)
            return Exit(UNKNOWN_EXIT, time.time())

    async def finish_locked(self, c: Container, shim: ShimTask | None, ex: Exit) -> None:
        """After the process is gone: collect its exit, destroy its network, unmount its rootfs.

        Order matters for a crash in between: the shim (and its exit file) stays until the exit
        is recorded, so a daemon killed here still learns the real exit code at its next start.
        The shim's delete (runtime state, cgroup) and the network/rootfs release touch disjoint
        things, so they run together. Once the exit is recorded, the shim's shutdown and the
        removal of its state dir run in the background (see `settle`): Wait answers and the
        lock is free without them, and a crash before they finish leaves an exited container
        with a shim dir, which recovery cleans."""
        self.tasks.pop(c.id, None)
        steps = Steps()

        async def delete() -> Exit | None:
            if shim is None:
                return None
            try:
                return await asyncio.wait_for(shim.delete(), SHIM_CALL_TIMEOUT)
            except (CtrdError, TimeoutError) as exc:
                log.info("container %s: shim delete: %s", c.id, exc)
                return None

        network = c.network  # record_exit clears it: the teardown works from this snapshot
        if ex.status == UNKNOWN_EXIT:  # the shim's delete may know better: record after it
            deleted, _ = await asyncio.gather(delete(), self.release_resources(c, network=network))
            if deleted is not None and deleted.exited_at:
                ex = deleted
            await self.record_exit(c, ex)
        else:
            # The exit is known: its record is written while the resources go. A crash before
            # the teardown ends leaves an exited record with a shim dir, a mount or a netns
            # behind, which recovery cleans (with the network's leftovers sweep).
            await asyncio.gather(delete(), self.release_resources(c, network=network),
                                 self.record_exit(c, ex, early=shim is not None))
        steps.mark("delete+release+record")
        log.debug("container %s finished: %s", c.id[:12], steps)
        self._settle_later(c.id, shim)

    def _settle_later(self, cid: str, shim: ShimTask | None) -> None:
        previous = self._settling.get(cid)

        async def settle() -> None:
            if previous is not None:
                await asyncio.shield(previous)
            if shim is not None:
                try:
                    await asyncio.wait_for(shim.shutdown(), SHIM_CALL_TIMEOUT)  # the exit is recorded: the shim may go
                except (CtrdError, TimeoutError) as exc:
                    log.info("container %s: shim shutdown: %s", cid, exc)
                try:
                    await shim.close()
                except CtrdError:
                    pass
            await self.drop_state_dir(cid)

        task = asyncio.ensure_future(settle())
        self._settling[cid] = task

        def done(t: asyncio.Future[None]) -> None:
            if self._settling.get(cid) is t:
                del self._settling[cid]
            if not t.cancelled() and t.exception() is not None:
                log.warning("container %s: shim cleanup: %s", cid, t.exception())

        task.add_done_callback(done)

    async def settle(self, cid: str) -> None:
        """Wait for the background shutdown of the container's last shim (if any)."""
        task = self._settling.get(cid)
        if task is not None:
            await asyncio.shield(task)

    async def settle_all(self) -> None:
        if self._settling:
            await asyncio.gather(*(asyncio.shield(t) for t in list(self._settling.values())), return_exceptions=True)

    async def drop_state_dir(self, cid: str) -> None:
        """The shim's state dir (bundle, socket, exit file) once its exit has been collected."""
        await asyncio.to_thread(shutil.rmtree, self.shims.state_dir(cid), True)

    async def release_resources(
        self, c: Container, *, rootfs: bool = True, network: NetworkSettings | None = None
    ) -> None:
        network = c.network if network is None else network
        if network is not None:
            try:
                await self.network.teardown(c.id, network)
                faults.point("stop.after_network_teardown")
            except CtrdError as exc:
                log.warning("container %s: network teardown: %s", c.id, exc)
        if not rootfs:
            return
        try:
            if await asyncio.to_thread(self.layers.unmount, c.id):  # no mountinfo read: umount tells
                faults.point("stop.after_unmount")
        except CtrdError as exc:
            log.warning("container %s: unmount: %s", c.id, exc)
        if self.volumes is not None and any(m.type == "volume" for m in c.host_config.mounts):
            await asyncio.to_thread(self.volumes.release, c)

    async def record_exit(self, c: Container, ex: Exit, error: str = "", *, early: bool = False) -> None:
        """Record the exit. `early`: waiters (Wait, attached sessions) learn of it before its
        record is on disk (~1 ms of fsync off Wait's answer), for an exit the shim keeps until
        the record is written: finish_locked shuts the shim down (its exit file with it) only
        after this returns, so a daemon killed in between learns the same exit at its next
        start (recovery asks the shim)."""
        c.set_state(
            status=transition(c.id, c.status, Action.EXIT), pid=0, exit_code=ex.status,
            oom_killed=ex.oom_killed, finished_at=max(ex.exited_at or time.time(), c.state.started_at), error=error,
        )
        c.network = None
        c.shim_pid = 0
        c.exit_seq += 1
        # An auto-remove container's exit record is not fsynced: the removal follows at once, and
        # a machine crash before it leaves a record (this one, or the running one before it) that
        # recovery ends and removes all the same. Its rootfs is mounted `volatile` for the same
        # reason: with both, no journal commit is on the path from its exit to its removal
        # (create + Wait "removed" + start of `true`, two daemons driven alternately, 2026-12-07:
        # exit to removed 8.45 -> 7.20 ms p50 over 8 rounds of 20, 9.57 -> 9.20 ms over 16 on a
        # busier host).
        durable = not c.host_config.auto_remove
        if early:
            await c.notify()
            await asyncio.to_thread(self.store.save, c, durable)
        else:
            await self.save(c, durable)
        if ex.oom_killed:
            self.emit(c, "oom")
        self.emit(c, "die", exitCode=str(ex.status))

    async def after_exit(self, c: Container) -> None:
        """Restart policy or AutoRemove, outside the container lock."""
        if self.closing or self.shutting_down or c.removed:
            return
        policy = c.host_config.restart_policy
        if should_restart(policy, c.state.exit_code, c.restart_count, c.has_been_manually_stopped):
            self.schedule_restart(c)
        elif c.host_config.auto_remove and self.on_auto_remove is not None:
            await self.on_auto_remove(c)

    # ------------------------------------------------------------------ restart policy

    def schedule_restart(self, c: Container) -> None:
        self.restarts.schedule(c)

    def cancel_restart(self, c: Container) -> None:
        self.restarts.cancel(c.id)

    def reset_backoff(self, c: Container) -> None:
        self.restarts.reset(c.id)

    def forget(self, cid: str) -> None:
        """Drop every handle of a removed container (1000 create/rm cycles must not grow memory)."""
        self.restarts.forget(cid)
        for table in (self._watchers, self._health):
            watcher = table.pop(cid, None)
            if watcher is not None and not watcher.done() and watcher is not asyncio.current_task():
                watcher.cancel()

    # ------------------------------------------------------------------ daemon exit

    async def close(self) -> None:
        """Watchers stop acting, background work ends, every shim connection closes (the shims stay)."""
        self.closing = True
        for t in [*self._background, *self._watchers.values()]:
            t.cancel()
        for shim in list(self.tasks.values()):
            try:
                await shim.close()
            except CtrdError:
                pass
        self.tasks.clear()


class Steps:
    """Milliseconds per lifecycle step, for the debug log (where does a start spend its time)."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._parts: list[str] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self._parts.append(f"{name} {1000 * (now - self._last):.1f} ms")
        self._last = now

    def __str__(self) -> str:
        return ", ".join(self._parts)
