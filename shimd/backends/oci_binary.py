"""OciBinaryBackend: drive any OCI runtime binary (runc, ctrd-runtime) with runc's command line.

`<rt> --root R --log F --log-format json <verb> ...`; on failure the last error line of that
JSON log is the message. ctrd-runtime writes the error's taxonomy code and reason beside it, and
those are used as they are; a line without them (runc, any other runtime) is a plain Internal
error carrying the message: no guessing from message text. Every invocation is a child of the
shim reaped by the one reaper.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrd import errdefs
from shimd import console, spawn
from shimd.backends.bundle import check_terminal, exec_process, oom_killed_in_cgroup
from shimd.backends.protocol import BackendConfig, ExecSpec, Limits, StatsRecord, Stdio
from shimd.reaper import Exit, Reaper

_seq = itertools.count(1)


@dataclass(frozen=True, slots=True)
class LogError:
    """The last error line of a runtime's JSON log."""

    message: str
    code: str = ""  # an errdefs code string; "" when the runtime wrote none (runc)
    reason: str = ""  # one of ctrd.reasons, or ""


def last_error(log: Path) -> LogError | None:
    found = None
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("level") in ("error", "fatal"):
            code, reason = rec.get("code", ""), rec.get("reason", "")
            found = LogError(str(rec.get("msg", "")), code if isinstance(code, str) else "",
                             reason if isinstance(reason, str) and isinstance(code, str) and code else "")
    return found


def to_error(err: LogError | None, what: str, stderr: str = "") -> errdefs.CtrdError:
    """The taxonomy error of a failed runtime call named `what`: the code and reason the runtime
    logged, or Internal with its message (or its stderr) when it logged none."""
    message = err.message if err is not None and err.message else stderr
    text = f"{what}: {message}" if message else f"{what} failed"
    if err is not None and err.code:
        return errdefs.from_code(err.code, text, err.reason)
    return errdefs.Internal(text)


