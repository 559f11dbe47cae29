"""The container service's domain API: create, start, stop, kill, remove, pause, resume, inspect,
list, wait, logs, top, stats, exec. No gRPC in here: the servicer is a thin adapter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ctrd import errdefs
from ctrd.errdefs import CtrdError, InvalidArgument
from ctrd.v1 import container_pb2
from daemon import faults
from daemon.atomic import fsync_paths
from daemon.config import Config
from daemon.containers import sessions, update, validate, view
from daemon.containers.bundle import exec_user
from daemon.containers.exec_run import ExecRunner
from daemon.containers.monitor import Monitor
from daemon.containers.record import Container
from daemon.containers.shutdown import shutdown
from daemon.containers.signals import parse_signal
from daemon.containers.start import start_locked
from daemon.containers.state import Action, Status, is_alive, refusal, transition
from daemon.containers.stop import kill_locked, stop_locked
from daemon.containers.store import ContainerStore
from daemon.containers.volumes import ContainerVolumes
from daemon.events import Exchange
from daemon.images.api import Images
from daemon.layers.api import Layers
from daemon.logs import LogEntry, LogQuery, read_logs
from daemon.network.api import Network
from daemon.shims.api import ExecResult, Shims, ShimTask, Stats
from daemon.volumes.store import VolumeStore

log = logging.getLogger(__name__)

KILL_WAIT = 10.0  # after SIGKILL, how long kill waits for the exit to be recorded


class ContainerManager:
    def __init__(
        self,
        cfg: Config,
        images: Images,
        layers: Layers,
        shims: Shims,
        network: Network,
        events: Exchange | None = None,
        volumes: VolumeStore | None = None,
    ) -> None:
        self.cfg = cfg
        self.images = images
        self.layers = layers
        self.events = events or Exchange()
        self.store = ContainerStore(cfg.root)
        self.monitor = Monitor(cfg, self.store, layers, shims, network, self.events, self._start_locked)
        self.monitor.on_auto_remove = self._auto_remove
        self.execs = ExecRunner(self.monitor, layers)
        self.volumes = ContainerVolumes(volumes or VolumeStore(cfg.root), lambda: list(self.store))
        self.monitor.volumes = self.volumes
        self.ncpu = os.cpu_count() or 1

    async def _start_locked(self, c: Container) -> None:
        await start_locked(self.monitor, c)

    async def shutdown(self, live_restore: bool) -> None:
        """The daemon is going away: stop the containers (or leave them, live-restore)."""
        await shutdown(self.monitor, live_restore)

    # ------------------------------------------------------------------ create

    async def create(self, spec: container_pb2.ContainerSpec) -> tuple[str, list[str]]:
        if not spec.image:
            raise InvalidArgument("image: an image is required")
        cid = secrets.token_hex(32)
        while self.store.id_taken(cid):
            cid = secrets.token_hex(32)
        if spec.name:
            name = validate.check_name(spec.name)
        else:
            name = validate.random_name()
            while self.store.name_taken(name):
                name = f"{validate.random_name()}_{secrets.token_hex(2)}"
        self.store.reserve_name(name)  # unique from here on, before the first await
        created_layers = False
        made_volumes: list[str] = []
        try:
            try:
                image = await asyncio.to_thread(self.images.ensure, spec.image)
            except errdefs.NotFound as exc:
                raise InvalidArgument(f"image: no such image: {spec.image}",
                                      reason=errdefs.REASON_NO_SUCH_IMAGE) from exc
            named = container_pb2.ContainerSpec()
            named.CopyFrom(spec)
            named.name = name
            norm = validate.normalize(named, spec.image, image.config, cid, self.ncpu)
            faults.point("create.validated")
            host = norm.host_config
            if host.network_mode.startswith("container:"):
                ref = host.network_mode.split(":", 1)[1]
                try:
                    other = self.store.get(ref)
                except errdefs.NotFound:
                    raise InvalidArgument(f"network_mode: no such container: {ref}") from None
                host = dataclasses.replace(host, network_mode=f"container:{other.id}")
            elif host.network_mode not in ("bridge", "none", "host") and not self.monitor.network.has_network(
                host.network_mode
            ):
                raise InvalidArgument(f"network_mode: network {host.network_mode} not found")
            # the image's VOLUMEs (fakes in unit tests may have none)
            image_volumes = list(getattr(image.config, "volumes", None) or ())
            if image_volumes or host.volumes_from or any(m.type == "volume" for m in host.mounts):
                host, made_volumes = await asyncio.to_thread(self.volumes.resolve, host, image_volumes, self.store.get, cid)
            c = Container(
                id=cid, name=name, created=time.time(), path=norm.path, args=norm.args, image_id=image.id,
                config=norm.config, host_config=host,
                log_path=str(self.store.container_dir(cid) / f"{cid}-json.log"),
            )
            created_layers = True
            await asyncio.to_thread(self._make_new, c, image.top_layer)
            faults.point("create.after_record")
        except BaseException:
            self.store.release_name(name)
            self.volumes.created(cid)
            await asyncio.to_thread(self.volumes.remove_quietly, made_volumes)
            if created_layers:
                await asyncio.to_thread(_quiet, self.layers.remove_container_layers, cid)
                await asyncio.to_thread(self.store.delete, cid)
            raise
        self.store.release_name(name)
        self.store.add(c)
        self.volumes.created(cid)
        self.monitor.emit(c, "create")
        return cid, list(norm.warnings)

    def _make_new(self, c: Container, image_top_layer: str | None) -> None:
        """Create's disk work in one thread step: the layer pair, hostconfig.json and the record
        under a temporary name (none of which commits anything: a directory without
        config.v2.json is garbage), made durable in one round of fsyncs (one journal commit
        instead of three), then the record's rename, the commit point."""
        dirty = self.layers.place_container_layers(c.id, image_top_layer)
        staged, more = self.store.stage_new(c)
        fsync_paths([*dirty, *more])
        faults.point("create.after_layers")
        self.store.commit_new(c, staged)

    # ------------------------------------------------------------------ lifecycle verbs

    async def start(self, ref: str) -> None:
        c = self.store.get(ref)
        async with c.lock:
            if c.status is Status.RESTARTING:
                self.monitor.cancel_restart(c)
            self.monitor.reset_backoff(c)
            c.has_been_manually_stopped = False
            await self._start_locked(c)

    def _stop_timeout(self, c: Container, timeout: int | None) -> int:
        if timeout is None:
            timeout = c.config.stop_timeout if c.config.stop_timeout is not None else self.cfg.stop_timeout
        if not -1 <= timeout <= validate.MAX_STOP_TIMEOUT:
            raise InvalidArgument(f"timeout: must be between -1 and {validate.MAX_STOP_TIMEOUT} seconds")
        return timeout

    async def stop(self, ref: str, timeout: int | None = None, sig: str = "") -> None:
        c = self.store.get(ref)
        t = self._stop_timeout(c, timeout)
        num = parse_signal(sig or c.config.stop_signal or "SIGTERM", "signal")
        async with c.lock:
            await stop_locked(self.monitor, c, num, t)
        await self.monitor.settle(c.id)  # stop returns once the shim is gone
        await self.monitor.after_exit(c)

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        c = self.store.get(ref)
        t = self._stop_timeout(c, timeout)
        async with c.lock:
            await stop_locked(self.monitor, c, parse_signal(c.config.stop_signal or "SIGTERM"), t)
            c.has_been_manually_stopped = False
            await self._start_locked(c)
        self.monitor.emit(c, "restart")

    async def kill(self, ref: str, sig: str = "") -> None:
        c = self.store.get(ref)
        num = parse_signal(sig or "SIGKILL", "signal")
        async with c.lock:
            seq = c.exit_seq
            await kill_locked(self.monitor, c, num)
        if num == signal.SIGKILL:
            # docker's kill returns once the container is gone, so `kill; rm` just works
            await self._wait_exit(c, seq, KILL_WAIT)

    async def remove(self, ref: str, force: bool = False, remove_volumes: bool = False) -> None:
        c = self.store.get(ref)
        async with c.lock:
            await self._remove_locked(c, force, remove_volumes)

    async def _remove_locked(self, c: Container, force: bool, remove_volumes: bool = False) -> None:
        if c.removed:
            return
        if is_alive(c.status):
            if not force:
                raise refusal(c.id, c.status, Action.REMOVE)
            await stop_locked(self.monitor, c, signal.SIGKILL, 10)
        if c.status is Status.RESTARTING:
            self.monitor.cancel_restart(c)
        # "removing" is shown while this runs but not written: the record itself goes first, in
        # one atomic unlink, so a crash from here on leaves a directory without config.v2.json
        # and layers no record owns, both of which recovery removes at the next start.
        c.set_state(status=transition(c.id, c.status, Action.REMOVE))
        try:
            self.store.unlink_record(c.id)
            faults.point("rm.after_record_removed")
            # the exited shim's shutdown may still run in the background: it removes only the
            # shim's state dir under the exec-root, nothing this removal touches
            await self.monitor.release_resources(c, rootfs=False)
            layers, record_dir = await asyncio.to_thread(self._remove_files, c.id)
        except (CtrdError, OSError) as exc:
            c.set_state(status=transition(c.id, c.status, Action.DIE), error=str(exc))
            await asyncio.to_thread(_quiet, self.store.save, c)
            c.removal_error = f"container {c.id}: removal failed: {exc}"
            c.removal_failures += 1
            await c.notify()  # Wait "removed" returns with the error, as docker's does
            raise errdefs.Internal(c.removal_error) from exc
        c.removed = True
        if remove_volumes:  # before the container disappears from listings: gone with it
            await asyncio.to_thread(self.volumes.remove_anonymous, c)
        self.store.discard(c)
        self.monitor.forget(c.id)
        self.execs.drop_container(c.id)
        self.monitor.emit(c, "destroy")
        await c.notify()
        # The layers and the record's directory are out of their stores already: deleting them
        # need not delay the answer.
        self.monitor.spawn(asyncio.to_thread(self._dispose, layers, record_dir))

    def _remove_files(self, cid: str) -> tuple[list[Path], Path | None]:
        """Layers (unmounting the rootfs if still mounted) taken out of the layer store, then the
        record's directory out of the container store (sync); returns the directories left to
        dispose of, which a start-up deletes if this daemon does not get to it."""
        layers = self.layers.detach_container_layers(cid)
        faults.point("rm.after_layers_removed")
        return layers, self.store.detach(cid)

    def _dispose(self, layers: list[Path], record_dir: Path | None) -> None:
        self.layers.dispose(layers)
        if record_dir is not None:
            self.store.dispose(record_dir)

    async def _auto_remove(self, c: Container) -> None:
        async with c.lock:
            if c.removed or is_alive(c.status) or c.status is Status.RESTARTING:
                return
            try:
                await self._remove_locked(c, force=False, remove_volumes=True)  # --rm: anonymous volumes too
            except CtrdError as exc:
                log.error("container %s: auto-remove failed: %s", c.id, exc)

    async def pause(self, ref: str) -> None:
        c = self.store.get(ref)
        async with c.lock:
            target = transition(c.id, c.status, Action.PAUSE)
            await self._shim(c).pause()
            c.set_state(status=target)
            await self.monitor.save(c)
            self.monitor.emit(c, "pause")

    async def resume(self, ref: str) -> None:
        c = self.store.get(ref)
        async with c.lock:
            target = transition(c.id, c.status, Action.RESUME)
            await self._shim(c).resume()
            c.set_state(status=target)
            await self.monitor.save(c)
            self.monitor.emit(c, "unpause")

    # ------------------------------------------------------------------ interactive I/O

    def attach(self, o: container_pb2.AttachOpen, requests: AsyncIterable[container_pb2.AttachRequest]
               ) -> AsyncGenerator[container_pb2.AttachResponse, None]:
        c = self.store.get(o.id)
        replay = None
        if o.logs:
            q = LogQuery(stdout=o.stdout, stderr=o.stderr)

            def replay() -> AsyncIterator[LogEntry]:
                return self.logs(c.id, q)
        return sessions.attach_init(c, self.monitor.shims.state_dir(c.id), self.monitor.early_attach, o, requests,
                                    replay)

    async def resize(self, ref: str, rows: int, cols: int) -> None:
        c = self.store.get(ref)
        sessions.check_resize(c, rows, cols)
        await self._shim(c).resize(rows, cols)

    def _shim(self, c: Container) -> ShimTask:
        shim = self.monitor.tasks.get(c.id)
        if shim is None:
            raise errdefs.FailedPrecondition(f"container {c.id} is not running")
        return shim

    # ------------------------------------------------------------------ queries

    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    def inspect(self, ref: str) -> dict[str, Any]:
        c = self.store.get(ref)
        try:
            graph = self.layers.graph_data(c.id)
        except CtrdError:
            graph = {}
        nets = self.monitor.network.networks_view(c.id, c.host_config.network_mode or "bridge", c.network)
        return view.inspect(c, graph, str(self.store.container_dir(c.id)), nets)

    def list_containers(self, all_: bool = False, filters: Mapping[str, str] | None = None) -> list[Container]:
        view.check_filters(filters or {})
        out = []
        for c in self.store.all():
            hidden = c.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)
            if not all_ and hidden and not (filters and "status" in filters):
                continue
            if filters and not view.matches(c, filters, self._find):
                continue
            out.append(c)
        return out

    def _find(self, ref: str) -> Container | None:
        try:
            return self.store.get(ref)
        except CtrdError:
            return None

    async def _wait_exit(self, c: Container, seq: int, timeout: float | None) -> bool:
        async with c.changed:
            try:
                await asyncio.wait_for(c.changed.wait_for(lambda: c.exit_seq > seq or c.removed), timeout)
                return True
            except TimeoutError:
                return False

    async def wait(self, ref: str, condition: str = "") -> tuple[int, str]:
        """docker's conditions: not-running (default; a created container counts as not running
        only when asked for by name, "" keeps waiting for its first exit), next-exit, removed."""
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"condition: invalid condition {condition!r} (not-running, next-exit, removed)")
        c = self.store.get(ref)
        if condition == "removed":  # the removal's outcome: gone, or the next failure's error (docker's)
            failures = c.removal_failures
            async with c.changed:
                await c.changed.wait_for(lambda: c.removed or c.removal_failures != failures)
            return c.state.exit_code, "" if c.removed else c.removal_error
        done = (Status.EXITED, Status.DEAD) + ((Status.CREATED,) if condition == "not-running" else ())
        if condition != "next-exit" and c.status in done:
            return c.state.exit_code, c.state.error
        await self._wait_exit(c, c.exit_seq, None)
        return c.state.exit_code, c.state.error

    async def rename(self, ref: str, name: str) -> None:
        c = self.store.get(ref)
        async with c.lock:
            old = await update.rename_locked(c, name, self.store)
            try:
                await self.monitor.network.rename(c.id, c.name)
            except (errdefs.CtrdError, OSError) as exc:  # the records carry the name: the next DNS sync uses it
                log.warning("container %s: telling the network its new name: %s", c.id, exc)
        self.monitor.emit(c, "rename", oldName="/" + old)

    async def update(self, req: container_pb2.UpdateRequest) -> None:
        c = self.store.get(req.id)
        async with c.lock:
            await update.update_locked(c, req, self.ncpu, self.monitor.tasks.get(c.id), self.store)
        self.monitor.emit(c, "update")

    def logs(self, ref: str, q: LogQuery) -> AsyncIterator[LogEntry]:
        c = self.store.get(ref)
        if c.host_config.log_driver == "none":
            raise errdefs.FailedPrecondition('configured logging driver does not support reading')

        def running() -> bool:
            return not c.removed and c.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

        return read_logs(Path(c.log_path), q, running, c.changed)  # follow ends as the exit is recorded

    async def top(self, ref: str) -> tuple[list[str], list[list[str]]]:
        c = self.store.get(ref)
        pids = set(await self._shim(c).pids())
        out = await asyncio.to_thread(
            subprocess.run, ["ps", "-ww", "-eo", "user:32,pid,ppid,c,stime,tty,time,cmd"], capture_output=True, text=True, check=False
        )
        lines = out.stdout.splitlines()
        titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        rows = []
        for line in lines[1:]:
            parts = line.split(None, 7)
            if len(parts) == 8 and parts[1].isdigit() and int(parts[1]) in pids:
                rows.append(parts)
        return titles, rows

    async def stats(self, ref: str) -> tuple[Container, Stats]:
        c = self.store.get(ref)
        if not is_alive(c.status):
            return c, Stats()
        return c, await self._shim(c).stats()

    async def exec(self, ref: str, args: Sequence[str], env: Sequence[str], user: str, cwd: str,
                   timeout: float | None = None) -> ExecResult:
        """The buffered exec; `timeout` (the caller's deadline): its process is killed then, even
        when stopped, so a call given up on leaves nothing running."""
        c = self.store.get(ref)
        if not args:
            raise InvalidArgument("args: no command specified")
        shim = self._shim(c)
        if c.status is Status.PAUSED:
            raise errdefs.FailedPrecondition(f"container {c.id} is paused, unpause the container before exec")
        rootfs = self.layers.graph_data(c.id).get("MergedDir", "")
        uid, gid, gids = await asyncio.to_thread(exec_user, Path(rootfs), user or c.config.user, c.host_config.group_add)
        full_env = list(c.config.env) + list(env)
        result: ExecResult = await shim.exec(list(args), full_env, cwd or c.config.working_dir or "/", uid, gid, gids,
                                               timeout)
        self.monitor.emit(c, "exec_die", exitCode=str(result.exit_code))
        return result

    # ------------------------------------------------------------------ streaming execs (exec_run)

    def exec_create(self, ref: str, args: Sequence[str], env: Sequence[str], user: str, working_dir: str,
                    tty: bool, attach_stdin: bool, attach_stdout: bool, attach_stderr: bool, privileged: bool,
                    detach_keys: str, console_size: tuple[int, int] | None = None) -> str:
        return self.execs.create(self.store.get(ref), list(args), list(env), user, working_dir, tty, attach_stdin,
                                 attach_stdout, attach_stderr, privileged, detach_keys, console_size)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return self.execs.inspect(exec_id).inspect()

    def _exec_container(self, exec_id: str) -> Container:
        return self.store.get(self.execs.inspect(exec_id).container_id)

    async def exec_start(self, exec_id: str) -> None:
        await self.execs.start_detached(self._exec_container(exec_id), exec_id)

    def exec_attach(self, opts: container_pb2.AttachOpen,
                    requests: AsyncIterator[container_pb2.AttachRequest]) -> AsyncIterator[container_pb2.AttachResponse]:
        return self.execs.attach(self._exec_container(opts.exec_id), opts, requests)

    async def exec_resize(self, exec_id: str, rows: int, cols: int) -> None:
        await self.execs.resize(self._exec_container(exec_id), exec_id, rows, cols)

    def counts(self) -> dict[str, int]:
        cs = list(self.store)
        return {
            "Containers": len(cs),
            "ContainersRunning": sum(c.status is Status.RUNNING for c in cs),
            "ContainersPaused": sum(c.status is Status.PAUSED for c in cs),
            "ContainersStopped": sum(not is_alive(c.status) for c in cs),
        }


def _quiet(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # cleanup after a failure: never mask the original error
        log.warning("cleanup %s%s: %s", getattr(fn, "__name__", fn), args, exc)
