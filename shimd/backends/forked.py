"""ForkedBackend: the runtime library, called in short-lived forks of the shim (the default).

Calling the library in the shim itself (`InProcessBackend`) makes the long-lived shim execute a
lot of library code, and in CPython every object that code touches (functions, code objects,
constants: their reference counts) copies a page the shim shared with the launcher: measured
~1.5 MB per shim. Here each verb runs in a fork of the shim that exits when done, so those
copies die with it; the shim itself only forks and reads one answer from a pipe.

Answers (and a spare's container config, shimd.backends.spare) are marshal data behind a 4-byte
length: both ends are this interpreter (the helper is a fork of the shim), and marshal is one C
call each way where json runs its encoder's and decoder's Python code in the shim (measured
2026-12-08, 2-core machine: ~0.2 MB of copied pages in a fork of a warmed launcher for one small
json.dumps, ~0.17 MB for one json.loads, ~0.06 MB for marshal's dumps and loads together).

The container's processes still end up children of the shim: the helper that created the init
(or an exec'd process) exits, and the kernel hands them to the shim, the child subreaper. An init
or exec that dies while its helper still lives is reparented as a zombie and reaped the same way.

Delete is the exception: it is the shim's last runtime call (Shutdown follows), so it runs in
the shim itself, saving a fork on the exit path; the pages it dirties die with the shim.

create and start share one helper: the library releases the init over the socket it created
it with, so the create helper waits (on a command pipe) for "start", or for the pipe to close
(delete before start), and then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import signal
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctrd import errdefs
from runtime import container as runtime_library
from shimd.backends import spare as spares
from shimd.backends.bundle import exec_process, oom_killed_in_cgroup
from shimd.backends.inprocess import mapped_errors, runtime_stdio
from shimd.backends.protocol import BackendConfig, ExecSpec, Limits, StatsRecord, Stdio
from shimd.backends.spare import Spare, Unwatched
from shimd.prctl import set_comm
from shimd.reaper import Exit, Reaper


def _error_dict(exc: BaseException) -> dict[str, str]:
    code = getattr(exc, "code", None)
    if isinstance(exc, errdefs.CtrdError):
        code = exc.code
    return {"code": code if isinstance(code, str) else "internal", "message": str(exc) or type(exc).__name__,
            "reason": str(getattr(exc, "reason", "") or "")}


def _close_fds_except(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _helper(out: int, keep: set[int], fn: Callable[[], Any]) -> None:
    """Runs in the fork: never returns. Detaches from the shim's loop, runs fn, reports, exits."""
    try:
        set_comm(b"ctrd-shim-call")
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        _close_fds_except(keep | {out})
        try:
            answer = frame({"ok": fn()})
        except BaseException as exc:
            answer = frame({"err": _error_dict(exc)})
        os.write(out, answer)
    finally:
        os._exit(0)


def _create_then_start(mod: Any, cfg: BackendConfig, stdio: Stdio, cmd_r: int, out: int) -> str:
    """The create helper's work: create, report the pid (and the cgroups path, for the exit's OOM
    check), then wait for "start" on `cmd_r` and start."""
    # The runtime checks the terminal in its own parse of config.json (here, not in the shim:
    # a parse there would cost the shim its pages).
    c = mod.Container.create(str(cfg.bundle), cfg.container_id, runtime_stdio(mod, stdio),
                             state_dir=str(cfg.runtime_root), terminal=stdio.console >= 0)
    st = getattr(c, "state", None)  # the launcher's warm-up stand-in has no runtime state
    cgroups_path = st().cgroups_path if st is not None else None
    os.write(out, frame({"ok": [c.pid, cgroups_path]}))
    for fd in {stdio.stdin, stdio.stdout, stdio.stderr, stdio.console} - {-1}:  # the init holds them now
        os.close(fd)
    if os.read(cmd_r, 16) != _START:
        return "aborted"  # the shim is deleting the created container
    c.start()
    return "started"


_START = b"start"  # the create helper's one command: release the init
_LEN = struct.Struct("<I")  # an answer's length, ahead of its marshal data


def frame(msg: dict[str, Any]) -> bytes:
    """One answer for the shim: marshal data behind its length (ValueError for what marshal
    cannot carry: the helper then answers with that error)."""
    data = marshal.dumps(msg)
    return _LEN.pack(len(data)) + data


def fork_spare(reaper: Reaper, runtime: Any = None) -> Spare:
    """A create helper forked before Create arrives (see shimd.backends.spare); `runtime` as
    ForkedBackend's."""
    return fork_spare_unwatched(runtime).watch(reaper, fresh=True)