class OciBinaryBackend:
    def __init__(self, config: BackendConfig, reaper: Reaper, state_dir: str | Path) -> None:
        self.config = config
        self._reaper = reaper
        self._state_dir = Path(state_dir)
        self._id = config.container_id
        self._console_lock = asyncio.Lock()

    def _argv(self, log: Path, *args: str) -> list[str]:
        return [self.config.runtime, "--root", str(self.config.runtime_root), "--log", str(log),
                "--log-format", "json", *args]

    async def _run(self, verb: str, *args: str, stdio: Stdio | None = None, stdio_in: int | None = None) -> spawn.Result:
        log = self._state_dir / f"runtime-{os.getpid()}-{next(_seq)}.log"
        argv = self._argv(log, *args)
        try:
            if stdio is None:
                res = await spawn.run(self._reaper, argv, stdin=stdio_in)
            else:
                pid = spawn.spawn(argv, stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr)
                ex = await self._reaper.wait_fresh(pid)
                res = spawn.Result(ex.status, b"", b"")
            if res.status != 0:
                raise to_error(last_error(log), f"{self.config.runtime} {verb} {self._id}",
                               res.stderr.decode(errors="replace").strip())
            return res
        except FileNotFoundError as exc:
            raise errdefs.InvalidArgument(f"runtime binary {self.config.runtime!r} not found") from exc
        finally:
            log.unlink(missing_ok=True)

    async def create(self, stdio: Stdio, start: bool = False) -> int:
        check_terminal(self.config.bundle, stdio.console >= 0)
        pidfile = self._state_dir / "init.pid"
        pidfile.unlink(missing_ok=True)
        if stdio.console >= 0:
            with console.Listener(str(self._state_dir), f"create {self._id}") as con:
                await self._run("create", "create", "--bundle", str(self.config.bundle), "--pid-file", str(pidfile),
                                "--console-socket", con.path, self._id, stdio=stdio)
                con.forward(stdio.console)
        else:
            await self._run("create", "create", "--bundle", str(self.config.bundle), "--pid-file", str(pidfile),
                            self._id, stdio=stdio)
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError) as exc:
            raise errdefs.Internal(f"runtime wrote no pid file {pidfile}") from exc

    async def start(self) -> None:
        await self._run("start", "start", self._id)

    async def kill(self, sig: int, all_procs: bool = False) -> None:
        await self._run("kill", "kill", *(["--all"] if all_procs else []), self._id, str(sig))

    async def pause(self) -> None:
        await self._run("pause", "pause", self._id)

    async def resume(self) -> None:
        await self._run("resume", "resume", self._id)

    async def delete(self) -> None:
        await self._run("delete", "delete", "--force", self._id)

    async def state(self) -> dict[str, Any]:
        res = await self._run("state", "state", self._id)
        out: dict[str, Any] = json.loads(res.stdout)
        return out

    async def pids(self) -> list[int]:
        res = await self._run("ps", "ps", "--format", "json", self._id)
        return [int(p) for p in json.loads(res.stdout or b"[]") or []]

    async def stats(self) -> StatsRecord:
        res = await self._run("events", "events", "--stats", self._id)
        data = json.loads(res.stdout).get("data", {})
        mem = data.get("memory", {}).get("usage", {})
        pids = data.get("pids", {})
        return StatsRecord(
            memory_usage=int(mem.get("usage", 0)), memory_limit=int(mem.get("limit", 0)),
            cpu_usage_ns=int(data.get("cpu", {}).get("usage", {}).get("total", 0)),
            pids_current=int(pids.get("current", 0)), pids_limit=int(pids.get("limit", 0)),
        )

    async def update(self, limits: Limits) -> None:
        """`<rt> update -r -`: the resources JSON on stdin."""
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            os.write(w, json.dumps(limits.to_oci()).encode())
            os.close(w)
            w = -1
            await self._run("update", "update", "-r", "-", self._id, stdio_in=r)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    async def exec(self, spec: ExecSpec, stdio: Stdio) -> int:
        """`<rt> exec` in the foreground: the binary waits for the process and exits with its status.
        The process JSON goes through a pipe (fd 3), so nothing is left on disk."""
        if not spec.args:
            raise errdefs.InvalidArgument("exec: args must not be empty")
        log = self._state_dir / f"runtime-{os.getpid()}-{next(_seq)}.log"
        argv = self._argv(log, "exec", "--process", "/proc/self/fd/3", self._id)
        try:
            pid = self._spawn_exec(argv, spec, stdio)
            if spec.on_pid is not None:  # the runtime binary's pid: killing it ends runc's wait, not the process
                spec.on_pid(pid)
            ex = await self._reaper.wait_fresh(pid)
            # 255 with an error logged: the runtime failed, not the process (which may exit 255
            # itself: then the log holds no error).
            err = last_error(log)
            if ex.status == 255 and err is not None:
                raise to_error(err, f"{self.config.runtime} exec {self._id}")
            return ex.status
        finally:
            log.unlink(missing_ok=True)

    async def exec_start(self, spec: ExecSpec, stdio: Stdio) -> tuple[int, asyncio.Future[Exit]]:
        """`<rt> exec --detach --pid-file`: the binary returns once the process runs (with a
        terminal, after sending its pty master to a console socket, forwarded to `stdio.console`)."""
        if not spec.args:
            raise errdefs.InvalidArgument("exec: args must not be empty")
        n = next(_seq)
        log = self._state_dir / f"runtime-{os.getpid()}-{n}.log"
        pidfile = self._state_dir / f"exec-{n}.pid"
        try:
            if stdio.console >= 0:
                async with self._console_lock:  # one console socket path per state dir
                    with console.Listener(str(self._state_dir), f"exec {self._id}") as con:
                        argv = self._argv(log, "exec", "--detach", "--pid-file", str(pidfile),
                                          "--console-socket", con.path, "--process", "/proc/self/fd/3", self._id)
                        await self._run_exec(argv, spec, stdio, log)
                        con.forward(stdio.console)
            else:
                argv = self._argv(log, "exec", "--detach", "--pid-file", str(pidfile),
                                  "--process", "/proc/self/fd/3", self._id)
                await self._run_exec(argv, spec, stdio, log)
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError) as exc:
                raise errdefs.Internal(f"{self.config.runtime} exec {self._id}: no pid file {pidfile}") from exc
            # the binary has exited: the process is ours (subreaper), maybe already reaped
            return pid, self._reaper.wait(pid)
        finally:
            if stdio.console >= 0:
                os.close(stdio.console)
            log.unlink(missing_ok=True)
            pidfile.unlink(missing_ok=True)

    async def _run_exec(self, argv: list[str], spec: ExecSpec, stdio: Stdio, log: Path) -> None:
        pid = self._spawn_exec(argv, spec, stdio)
        ex = await self._reaper.wait_fresh(pid)
        if ex.status != 0:
            raise to_error(last_error(log), f"{self.config.runtime} exec {self._id}")

    def _spawn_exec(self, argv: list[str], spec: ExecSpec, stdio: Stdio) -> int:
        """Spawn the runtime with the process JSON on fd 3 (a pipe: nothing left on disk); closes
        the three stdio fds."""
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            os.write(w, json.dumps(exec_process(self.config.bundle, spec)).encode())
            os.close(w)
            w = -1
            return spawn.spawn(argv, stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr, extra={3: r})
        except FileNotFoundError as exc:
            raise errdefs.InvalidArgument(f"runtime binary {self.config.runtime!r} not found") from exc
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
            for fd in (stdio.stdin, stdio.stdout, stdio.stderr):
                os.close(fd)

    def oom_killed(self) -> bool:
        return oom_killed_in_cgroup(self.config.bundle)
