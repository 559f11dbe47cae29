"""Start-up recovery from `<root>/containers/`: the folder is the database.

1. load every record (a directory without config.v2.json is a create that crashed: removed);
2. remove layer directories that belong to no record (crash between layer creation and record);
3. for each container recorded running or paused: reconnect to its shim (same pid, the log goes
   on); when the shim is gone or reports an exit, record the exit (255 when unknown) and clean up
   mounts, netns and cgroup through `ctrd-shim delete`. All shims at once, each as soon as its
   record is read, in one write per shim (Connect, State and the exit watcher's Wait: see
   ShimConn.recover): at 1000 containers the cost is the shims' wake-ups, not round trips;
4. a container recorded as anything else must not hold a shim, a mount or a netns: a crash inside
   start or stop can leave them, so they are cleaned too;
5. finish removals a crash interrupted; apply restart policies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from ctrd.errdefs import CtrdError
from daemon.containers.manager import ContainerManager
from daemon.containers.monitor import Steps
from daemon.containers.record import Container
from daemon.containers.restart import should_restart
from daemon.containers.state import Status, is_alive
from daemon.network.settings import NetworkSettings
from daemon.shims.api import Exit, ShimState, ShimTask

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 5.0
CLEANUP_CONCURRENCY = 8  # `ctrd-shim delete` processes at once (each is an interpreter)
RECORDS_PER_TURN = 32  # records read between two turns of the event loop at start-up


class Lifecycle(Protocol):
    """What recovery needs from the running containers' side (daemon/containers/monitor.py)."""

    async def reconnect(self, cid: str) -> ShimTask: ...
    def shim_dir_ids(self) -> list[str]: ...
    def has_leftovers(self, c: Container) -> bool: ...
    async def collect_dead(self, cid: str) -> Exit: ...
    async def drop_state_dir(self, cid: str) -> None: ...
    async def clean_leftovers(self, c: Container) -> None: ...
    async def finish_locked(self, c: Container, shim: ShimTask | None, ex: Exit) -> None: ...
    def adopt(self, c: Container, shim: ShimTask) -> None: ...
    def watch(self, c: Container) -> None: ...
    async def recover_network(self, live: dict[str, NetworkSettings]) -> None: ...
    def schedule_restart(self, c: Container) -> None: ...


Probe = tuple[ShimTask | None, Exit | None, ShimState | None]


async def _probe(life: Lifecycle, c: Container) -> Probe:
    """(shim, None, state) while the container runs; (shim or None, exit or None, _) when it ended."""
    try:
        shim = await life.reconnect(c.id)
    except CtrdError:
        return None, None, None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            st = await shim.state()  # fetched with the connection by a real shim (no second round trip)
    except (CtrdError, TimeoutError):
        await shim.close()
        return None, None, None
    if st.status == "created":
        # the daemon died between the runtime's create and start: nobody asked for this process
        return shim, Exit(137, time.time()), st
    if st.status in ("running", "paused"):
        return shim, None, st
    return shim, st.exit, st


async def _bounded(jobs: list[Callable[[], Coroutine[Any, Any, None]]], limit: int) -> None:
    """Run independent per-container jobs concurrently, at most `limit` at a time."""
    sem = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        async with sem:
            await job()

    await asyncio.gather(*(one(j) for j in jobs))


