"""The shim's two asyncio primitives: a lock and a once-set flag.

asyncio.Lock and asyncio.Event would do (the Task's lifecycle lock and exit flag, each exec's
exit flag), but their code (asyncio.locks, asyncio.mixins) runs in every shim and so is pages
each shim copies from the launcher: measured 2026-12-08 on the 2-core machine, a fork of a
warmed launcher that ran one event loop copied ~0.05 MB more with one Lock taken and released,
~0.03 MB more with one Event set and waited. These two are what the shim needs of them (one
loop, one thread), in a module whose pages the shim touches anyway.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Mutex:
    """A lock for coroutines of one loop: `async with mutex:`. A holder's release wakes the
    longest waiter (a caller that comes before it runs may take the lock first; the waiter then
    waits again, behind the others); a waiter cancelled after its wake-up passes it on."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[asyncio.Future[None]] = []

    def locked(self) -> bool:
        return self._held

    async def __aenter__(self) -> None:
        while self._held:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled() and not self._held:
                    self._wake_next(fut)  # woken, then cancelled before it ran: the next goes
                raise
            finally:
                self._waiters.remove(fut)
        self._held = True

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._held = False
        self._wake_next(None)

    def _wake_next(self, skip: asyncio.Future[None] | None) -> None:
        for fut in self._waiters:
            if fut is not skip and not fut.done():
                fut.set_result(None)
                return


class Flag:
    """Set once, awaited by any number (asyncio.Event without clear)."""

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            self._waiters.remove(fut)
