"""The shim's one container: lifecycle, stdio -> log, exit status, stop escalation, execs.

Concurrency (one thread, one loop): `_lock` serialises the lifecycle verbs that talk to the
runtime (create, start, pause, resume, delete); kill, stop, wait, state and exec do not take it,
so a long Stop or Wait never blocks a State. `_exited` is set once, after the init's exit is
recorded and its log pipes are drained (so a Wait that returns sees the whole log).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrd import errdefs
from ctrd.shim import attachwire
from ctrd.shim.v1 import shim_pb2
from shimd import attach, console, files, health, ports, spawn
from shimd.backends.bundle import read_bundle_config
from shimd.backends.forked import ForkedBackend
from shimd.backends.inprocess import InProcessBackend
from shimd.backends.oci_binary import OciBinaryBackend
from shimd.backends.protocol import RUNTIME_LIBRARY_DIRECT, Backend, BackendConfig, ExecSpec, Limits, Stdio
from shimd.backends.spare import Spare
from shimd.execs import ExecProcess, ExecTable
from shimd.logs import JsonFileWriter, LogPump, attrs_fragment
from shimd.reaper import Reaper
from shimd.state import Status, check, transition
from shimd.sync import Flag, Mutex

EXEC_OUTPUT_CAP = 1024 * 1024
LOG_DRAIN_TIMEOUT = 2.0
KILL_WAIT = 10.0
CPU_PERIOD = 100_000  # microseconds, as docker's --cpus


@dataclass(frozen=True, slots=True)
class ExitInfo:
    status: int
    at: float
    oom_killed: bool


def make_backend(config: BackendConfig, reaper: Reaper, state_dir: str) -> Backend:
    if config.runtime == RUNTIME_LIBRARY_DIRECT:
        return InProcessBackend(config, reaper, state_dir)
    if config.runtime:
        return OciBinaryBackend(config, reaper, state_dir)
    return ForkedBackend(config, reaper, state_dir)


PIPE_SIZE = 1024 * 1024  # the default pipe-max-size: a bulk stream moves in 1 MiB reads, not 64 KiB


def _widen(fd: int) -> None:
    """A stdin/stdout pipe of the init as wide as an unprivileged process may make one (pages are
    taken only while bytes wait in it); a refusal (a lowered pipe-max-size) keeps the default."""
    try:  # not contextlib.suppress: the shim runs this, and contextlib's code would be its pages
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def _is_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _bundle_user(bundle: str) -> tuple[int, int]:
    """The init's uid and gid from the bundle: probes run as the container's user."""
    try:
        user = (read_bundle_config(bundle).get("process") or {}).get("user") or {}
        return int(user.get("uid", 0)), int(user.get("gid", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0, 0


BackendFactory = Callable[[BackendConfig, Reaper, str], Backend]


class Task:
    def __init__(self, container_id: str, state_dir: str | Path, reaper: Reaper,
                 backend_factory: BackendFactory | None = None) -> None:
        self.id = container_id
        self._make_backend = backend_factory or make_backend
        # str paths in the shim's code: pathlib would be more code for every shim to run
        self.state_dir = os.fspath(state_dir)
        self.reaper = reaper
        self.status = Status.NONE
        self.bundle = ""
        self.pid = 0
        self.exit: ExitInfo | None = None
        self.backend: Backend | None = None
        self._lock = Mutex()
        self._exited = Flag()
        self._writer: JsonFileWriter | None = None
        self._pumps: list[LogPump] = []
        self._relays: Any = None
        self._watch: asyncio.Task[None] | None = None
        self.fanout: attach.Fanout | None = None
        self._master = -1  # the pty master of a terminal container
        self.execs = ExecTable(self.state_dir)
        self.health: health.Health | None = None
        self._probe_user = (0, 0)
        self.spare: Spare | None = None  # a create helper the shim forked ahead (shimd.backends.spare)
        self._discarding: asyncio.Future[None] | None = None

    def _move(self, verb: str) -> None:
        self.status = transition(self.status, verb, self.id)

    def _backend(self) -> Backend:
        assert self.backend is not None
        return self.backend

    # -- create / start -------------------------------------------------------------------------

    async def create(self, req: shim_pb2.CreateRequest) -> int:
        async with self._lock:
            if self.status is not Status.NONE:
                raise errdefs.AlreadyExists(f"container {self.id} already exists in this shim")
            if req.id and req.id != self.id:
                raise errdefs.InvalidArgument(f"id: this shim serves {self.id}, not {req.id}")
            if not req.bundle or not _is_file(f"{req.bundle}/config.json"):
                raise errdefs.InvalidArgument(f"bundle: no config.json in {req.bundle!r}")
            root = req.runtime_root or f"{self.state_dir}/runtime"
            config = BackendConfig(self.id, req.bundle, req.runtime, root)
            backend = self._make_backend(config, self.reaper, self.state_dir)
            record = {"id": self.id, "bundle": req.bundle, "runtime": req.runtime, "runtime_root": root,
                      "pid": 0, "log_path": req.log_path}
            # written before the runtime runs: a shim that dies mid-create still lets
            # `ctrd-shim delete` find (and remove) whatever the runtime left
            files.write_json(f"{self.state_dir}/{files.RUNTIME_FILE}", record)
            relays = None
            out_w = err_w = devnull = stdin_r = con_shim = con_rt = -1
            try:
                if req.log_path:
                    # not dict(map): that goes through the Mapping ABC's Python code (pages of each shim)
                    attrs = {k: req.log_attrs[k] for k in req.log_attrs}
                    self._writer = JsonFileWriter(req.log_path, req.log_max_size, req.log_max_file,
                                                  attrs_fragment(attrs))
                if req.ports:
                    relays = await ports.start_relays(list(req.ports))
                devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                self.fanout = attach.Fanout(stdin_once=req.stdin_once, resize=self.resize_now)
                if req.terminal:
                    # the runtime replaces the three with the pty's slave
                    con_shim, con_rt = console.pair()
                    self._offer_spare(backend)
                    pid = await backend.create(Stdio(devnull, devnull, devnull, console=con_rt), start=req.start)
                    self._master = console.take_master(con_shim, f"create {self.id}")
                    con_shim = -1
                    self._pumps = [LogPump(os.dup(self._master), "stdout", self._writer, self.fanout.publish)]
                    if req.open_stdin:
                        self.fanout.set_stdin(os.dup(self._master))
                else:
                    stdin = devnull
                    if req.open_stdin:
                        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
                        _widen(stdin_w)
                        self.fanout.set_stdin(stdin_w)
                        stdin = stdin_r
                    out_r, out_w = os.pipe2(os.O_CLOEXEC)
                    err_r, err_w = os.pipe2(os.O_CLOEXEC)
                    _widen(out_w)
                    self._pumps = [LogPump(out_r, "stdout", self._writer, self.fanout.publish),
                                   LogPump(err_r, "stderr", self._writer, self.fanout.publish)]
                    self._offer_spare(backend)
                    pid = await backend.create(Stdio(stdin, out_w, err_w), start=req.start)
                self.fanout.listen(f"{self.state_dir}/{attachwire.SOCKET_FILE}")
            except BaseException:
                await self._close_io(relays)
                self._writer, self._pumps = None, []
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.state_dir}/{files.RUNTIME_FILE}")
                raise
            finally:
                for fd in (out_w, err_w, devnull, stdin_r, con_shim, con_rt):
                    if fd >= 0:
                        os.close(fd)
            self.backend, self.bundle, self.pid, self._relays = backend, req.bundle, pid, relays
            if req.HasField("health") and health.probe_args(list(req.health.test)):
                self.health = health.Health(req.health, self.probe)
                self._probe_user = _bundle_user(req.bundle)
            files.write_json(f"{self.state_dir}/{files.RUNTIME_FILE}", {**record, "pid": pid})
            self._watch = asyncio.get_running_loop().create_task(self._watch_init(pid))
            self._move("create")
            if req.start:  # Create and Start in one call; a start that fails leaves it created
                return await self._start_locked()
            return pid

    def _offer_spare(self, backend: Backend) -> None:
        """The spare helper goes to a backend that forks create helpers; any other gets none,
        and the spare is discarded (in the background: it exits at its socket's EOF)."""
        spare, self.spare = self.spare, None
        if spare is None or (isinstance(backend, ForkedBackend) and backend.adopt_spare(spare)):
            return
        self._discarding = asyncio.ensure_future(spare.discard())

    async def start(self) -> int:
        async with self._lock:
            return await self._start_locked()

    async def _start_locked(self) -> int:
        check(self.status, "start", self.id)
        await self._backend().start()
        if self.status is Status.CREATED:
            self._move("start")
            if self.health is not None and self.exit is None:
                self.health.start()
        return self.pid

    # -- exit -----------------------------------------------------------------------------------

    async def _watch_init(self, pid: int) -> None:
        ex = await self.reaper.wait(pid)
        oom = False
        with contextlib.suppress(Exception):
            oom = self._backend().oom_killed()
        info = ExitInfo(ex.status, ex.at, oom)
        self.exit = info
        with contextlib.suppress(OSError):
            files.write_json(f"{self.state_dir}/{files.EXIT_FILE}", {
                "pid": pid, "exit_status": info.status, "exited_at": info.at, "oom_killed": info.oom_killed,
            })
        if self.status is not Status.DELETED:
            self.status = Status.STOPPED
        if self.health is not None:
            self.health.stop()
        # The pipes end when the last holder of their write ends is gone; a leftover daemonized
        # process could hold them forever, so the drain is bounded.
        if self._pumps:
            done = [p.done for p in self._pumps]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*done), LOG_DRAIN_TIMEOUT)
        for p in self._pumps:
            p.close()
        if self.fanout is not None:
            self.fanout.finish(info.status)
        self._exited.set()

    async def wait(self) -> ExitInfo:
        if self.status is Status.NONE:
            check(self.status, "wait", self.id)
        await self._exited.wait()
        assert self.exit is not None
        return self.exit

    # -- signals --------------------------------------------------------------------------------

    async def kill(self, sig: int, all_procs: bool) -> None:
        check(self.status, "kill", self.id)
        await self._backend().kill(sig, all_procs)

    async def stop(self, sig: int, timeout_ms: int) -> tuple[ExitInfo, bool]:
        check(self.status, "stop", self.id)
        if self.exit is not None:
            return await self.wait(), False
        backend = self._backend()
        with contextlib.suppress(errdefs.NotFound, errdefs.FailedPrecondition):
            await backend.kill(sig or signal.SIGTERM)
            if self.status is Status.PAUSED:
                # A frozen process cannot act on the signal: thaw it, as docker stop does.
                await self.resume()
        try:
            return await asyncio.wait_for(asyncio.shield(self.wait()), timeout_ms / 1000), False
        except TimeoutError:
            pass
        with contextlib.suppress(errdefs.NotFound, errdefs.FailedPrecondition):
            await backend.kill(signal.SIGKILL, True)
        try:
            return await asyncio.wait_for(asyncio.shield(self.wait()), KILL_WAIT), True
        except TimeoutError:
            raise errdefs.Internal(f"container {self.id} did not exit {KILL_WAIT:.0f}s after SIGKILL")

    # -- pause / resume -------------------------------------------------------------------------

    async def pause(self) -> None:
        async with self._lock:
            check(self.status, "pause", self.id)
            await self._backend().pause()
            self._move("pause")

    async def resume(self) -> None:
        async with self._lock:
            check(self.status, "resume", self.id)
            await self._backend().resume()
            self._move("resume")

    # -- exec, stats, pids ----------------------------------------------------------------------

    async def exec(self, req: shim_pb2.ExecRequest) -> tuple[int, bytes, bytes]:
        check(self.status, "exec", self.id)
        if not req.args:
            raise errdefs.InvalidArgument("args: must not be empty")
        pids: list[int] = []
        spec = ExecSpec(list(req.args), list(req.env), req.cwd, req.uid, req.gid,
                        additional_gids=tuple(req.additional_gids), on_pid=pids.append)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        reads = asyncio.gather(spawn.read_all(out_r, EXEC_OUTPUT_CAP), spawn.read_all(err_r, EXEC_OUTPUT_CAP))
        # exec owns (and closes) the three fds it is given
        running = asyncio.ensure_future(self._backend().exec(spec, Stdio(devnull, out_w, err_w)))
        try:
            try:
                status = await asyncio.wait_for(asyncio.shield(running), req.timeout_ms / 1000 or None)
            except TimeoutError:
                # the caller's deadline: nobody will read the answer, so the process ends here, even
                # a stopped one (SIGKILL reaches it); its status then says it was killed
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                status = await asyncio.wait_for(running, KILL_WAIT)
        except BaseException:
            reads.cancel()
            raise
        try:
            out, err = await asyncio.wait_for(reads, LOG_DRAIN_TIMEOUT)
        except TimeoutError:
            out, err = b"", b""
        return status, out, err

    # -- streaming execs (shimd.execs) ----------------------------------------------------------

    def create_exec(self, req: shim_pb2.CreateExecRequest) -> ExecProcess:
        check(self.status, "exec", self.id)
        size = (req.rows, req.cols) if req.rows or req.cols else None
        spec = ExecSpec(list(req.args), list(req.env), req.cwd, req.uid, req.gid, terminal=req.terminal,
                        size=size, additional_gids=tuple(req.additional_gids))
        return self.execs.create(req.exec_id, spec, req.open_stdin)

    async def start_exec(self, exec_id: str) -> int:
        e = self.execs.get(exec_id)
        check(self.status, "exec", self.id)
        return await e.start(self._backend())

    async def wait_exec(self, exec_id: str) -> ExecProcess:
        e = self.execs.get(exec_id)
        await e.done.wait()
        return e

    async def resize_exec(self, exec_id: str, rows: int, cols: int) -> None:
        console.check_size(rows, cols)
        self.execs.get(exec_id).resize(rows, cols)

    async def probe(self, args: list[str], timeout: float) -> tuple[int, bytes] | None:
        """One healthcheck probe: an exec with the init's env, cwd and user, stdout and stderr
        together; killed (exit code -1) when still running at `timeout`."""
        if self.status is not Status.RUNNING:
            return None
        pids: list[int] = []
        uid, gid = self._probe_user
        spec = ExecSpec(args, [], "", uid, gid, on_pid=pids.append)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_w = os.dup(out_w)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        reading = asyncio.ensure_future(spawn.read_all(out_r, health.MAX_OUTPUT))
        running = asyncio.ensure_future(self._backend().exec(spec, Stdio(devnull, out_w, err_w)))
        try:
            code = await asyncio.wait_for(asyncio.shield(running), timeout)
        except TimeoutError:
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running, KILL_WAIT)
            reading.cancel()
            return -1, health.timeout_message(timeout)
        except errdefs.CtrdError as exc:  # could not run (the container is stopping, ...): a failure
            reading.cancel()
            return -1, exc.message.encode()
        except OSError as exc:
            reading.cancel()
            return -1, str(exc).encode()
        try:  # a process the probe left behind may hold the pipe: the output is read bounded
            out = await asyncio.wait_for(reading, LOG_DRAIN_TIMEOUT)
        except TimeoutError:
            out = b""
        return code, out

    async def health_state(self, after_seq: int) -> shim_pb2.HealthResponse:
        if self.health is None:
            return shim_pb2.HealthResponse()
        await self.health.wait_after(after_seq)
        return self.health.to_proto()

    async def stats(self) -> shim_pb2.StatsResponse:
        check(self.status, "kill", self.id)
        s = await self._backend().stats()
        return shim_pb2.StatsResponse(memory_usage=s.memory_usage, memory_limit=s.memory_limit,
                                      cpu_usage_ns=s.cpu_usage_ns, pids_current=s.pids_current,
                                      pids_limit=s.pids_limit)

    async def update(self, req: shim_pb2.UpdateRequest) -> None:
        check(self.status, "kill", self.id)
        quota = period = None
        if req.HasField("nano_cpus"):
            period = CPU_PERIOD
            quota = req.nano_cpus * CPU_PERIOD // 1_000_000_000 if req.nano_cpus > 0 else -1
        await self._backend().update(Limits(
            memory=req.memory if req.HasField("memory") else None, cpu_quota=quota, cpu_period=period,
            pids=req.pids_limit if req.HasField("pids_limit") else None))

    async def pids(self) -> list[int]:
        if self.status in (Status.NONE, Status.DELETED, Status.STOPPED):
            return []
        return await self._backend().pids()

    # -- delete / shutdown ----------------------------------------------------------------------

    async def delete(self) -> ExitInfo:
        async with self._lock:
            check(self.status, "delete", self.id)
            backend = self._backend()
            await backend.delete()
            if self.exit is None:  # a created, never started container: delete killed its init
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.wait()), KILL_WAIT)
            await self._close_io(self._relays)
            self._relays = None
            self._move("delete")
            return self.exit or ExitInfo(files.UNKNOWN_EXIT, time.time(), False)

    async def shutdown(self) -> None:
        """Leave nothing behind: a container still here is killed and deleted first."""
        if self.status in (Status.RUNNING, Status.PAUSED):
            with contextlib.suppress(errdefs.CtrdError):
                await self.stop(signal.SIGKILL, 0)
        if self.status in (Status.CREATED, Status.STOPPED):
            with contextlib.suppress(errdefs.CtrdError):
                await self.delete()
        if self.health is not None:
            self.health.stop()
            await self.health.finished(KILL_WAIT)
        await self._close_io(self._relays)
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()
        spare, self.spare = self.spare, None
        if spare is not None:  # shut down before any Create
            await spare.discard()
        if self._discarding is not None:
            await self._discarding

    # -- terminal -------------------------------------------------------------------------------

    def resize_now(self, rows: int, cols: int) -> None:
        if self._master < 0:
            raise errdefs.FailedPrecondition(f"container {self.id} has no terminal")
        console.resize(self._master, rows, cols)

    async def resize(self, rows: int, cols: int) -> None:
        console.check_size(rows, cols)
        check(self.status, "kill", self.id)
        self.resize_now(rows, cols)

    async def _close_io(self, relays: Any) -> None:
        self.execs.close()
        for p in self._pumps:
            p.close()
        if self.fanout is not None:
            self.fanout.close(f"{self.state_dir}/{attachwire.SOCKET_FILE}")
            self.fanout = None
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
        if self._writer is not None:
            self._writer.close()
        if relays is not None:
            with contextlib.suppress(Exception):
                await relays.close()