async def recover(m: ContainerManager, network_ready: Awaitable[None] | None = None) -> None:
    """`network_ready`: the network helper's start-up, awaited only when the network is needed
    (the records, the layers and the shims are looked at meanwhile)."""
    life: Lifecycle = m.monitor
    steps = Steps()
    # Each running container's shim is asked about it as soon as its record is read: the shims
    # answer (on the other CPU) while the next records are parsed. The records are read here, on
    # the loop, a batch between two turns of it: a reader thread would take the GIL from the
    # loop for 5 ms at each of its thousands of socket calls.
    probing: dict[str, asyncio.Future[Probe]] = {}

    def found(c: Container) -> None:
        if is_alive(c.status) and c.id not in probing:
            probing[c.id] = asyncio.ensure_future(_probe(life, c))

    loaded: list[Container] = []
    garbage: list[str] = []
    try:
        for c in m.store.iter_records(garbage):
            loaded.append(c)
            found(c)
            if len(loaded) % RECORDS_PER_TURN == 0:
                await asyncio.sleep(0)
    except BaseException:
        for t in probing.values():
            t.cancel()
        raise
    steps.mark("records")
    for cid in garbage:
        log.info("container %s: removed a half-created container directory", cid)
    for c in loaded:
        m.store.add(c)
    known = {c.id for c in loaded}
    for lid in list(await asyncio.to_thread(lambda: list(m.layers.container_layer_ids()))):
        if lid not in known:
            log.info("container %s: removing orphaned layers", lid)
            try:
                await asyncio.to_thread(m.layers.remove_container_layers, lid)
            except (CtrdError, OSError) as exc:
                log.warning("container %s: orphaned layers: %s", lid, exc)

    # a shim whose container record is gone (crash inside rm) holds nothing anyone wants
    orphans = [cid for cid in await asyncio.to_thread(life.shim_dir_ids) if cid not in known]

    def drop_orphan(cid: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def job() -> None:
            log.info("container %s: removing an orphaned shim", cid)
            await life.collect_dead(cid)
            await life.drop_state_dir(cid)

        return job

    await _bounded([drop_orphan(cid) for cid in orphans], CLEANUP_CONCURRENCY)

    live: dict[str, NetworkSettings] = {}
    ended: list[tuple[Container, ShimTask | None, Exit | None]] = []
    alive = [c for c in loaded if is_alive(c.status)]
    probes = dict(zip([c.id for c in alive], await asyncio.gather(*(probing[c.id] for c in alive)), strict=True))
    steps.mark("probes")
    for c in loaded:
        if is_alive(c.status):
            shim, ex, st = probes[c.id]
            if shim is not None and ex is None and st is not None:
                life.adopt(c, shim)
                status = Status.PAUSED if st.status == "paused" else Status.RUNNING
                if status is not c.status:
                    c.set_state(status=status, pid=st.pid or c.state.pid)
                    await asyncio.to_thread(m.store.save, c)
                elif st.pid and st.pid != c.state.pid:
                    # a start writes its record before the shim answers with the pid (start.py):
                    # the shim is the pid's authority; no write for it (one fsync per container
                    # would stretch a restart with 1000 running)
                    c.set_state(pid=st.pid)
                if c.network is not None:
                    live[c.id] = c.network
                continue
            ended.append((c, shim, ex))
        elif life.has_leftovers(c):
            ended.append((c, None, None))  # crash inside start/stop: a shim, a mount may be left
    if network_ready is not None:
        await network_ready
    steps.mark("adopt")
    await life.recover_network(live)
    steps.mark("network")

    def end(c: Container, shim: ShimTask | None, ex: Exit | None) -> Callable[[], Coroutine[Any, Any, None]]:
        async def job() -> None:
            async with c.lock:
                if shim is None and not is_alive(c.status):
                    await life.clean_leftovers(c)
                    return
                found = ex if ex is not None else await life.collect_dead(c.id)
                if is_alive(c.status):
                    await life.finish_locked(c, shim, found)

        return job

    # containers are independent: their shim cleanups (a process each) run side by side
    await _bounded([end(c, shim, ex) for c, shim, ex in ended], CLEANUP_CONCURRENCY)
    steps.mark("ended")
    for c in loaded:
        if c.id in live:
            life.watch(c)
    steps.mark("watch")
    for c in loaded:
        if c.status is Status.REMOVING:
            try:
                await m.remove(c.id, force=True)
            except CtrdError as exc:
                log.error("container %s: finishing an interrupted removal: %s", c.id, exc)
        elif c.status is Status.RESTARTING:
            c.set_state(status=Status.EXITED)
            await asyncio.to_thread(m.store.save, c)
    for c in loaded:
        if c.removed or c.status is not Status.EXITED:
            continue
        policy = c.host_config.restart_policy
        if c.has_been_started_before and should_restart(
            policy, c.state.exit_code, c.restart_count, c.has_been_manually_stopped
        ):
            life.schedule_restart(c)
        elif c.host_config.auto_remove:
            await m.remove(c.id)
    steps.mark("policies")
    log.info("recovery of %d containers: %s", len(loaded), steps)
