"""The daemon's side of the network helper: one child process, one request at a time."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import Any, Protocol

from ctrd import errdefs
from daemon.network import netnsfile, wire

_START_TIMEOUT = 30.0
_CALL_TIMEOUT = 60.0

# Ops that enter no namespace run in the daemon, on the loop, without the helper (see netnsfile).
LOCAL_OPS: dict[str, Callable[..., Any]] = {"sandbox_delete": netnsfile.remove, "list_sandboxes": netnsfile.list_dir}


class NetOpsClient(Protocol):
    """The seam between NetworkManager and the helper (unit tests pass a fake)."""

    async def start(self) -> None: ...
    async def call(self, op: str, **args: Any) -> Any: ...
    async def close(self) -> None: ...


class HelperClient:
    """Starts `python -m daemon.network.helper` (fork+exec) and talks to it over its pipes.

    A helper that died is restarted on the next call, so one crash does not wedge networking."""

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.pid = 0

    async def start(self) -> None:
        async with self._lock:
            await self._spawn()

    async def _spawn(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            return
        self._proc = await asyncio.create_subprocess_exec(
            self._python, "-m", "daemon.network.helper",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, close_fds=True,
        )
        try:
            ready = await asyncio.wait_for(self._read(), _START_TIMEOUT)
            self.pid = int(wire.unwrap(ready)["pid"])
        except BaseException:
            await self._kill()
            raise

    async def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            head = await self._proc.stdout.readexactly(wire.HEADER.size)
            (size,) = wire.HEADER.unpack(head)
            body = await self._proc.stdout.readexactly(size)
        except asyncio.IncompleteReadError:
            raise errdefs.Unavailable("network helper exited unexpectedly")
        return wire.decode_body(body)

    async def call(self, op: str, **args: Any) -> Any:
        local = LOCAL_OPS.get(op)
        if local is not None:
            return local(**args)
        async with self._lock:
            exchange = asyncio.ensure_future(self._exchange(op, args))
            try:
                reply = await asyncio.shield(exchange)
            except asyncio.CancelledError:
                # A cancelled caller must not leave the reply stream out of step or kill the helper
                # halfway through an operation: let this one finish (its result is dropped).
                with contextlib.suppress(BaseException):
                    await exchange
                raise
        return wire.unwrap(reply)

    async def _exchange(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        await self._spawn()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(wire.encode({"op": op, "args": args}))
            await self._proc.stdin.drain()
            return await asyncio.wait_for(self._read(), _CALL_TIMEOUT)
        except (ConnectionError, TimeoutError, errdefs.Unavailable) as e:
            # The helper is gone or hung: the stream is out of step, start a fresh one next time.
            await self._kill()
            raise errdefs.Unavailable(f"network helper failed during {op}: {e or type(e).__name__}")

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()

    async def close(self) -> None:
        async with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                pass
            await self._kill()