def fork_spare_unwatched(runtime: Any = None) -> Unwatched:
    """fork_spare before the shim has its reaper: a spare shim forks its create helper while it
    waits for its request (shimd.launch.spare)."""
    mod = runtime if runtime is not None else runtime_library
    return Unwatched.fork(lambda ctl, out: _helper(out, {ctl}, lambda: _spare_create(mod, ctl, out)), mod)


def _spare_create(mod: Any, ctl: int, out: int) -> str:
    """The spare's work: wait for its container, then be its create helper (commands on `ctl`)."""
    got = spares.receive(ctl)
    if got is None:
        os._exit(0)  # discarded: no container, nobody reading the answer
    doc, fds = got
    _adopt_log(doc["bundle"])
    cfg = BackendConfig(doc["container_id"], doc["bundle"], doc["runtime"], doc["runtime_root"])
    stdio = Stdio(fds[0], fds[1], fds[2], fds[3] if len(fds) > 3 else -1)
    return _create_then_start(mod, cfg, stdio, ctl, out)


def _adopt_log(bundle: str) -> None:
    """The shim's log (in its state dir, the bundle) as stdout and stderr: a spare forked by a
    spare shim still has the launcher's (shimd.launch.spare); left as it is when there is none."""
    try:
        fd = os.open(f"{bundle}/shim.log", os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Answers:
    """A helper's answers (`frame`) from its pipe, read without blocking the loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = b""
        os.set_blocking(fd, False)

    async def next(self, what: str) -> Any:
        loop = asyncio.get_running_loop()
        while (n := self._complete()) == 0:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self.fd)
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                raise errdefs.Internal(f"{what}: the runtime helper died without an answer")
            self._buf += chunk
        data, self._buf = self._buf[_LEN.size:n], self._buf[n:]
        msg = marshal.loads(data)
        if "err" in msg:
            e = msg["err"]
            raise errdefs.from_code(e["code"], f"{what}: {e['message']}", e.get("reason", ""))
        return msg["ok"]

    def _complete(self) -> int:
        """The length of the first whole answer in the buffer, with its header; 0 for none yet."""
        if len(self._buf) < _LEN.size:
            return 0
        n = _LEN.size + int(_LEN.unpack_from(self._buf)[0])
        return n if len(self._buf) >= n else 0

    def close(self) -> None:
        os.close(self.fd)


class ForkedBackend:
    def __init__(self, config: BackendConfig, reaper: Reaper, state_dir: str | Path, runtime: Any = None) -> None:
        """`runtime`: the runtime library's module (runtime.container by default); the launcher's
        warm-up passes a stand-in that runs /bin/sh."""
        self.config = config
        self._mod: Any = runtime if runtime is not None else runtime_library
        self._reaper = reaper
        self._pid = 0
        # the create helper: its answers, command fd and exit (waited for since its fork: with
        # "start" sent at once it may be gone, and its exit reaped, before create has returned)
        # and whether create(start=True) has written "start" to it already
        self._starter: tuple[_Answers, int, asyncio.Future[Exit], bool] | None = None
        self._cgroups_path: str | None = None  # the container's, as the runtime's create saw it
        self._spare: Spare | None = None  # a create helper forked ahead, for create to use

    def adopt_spare(self, spare: Spare) -> bool:
        """Take a spare helper for create; False when this backend cannot use it (the spare
        would call another runtime than this backend's)."""
        if spare.runs is not self._mod or self._spare is not None:
            return False
        self._spare = spare
        return True

    def _what(self, verb: str) -> str:
        return f"{verb} {self.config.container_id}"

    def _load(self) -> Any:
        return self._mod.Container.load(self.config.container_id, state_dir=str(self.config.runtime_root),
                                         bundle=str(self.config.bundle), pid=self._pid)

    def _fork(self, fn: Callable[[], Any], keep: set[int]) -> tuple[int, _Answers]:
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _helper(w, keep, fn)
        os.close(w)
        return pid, _Answers(r)

    async def _call(self, verb: str, fn: Callable[[], Any], keep: frozenset[int] = frozenset()) -> Any:
        pid, answers = self._fork(fn, set(keep))
        exited = self._reaper.wait_fresh(pid)
        try:
            return await answers.next(self._what(verb))
        finally:
            answers.close()
            await exited

    def _from_spare(self, stdio: Stdio) -> tuple[int, int, asyncio.Future[Exit]] | None:
        """(answers fd, command fd, exit) of the spare helper, handed this container; None
        without one (or when it is gone)."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        cfg = self.config
        fds = [stdio.stdin, stdio.stdout, stdio.stderr] + ([stdio.console] if stdio.console >= 0 else [])
        try:
            cmd_w = spare.assign({"container_id": cfg.container_id, "bundle": cfg.bundle, "runtime": cfg.runtime,
                                  "runtime_root": cfg.runtime_root}, fds)
        except OSError:
            spare.close()  # its exit is reaped all the same; nobody needs to wait for it
            return None
        return spare.answers, cmd_w, spare.exited

    def _fork_creator(self, stdio: Stdio) -> tuple[int, int, asyncio.Future[Exit]]:
        mod = self._mod
        cmd_r, cmd_w = os.pipe2(os.O_CLOEXEC)
        cfg = self.config
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(cmd_w)
            _helper(w, {cmd_r, stdio.stdin, stdio.stdout, stdio.stderr, stdio.console},
                    lambda: _create_then_start(mod, cfg, stdio, cmd_r, w))
        os.close(w)
        os.close(cmd_r)
        return r, cmd_w, self._reaper.wait_fresh(pid)

    async def create(self, stdio: Stdio, start: bool = False) -> int:
        r, cmd_w, exited = self._from_spare(stdio) or self._fork_creator(stdio)
        if start:
            # The helper finds "start" waiting as soon as it has created: the init is released
            # without a round trip through this loop (start() then only collects the answer).
            os.write(cmd_w, _START)
        answers = _Answers(r)
        try:
            pid_path = await answers.next(self._what("create"))
            self._pid, self._cgroups_path = int(pid_path[0]), pid_path[1]
        except BaseException:
            answers.close()
            os.close(cmd_w)
            await exited
            raise
        self._starter = (answers, cmd_w, exited, start)
        return self._pid

    async def _end_starter(self, command: bytes) -> None:
        if self._starter is None:
            return
        answers, cmd_w, exited, sent = self._starter
        self._starter = None
        try:
            if command and not sent:
                os.write(cmd_w, command)
            os.close(cmd_w)
            await answers.next(self._what("start"))
        except BaseException:
            await exited
            raise
        finally:
            answers.close()
        # Answered: the helper only exits now, and its exit (tearing down a forked interpreter's
        # pages, ~1-2 ms) need not delay the answer; the reaper collects it whenever it comes, and
        # the init, its child, is reparented to this shim then.

    async def start(self) -> None:
        if self._starter is None:
            raise errdefs.FailedPrecondition(f"container {self.config.container_id} cannot be started twice")
        await self._end_starter(_START)

    async def kill(self, sig: int, all_procs: bool = False) -> None:
        await self._call("kill", lambda: self._load().kill(sig, all=all_procs))

    async def pause(self) -> None:
        await self._call("pause", lambda: self._load().pause())

    async def resume(self) -> None:
        await self._call("resume", lambda: self._load().resume())

    async def delete(self) -> None:
        with contextlib.suppress(errdefs.CtrdError):
            await self._end_starter(b"")  # a created, never started container: let its helper go
        # The shim's last runtime call (Shutdown follows): run it here, without a fork. The pages
        # it dirties matter only for a long-lived shim, and this one is about to exit.
        with mapped_errors(self._what("delete")):
            self._load().delete()

    async def stats(self) -> StatsRecord:
        def stats() -> dict[str, int]:
            s = self._load().stats()
            return {k: int(getattr(s, k)) for k in
                    ("memory_usage", "memory_limit", "cpu_usage_ns", "pids_current", "pids_limit")}

        return StatsRecord(**await self._call("stats", stats))

    async def update(self, limits: Limits) -> None:
        mod = self._mod

        def update() -> None:
            self._load().update(mod.Resources(memory_limit=limits.memory, cpu_quota=limits.cpu_quota,
                                              cpu_period=limits.cpu_period, pids_limit=limits.pids))

        await self._call("update", update)

    async def pids(self) -> list[int]:
        return [int(p) for p in await self._call("pids", lambda: list(self._load().pids()))]

    async def exec(self, spec: ExecSpec, stdio: Stdio) -> int:
        _, exited = await self.exec_start(spec, stdio)
        return (await exited).status

    async def exec_start(self, spec: ExecSpec, stdio: Stdio) -> tuple[int, asyncio.Future[Exit]]:
        mod = self._mod
        fds = frozenset({stdio.stdin, stdio.stdout, stdio.stderr, stdio.console} - {-1})

        def run_exec() -> int:  # the bundle is read in the helper: its parse stays out of the shim's pages
            proc = exec_process(self.config.bundle, spec)
            c = self._load()
            return int(c.exec(mod.ProcessSpec.from_oci(proc), runtime_stdio(mod, stdio)))

        try:
            pid = int(await self._call("exec", run_exec, fds))
        finally:
            for fd in fds:
                os.close(fd)
        if spec.on_pid is not None:
            spec.on_pid(pid)
        # the exec'd process was the helper's child; it is ours now (maybe already reaped: buffered)
        return pid, self._reaper.wait(pid)

    def oom_killed(self) -> bool:
        return oom_killed_in_cgroup(self.config.bundle, f"/ctrd-runtime/{self.config.container_id}",
                                    self._cgroups_path)
