"""InProcessBackend: the runtime library called in the shim's own process (the fast path).

`runtime.container.Container.create` forks the container init so that it is a child of the shim
and never waits for it: the shim's reaper does. The library's calls are synchronous; they are
short (setup happens in the forked child) so they run on the loop thread.
Runtime errors carry their errdefs code string; they are rebuilt as errdefs errors here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ctrd import errdefs
from runtime import container as runtime_library
from shimd.backends.bundle import check_terminal, exec_process
from shimd.backends.protocol import BackendConfig, ExecSpec, Limits, StatsRecord, Stdio
from shimd.reaper import Exit, Reaper

T = TypeVar("T")


@contextlib.contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    try:
        yield
    except errdefs.CtrdError:
        raise
    except OSError as exc:
        raise errdefs.Internal(f"{what}: {exc}") from exc
    except Exception as exc:
        code = getattr(exc, "code", None)
        if isinstance(code, str):
            raise errdefs.from_code(code, f"{what}: {exc}", getattr(exc, "reason", "")) from exc
        raise


def runtime_stdio(mod: Any, stdio: Stdio) -> Any:
    """The runtime library's Stdio for the shim's (a console socket only when there is one: the
    launcher's warm-up stand-in knows no console)."""
    if stdio.console >= 0:
        return mod.Stdio(stdio.stdin, stdio.stdout, stdio.stderr, console=stdio.console)
    return mod.Stdio(stdio.stdin, stdio.stdout, stdio.stderr)


class InProcessBackend:
    def __init__(self, config: BackendConfig, reaper: Reaper, state_dir: str | Path) -> None:
        self.config = config
        self._reaper = reaper
        self._state_dir = state_dir
        self._c: Any = None

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        with mapped_errors(f"{what} {self.config.container_id}"):
            return fn(*args, **kw)

    async def create(self, stdio: Stdio, start: bool = False) -> int:
        check_terminal(self.config.bundle, stdio.console >= 0)
        mod = runtime_library
        st = runtime_stdio(mod, stdio)
        self._c = self._call("create", mod.Container.create, str(self.config.bundle), self.config.container_id,
                             st, state_dir=str(self.config.runtime_root))
        return int(self._c.pid)

    async def start(self) -> None:
        self._call("start", self._c.start)

    async def kill(self, sig: int, all_procs: bool = False) -> None:
        self._call("kill", self._c.kill, sig, all=all_procs)

    async def pause(self) -> None:
        self._call("pause", self._c.pause)

    async def resume(self) -> None:
        self._call("resume", self._c.resume)

    async def delete(self) -> None:
        self._call("delete", self._c.delete)

    async def stats(self) -> StatsRecord:
        s = self._call("stats", self._c.stats)
        return StatsRecord(int(s.memory_usage), int(s.memory_limit), int(s.cpu_usage_ns),
                           int(s.pids_current), int(s.pids_limit))

    async def update(self, limits: Limits) -> None:
        res = runtime_library.Resources(memory_limit=limits.memory, cpu_quota=limits.cpu_quota,
                                        cpu_period=limits.cpu_period, pids_limit=limits.pids)
        self._call("update", self._c.update, res)

    async def pids(self) -> list[int]:
        return [int(p) for p in self._call("pids", self._c.pids)]

    async def exec(self, spec: ExecSpec, stdio: Stdio) -> int:
        _, exited = await self.exec_start(spec, stdio)
        return (await exited).status

    async def exec_start(self, spec: ExecSpec, stdio: Stdio) -> tuple[int, asyncio.Future[Exit]]:
        mod = runtime_library
        try:
            proc = self._call("exec", mod.ProcessSpec.from_oci, exec_process(self.config.bundle, spec))
            pid = int(self._call("exec", self._c.exec, proc, runtime_stdio(mod, stdio)))
            exited = self._reaper.wait_fresh(pid)
            if spec.on_pid is not None:
                spec.on_pid(pid)
            return pid, exited
        finally:
            for fd in {stdio.stdin, stdio.stdout, stdio.stderr, stdio.console} - {-1}:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def oom_killed(self) -> bool:
        return bool(self._call("oom", self._c.oom_killed))


def load_and_delete(config: BackendConfig, pid: int) -> None:
    """For `ctrd-shim delete`: kill what is left of the container and remove its runtime state."""
    mod = runtime_library
    with mapped_errors(f"delete {config.container_id}"):
        c = mod.Container.load(config.container_id, state_dir=str(config.runtime_root),
                               bundle=str(config.bundle), pid=pid)
        c.delete()
