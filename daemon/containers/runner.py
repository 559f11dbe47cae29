"""Start, exit handling, stop and restart: the running half of the lifecycle.

Locking: every method named `*_locked` must be called with `c.lock` held. The watcher of a
running container takes the lock only after its shim reported the exit, so a Stop that holds the
lock handles the exit itself and the watcher, arriving later, finds its generation already
finished. No lock is global: containers proceed independently.

Start follows the source document's order: state check → rootfs mount → network (netns persisted)
→ hostname/hosts/resolv.conf → OCI bundle → shim → runtime create → start. Each step pushes its
undo; a failure runs the undos in reverse and leaves the container as it was (or `exited` with 127
or 126 when the command could not be executed, like docker).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ctrd import errdefs
from ctrd.errdefs import CtrdError
from daemon import faults
from daemon.config import Config
from daemon.containers import bundle
from daemon.containers.record import Container
from daemon.containers.restart import RestartScheduler, should_restart
from daemon.containers.signals import parse_signal
from daemon.containers.state import Action, Status, is_alive, transition
from daemon.containers.store import ContainerStore
from daemon.events import Exchange
from daemon.seams import Exit, Layers, NetRequest, Network, ShimCreate, Shims, ShimTask

log = logging.getLogger(__name__)

UNKNOWN_EXIT = 255
SHIM_CALL_TIMEOUT = 10.0  # delete, shutdown, kill: quick calls to a healthy shim
STOP_GRACE = 15.0  # beyond the stop timeout, how long the shim may take to report the exit
EXEC_CODES = {errdefs.REASON_EXEC_NOT_FOUND: 127, errdefs.REASON_EXEC_NOT_INVOKABLE: 126}
Undo = Callable[[], Awaitable[None]]


class Runner:
    def __init__(
        self, cfg: Config, store: ContainerStore, layers: Layers, shims: Shims, network: Network, events: Exchange
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.layers = layers
        self.shims = shims
        self.network = network
        self.events = events
        self.tasks: dict[str, ShimTask] = {}  # container id -> its connected shim (alive containers)
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._settling: dict[str, asyncio.Future[None]] = {}  # container id -> its last shim's shutdown
        self.closing = False  # the daemon is going away: watchers stop acting
        self.shutting_down = False  # no restart policy or auto-remove from here on
        self.on_auto_remove: Callable[[Container], Awaitable[None]] | None = None
        self.restarts = RestartScheduler(self.start_locked, self.save, self.emit, self.spawn, lambda: self.closing)

    # ------------------------------------------------------------------ helpers

    async def save(self, c: Container) -> None:
        await asyncio.to_thread(self.store.save, c)
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

    # ------------------------------------------------------------------ start

    async def start_locked(self, c: Container) -> None:
        transition(c.id, c.status, Action.START)  # refuses running/paused/removing with docker's words
        await self.settle(c.id)  # the previous shim of this container has gone with its state dir
        undo: list[Undo] = []
        steps = _Steps()
        # The shim launch (a fork in the launcher process) depends on nothing the mount, the
        # network or the bundle make: it runs meanwhile. It is never cancelled (the launcher
        # answers requests in order) and a failure before it is awaited disposes of its shim.
        # The state dir exists before the launch starts: the bundle lands in it meanwhile, and
        # the launcher never races the bundle write to create it.
        os.makedirs(self.shims.state_dir(c.id), 0o700, exist_ok=True)
        undo.append(lambda: self.drop_state_dir(c.id))
        launch: asyncio.Future[ShimTask] = asyncio.ensure_future(self.shims.launch(c.id))
        launch_owned = True  # until its shim is in the undo list
        try:
            # the rootfs mount and the network are independent too: both at once, each undone
            # on failure whatever happened to the other
            req = self._net_request(c)
            mounted, networked = await asyncio.gather(
                asyncio.to_thread(self.layers.mount, c.id),
                self.network.setup(c.id, self.container_dir(c), req),
                return_exceptions=True,
            )
            if not isinstance(mounted, BaseException):
                undo.append(lambda: asyncio.to_thread(self.layers.unmount, c.id))
            if not isinstance(networked, BaseException):
                settings = networked.settings

                async def _teardown() -> None:
                    await self.network.teardown(c.id, settings)

                undo.append(_teardown)
            if isinstance(mounted, BaseException):
                raise mounted
            if isinstance(networked, BaseException):
                raise networked
            rootfs, net = mounted, networked
            steps.mark("mount+network")
            faults.point("start.after_mount")
            faults.point("start.after_network")
            sandbox = str(net.settings.get("sandbox_key", ""))
            bundle_dir = self.shims.state_dir(c.id)
            await asyncio.to_thread(
                _build_and_write, c, rootfs, net.files, sandbox, self.cfg.cgroup_parent, bundle_dir
            )
            steps.mark("bundle")
            faults.point("start.after_bundle")
            shim = await launch
            launch_owned = False
            steps.mark("shim")
            undo.append(self._dispose_shim(c, shim))
            faults.point("start.after_shim_launch")
            await shim.create(
                ShimCreate(
                    bundle=str(bundle_dir),
                    log_path=c.log_path,
                    runtime=self.cfg.runtime,
                    runtime_root=str(self.cfg.runtime_root) if self.cfg.runtime else "",
                    log_max_size=c.host_config.log_max_size,
                    log_max_file=c.host_config.log_max_file,
                    ports=net.forwards,
                )
            )
            steps.mark("create")
            faults.point("start.after_shim_create")
            pid = await shim.start()
            steps.mark("start")
        except BaseException as exc:
            if launch_owned:
                await self._abandon_launch(c, launch)
            for step in reversed(undo):
                try:
                    await step()
                except Exception as e:  # best effort: report the original error
                    log.warning("container %s: undo after failed start: %s", c.id, e)
            if isinstance(exc, CtrdError) and exc.reason in EXEC_CODES:
                await self._record_exit(c, Exit(EXEC_CODES[exc.reason], time.time()), error=exc.message)
            elif isinstance(exc, CtrdError):
                c.set_state(error=exc.message)
                await self.save(c)
            raise
        c.generation += 1
        c.set_state(
            status=transition(c.id, c.status, Action.START), pid=pid, exit_code=0, error="",
            oom_killed=False, started_at=time.time(), finished_at=0.0,
        )
        c.network = dict(net.settings)
        c.has_been_started_before = True
        c.shim_pid = shim.shim_pid
        self.tasks[c.id] = shim
        await self.save(c)
        steps.mark("record")
        log.debug("container %s started: %s", c.id[:12], steps)
        faults.point("start.after_record")
        self.emit(c, "start")
        self.arm_watcher(c, shim)

    async def _abandon_launch(self, c: Container, launch: asyncio.Future[ShimTask]) -> None:
        """A start failed while its shim launch was in flight: let it land, then dispose of it."""
        try:
            shim = await asyncio.shield(launch)
        except BaseException:  # the launch failed too (or we are being cancelled): nothing to dispose
            return
        try:
            await self._dispose_shim(c, shim)()
        except Exception as e:
            log.warning("container %s: disposing of a launched shim: %s", c.id, e)

    def _dispose_shim(self, c: Container, shim: ShimTask) -> Undo:
        async def dispose() -> None:
            for call in (shim.delete, shim.shutdown):
                try:
                    await call()
                except CtrdError:
                    pass
            await shim.close()
            await self.drop_state_dir(c.id)

        return dispose

    def _net_request(self, c: Container) -> NetRequest:
        mode = c.host_config.network_mode
        shared = ""
        if mode.startswith("container:"):
            other = self.store.get(mode.split(":", 1)[1])
            if not is_alive(other.status):
                raise errdefs.FailedPrecondition(f"network_mode: container {other.id} is not running")
            shared = str(other.network.get("sandbox_key", ""))
        ports = tuple(
            {"protocol": p.protocol, "host_ip": p.host_ip, "host_port": p.host_port, "container_port": p.container_port}
            for p in c.host_config.port_bindings
        )
        exposed = c.config.exposed_ports if c.host_config.publish_all else ()
        return NetRequest(mode, c.config.hostname, ports, tuple(exposed), shared, c.host_config.extra_hosts,
                          c.host_config.dns, c.name, c.host_config.network_aliases)

    # ------------------------------------------------------------------ exit

    def arm_watcher(self, c: Container, shim: ShimTask) -> None:
        old = self._watchers.pop(c.id, None)
        if old is not None and not old.done():
            old.cancel()
        self._watchers[c.id] = self.spawn(self._watch(c, shim, c.generation))

    async def _watch(self, c: Container, shim: ShimTask, gen: int) -> None:
        ex: Exit | None
        try:
            ex = await shim.wait()
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
        """Stop's steps 2 and 3 after the process is gone: collect, destroy network, unmount.

        Order matters for a crash in between: the shim (and its exit file) stays until the exit
        is recorded, so a daemon killed here still learns the real exit code at its next start.
        The shim's delete (runtime state, cgroup) and the network/rootfs release touch disjoint
        things, so they run together. Once the exit is recorded, the shim's shutdown and the
        removal of its state dir run in the background (see `settle`): Wait answers and the
        lock is free without them, and a crash before they finish is what recovery step 4 cleans."""
        self.tasks.pop(c.id, None)
        steps = _Steps()

        async def delete() -> Exit | None:
            if shim is None:
                return None
            try:
                return await asyncio.wait_for(shim.delete(), SHIM_CALL_TIMEOUT)
            except (CtrdError, TimeoutError) as exc:
                log.info("container %s: shim delete: %s", c.id, exc)
                return None

        network = c.network  # _record_exit clears it: the teardown works from this snapshot
        if ex.status == UNKNOWN_EXIT:  # the shim's delete may know better: record after it
            deleted, _ = await asyncio.gather(delete(), self.release_resources(c, network=network))
            if deleted is not None and deleted.exited_at:
                ex = deleted
            await self._record_exit(c, ex)
        else:
            # The exit is known: its record is written while the resources go. A crash before
            # the teardown ends leaves an exited record with a shim dir, a mount or a netns
            # behind, which recovery cleans (step 4, and the network's leftovers sweep).
            await asyncio.gather(delete(), self.release_resources(c, network=network), self._record_exit(c, ex))
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

    async def drop_state_dir(self, cid: str) -> None:
        """The shim's state dir (bundle, socket, exit file) once its exit has been collected."""
        await asyncio.to_thread(shutil.rmtree, self.shims.state_dir(cid), True)

    async def release_resources(
        self, c: Container, *, rootfs: bool = True, network: dict[str, Any] | None = None
    ) -> None:
        network = c.network if network is None else network
        if network:
            try:
                await self.network.teardown(c.id, network)
                faults.point("stop.after_network_teardown")
            except CtrdError as exc:
                log.warning("container %s: network teardown: %s", c.id, exc)
        if not rootfs:
            return
        try:
            if await asyncio.to_thread(self._unmount_if_mounted, c.id):
                faults.point("stop.after_unmount")
        except CtrdError as exc:
            log.warning("container %s: unmount: %s", c.id, exc)

    def _unmount_if_mounted(self, cid: str) -> bool:
        """One thread hop for both (sync: called in a thread)."""
        if not self.layers.is_mounted(cid):
            return False
        self.layers.unmount(cid)
        return True

    async def _record_exit(self, c: Container, ex: Exit, error: str = "") -> None:
        c.set_state(
            status=transition(c.id, c.status, Action.EXIT), pid=0, exit_code=ex.status,
            oom_killed=ex.oom_killed, finished_at=max(ex.exited_at or time.time(), c.state.started_at), error=error,
        )
        c.network = {}
        c.shim_pid = 0
        c.exit_seq += 1
        await self.save(c)
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
        watcher = self._watchers.pop(cid, None)
        if watcher is not None and not watcher.done() and watcher is not asyncio.current_task():
            watcher.cancel()

    # ------------------------------------------------------------------ stop / kill

    async def stop_locked(self, c: Container, sig: int, timeout: int, *, manual: bool = True) -> None:
        """Stop step 1 through the shim (signal, then SIGKILL at the timeout), then 2 and 3."""
        if manual:
            # also when it already exited: a restart the policy has scheduled must not happen
            self.cancel_restart(c)
            if not c.has_been_manually_stopped:
                c.has_been_manually_stopped = True
                await self.save(c)
        if c.status is Status.RESTARTING:
            self.cancel_restart(c)
            c.set_state(status=transition(c.id, c.status, Action.CANCEL_RESTART))
            await self.save(c)
            return
        if not is_alive(c.status):
            return  # docker: 304 not modified
        shim = self.tasks.get(c.id)
        ex: Exit | None = None
        if shim is not None:
            try:
                if c.status is Status.PAUSED:
                    await shim.resume()  # a frozen process cannot act on the signal
                    c.set_state(status=transition(c.id, c.status, Action.RESUME))
                self.emit(c, "kill", signal=str(sig))
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
                await self._close_quietly(shim)
                shim = None
        if ex is None:
            ex = await self.collect_dead(c.id)
        await self.finish_locked(c, shim, ex)
        self.emit(c, "stop")

    async def _close_quietly(self, shim: ShimTask) -> None:
        try:
            await shim.close()
        except CtrdError:
            pass

    async def kill_locked(self, c: Container, sig: int) -> None:
        if not is_alive(c.status):
            raise errdefs.FailedPrecondition(f"container {c.id} is not running")
        c.has_been_manually_stopped = True
        await self.save(c)
        shim = self.tasks.get(c.id)
        if shim is None:
            raise errdefs.Unavailable(f"container {c.id}: shim is not connected")
        try:
            await asyncio.wait_for(shim.kill(sig, all_=sig == signal.SIGKILL), SHIM_CALL_TIMEOUT)
        except errdefs.NotFound:
            raise errdefs.FailedPrecondition(f"container {c.id} is not running") from None
        self.emit(c, "kill", signal=str(sig))
        if c.status is Status.PAUSED and sig == signal.SIGKILL:
            try:
                await shim.resume()
                c.set_state(status=transition(c.id, c.status, Action.RESUME))
            except CtrdError:
                pass

    # ------------------------------------------------------------------ shutdown

    async def shutdown(self, live_restore: bool) -> None:
        """Default: stop every container (signal, timeout, KILL) and record it; live-restore: leave them."""
        self.shutting_down = True
        self.restarts.cancel_all()
        # an exit being handled right now (a watcher inside finish_locked holds the lock) ends
        # first, so its shim gets its Shutdown and its state dir goes
        for c in self.store:
            async with c.lock:
                pass
        if not live_restore:
            alive = [c for c in self.store if is_alive(c.status)]

            async def stop_one(c: Container) -> None:
                async with c.lock:
                    timeout = c.config.stop_timeout if c.config.stop_timeout is not None else self.cfg.stop_timeout
                    try:
                        sig = bundle_signal(c.config.stop_signal)
                        await self.stop_locked(c, sig, timeout, manual=False)
                    except CtrdError as exc:
                        log.error("container %s: stop at shutdown: %s", c.id, exc)

            await asyncio.gather(*(stop_one(c) for c in alive))
        if self._settling:
            await asyncio.gather(*(asyncio.shield(t) for t in list(self._settling.values())), return_exceptions=True)
        self.closing = True
        for t in list(self._background):
            t.cancel()
        for shim in list(self.tasks.values()):
            try:
                await shim.close()
            except CtrdError:
                pass
        self.tasks.clear()


class _Steps:
    """Milliseconds per start step, for the debug log (where does a start spend its time)."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._parts: list[str] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self._parts.append(f"{name} {1000 * (now - self._last):.1f} ms")
        self._last = now

    def __str__(self) -> str:
        return ", ".join(self._parts)


def _build_and_write(
    c: Container, rootfs: Path, files: dict[str, str], sandbox: str, cgroup_parent: str, bundle_dir: Path
) -> None:
    """The OCI spec and its write in one thread hop (both are sub-millisecond file work)."""
    bundle.write_bundle(bundle_dir, bundle.build_spec(c, rootfs, files, sandbox, cgroup_parent))


def bundle_signal(name: str) -> int:
    return parse_signal(name or "SIGTERM", "stop_signal")
