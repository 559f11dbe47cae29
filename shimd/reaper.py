"""The shim's one reaper: SIGCHLD -> waitpid(-1, WNOHANG) until nothing is left to reap.

Every child of the shim comes through here: runtime binaries (runc create/start/kill...), the
container's init (reparented to us as child subreaper, or forked by the runtime library), exec'd
processes and orphans reparented to us. Nobody else may call waitpid: it would steal statuses.

Exits are fanned out by pid. A caller registers interest *before* spawning when it can
(`expect`), but an exit that arrives for a pid nobody has claimed yet is kept in a bounded buffer,
so `wait(pid)` after the fact still finds it (the "early exit": a container init can die before
the create call that forked it has returned its pid).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

UNCLAIMED_MAX = 1024


@dataclass(frozen=True, slots=True)
class Exit:
    pid: int
    status: int  # exit code, or 128+signal when signalled
    at: float  # unix seconds


def exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    return 255


WaitPid = Callable[[int, int], tuple[int, int]]


class Reaper:
    def __init__(self, waitpid: WaitPid = os.waitpid) -> None:
        self._waitpid = waitpid
        self._waiters: dict[int, list[asyncio.Future[Exit]]] = {}
        self._unclaimed: OrderedDict[int, Exit] = OrderedDict()
        self._listeners: list[Callable[[Exit], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle SIGCHLD on the loop, then reap whatever already exited."""
        self._loop = loop
        loop.add_signal_handler(signal.SIGCHLD, self.reap)
        self.reap()

    def uninstall(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGCHLD)
            self._loop = None

    def subscribe(self, listener: Callable[[Exit], None]) -> Callable[[], None]:
        """Call `listener` for every exit from now on; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def wait(self, pid: int) -> asyncio.Future[Exit]:
        """A future for pid's exit; already resolved when the exit was reaped before."""
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[Exit] = loop.create_future()
        early = self._unclaimed.pop(pid, None)
        if early is not None:
            fut.set_result(early)
        else:
            self._waiters.setdefault(pid, []).append(fut)
        return fut

    def wait_fresh(self, pid: int) -> asyncio.Future[Exit]:
        """Like `wait`, for a pid spawned just now without yielding to the loop: a buffered exit
        for that pid can only be a previous holder of the number, so it is dropped."""
        self._unclaimed.pop(pid, None)
        return self.wait(pid)

    def reap(self) -> None:
        while True:
            try:
                pid, status = self._waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.dispatch(Exit(pid, exit_status(status), time.time()))

    def dispatch(self, ex: Exit) -> None:
        waiters = [f for f in self._waiters.pop(ex.pid, []) if not f.done()]
        for fut in waiters:
            fut.set_result(ex)
        for listener in list(self._listeners):
            listener(ex)
        if not waiters:
            self._unclaimed[ex.pid] = ex
            while len(self._unclaimed) > UNCLAIMED_MAX:
                self._unclaimed.popitem(last=False)
